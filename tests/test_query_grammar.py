"""The stored-query value syntax (ITI TF-2a §3.18.4.1.2.3.5; xds-notes §6.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xds.query.grammar import (
    VALUE_LENGTH_LIMIT,
    Atom,
    CodeValue,
    ParseError,
    check_dtm,
    encode_values,
    format_list,
    parse_code,
    parse_value,
    parse_values,
    quote,
)

# Any text, with quotes, commas, parentheses, carets, white space and non-ASCII weighted in.
_tricky = st.sampled_from(list("'(),^ \t\n%_\u00e9\u4e2d\U0001f600"))
texts = st.lists(st.one_of(st.characters(), _tricky), max_size=40).map("".join)
items = st.lists(texts, min_size=1, max_size=12)


def _flat(groups: tuple[tuple[Atom, ...], ...]) -> list[str]:
    return [atom.text for group in groups for atom in group]


def _cut_at(text: str, points: list[int]) -> list[str]:
    cuts = sorted({p % (len(text) + 1) for p in points})
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


# -- strings and lists -------------------------------------------------------------------------


@given(texts)
def test_quoted_string_round_trip(text: str) -> None:
    assert parse_value(quote(text)) == (Atom(text, True),)


def test_quote_doubles_embedded_quotes() -> None:
    assert quote("O'Brien") == "'O''Brien'"
    assert parse_value("'O''Brien'") == (Atom("O'Brien", True),)
    assert parse_value("''''") == (Atom("'", True),)
    assert parse_value("''") == (Atom("", True),)


@given(items)
def test_list_round_trip(values: list[str]) -> None:
    encoded = format_list(quote(v) for v in values)
    assert [a.text for a in parse_value(encoded)] == values


@given(items, st.lists(st.integers(min_value=0), max_size=6))
def test_list_split_over_values_at_arbitrary_points(values: list[str], points: list[int]) -> None:
    # A list cut anywhere over several rim:Value elements reads as the uncut list.
    encoded = format_list(quote(v) for v in values)
    groups = parse_values(_cut_at(encoded, points))
    assert len(groups) == 1
    assert _flat(groups) == values


@given(st.lists(items, min_size=1, max_size=5))
def test_several_complete_values_are_ored_in_order(lists: list[list[str]]) -> None:
    pieces = [format_list(quote(v) for v in values) for values in lists]
    groups = parse_values(pieces)
    assert len(groups) == len(lists)
    assert _flat(groups) == [v for values in lists for v in values]


def test_complete_and_cut_values_mix() -> None:
    groups = parse_values(["('a')", "('b','", "c')", "'d'"])
    assert [[a.text for a in g] for g in groups] == [["a"], ["b", "c"], ["d"]]


def test_empty_values_contribute_nothing() -> None:
    assert parse_values(["", "  ", "('a')", "\n"]) == ((Atom("a", True),),)
    assert parse_values([]) == ()


def test_whitespace_around_items_is_tolerated() -> None:
    assert _flat(parse_values([" ( 'a' ,\n\t'b' ) "])) == ["a", "b"]
    assert parse_value("  'x'  ") == (Atom("x", True),)


def test_unquoted_numbers() -> None:
    assert parse_value("20040101") == (Atom("20040101", False),)
    assert parse_value("(1, '2')") == (Atom("1", False), Atom("2", True))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'abc", "not terminated"),
        ("('a','b'", "not closed"),
        ("('a' 'b')", "expected ',' or ')' at position 5"),
        ("('a',)", "expected a quoted string or a number at position 5"),
        ("()", "the list is empty"),
        ("", "the value is empty"),
        ("   ", "the value is empty"),
        ("Approved", "expected a quoted string or a number at position 0"),
        ("'a' junk", "unexpected text after the value at position 4"),
        ("('a'))", "unexpected text after the value at position 5"),
        ("2004x", "unexpected text after the value at position 4"),
        ("((('a')))", "expected a quoted string or a number at position 1"),
    ],
)
def test_malformed_values_give_precise_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_value(text)


@pytest.mark.parametrize(
    "pieces",
    [["('a',", "'b'"], ["'abc"], ["('a')", "('b'"], ["'a')"]],
)
def test_incomplete_value_lists_raise(pieces: list[str]) -> None:
    with pytest.raises(ParseError):
        parse_values(pieces)


# -- codes ---------------------------------------------------------------------------------------


def test_parse_code() -> None:
    assert parse_code("Emergency^^Connect-a-thon codes") == CodeValue("Emergency", "Connect-a-thon codes")
    # A display name in the middle component is ignored, as the NIST toolkit does.
    assert parse_code("c^shown^s") == CodeValue("c", "s")
    assert str(CodeValue("c", "1.2.3")) == "c^^1.2.3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a^^", "no coding scheme"),
        ("a", "not of the form CODE\\^\\^SCHEME"),
        ("^^scheme", "no code value"),
        ("a^^b^^c", "not of the form"),
        ("a^b", "not of the form"),
    ],
)
def test_codes_without_scheme_or_code_are_refused(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_code(text)


def test_code_value_validates_itself() -> None:
    with pytest.raises(ValueError):
        CodeValue("a", "")
    with pytest.raises(ValueError):
        CodeValue("a^b", "s")


code_part = texts.filter(lambda t: t and "^" not in t)


@given(code_part, code_part)
def test_code_round_trip_through_quoting(code: str, scheme: str) -> None:
    (atom,) = parse_value(quote(str(CodeValue(code, scheme))))
    assert parse_code(atom.text) == CodeValue(code, scheme)


# -- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2004", "200412", "20041231", "2004123123", "200412312359", "20041231235959"])
def test_dtm_precisions(text: str) -> None:
    assert check_dtm(text) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("200", "3 digits"),
        ("20041", "5 digits"),
        ("200412312359590", "15 digits"),
        ("2004-12", "not a DTM"),
        ("", "not a DTM"),
        ("200413", "invalid month 13"),
        ("20041200", "invalid day 00"),
        ("2004123124", "invalid hour 24"),
        ("200412312360", "invalid minute 60"),
        ("20041231235960", "invalid second 60"),
    ],
)
def test_bad_dtm(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        check_dtm(text)


# -- writing within the 256-character rim:Value limit -------------------------------------------


@given(items, st.integers(min_value=4, max_value=60))
def test_encoded_lists_fit_the_limit_and_read_back(values: list[str], limit: int) -> None:
    encoded = encode_values([quote(v) for v in values], as_list=True, limit=limit)
    assert all(len(text) <= limit for text in encoded)
    assert _flat(parse_values(encoded)) == values


@given(texts, st.integers(min_value=2, max_value=40))
def test_encoded_single_strings_fit_the_limit_and_read_back(value: str, limit: int) -> None:
    encoded = encode_values([quote(value)], as_list=False, limit=limit)
    assert all(len(text) <= limit for text in encoded)
    groups = parse_values(encoded)
    assert len(groups) == 1
    assert _flat(groups) == [value]


def test_long_lists_are_split_between_items_when_they_fit() -> None:
    uuids = [f"urn:uuid:{i:08d}-0000-0000-0000-000000000000" for i in range(30)]
    encoded = encode_values([quote(u) for u in uuids], as_list=True)
    assert len(encoded) > 1
    assert all(len(text) <= VALUE_LENGTH_LIMIT for text in encoded)
    # Each rim:Value is a complete list on its own (the TF's multi-Value form).
    assert [a.text for text in encoded for a in parse_value(text)] == uuids


def test_quote_pairs_are_never_cut_apart() -> None:
    # Cutting 'x''y' between its doubled quotes would read as two strings, x and y.
    for limit in range(2, 8):
        encoded = encode_values([quote("x'y")], as_list=False, limit=limit)
        assert _flat(parse_values(encoded)) == ["x'y"]


def test_encode_values_rejects_nothing_or_several_singles() -> None:
    with pytest.raises(ValueError):
        encode_values([], as_list=True)
    with pytest.raises(ValueError):
        encode_values(["'a'", "'b'"], as_list=False)
