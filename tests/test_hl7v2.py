"""The HL7 v2 ER7 parser and encoder: structure, delimiters, escapes, errors and round trips."""

from __future__ import annotations

import hl7  # python-hl7: an independent parser used as an oracle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xds.hl7.v2 import (
    STANDARD_ENCODING,
    Encoding,
    ErrorCondition,
    Hl7ParseError,
    Message,
    Segment,
    composite,
    decode_bytes,
    encode_field,
    encode_message,
    escape,
    header_segment,
    parse_field,
    parse_message,
    text_field,
    unescape,
)

NIST_A01 = (
    "MSH|^~\\&|NIST_SENDER^^|NIST^^|NIST_RECEIVER^^|NIST^^|20240101120000||ADT^A01^ADT_A01|NIST-123|P|2.3.1\r"
    "EVN||20240101120000\r"
    "PID|||IHEBLUE-1234^^^&1.3.6.1.4.1.21367.13.20.1000&ISO~L-77^^^HOSP&1.2.3.4&ISO^MR||BLUE^JOHN||19600101|M\r"
    "PV1||O\r"
)


def test_parse_reads_fields_components_repetitions_and_subcomponents() -> None:
    message = parse_message(NIST_A01)
    assert [s.name for s in message.segments] == ["MSH", "EVN", "PID", "PV1"]
    msh = message.header
    assert msh.value(1) == "|"
    assert msh.value(2) == "^~\\&"
    assert msh.value(3) == "NIST_SENDER"
    assert msh.field(3) == (((("NIST_SENDER",), ("",), ("",))),)
    assert (msh.value(9, 1), msh.value(9, 2), msh.value(9, 3)) == ("ADT", "A01", "ADT_A01")
    assert msh.value(10) == "NIST-123"
    assert msh.value(12) == "2.3.1"
    pid = message.first("PID")
    assert pid is not None
    assert len(pid.field(3)) == 2
    assert pid.value(3, 1) == "IHEBLUE-1234"
    assert pid.value(3, 4, 2) == "1.3.6.1.4.1.21367.13.20.1000"
    assert pid.value(3, 4, 3) == "ISO"
    assert pid.value(3, 4, 1, repetition=2) == "HOSP"
    assert pid.value(3, 5, repetition=2) == "MR"
    assert (pid.value(5, 1), pid.value(5, 2)) == ("BLUE", "JOHN")
    assert pid.field(4) == ()
    assert pid.value(30) == ""
    assert pid.value(3, 9, repetition=5) == ""


def test_positions_are_one_based() -> None:
    pid = parse_message(NIST_A01).segments[2]
    with pytest.raises(IndexError):
        pid.value(0)


def test_encode_reproduces_the_wire_text_exactly() -> None:
    assert encode_message(parse_message(NIST_A01)) == NIST_A01


@pytest.mark.parametrize("terminator", ["\n", "\r\n", "\r\r"])
def test_lf_and_crlf_segment_terminators_are_tolerated(terminator: str) -> None:
    assert parse_message(NIST_A01.replace("\r", terminator)) == parse_message(NIST_A01)


def test_escape_sequences_decode_to_delimiters_and_encode_back() -> None:
    text = NIST_A01.replace("BLUE^JOHN", "O\\S\\BRIEN\\F\\X\\T\\Y\\R\\Z\\E\\W^JOHN")
    message = parse_message(text)
    pid = message.first("PID")
    assert pid is not None
    assert pid.value(5, 1) == "O^BRIEN|X&Y~Z\\W"
    assert pid.value(5, 2) == "JOHN"
    assert encode_message(message) == text


def test_hex_escape_decodes_ascii_and_unknown_sequences_stay_verbatim() -> None:
    assert unescape("a\\X0D0A\\b") == "a\r\nb"
    assert unescape("\\H\\bold\\N\\") == "\\H\\bold\\N\\"
    assert unescape("line\\.br\\two") == "line\\.br\\two"
    assert unescape("\\XC3A9\\") == "\\XC3A9\\"  # not ASCII: kept as sent


def test_encoder_escapes_control_characters_so_frames_stay_intact() -> None:
    encoded = escape("a\rb\x0bc\x1cd\te")
    assert encoded == "a\\X0D\\b\\X0B\\c\\X1C\\d\te"
    assert unescape(encoded) == "a\rb\x0bc\x1cd\te"


def test_message_delimiters_are_taken_from_msh_1_and_msh_2() -> None:
    text = (
        "MSH*!#$%*SENDER*FAC*RECV*FAC*20240101**ADT!A01*C-1*P*2.5\r"
        "PID***X-1!!!%1.2.3%ISO#Y-2!!!%1.2.4%ISO**A$F$B!C\r"
    )
    message = parse_message(text)
    assert message.encoding == Encoding(field="*", component="!", repetition="#", escape="$", subcomponent="%")
    assert message.header.value(9, 2) == "A01"
    pid = message.first("PID")
    assert pid is not None
    assert pid.value(3, 4, 2, repetition=2) == "1.2.4"
    assert pid.value(5, 1) == "A*B"
    assert encode_message(message) == text


def test_v27_truncation_character_is_kept_and_escaped() -> None:
    text = "MSH|^~\\&#|A|B|C|D|20240101||ADT^A01^ADT_A01|1|P|2.7\rPID|||a\\P\\b\r"
    message = parse_message(text)
    assert message.encoding.truncation == "#"
    assert message.header.value(2) == "^~\\&#"
    pid = message.first("PID")
    assert pid is not None
    assert pid.value(3) == "a#b"
    assert encode_message(message) == text


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
        ("PID|||1\r", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
        ("this is not hl7", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
        ("MSH|^~\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSH|^~\\|A\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSH|^^\\&|A\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSHA^~\\&|A\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSH|^~\\&|A\rpid|||1\r", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
        ("MSH|^~\\&|A\rPID+||1\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSH|^~\\&|A\rPID|||1\\S\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSH|^~\\&|A\rPID|||1\\\\2\r", ErrorCondition.DATA_TYPE_ERROR),
        ("MSH|^~\\&|A\rMSH|^~\\&|B\r", ErrorCondition.SEGMENT_SEQUENCE_ERROR),
    ],
)
def test_malformed_messages_are_refused(text: str, condition: ErrorCondition) -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse_message(text)
    assert caught.value.condition is condition


def test_parse_error_names_the_segment() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        parse_message("MSH|^~\\&|A\rEVN||1\rPID|||1\\S\r")
    assert caught.value.segment == "PID"
    assert caught.value.segment_number == 3


def test_builders_make_the_expected_tree() -> None:
    assert text_field("") == ()
    assert text_field("x") == ((("x",),),)
    assert composite("ACK", "A01", "ACK") == ((("ACK",), ("A01",), ("ACK",)),)
    assert composite("PID", ("101", "Required field missing")) == ((("PID",), ("101", "Required field missing")),)
    msh = header_segment(STANDARD_ENCODING, [text_field("APP")])
    assert encode_message(Message((msh,))) == "MSH|^~\\&|APP\r"


def test_parse_field_and_encode_field_round_trip() -> None:
    raw = "a^b&c~d\\F\\"
    assert parse_field(raw) == ((("a",), ("b", "c")), (("d|",),))
    assert encode_field(parse_field(raw)) == raw


def test_decode_bytes_uses_msh_18() -> None:
    text = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5||||||8859/1\rPID|||1||M\u00dcLLER\r"
    data = text.encode("utf-8")  # valid UTF-8, but MSH-18 says ISO 8859-1, which must win
    decoded, codec = decode_bytes(data)
    assert codec == "latin-1"
    assert decoded == data.decode("latin-1")
    assert decoded != text


def test_decode_bytes_defaults_to_utf8_then_latin1() -> None:
    text = "MSH|^~\\&|A\rPID|||1||M\u00dcLLER\r"
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")
    assert decode_bytes(text.encode("latin-1")) == (text, "latin-1")


def test_decode_bytes_refuses_an_unknown_character_set() -> None:
    with pytest.raises(Hl7ParseError) as caught:
        decode_bytes(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5||||||EBCDIC\r")
    assert caught.value.condition is ErrorCondition.TABLE_VALUE_NOT_FOUND


def test_agrees_with_python_hl7_on_a_realistic_message() -> None:
    ours = parse_message(NIST_A01)
    theirs = hl7.parse(NIST_A01)
    pid = ours.first("PID")
    assert pid is not None
    for key, value in {
        "PID.F3.R1.C1": pid.value(3, 1),
        "PID.F3.R1.C4.S2": pid.value(3, 4, 2),
        "PID.F3.R2.C4.S1": pid.value(3, 4, 1, repetition=2),
        "PID.F5.R1.C2": pid.value(5, 2),
        "MSH.F9.R1.C3": ours.header.value(9, 3),
        "MSH.F10": ours.header.value(10),
    }.items():
        assert theirs[key] == value, key


# -- properties ---------------------------------------------------------------------------------

_leaf = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_component = st.lists(_leaf, min_size=1, max_size=3).map(tuple)
_repetition = st.lists(_component, min_size=1, max_size=3).map(tuple)
_raw_field = st.lists(_repetition, min_size=1, max_size=3).map(tuple)
# The empty field has one canonical form, (), which the parser produces for "".
_field = _raw_field.map(lambda f: () if f == ((("",),),) else f)
_segment_name = st.from_regex(r"\A(?!MSH)[A-Z][A-Z0-9]{2}\Z")
_segment = st.builds(Segment, _segment_name, st.lists(_field, max_size=6).map(tuple))
_header_fields = st.lists(_field, max_size=10)


@settings(max_examples=300, deadline=None)
@given(header=_header_fields, body=st.lists(_segment, max_size=5))
def test_encode_then_parse_gives_back_the_tree(header: list, body: list) -> None:
    message = Message((header_segment(STANDARD_ENCODING, header), *body), STANDARD_ENCODING)
    assert parse_message(encode_message(message)) == message


@settings(max_examples=300, deadline=None)
@given(_leaf)
def test_escape_then_unescape_is_identity(text: str) -> None:
    encoded = escape(text)
    assert "\r" not in encoded and "\x0b" not in encoded and "\x1c" not in encoded
    assert unescape(encoded) == text


# python-hl7 drops trailing blanks of a segment line, so the oracle test avoids them.
_printable_leaf = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=10).filter(
    lambda s: not s.endswith(" ")
)


@settings(max_examples=200, deadline=None)
@given(family=_printable_leaf, given_name=_printable_leaf, ident=_printable_leaf)
def test_python_hl7_decodes_our_escaping_the_same_way(family: str, given_name: str, ident: str) -> None:
    pid = Segment("PID", ((), (), composite(ident), (), composite(family, given_name)))
    msh = header_segment(STANDARD_ENCODING, [text_field("A"), (), (), (), text_field("2024"), (), composite("ADT", "A01")])
    text = encode_message(Message((msh, pid)))
    theirs = hl7.parse(text)
    # python-hl7 resolves escape sequences when a leaf is read by key.
    assert str(theirs["PID.F3.R1.C1"]) == ident
    assert str(theirs["PID.F5.R1.C1"]) == family
    assert str(theirs["PID.F5.R1.C2"]) == given_name
