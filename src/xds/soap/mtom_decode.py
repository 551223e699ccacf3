"""Incremental, sans-I/O multipart/related decoder (the MIME layer of MTOM/XOP).

Build a :class:`MultipartDecoder` from the Content-Type header, then :meth:`~MultipartDecoder.feed`
it bytes as they arrive; each call returns the events the bytes completed (h11 style)::

    decoder = MultipartDecoder(content_type)
    for chunk in body:
        for event in decoder.feed(chunk):
            ...   # PartHeaders, PartData(bytes), PartEnd, MessageEnd
    decoder.close()  # raises MimeError if the closing boundary never came

Memory stays bounded whatever the part sizes: part content is passed on as it arrives, keeping
back only the few bytes that might be the start of the next boundary delimiter, and header blocks
are limited (``max_header_bytes``). Each 1 MiB chunk inside a part costs one ``bytes.find``; when
the chunk cannot end inside a delimiter it is passed on without copying.

Tolerances a receiver needs (xds-notes §1.4; RFC 2046 §5.1.1; RFC 2387; XOP §4):

* a preamble before the first boundary, an epilogue after the last, transport padding (spaces,
  tabs) after a boundary, CRLF or bare LF line ends;
* a boundary with any characters RFC 2046 allows (quoted in the header);
* ``Content-Transfer-Encoding`` binary, 8bit, 7bit, or base64 (decoded across chunk boundaries);
* Content-ID with or without ``<>``, percent-encoded or not (see :func:`normalize_content_id`).

Public API::

    parse_content_type(value: str) -> ContentType          # .media_type, .params, .param(name)
    normalize_content_id(value: str) -> str                # "<a%40b>", "cid:a%40b" -> "a@b"
    MultipartDecoder(content_type, *, max_header_bytes=16 KiB, max_parts=10_000)
        .feed(data) -> list[Event]; .close() -> list[Event]; .boundary; .start; .done
    PartHeaders, PartData, PartEnd, MessageEnd; Event
    MimeError(ValueError); MessageTooLarge(MimeError)
"""

from __future__ import annotations

import binascii
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from xds.vocabulary import MEDIA_OCTET_STREAM

__all__ = [
    "ContentType",
    "Event",
    "MessageEnd",
    "MessageTooLarge",
    "MimeError",
    "MultipartDecoder",
    "PartData",
    "PartEnd",
    "PartHeaders",
    "normalize_content_id",
    "parse_content_type",
]

DEFAULT_MAX_HEADER_BYTES: Final = 16 << 10
DEFAULT_MAX_PARTS: Final = 10_000
#: RFC 2046 limits boundaries to 70 characters; a little slack for sloppy senders.
MAX_BOUNDARY_LENGTH: Final = 200
#: Transport padding allowed after a boundary before the line end.
MAX_PADDING: Final = 1024

_CR: Final = 0x0D
_LF: Final = 0x0A
_DASH: Final = 0x2D
_PADDING: Final = (0x20, 0x09)
_B64_WHITESPACE: Final = b" \t\r\n"
_IDENTITY_ENCODINGS: Final = frozenset({"binary", "8bit", "7bit"})


class MimeError(ValueError):
    """The multipart body or its Content-Type cannot be decoded."""


class MessageTooLarge(MimeError):
    """A size limit was exceeded (answered with HTTP 413)."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


# -- Content-Type ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type: lower-case ``type/subtype`` and parameters (names lower-cased)."""

    media_type: str
    params: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        return self.params.get(name.lower())


def parse_content_type(value: str) -> ContentType:
    """Parse a Content-Type header value (RFC 2045 §5.1), quoted-string parameters included.

    Raises :class:`MimeError` when there is no ``type/subtype``.
    """
    text = value.strip()
    head, _, rest = text.partition(";")
    media_type = head.strip().lower()
    kind, slash, sub = media_type.partition("/")
    if not slash or not kind or not sub or any(c in media_type for c in ' \t"'):
        raise MimeError(f"not a media type: {value!r}")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        start = i
        while i < n and rest[i] not in "=;":
            i += 1
        name = rest[start:i].strip().lower()
        if i >= n or rest[i] == ";":
            if name:
                params.setdefault(name, "")
            continue
        i += 1  # '='
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1  # closing quote (tolerated when missing)
            param_value = "".join(chars)
            while i < n and rest[i] != ";":
                i += 1
        else:
            start = i
            while i < n and rest[i] != ";":
                i += 1
            param_value = rest[start:i].strip()
        if name:
            params[name] = param_value
    return ContentType(media_type, params)


def normalize_content_id(value: str) -> str:
    """The comparable form of a Content-ID header or a ``cid:`` URL (RFC 2392).

    Strips white space, a ``cid:`` scheme and the angle brackets, then percent-decodes, so
    ``<doc1@host>``, ``doc1@host``, ``cid:doc1%40host`` all give ``doc1@host``.
    """
    text = value.strip()
    if text[:4].lower() == "cid:":
        text = text[4:].strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return unquote(text)


# -- events --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PartHeaders:
    """The headers of a part, sent before its data."""

    index: int
    headers: tuple[tuple[str, str], ...]
    content_type: str
    content_id: str | None
    transfer_encoding: str

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header with this (case-insensitive) name."""
        key = name.lower()
        for header, value in self.headers:
            if header == key:
                return value
        return default


@dataclass(frozen=True, slots=True)
class PartData:
    """Decoded content of the current part (any length, in order)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part is complete."""

    index: int


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The closing boundary was read; anything after it is epilogue."""


Event = PartHeaders | PartData | PartEnd | MessageEnd


class _State(enum.Enum):
    PREAMBLE = "preamble"
    HEADERS = "headers"
    BODY = "body"
    EPILOGUE = "epilogue"


class _Delimiter(enum.Enum):
    OPEN = "open"  # a boundary line: a part follows
    CLOSE = "close"  # the close delimiter
    NEED = "need"  # cannot tell yet
    NOT = "not"  # the bytes only look like a delimiter


class _Base64Decoder:
    """Streaming base64: carries the 0-3 characters of an incomplete quantum between chunks."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def decode(self, data: bytes) -> bytes:
        text = data.translate(None, _B64_WHITESPACE)
        if self._pending:
            text = self._pending + text
        cut = len(text) - len(text) % 4
        self._pending = text[cut:]
        if not cut:
            return b""
        try:
            return binascii.a2b_base64(text[:cut], strict_mode=True)
        except binascii.Error as exc:
            raise MimeError(f"invalid base64 content: {exc}") from None

    def finish(self) -> None:
        if self._pending:
            raise MimeError("base64 content ends with an incomplete quantum")


class MultipartDecoder:
    """Sans-I/O multipart/related decoder (RFC 2046 §5.1, RFC 2387) producing events.

    Parameters
    ----------
    content_type:
        The message's Content-Type header value (or a parsed :class:`ContentType`); must be
        ``multipart/*`` with a ``boundary`` parameter.
    max_header_bytes:
        Largest header block of one part.
    max_parts:
        Most parts in one message.
    """

    def __init__(
        self,
        content_type: str | ContentType,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_parts: int = DEFAULT_MAX_PARTS,
    ) -> None:
        ctype = content_type if isinstance(content_type, ContentType) else parse_content_type(content_type)
        if not ctype.media_type.startswith("multipart/"):
            raise MimeError(f"not a multipart message: {ctype.media_type}")
        boundary = ctype.param("boundary")
        if not boundary:
            raise MimeError("multipart Content-Type without a boundary parameter")
        if len(boundary) > MAX_BOUNDARY_LENGTH:
            raise MimeError("multipart boundary is too long")
        try:
            boundary_bytes = boundary.encode("ascii")
        except UnicodeEncodeError:
            raise MimeError("multipart boundary is not ASCII") from None
        self.content_type = ctype
        self.boundary = boundary
        start = ctype.param("start")
        #: The root part's Content-ID (normalized), or None: then the first part is the root.
        self.start: str | None = normalize_content_id(start) if start else None
        self._max_header_bytes = max_header_bytes
        self._max_parts = max_parts
        # RFC 2046 §5.1.1: the delimiter is CRLF "--" boundary. Searching for LF "--" boundary
        # and treating a preceding CR as part of it accepts bare-LF senders as well.
        self._token = b"\n--" + boundary_bytes
        # A virtual line end lets a boundary at the very start of the body match.
        self._buf = b"\r\n"
        self._state = _State.PREAMBLE
        self._parts = 0
        self._b64: _Base64Decoder | None = None

    @property
    def done(self) -> bool:
        """True once the closing boundary has been read."""
        return self._state is _State.EPILOGUE

    # -- public --------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Consume bytes; return the events they complete."""
        if self._state is _State.EPILOGUE or not data:
            return []
        chunk = data if type(data) is bytes else bytes(data)
        buf = self._buf + chunk if self._buf else chunk
        events: list[Event] = []
        pos = self._run(buf, events)
        self._buf = buf[pos:]
        return events

    def close(self) -> list[Event]:
        """Signal the end of the body; raises :class:`MimeError` if the message is incomplete."""
        if self._state is _State.EPILOGUE:
            return []
        if self._state is _State.PREAMBLE:
            raise MimeError(f"no multipart boundary {self.boundary!r} found in the body")
        raise MimeError("multipart body ended before its closing boundary")

    # -- machinery -----------------------------------------------------------------------------
    def _delimiter_at(self, buf: bytes, i: int) -> tuple[_Delimiter, int]:
        """Classify the token found at ``i``; returns the kind and the position after its line."""
        n = len(buf)
        j = i + len(self._token)
        if j >= n:
            return _Delimiter.NEED, i
        c = buf[j]
        if c == _DASH:
            if j + 1 >= n:
                return _Delimiter.NEED, i
            if buf[j + 1] == _DASH:
                return _Delimiter.CLOSE, j + 2
            return _Delimiter.NOT, i
        k = j
        while k < n and buf[k] in _PADDING:
            k += 1
            if k - j > MAX_PADDING:
                raise MimeError("boundary line too long")
        if k >= n:
            return _Delimiter.NEED, i
        if buf[k] == _LF:
            return _Delimiter.OPEN, k + 1
        if buf[k] == _CR:
            if k + 1 >= n:
                return _Delimiter.NEED, i
            if buf[k + 1] == _LF:
                return _Delimiter.OPEN, k + 2
        return _Delimiter.NOT, i

    def _hold_back(self, buf: bytes, pos: int) -> int:
        """Where the bytes that might begin a delimiter start (len(buf) if none)."""
        n = len(buf)
        token = self._token
        j = buf.find(b"\n", max(pos, n - len(token) + 1))
        while j >= 0:
            if token.startswith(buf[j:n]):
                return j - 1 if j > pos and buf[j - 1] == _CR else j
            j = buf.find(b"\n", j + 1)
        if n > pos and buf[n - 1] == _CR:
            return n - 1
        return n

    def _emit(self, data: bytes, events: list[Event]) -> None:
        if self._b64 is not None:
            data = self._b64.decode(data)
        if data:
            events.append(PartData(data))

    def _run(self, buf: bytes, events: list[Event]) -> int:
        pos = 0
        token = self._token
        while True:
            state = self._state
            if state is _State.HEADERS:
                after = self._parse_headers(buf, pos, events)
                if after < 0:
                    return pos
                pos = after
                continue
            if state is _State.EPILOGUE:
                return len(buf)
            # PREAMBLE or BODY: look for the next delimiter.
            search = pos
            while True:
                i = buf.find(token, search)
                if i < 0:
                    hold = self._hold_back(buf, pos)
                    if state is _State.BODY and hold > pos:
                        self._emit(buf[pos:hold], events)
                    return hold
                kind, after = self._delimiter_at(buf, i)
                if kind is _Delimiter.NOT:
                    search = i + 1
                    continue
                end = i - 1 if i > pos and buf[i - 1] == _CR else i
                if kind is _Delimiter.NEED:
                    if state is _State.BODY and end > pos:
                        self._emit(buf[pos:end], events)
                    return end
                break
            if state is _State.BODY:
                if end > pos:
                    self._emit(buf[pos:end], events)
                if self._b64 is not None:
                    self._b64.finish()
                    self._b64 = None
                events.append(PartEnd(self._parts - 1))
            pos = after
            if kind is _Delimiter.CLOSE:
                events.append(MessageEnd())
                self._state = _State.EPILOGUE
                return len(buf)
            self._state = _State.HEADERS

    def _parse_headers(self, buf: bytes, pos: int, events: list[Event]) -> int:
        """Parse one header block at ``pos``; returns the position after it, or -1 for more data."""
        n = len(buf)
        if n - pos >= 1 and buf[pos] == _LF:
            block_end, after = pos, pos + 1
        elif n - pos >= 2 and buf[pos] == _CR and buf[pos + 1] == _LF:
            block_end, after = pos, pos + 2
        elif n - pos < 2:
            return -1
        else:
            limit = min(n, pos + self._max_header_bytes + 4)
            crlf = buf.find(b"\n\r\n", pos, limit)
            lf = buf.find(b"\n\n", pos, limit)
            candidates = [x for x in (crlf, lf) if x >= 0]
            if not candidates:
                if n - pos > self._max_header_bytes:
                    raise MimeError(f"part headers longer than {self._max_header_bytes} bytes")
                return -1
            block_end = min(candidates)
            after = block_end + (3 if block_end == crlf else 2)
            block_end += 1
            if block_end - pos > self._max_header_bytes:
                raise MimeError(f"part headers longer than {self._max_header_bytes} bytes")
        if self._parts >= self._max_parts:
            raise MimeError(f"more than {self._max_parts} MIME parts")
        headers = _parse_header_lines(buf[pos:block_end])
        events.append(self._part_headers(headers))
        self._parts += 1
        self._state = _State.BODY
        return after

    def _part_headers(self, headers: tuple[tuple[str, str], ...]) -> PartHeaders:
        lookup: dict[str, str] = {}
        for name, value in headers:
            lookup.setdefault(name, value)
        encoding = lookup.get("content-transfer-encoding", "binary").strip().lower() or "binary"
        if encoding == "base64":
            self._b64 = _Base64Decoder()
        elif encoding not in _IDENTITY_ENCODINGS:
            raise MimeError(f"unsupported Content-Transfer-Encoding: {encoding}")
        raw_cid = lookup.get("content-id")
        content_id = normalize_content_id(raw_cid) if raw_cid and raw_cid.strip() else None
        return PartHeaders(
            index=self._parts,
            headers=headers,
            content_type=lookup.get("content-type", MEDIA_OCTET_STREAM).strip() or MEDIA_OCTET_STREAM,
            content_id=content_id,
            transfer_encoding=encoding,
        )


def _parse_header_lines(block: bytes) -> tuple[tuple[str, str], ...]:
    """RFC 5322 §2.2 header fields, unfolded; names lower-cased."""
    fields: list[list[str]] = []
    for raw in block.decode("latin-1").split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue
        if line[0] in " \t":
            if not fields:
                raise MimeError("MIME header block starts with a continuation line")
            fields[-1][1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.rstrip():
            raise MimeError(f"malformed MIME header line: {line[:80]!r}")
        fields.append([name.strip().lower(), value.strip()])
    return tuple((name, value) for name, value in fields)
