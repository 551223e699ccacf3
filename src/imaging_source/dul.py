"""The DICOM Upper Layer protocol's PDUs (PS3.8 §9.3), sans-I/O: bytes in, events out.

:class:`PduParser` turns received bytes into events. The associate, release and abort PDUs are
small and decoded whole (at most ``max_control_length`` bytes); a P-DATA-TF PDU is never
buffered: its PDVs (PS3.8 §9.3.5.1) come out as :class:`PDataChunk` events as the bytes arrive,
zero-copy views of the received buffer, so an instance of any size streams through in pieces
no larger than one network read.

The ``encode_*`` functions build the PDUs an acceptor sends (and the A-ASSOCIATE-RQ, for
tests and for symmetry). Nothing here touches a socket.

Public API::

    PduParser(*, max_control_length=1 MiB).feed(data) -> list[Event]   # raises ProtocolError
    AssociateRQ, AssociateAC, AssociateRJ, ReleaseRQ, ReleaseRP, Abort, PDataChunk   # events
    PresentationContextRQ, PresentationContextAC
    encode_associate_rq(rq) / encode_associate_ac(ac) / encode_associate_rj(rj) -> bytes
    encode_release_rq() / encode_release_rp() / encode_abort(abort) -> bytes
    encode_pdata(context_id, payload, *, command, max_pdu) -> list[bytes]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "APPLICATION_CONTEXT",
    "Abort",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "Event",
    "PDataChunk",
    "PduParser",
    "PresentationContextAC",
    "PresentationContextRQ",
    "ProtocolError",
    "ReleaseRP",
    "ReleaseRQ",
    "encode_abort",
    "encode_associate_ac",
    "encode_associate_rj",
    "encode_associate_rq",
    "encode_pdata",
    "encode_release_rp",
    "encode_release_rq",
]

# PS3.8 §9.3.1: PDU types.
ASSOCIATE_RQ: Final = 0x01
ASSOCIATE_AC: Final = 0x02
ASSOCIATE_RJ: Final = 0x03
P_DATA_TF: Final = 0x04
RELEASE_RQ: Final = 0x05
RELEASE_RP: Final = 0x06
ABORT: Final = 0x07

# PS3.8 §9.3.2.1-3 / Annex D.3.3: item types.
ITEM_APPLICATION_CONTEXT: Final = 0x10
ITEM_PRESENTATION_CONTEXT_RQ: Final = 0x20
ITEM_PRESENTATION_CONTEXT_AC: Final = 0x21
ITEM_ABSTRACT_SYNTAX: Final = 0x30
ITEM_TRANSFER_SYNTAX: Final = 0x40
ITEM_USER_INFORMATION: Final = 0x50
ITEM_MAXIMUM_LENGTH: Final = 0x51
ITEM_IMPLEMENTATION_CLASS_UID: Final = 0x52
ITEM_IMPLEMENTATION_VERSION: Final = 0x55

#: PS3.7 Annex A.2.1: the DICOM Application Context Name.
APPLICATION_CONTEXT: Final = "1.2.840.10008.3.1.1.1"

# PS3.8 §9.3.8 Table 9-26: A-ABORT source and provider reasons.
ABORT_SOURCE_USER: Final = 0
ABORT_SOURCE_PROVIDER: Final = 2
ABORT_REASON_NOT_SPECIFIED: Final = 0
ABORT_REASON_UNRECOGNIZED_PDU: Final = 1
ABORT_REASON_UNEXPECTED_PDU: Final = 2
ABORT_REASON_UNRECOGNIZED_PARAMETER: Final = 4
ABORT_REASON_UNEXPECTED_PARAMETER: Final = 5
ABORT_REASON_INVALID_PARAMETER: Final = 6

# PS3.8 §9.3.4 Table 9-21: A-ASSOCIATE-RJ result, source and reason.
RJ_PERMANENT: Final = 1
RJ_TRANSIENT: Final = 2
RJ_SOURCE_USER: Final = 1
RJ_SOURCE_ACSE: Final = 2
RJ_SOURCE_PRESENTATION: Final = 3
RJ_USER_NO_REASON: Final = 1
RJ_USER_CONTEXT_NAME: Final = 2
RJ_USER_CALLING_AE: Final = 3
RJ_USER_CALLED_AE: Final = 7
RJ_ACSE_PROTOCOL_VERSION: Final = 2
RJ_PRESENTATION_LOCAL_LIMIT: Final = 2

# PS3.8 §9.3.3.2 Table 9-18: presentation context results.
PC_ACCEPTANCE: Final = 0
PC_USER_REJECTION: Final = 1
PC_NO_REASON: Final = 2
PC_ABSTRACT_SYNTAX_NOT_SUPPORTED: Final = 3
PC_TRANSFER_SYNTAXES_NOT_SUPPORTED: Final = 4

_HEADER: Final = struct.Struct(">BBI")
_ITEM: Final = struct.Struct(">BBH")
_PDV: Final = struct.Struct(">IBB")


class ProtocolError(ValueError):
    """The peer broke PS3.8; ``reason`` is the A-ABORT provider reason to answer with."""

    def __init__(self, message: str, *, reason: int = ABORT_REASON_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.reason = reason


# -- events ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PresentationContextRQ:
    """One proposed presentation context (PS3.8 §9.3.2.2)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PresentationContextAC:
    """One presentation context answer (PS3.8 §9.3.3.2); ``transfer_syntax`` is only
    significant when ``result`` is acceptance."""

    context_id: int
    result: int
    transfer_syntax: str = ""


@dataclass(frozen=True, slots=True)
class AssociateRQ:
    """A-ASSOCIATE-RQ (PS3.8 §9.3.2). ``other_user_items`` keeps user information sub-items we
    do not negotiate (role selection, asynchronous operations, extended negotiation, user
    identity) as (type, value) so an acceptor can ignore them knowingly."""

    called_ae: str
    calling_ae: str
    contexts: tuple[PresentationContextRQ, ...]
    max_length: int = 0
    implementation_class_uid: str = ""
    implementation_version: str = ""
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1
    other_user_items: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class AssociateAC:
    """A-ASSOCIATE-AC (PS3.8 §9.3.3)."""

    called_ae: str
    calling_ae: str
    results: tuple[PresentationContextAC, ...]
    max_length: int = 0
    implementation_class_uid: str = ""
    implementation_version: str = ""
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1


@dataclass(frozen=True, slots=True)
class AssociateRJ:
    """A-ASSOCIATE-RJ (PS3.8 §9.3.4)."""

    result: int
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class ReleaseRQ:
    """A-RELEASE-RQ (PS3.8 §9.3.6)."""


@dataclass(frozen=True, slots=True)
class ReleaseRP:
    """A-RELEASE-RP (PS3.8 §9.3.7)."""


@dataclass(frozen=True, slots=True)
class Abort:
    """A-ABORT (PS3.8 §9.3.8)."""

    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class PDataChunk:
    """A piece of one PDV's data (PS3.8 §9.3.5.1, Annex E.2). ``last`` marks the end of the
    message's command or data set: the final piece of a PDV whose control header says "last
    fragment". ``data`` may be a view of the parser's input: use it before the next feed."""

    context_id: int
    command: bool
    last: bool
    data: memoryview | bytes = field(repr=False)


Event = AssociateRQ | AssociateAC | AssociateRJ | ReleaseRQ | ReleaseRP | Abort | PDataChunk


# -- decoding --------------------------------------------------------------------------------------
def _ae(raw: bytes) -> str:
    # PS3.8 §9.3.2: AE titles are 16 bytes, space padded (leading spaces not significant).
    return raw.decode("ascii", "replace").strip(" \x00")


def _uid(raw: bytes) -> str:
    # PS3.8 Annex F: UIDs in items are not padded; tolerate a trailing NUL anyway.
    return raw.decode("ascii", "replace").rstrip("\x00 ")


def _items(body: bytes, start: int) -> list[tuple[int, bytes]]:
    """The (type, value) items of a variable field (PS3.8 §9.3.2: 1-byte type, reserved, 2-byte length)."""
    out: list[tuple[int, bytes]] = []
    pos = start
    while pos < len(body):
        if pos + 4 > len(body):
            raise ProtocolError("truncated item header")
        kind, _, length = _ITEM.unpack_from(body, pos)
        pos += 4
        if pos + length > len(body):
            raise ProtocolError(f"item 0x{kind:02X} overruns its PDU")
        out.append((kind, body[pos : pos + length]))
        pos += length
    return out


def _decode_user_information(value: bytes) -> tuple[int, str, str, tuple[tuple[int, bytes], ...]]:
    max_length, impl_uid, impl_version = 0, "", ""
    others: list[tuple[int, bytes]] = []
    for kind, sub in _items(value, 0):
        if kind == ITEM_MAXIMUM_LENGTH:
            # PS3.8 Annex D.1.1: a 4-byte maximum length (0 = unlimited).
            if len(sub) != 4:
                raise ProtocolError("maximum length item is not 4 bytes")
            (max_length,) = struct.unpack(">I", sub)
        elif kind == ITEM_IMPLEMENTATION_CLASS_UID:
            impl_uid = _uid(sub)
        elif kind == ITEM_IMPLEMENTATION_VERSION:
            impl_version = sub.decode("ascii", "replace").strip()
        else:
            others.append((kind, sub))
    return max_length, impl_uid, impl_version, tuple(others)


def _decode_associate_rq(body: bytes) -> AssociateRQ:
    # PS3.8 §9.3.2 Table 9-11: version(2) reserved(2) called(16) calling(16) reserved(32), items.
    if len(body) < 68:
        raise ProtocolError("A-ASSOCIATE-RQ shorter than its fixed fields")
    (version,) = struct.unpack_from(">H", body, 0)
    called, calling = _ae(body[4:20]), _ae(body[20:36])
    context_name = ""
    contexts: list[PresentationContextRQ] = []
    user = (0, "", "", ())
    for kind, value in _items(body, 68):
        if kind == ITEM_APPLICATION_CONTEXT:
            context_name = _uid(value)
        elif kind == ITEM_PRESENTATION_CONTEXT_RQ:
            # PS3.8 §9.3.2.2 Table 9-13: id, 3 reserved bytes, then sub-items.
            if len(value) < 4:
                raise ProtocolError("presentation context item too short")
            abstract = ""
            syntaxes: list[str] = []
            for sub_kind, sub in _items(value, 4):
                if sub_kind == ITEM_ABSTRACT_SYNTAX:
                    abstract = _uid(sub)
                elif sub_kind == ITEM_TRANSFER_SYNTAX:
                    syntaxes.append(_uid(sub))
            contexts.append(PresentationContextRQ(value[0], abstract, tuple(syntaxes)))
        elif kind == ITEM_USER_INFORMATION:
            user = _decode_user_information(value)
        else:
            raise ProtocolError(f"unknown item 0x{kind:02X} in A-ASSOCIATE-RQ", reason=ABORT_REASON_UNRECOGNIZED_PARAMETER)
    max_length, impl_uid, impl_version, others = user
    return AssociateRQ(
        called_ae=called, calling_ae=calling, contexts=tuple(contexts), max_length=max_length,
        implementation_class_uid=impl_uid, implementation_version=impl_version,
        application_context=context_name, protocol_version=version, other_user_items=others,
    )


def _decode_associate_ac(body: bytes) -> AssociateAC:
    # PS3.8 §9.3.3 Table 9-17: same fixed fields as the RQ.
    if len(body) < 68:
        raise ProtocolError("A-ASSOCIATE-AC shorter than its fixed fields")
    (version,) = struct.unpack_from(">H", body, 0)
    context_name = ""
    results: list[PresentationContextAC] = []
    user = (0, "", "", ())
    for kind, value in _items(body, 68):
        if kind == ITEM_APPLICATION_CONTEXT:
            context_name = _uid(value)
        elif kind == ITEM_PRESENTATION_CONTEXT_AC:
            if len(value) < 4:
                raise ProtocolError("presentation context item too short")
            syntax = next((_uid(sub) for sub_kind, sub in _items(value, 4) if sub_kind == ITEM_TRANSFER_SYNTAX), "")
            results.append(PresentationContextAC(value[0], value[2], syntax))
        elif kind == ITEM_USER_INFORMATION:
            user = _decode_user_information(value)
        else:
            raise ProtocolError(f"unknown item 0x{kind:02X} in A-ASSOCIATE-AC", reason=ABORT_REASON_UNRECOGNIZED_PARAMETER)
    return AssociateAC(
        called_ae=_ae(body[4:20]), calling_ae=_ae(body[20:36]), results=tuple(results), max_length=user[0],
        implementation_class_uid=user[1], implementation_version=user[2], application_context=context_name,
        protocol_version=version,
    )


def _fixed4(body: bytes, name: str) -> bytes:
    if len(body) != 4:
        raise ProtocolError(f"{name} is {len(body)} bytes, not 4")
    return body


def _decode_control(kind: int, body: bytes) -> Event:
    if kind == ASSOCIATE_RQ:
        return _decode_associate_rq(body)
    if kind == ASSOCIATE_AC:
        return _decode_associate_ac(body)
    if kind == ASSOCIATE_RJ:
        raw = _fixed4(body, "A-ASSOCIATE-RJ")
        return AssociateRJ(raw[1], raw[2], raw[3])
    if kind == RELEASE_RQ:
        _fixed4(body, "A-RELEASE-RQ")
        return ReleaseRQ()
    if kind == RELEASE_RP:
        _fixed4(body, "A-RELEASE-RP")
        return ReleaseRP()
    raw = _fixed4(body, "A-ABORT")
    return Abort(raw[2], raw[3])


_CONTROL_TYPES: Final = frozenset({ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, RELEASE_RQ, RELEASE_RP, ABORT})


class PduParser:
    """Incremental PDU decoder for one transport connection (PS3.8 §9.3).

    ``feed`` returns the events completed by the bytes given; after a :class:`ProtocolError`
    the parser refuses further input (the association is to be aborted).
    """

    def __init__(self, *, max_control_length: int = 1 << 20) -> None:
        self.max_control_length = max_control_length
        self._header = bytearray()
        self._kind = 0
        self._pdu_left = 0  # bytes of the current PDU's variable field not yet consumed
        self._control = bytearray()
        self._pdv_header = bytearray()
        self._pdv_left = 0  # data bytes of the current PDV not yet emitted
        self._pdv_context = 0
        self._pdv_control = 0
        self._broken = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self._broken:
            raise ProtocolError("the parser already failed")
        try:
            return self._feed(memoryview(data).cast("B"))
        except ProtocolError:
            self._broken = True
            raise

    def _feed(self, view: memoryview) -> list[Event]:
        out: list[Event] = []
        pos, end = 0, len(view)
        while pos < end:
            if self._kind == 0:
                take = min(6 - len(self._header), end - pos)
                self._header += view[pos : pos + take]
                pos += take
                if len(self._header) < 6:
                    break
                kind, _, length = _HEADER.unpack(self._header)
                self._header.clear()
                if kind == P_DATA_TF:
                    # PS3.8 §9.3.5: at least one PDV item (4-byte length, id, control header).
                    if length < 6:
                        raise ProtocolError("P-DATA-TF without a PDV")
                elif kind in _CONTROL_TYPES:
                    if length > self.max_control_length:
                        raise ProtocolError(f"PDU 0x{kind:02X} of {length} bytes is too long")
                else:
                    raise ProtocolError(f"unknown PDU type 0x{kind:02X}", reason=ABORT_REASON_UNRECOGNIZED_PDU)
                self._kind, self._pdu_left = kind, length
                if kind != P_DATA_TF and length == 0:
                    self._finish_control(out)
                continue
            if self._kind != P_DATA_TF:
                take = min(self._pdu_left, end - pos)
                self._control += view[pos : pos + take]
                pos += take
                self._pdu_left -= take
                if self._pdu_left == 0:
                    self._finish_control(out)
                continue
            if self._pdv_left == 0 and not self._pdv_header_done():
                take = min(6 - len(self._pdv_header), end - pos, self._pdu_left)
                self._pdv_header += view[pos : pos + take]
                pos += take
                self._pdu_left -= take
                if len(self._pdv_header) < 6:
                    if self._pdu_left == 0:
                        raise ProtocolError("PDV header overruns its P-DATA-TF")
                    continue
                item_length, self._pdv_context, self._pdv_control = _PDV.unpack(self._pdv_header)
                # PS3.8 §9.3.5.1: the item length counts the context id and control header.
                if item_length < 2 or item_length - 2 > self._pdu_left:
                    raise ProtocolError("PDV length does not fit its P-DATA-TF")
                if self._pdv_context % 2 == 0:
                    raise ProtocolError(f"even presentation context id {self._pdv_context}")
                self._pdv_left = item_length - 2
                self._pdv_header.append(0xFF)  # mark "header read" until the data is consumed
                if self._pdv_left == 0:
                    self._emit(out, view[pos:pos])
                continue
            take = min(self._pdv_left, end - pos)
            self._pdv_left -= take
            self._pdu_left -= take
            chunk = view[pos : pos + take]
            pos += take
            self._emit(out, chunk)
        return out

    def _pdv_header_done(self) -> bool:
        return len(self._pdv_header) == 7

    def _emit(self, out: list[Event], chunk: memoryview) -> None:
        # PS3.8 Annex E.2: bit 0 = command, bit 1 = last fragment.
        last = self._pdv_left == 0 and bool(self._pdv_control & 0x02)
        out.append(PDataChunk(self._pdv_context, bool(self._pdv_control & 0x01), last, chunk))
        if self._pdv_left == 0:
            self._pdv_header.clear()
            if self._pdu_left == 0:
                self._kind = 0

    def _finish_control(self, out: list[Event]) -> None:
        body = bytes(self._control)
        self._control.clear()
        kind, self._kind = self._kind, 0
        out.append(_decode_control(kind, body))


# -- encoding --------------------------------------------------------------------------------------
def _pdu(kind: int, body: bytes) -> bytes:
    return _HEADER.pack(kind, 0, len(body)) + body


def _item(kind: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"item 0x{kind:02X} is too long")
    return _ITEM.pack(kind, 0, len(value)) + value


def _ae_field(title: str) -> bytes:
    raw = title.encode("ascii", "replace")[:16]
    return raw.ljust(16, b" ")


def _fixed_fields(called: str, calling: str, version: int) -> bytes:
    return struct.pack(">HH", version, 0) + _ae_field(called) + _ae_field(calling) + b"\x00" * 32


def _user_information(max_length: int, impl_uid: str, impl_version: str, others: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    # PS3.7 Annex D.3.3.1-2: maximum length, implementation class UID, version name.
    subs = [_item(ITEM_MAXIMUM_LENGTH, struct.pack(">I", max_length))]
    if impl_uid:
        subs.append(_item(ITEM_IMPLEMENTATION_CLASS_UID, impl_uid.encode("ascii")))
    subs.extend(_item(kind, value) for kind, value in others)
    if impl_version:
        subs.append(_item(ITEM_IMPLEMENTATION_VERSION, impl_version.encode("ascii")[:16]))
    return _item(ITEM_USER_INFORMATION, b"".join(subs))


def encode_associate_rq(rq: AssociateRQ) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 §9.3.2)."""
    parts = [_fixed_fields(rq.called_ae, rq.calling_ae, rq.protocol_version),
             _item(ITEM_APPLICATION_CONTEXT, rq.application_context.encode("ascii"))]
    for pc in rq.contexts:
        subs = _item(ITEM_ABSTRACT_SYNTAX, pc.abstract_syntax.encode("ascii")) + b"".join(
            _item(ITEM_TRANSFER_SYNTAX, ts.encode("ascii")) for ts in pc.transfer_syntaxes
        )
        parts.append(_item(ITEM_PRESENTATION_CONTEXT_RQ, bytes([pc.context_id, 0, 0, 0]) + subs))
    parts.append(_user_information(rq.max_length, rq.implementation_class_uid, rq.implementation_version, rq.other_user_items))
    return _pdu(ASSOCIATE_RQ, b"".join(parts))


def encode_associate_ac(ac: AssociateAC) -> bytes:
    """A-ASSOCIATE-AC (PS3.8 §9.3.3): one answer per proposed context, in the proposer's order."""
    parts = [_fixed_fields(ac.called_ae, ac.calling_ae, ac.protocol_version),
             _item(ITEM_APPLICATION_CONTEXT, ac.application_context.encode("ascii"))]
    for pc in ac.results:
        # PS3.8 §9.3.3.2: the transfer syntax sub-item is present even when not accepted.
        body = bytes([pc.context_id, 0, pc.result, 0]) + _item(ITEM_TRANSFER_SYNTAX, pc.transfer_syntax.encode("ascii"))
        parts.append(_item(ITEM_PRESENTATION_CONTEXT_AC, body))
    parts.append(_user_information(ac.max_length, ac.implementation_class_uid, ac.implementation_version))
    return _pdu(ASSOCIATE_AC, b"".join(parts))


def encode_associate_rj(rj: AssociateRJ) -> bytes:
    """A-ASSOCIATE-RJ (PS3.8 §9.3.4)."""
    return _pdu(ASSOCIATE_RJ, bytes([0, rj.result, rj.source, rj.reason]))


def encode_release_rq() -> bytes:
    """A-RELEASE-RQ (PS3.8 §9.3.6)."""
    return _pdu(RELEASE_RQ, b"\x00" * 4)


def encode_release_rp() -> bytes:
    """A-RELEASE-RP (PS3.8 §9.3.7)."""
    return _pdu(RELEASE_RP, b"\x00" * 4)


def encode_abort(abort: Abort) -> bytes:
    """A-ABORT (PS3.8 §9.3.8)."""
    return _pdu(ABORT, bytes([0, 0, abort.source, abort.reason]))


def encode_pdata(context_id: int, payload: bytes | memoryview, *, command: bool, max_pdu: int) -> list[bytes]:
    """P-DATA-TF PDUs carrying one command or data set (PS3.8 §9.3.5, Annex E), one PDV each,
    each PDU no longer than the peer's ``max_pdu`` (PS3.7 Annex D.3.3.2; 0 = unlimited)."""
    view = memoryview(payload).cast("B")
    # A PDU's variable field holds the PDV item: 4-byte length, id, control header, data.
    room = len(view) if max_pdu == 0 else max(max_pdu - 6, 1)
    room = max(room, 1)
    out: list[bytes] = []
    pos = 0
    while True:
        piece = view[pos : pos + room]
        pos += len(piece)
        last = pos >= len(view)
        control = (0x01 if command else 0x00) | (0x02 if last else 0x00)
        item = _PDV.pack(len(piece) + 2, context_id, control) + piece
        out.append(_pdu(P_DATA_TF, item))
        if last:
            return out
