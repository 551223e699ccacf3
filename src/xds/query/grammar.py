"""The value syntax of stored-query parameters (ITI TF-2a §3.18.4.1.2.3.5), both ways.

A ``rim:Slot`` of an ``rim:AdhocQuery`` carries one parameter. Its ``rim:Value`` texts use a small
SQL-like grammar::

    value   := ws ( list | atom ) ws
    list    := "(" ws atom ( ws "," ws atom )* ws ")"
    atom    := string | number
    string  := "'" ( any character but "'" | "''" )* "'"      -- '' is an escaped quote
    number  := digit+                                          -- e.g. a DTM time, unquoted

* Strings are single-quoted; an embedded quote is doubled (``'O''Brien'``).
* Multi-valued parameters take the list form ``('a','b')``. A list may be spread over several
  ``rim:Value`` elements of one Slot, either as several complete values (``('a')`` then
  ``('b')``), or as one value cut at arbitrary points (``('a','`` then ``b')``), which is how a
  sender keeps each ``rim:Value`` within ebRIM's 256-character ``LongName`` limit. Either way the
  parts are OR'ed (xds-notes §6.1, NIST 11901/uuid_multiple_slot_values). :func:`parse_values`
  reads both: a ``rim:Value`` boundary ends a value exactly when the text read so far is a
  complete value; otherwise the next ``rim:Value`` continues it.
* Times are unquoted DTM numbers, ``YYYY[MM[DD[hh[mm[ss]]]]]`` (:func:`check_dtm`).
* Codes are ``'CODE^^SCHEME'`` (:class:`CodeValue`).

This module is pure: it knows nothing of XML, parameter names or error codes. Problems raise
:class:`ParseError`, which the request layer turns into a RegistryError naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "VALUE_LENGTH_LIMIT",
    "Atom",
    "CodeValue",
    "ParseError",
    "check_dtm",
    "encode_values",
    "format_list",
    "parse_code",
    "parse_value",
    "parse_values",
    "quote",
]

#: ebRIM 3.0 rim.xsd: ``rim:Value`` is a ``LongName``, at most 256 characters.
VALUE_LENGTH_LIMIT: Final = 256

_WS: Final = frozenset(" \t\r\n")
_DIGITS: Final = frozenset("0123456789")
_QUOTE: Final = "'"


class ParseError(ValueError):
    """A parameter value that does not follow the stored-query value syntax."""


@dataclass(frozen=True, slots=True)
class Atom:
    """One value of a parameter: the text, and whether it was written as a quoted string."""

    text: str
    quoted: bool


@dataclass(frozen=True, slots=True)
class CodeValue:
    """A coded value in a query parameter, ``CODE^^SCHEME`` (ITI TF-2a §3.18.4.1.2.3.5).

    Both parts are required: a code without its coding scheme (``'a^^'`` or ``'a'``) is an
    error (NIST 11897/classcode_scheme_mismatch, old_scheme). Neither part may contain ``^``,
    the HL7 v2 component separator.
    """

    code: str
    scheme: str

    def __post_init__(self) -> None:
        if not self.code or not self.scheme:
            raise ValueError("a query code needs both a code and a coding scheme")
        if "^" in self.code or "^" in self.scheme:
            raise ValueError("a query code and its scheme may not contain '^'")

    def __str__(self) -> str:
        return f"{self.code}^^{self.scheme}"


# -- reading -------------------------------------------------------------------------------------


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _snippet(text: str, i: int) -> str:
    part = text[i : i + 24]
    return repr(part + ("..." if len(text) > i + 24 else ""))


def _atom(text: str, i: int) -> tuple[Atom, int]:
    """Read one string or number starting at ``i``; return it and the index after it."""
    n = len(text)
    if i >= n:
        raise ParseError("a value is missing at the end of the text")
    first = text[i]
    if first == _QUOTE:
        parts: list[str] = []
        j = i + 1
        while True:
            k = text.find(_QUOTE, j)
            if k < 0:
                raise ParseError(f"the string starting at position {i} is not terminated (missing ')")
            parts.append(text[j:k])
            if k + 1 < n and text[k + 1] == _QUOTE:  # '' is an escaped quote
                parts.append(_QUOTE)
                j = k + 2
                continue
            return Atom("".join(parts), True), k + 1
    if first in _DIGITS:
        j = i
        while j < n and text[j] in _DIGITS:
            j += 1
        return Atom(text[i:j], False), j
    raise ParseError(
        f"expected a quoted string or a number at position {i}, found {_snippet(text, i)}"
    )


def parse_value(text: str) -> tuple[Atom, ...]:
    """Parse one complete value: a string, a number, or a parenthesised list of them.

    Whitespace around the value and around list items is ignored. An empty value, an empty list,
    an unterminated string or list, or anything after the value raises :class:`ParseError`.
    """
    n = len(text)
    i = _skip_ws(text, 0)
    if i >= n:
        raise ParseError("the value is empty")
    atoms: list[Atom] = []
    if text[i] == "(":
        i = _skip_ws(text, i + 1)
        if i < n and text[i] == ")":
            raise ParseError("the list is empty")
        while True:
            atom, i = _atom(text, i)
            atoms.append(atom)
            i = _skip_ws(text, i)
            if i >= n:
                raise ParseError("the list is not closed (missing ')')")
            if text[i] == ",":
                i = _skip_ws(text, i + 1)
                continue
            if text[i] == ")":
                i += 1
                break
            raise ParseError(f"expected ',' or ')' at position {i}, found {_snippet(text, i)}")
    else:
        atom, i = _atom(text, i)
        atoms.append(atom)
    i = _skip_ws(text, i)
    if i < n:
        raise ParseError(f"unexpected text after the value at position {i}: {_snippet(text, i)}")
    return tuple(atoms)


class _Scanner:
    """Tracks just enough lexical state to tell whether the text fed so far is a whole value."""

    __slots__ = ("depth", "has_content", "in_string", "quote_pending")

    def __init__(self) -> None:
        self.in_string = False
        self.quote_pending = False  # inside a string, just after a "'" (end, or first of '')
        self.depth = 0
        self.has_content = False

    def feed(self, text: str) -> None:
        for ch in text:
            if self.in_string:
                if self.quote_pending:
                    self.quote_pending = False
                    if ch == _QUOTE:  # '' : still inside the string
                        continue
                    self.in_string = False  # the pending quote closed the string
                elif ch == _QUOTE:
                    self.quote_pending = True
                    continue
                else:
                    continue
            if ch == _QUOTE:
                self.in_string = True
                self.has_content = True
            elif ch == "(":
                self.depth += 1
                self.has_content = True
            elif ch == ")":
                self.depth -= 1
                self.has_content = True
            elif ch not in _WS:
                self.has_content = True

    @property
    def complete(self) -> bool:
        """True if the text so far would end a value here (strings closed, parentheses balanced)."""
        return (
            self.has_content
            and self.depth == 0
            and (not self.in_string or self.quote_pending)
        )


def parse_values(texts: Sequence[str]) -> tuple[tuple[Atom, ...], ...]:
    """Parse the ``rim:Value`` texts of one Slot into its values, in order.

    Each returned tuple is one complete value (a list contributes all its items). A ``rim:Value``
    boundary ends a value when the text read so far is complete; otherwise the following
    ``rim:Value`` continues it, so a value cut at any point reads as the uncut value. Empty or
    whitespace-only ``rim:Value`` elements contribute nothing.
    """
    groups: list[tuple[Atom, ...]] = []
    pending: list[str] = []
    scanner = _Scanner()
    for text in texts:
        pending.append(text)
        scanner.feed(text)
        if scanner.complete:
            groups.append(parse_value("".join(pending)))
            pending.clear()
            scanner = _Scanner()
    if scanner.has_content:
        rest = "".join(pending)
        parse_value(rest)  # raises the precise error (unterminated string or list)
        raise ParseError(f"the value is incomplete: {_snippet(rest, 0)}")
    return tuple(groups)


def parse_code(text: str) -> CodeValue:
    """Parse ``CODE^^SCHEME`` (the HL7 v2 CE form with an empty display name).

    Like the NIST toolkit, exactly three ``^``-separated components are required and the middle
    one (a display name) is ignored; the code and the scheme must not be empty.
    """
    parts = text.split("^")
    if len(parts) != 3:
        raise ParseError(f"code {text!r} is not of the form CODE^^SCHEME")
    code, _display, scheme = parts
    if not code:
        raise ParseError(f"code {text!r} has no code value; codes are written CODE^^SCHEME")
    if not scheme:
        raise ParseError(f"code {text!r} has no coding scheme; codes are written CODE^^SCHEME")
    return CodeValue(code, scheme)


_DTM_LENGTHS: Final = (4, 6, 8, 10, 12, 14)
# (offset, name, lowest, highest) of each two-digit DTM component after the year.
_DTM_FIELDS: Final = (
    (4, "month", 1, 12),
    (6, "day", 1, 31),
    (8, "hour", 0, 23),
    (10, "minute", 0, 59),
    (12, "second", 0, 59),
)


def check_dtm(text: str) -> str:
    """Check a query time, ``YYYY[MM[DD[hh[mm[ss]]]]]`` (DTM, ITI TF-3 §4.2.3.1.7; UTC), return it.

    Raises :class:`ParseError` for anything else: other lengths, non-digits, out-of-range fields.
    """
    if not text or any(ch not in _DIGITS for ch in text):
        raise ParseError(f"time {text!r} is not a DTM number (digits only, YYYY[MM[DD[hh[mm[ss]]]]])")
    if len(text) not in _DTM_LENGTHS:
        raise ParseError(
            f"time {text!r} has {len(text)} digits; a DTM has 4, 6, 8, 10, 12 or 14 (YYYYMMDDhhmmss)"
        )
    for offset, name, low, high in _DTM_FIELDS:
        if len(text) <= offset:
            break
        value = int(text[offset : offset + 2])
        if not low <= value <= high:
            raise ParseError(f"time {text!r} has an invalid {name} {value:02d}")
    return text


# -- writing -------------------------------------------------------------------------------------


def quote(text: str) -> str:
    """Quote a string for a parameter value, doubling embedded quotes."""
    return _QUOTE + text.replace(_QUOTE, _QUOTE * 2) + _QUOTE


def format_list(atoms: Iterable[str]) -> str:
    """Join already-encoded atoms (quoted strings or numbers) into a list ``('a','b')``."""
    return "(" + ",".join(atoms) + ")"


def _cut(text: str, limit: int) -> list[str]:
    """Cut one encoded value into pieces of at most ``limit`` characters that read back as one.

    A cut is never placed where the text before it would be a complete value (e.g. between the
    two quotes of ``''``), so :func:`parse_values` joins the pieces again. If no such place exists
    within ``limit`` (a run of quotes longer than the limit) a piece is allowed to run longer.
    """
    # cut_ok[e]: text[:e] is not a complete value, so a rim:Value may end at e.
    scanner = _Scanner()
    cut_ok = [False]
    for ch in text:
        scanner.feed(ch)
        cut_ok.append(not scanner.complete)
    pieces: list[str] = []
    start = 0
    n = len(text)
    while n - start > limit:
        end = next((e for e in range(start + limit, start, -1) if cut_ok[e]), None)
        if end is None:
            end = next((e for e in range(start + limit + 1, n) if cut_ok[e]), n)
        pieces.append(text[start:end])
        start = end
    if start < n:
        pieces.append(text[start:])
    return pieces


def encode_values(
    atoms: Sequence[str], *, as_list: bool, limit: int = VALUE_LENGTH_LIMIT
) -> list[str]:
    """Encode a parameter's atoms as ``rim:Value`` texts, each within ``limit`` characters.

    ``atoms`` are already encoded (:func:`quote` for strings, digits for numbers). A single value
    (``as_list=False``) is one text. A list is written as few ``('a','b')`` texts as fit the limit,
    split between items; if one item alone does not fit, the whole list is written as one text cut
    into pieces (which :func:`parse_values` reads back as one list).
    """
    if not atoms:
        raise ValueError("nothing to encode")
    if not as_list:
        if len(atoms) != 1:
            raise ValueError("a single value takes exactly one atom")
        return _cut(atoms[0], limit)
    if any(len(atom) + 2 > limit for atom in atoms):
        return _cut(format_list(atoms), limit)
    texts: list[str] = []
    chunk: list[str] = []
    size = 2  # the parentheses
    for atom in atoms:
        extra = len(atom) + (1 if chunk else 0)
        if chunk and size + extra > limit:
            texts.append(format_list(chunk))
            chunk, size = [], 2
            extra = len(atom)
        chunk.append(atom)
        size += extra
    texts.append(format_list(chunk))
    return texts
