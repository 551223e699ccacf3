"""A small, strict HL7 v2 ER7 ("pipe and hat") parser and encoder.

HL7 v2.5 Ch. 2 §2.5-2.7 (the same rules as v2.3.1 §2.7-2.9): the field separator is the character
after ``MSH`` (MSH-1), the component, repetition, escape and subcomponent characters are MSH-2;
segments end with a carriage return. The tree is ``Message -> Segment -> Field -> repetition ->
component -> subcomponent``; leaf values are *decoded* text (escape sequences resolved), so the
encoder escapes whatever delimiters a value contains.

Escape sequences (HL7 v2.5 §2.7.4): ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\`` for the v2.7 truncation
character) decode to the delimiters; ``\\Xhh..\\`` decodes when every byte is ASCII (the encoder uses
it for control characters, which must never appear raw: CR ends a segment and 0x0B/0x1C frame
MLLP). Other sequences (formatting ``\\H\\``, ``\\.br\\``, character-set ``\\C..\\``, ``\\M..\\``, ``\\Z..\\``)
are kept verbatim in the decoded text. An escape character without its closing partner is an
error.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field as dataclass_field
from typing import TypeAlias

Component: TypeAlias = tuple[str, ...]
"""The subcomponents of one component."""
Repetition: TypeAlias = tuple[Component, ...]
"""The components of one repetition of a field."""
Field: TypeAlias = tuple[Repetition, ...]
"""The repetitions of a field; ``()`` is an empty field."""

SEGMENT_TERMINATOR = "\r"
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_HEX_PAIRS = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")


class ErrorCondition(enum.IntEnum):
    """HL7 table 0357 (message error condition codes), used in ERR-3 / ERR-1 (HL7 v2.5 §2.15.5)."""

    MESSAGE_ACCEPTED = 0
    SEGMENT_SEQUENCE_ERROR = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT_CODE = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION_ID = 203
    UNKNOWN_KEY_IDENTIFIER = 204
    DUPLICATE_KEY_IDENTIFIER = 205
    APPLICATION_RECORD_LOCKED = 206
    APPLICATION_INTERNAL_ERROR = 207

    @property
    def text(self) -> str:
        """The table's display text, e.g. ``Required field missing``."""
        return _CONDITION_TEXT[self]


_CONDITION_TEXT = {
    ErrorCondition.MESSAGE_ACCEPTED: "Message accepted",
    ErrorCondition.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCondition.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCondition.DATA_TYPE_ERROR: "Data type error",
    ErrorCondition.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCondition.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCondition.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCondition.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCondition.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCondition.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCondition.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCondition.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCondition.APPLICATION_INTERNAL_ERROR: "Application internal error",
}


class Hl7ParseError(ValueError):
    """The bytes are not a well-formed ER7 message; ``condition`` and the location say why."""

    def __init__(
        self,
        reason: str,
        *,
        condition: ErrorCondition = ErrorCondition.DATA_TYPE_ERROR,
        segment: str | None = None,
        segment_number: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.condition = condition
        self.segment = segment
        self.segment_number = segment_number


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message: MSH-1 and MSH-2 (HL7 v2.5 §2.5.4)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    def __post_init__(self) -> None:
        chars = [self.field, self.component, self.repetition, self.escape, self.subcomponent]
        if self.truncation:
            chars.append(self.truncation)
        for char in chars:
            if len(char) != 1 or char.isalnum() or char.isspace() or not char.isprintable():
                raise Hl7ParseError(
                    f"invalid delimiter {char!r} in MSH-1/MSH-2", segment="MSH", segment_number=1
                )
        if len(set(chars)) != len(chars):
            raise Hl7ParseError("MSH-1/MSH-2 delimiters are not distinct", segment="MSH", segment_number=1)

    @property
    def encoding_characters(self) -> str:
        """The MSH-2 value."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    @classmethod
    def from_header(cls, line: str) -> Encoding:
        """Read MSH-1 and MSH-2 from the first segment of a message."""
        if not line.startswith("MSH"):
            raise Hl7ParseError(
                "the message does not start with an MSH segment",
                condition=ErrorCondition.SEGMENT_SEQUENCE_ERROR,
            )
        if len(line) < 8:
            raise Hl7ParseError("the MSH segment is too short to hold MSH-1 and MSH-2", segment="MSH")
        separator = line[3]
        end = line.find(separator, 4)
        characters = line[4:] if end < 0 else line[4:end]
        if len(characters) not in (4, 5):
            raise Hl7ParseError(
                "MSH-2 must hold four (or five) encoding characters", segment="MSH", segment_number=1
            )
        return cls(
            field=separator,
            component=characters[0],
            repetition=characters[1],
            escape=characters[2],
            subcomponent=characters[3],
            truncation=characters[4:],
        )


STANDARD_ENCODING = Encoding()


# -- escape sequences (HL7 v2.5 §2.7.4) ---------------------------------------------------------


def _escape_map(encoding: Encoding) -> dict[str, str]:
    mapping = {
        "F": encoding.field,
        "S": encoding.component,
        "T": encoding.subcomponent,
        "R": encoding.repetition,
        "E": encoding.escape,
    }
    if encoding.truncation:
        mapping["P"] = encoding.truncation
    return mapping


def unescape(text: str, encoding: Encoding = STANDARD_ENCODING) -> str:
    """Decode the escape sequences of one leaf value."""
    esc = encoding.escape
    if esc not in text:
        return text
    mapping = _escape_map(encoding)
    out: list[str] = []
    pos = 0
    while True:
        start = text.find(esc, pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        end = text.find(esc, start + 1)
        if end < 0:
            raise Hl7ParseError("unterminated escape sequence")
        out.append(text[pos:start])
        sequence = text[start + 1 : end]
        if not sequence:
            raise Hl7ParseError("empty escape sequence")
        if sequence in mapping:
            out.append(mapping[sequence])
        elif sequence[0] == "X" and _HEX_PAIRS.match(sequence[1:]) and _ascii_hex(sequence[1:]):
            out.append(bytes.fromhex(sequence[1:]).decode("ascii"))
        else:
            out.append(esc + sequence + esc)  # formatting / character-set sequence, kept verbatim
        pos = end + 1


def _ascii_hex(digits: str) -> bool:
    return all(int(digits[i : i + 2], 16) < 0x80 for i in range(0, len(digits), 2))


def escape(text: str, encoding: Encoding = STANDARD_ENCODING) -> str:
    """Escape the delimiters and control characters of one leaf value."""
    special = {
        encoding.escape: "E",
        encoding.field: "F",
        encoding.component: "S",
        encoding.subcomponent: "T",
        encoding.repetition: "R",
    }
    if encoding.truncation:
        special[encoding.truncation] = "P"
    esc = encoding.escape
    out: list[str] = []
    for char in text:
        if char in special:
            out.append(f"{esc}{special[char]}{esc}")
        elif (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            out.append(f"{esc}X{ord(char):02X}{esc}")
        else:
            out.append(char)
    return "".join(out)


# -- the tree ------------------------------------------------------------------------------------


def _position(index: int) -> int:
    """Check a 1-based HL7 position and return it 0-based."""
    if index < 1:
        raise IndexError("HL7 positions are 1-based")
    return index - 1


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment. ``fields[0]`` is field 1; for MSH, field 1 is MSH-1 (the field separator)."""

    name: str
    fields: tuple[Field, ...] = ()

    def field(self, position: int) -> Field:
        """The field at HL7 position ``position`` (1-based), ``()`` if absent."""
        index = _position(position)
        return self.fields[index] if index < len(self.fields) else ()

    def value(self, position: int, component: int = 1, subcomponent: int = 1, *, repetition: int = 1) -> str:
        """One decoded leaf by HL7 position (all 1-based); ``""`` if absent."""
        reps = self.field(position)
        r, c, s = _position(repetition), _position(component), _position(subcomponent)
        if r >= len(reps) or c >= len(reps[r]) or s >= len(reps[r][c]):
            return ""
        return reps[r][c][s]


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed message: its segments (the first is MSH) and the delimiters it used."""

    segments: tuple[Segment, ...]
    encoding: Encoding = dataclass_field(default=STANDARD_ENCODING)

    @property
    def header(self) -> Segment:
        """The MSH segment."""
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        """The first segment called ``name``."""
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> tuple[Segment, ...]:
        """Every segment called ``name``, in order."""
        return tuple(s for s in self.segments if s.name == name)

    def index(self, name: str) -> int | None:
        """The 0-based position of the first segment called ``name``."""
        return next((i for i, s in enumerate(self.segments) if s.name == name), None)


# -- building values ----------------------------------------------------------------------------


def text_field(value: str) -> Field:
    """A field holding one plain value (empty text gives the empty field)."""
    return (((value,),),) if value else ()


def composite(*components: str | Sequence[str]) -> Field:
    """A one-repetition field from components; a component given as a sequence holds subcomponents."""
    if not components:
        return ()
    rep = tuple((c,) if isinstance(c, str) else tuple(c) for c in components)
    return (rep,)


def header_segment(encoding: Encoding, fields_from_3: Iterable[Field]) -> Segment:
    """An MSH segment: MSH-1 and MSH-2 come from ``encoding``, then MSH-3 onwards."""
    return Segment(
        "MSH",
        (text_field(encoding.field), text_field(encoding.encoding_characters), *fields_from_3),
    )


# -- parsing ------------------------------------------------------------------------------------


def split_segments(text: str) -> list[str]:
    """Segment lines: CR is the terminator; LF and CRLF are tolerated; empty lines are dropped."""
    return [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]


def parse_field(raw: str, encoding: Encoding = STANDARD_ENCODING) -> Field:
    """Split and decode one field's ER7 text."""
    if raw == "":
        return ()
    return tuple(
        tuple(
            tuple(unescape(sub, encoding) for sub in comp.split(encoding.subcomponent))
            for comp in rep.split(encoding.component)
        )
        for rep in raw.split(encoding.repetition)
    )


def _parse_segment(line: str, encoding: Encoding, number: int) -> Segment:
    name = line[:3]
    if not _SEGMENT_NAME.match(name):
        raise Hl7ParseError(
            f"segment {number} has an invalid name",
            condition=ErrorCondition.SEGMENT_SEQUENCE_ERROR,
            segment_number=number,
        )
    if len(line) > 3 and line[3] != encoding.field:
        raise Hl7ParseError(
            f"segment {number} ({name}) is not followed by the field separator",
            segment=name,
            segment_number=number,
        )
    try:
        if name == "MSH":
            if number != 1:
                raise Hl7ParseError(
                    "MSH appears after the first segment",
                    condition=ErrorCondition.SEGMENT_SEQUENCE_ERROR,
                    segment=name,
                    segment_number=number,
                )
            rest = line[4 + len(encoding.encoding_characters) :]
            if rest and rest[0] != encoding.field:
                raise Hl7ParseError("MSH-2 is followed by data", segment=name, segment_number=number)
            raw_fields = rest.split(encoding.field)[1:] if rest else []
            fields = (
                text_field(encoding.field),
                text_field(encoding.encoding_characters),
                *(parse_field(raw, encoding) for raw in raw_fields),
            )
        else:
            raw_fields = line.split(encoding.field)[1:]
            fields = tuple(parse_field(raw, encoding) for raw in raw_fields)
    except Hl7ParseError as exc:
        if exc.segment is None:
            raise Hl7ParseError(
                f"{exc.reason} in segment {number} ({name})",
                condition=exc.condition,
                segment=name,
                segment_number=number,
            ) from exc
        raise
    return Segment(name, fields)


def parse_message(text: str) -> Message:
    """Parse one ER7 message; raise :class:`Hl7ParseError` if it is not well formed."""
    lines = split_segments(text)
    if not lines:
        raise Hl7ParseError("the message is empty", condition=ErrorCondition.SEGMENT_SEQUENCE_ERROR)
    encoding = Encoding.from_header(lines[0])
    segments = tuple(_parse_segment(line, encoding, number) for number, line in enumerate(lines, 1))
    return Message(segments, encoding)


# -- encoding -----------------------------------------------------------------------------------


def encode_repetition(rep: Repetition, encoding: Encoding = STANDARD_ENCODING) -> str:
    """ER7 text of one repetition (e.g. a CX value)."""
    return encoding.component.join(
        encoding.subcomponent.join(escape(sub, encoding) for sub in comp) for comp in rep
    )


def encode_field(field: Field, encoding: Encoding = STANDARD_ENCODING) -> str:
    """ER7 text of one field."""
    return encoding.repetition.join(encode_repetition(rep, encoding) for rep in field)


def encode_segment(segment: Segment, encoding: Encoding = STANDARD_ENCODING) -> str:
    """ER7 text of one segment, without the terminator."""
    if segment.name == "MSH":
        head = "MSH" + encoding.field + encoding.encoding_characters
        rest = segment.fields[2:]
        return head + "".join(encoding.field + encode_field(f, encoding) for f in rest)
    return segment.name + "".join(encoding.field + encode_field(f, encoding) for f in segment.fields)


def encode_message(message: Message, *, terminator: str = SEGMENT_TERMINATOR) -> str:
    """ER7 text of a message; each segment ends with ``terminator`` (CR by the standard)."""
    return "".join(encode_segment(s, message.encoding) + terminator for s in message.segments)


# -- character sets (MSH-18, HL7 v2.5 table 0211) ---------------------------------------------------

_CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
}


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a message's bytes; return the text and the codec, for answering in kind.

    The codec is named by MSH-18 (first repetition). Without MSH-18 the bytes are read as UTF-8,
    falling back to ISO 8859-1, of which ASCII (the HL7 default) is a subset either way.
    """
    head = data.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    charset = ""
    if head.startswith("MSH") and len(head) > 3:
        fields = head.split(head[3])
        if len(fields) > 17 and len(head) > 5:
            charset = fields[17].split(head[5])[0].split(head[4])[0].strip()
    if charset:
        codec = _CHARSETS.get(charset.upper())
        if codec is None:
            raise Hl7ParseError(
                "MSH-18 names an unsupported character set",
                condition=ErrorCondition.TABLE_VALUE_NOT_FOUND,
                segment="MSH",
                segment_number=1,
            )
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise Hl7ParseError(
                "the message bytes do not match the MSH-18 character set", segment="MSH", segment_number=1
            ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"
