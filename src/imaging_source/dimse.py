"""DIMSE command sets (PS3.7 §6.3, §9.3, Annex E), sans-I/O: the few elements a Storage and
Verification SCP reads, and the responses it sends.

A command set is always encoded in Implicit VR Little Endian (PS3.7 §6.3.1): tag (group,
element as two little-endian uint16), 4-byte length, value; it starts with Command Group
Length (0000,0000), the byte count of the elements after it.

Public API::

    decode_command(data) -> Command           # raises DimseError
    encode_command(elements) -> bytes         # {tag: value} -> command set with group length
    encode_store_rsp(*, message_id, sop_class_uid, sop_instance_uid, status) -> bytes
    encode_echo_rsp(*, message_id, sop_class_uid, status) -> bytes
    encode_response(*, command_field, message_id, status, sop_class_uid="", sop_instance_uid="") -> bytes
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "C_ECHO_RQ",
    "C_ECHO_RSP",
    "C_STORE_RQ",
    "C_STORE_RSP",
    "Command",
    "DimseError",
    "decode_command",
    "encode_command",
    "encode_echo_rsp",
    "encode_response",
    "encode_store_rsp",
]

# PS3.7 Annex E.1 Table E.1-1: command elements.
TAG_GROUP_LENGTH: Final = 0x00000000
TAG_AFFECTED_SOP_CLASS: Final = 0x00000002
TAG_COMMAND_FIELD: Final = 0x00000100
TAG_MESSAGE_ID: Final = 0x00000110
TAG_MESSAGE_ID_RESPONDED: Final = 0x00000120
TAG_PRIORITY: Final = 0x00000700
TAG_DATA_SET_TYPE: Final = 0x00000800
TAG_STATUS: Final = 0x00000900
TAG_AFFECTED_SOP_INSTANCE: Final = 0x00001000
TAG_MOVE_ORIGINATOR_AE: Final = 0x00001030
TAG_MOVE_ORIGINATOR_ID: Final = 0x00001031

# PS3.7 §9.3.1.1, §9.3.5.1: command field values.
C_STORE_RQ: Final = 0x0001
C_STORE_RSP: Final = 0x8001
C_ECHO_RQ: Final = 0x0030
C_ECHO_RSP: Final = 0x8030
C_CANCEL_RQ: Final = 0x0FFF

#: PS3.7 Annex E.1: Command Data Set Type 0x0101 means "no data set"; anything else, one follows.
NO_DATA_SET: Final = 0x0101

# PS3.7 Annex E.1: value representation of each element we encode.
_US: Final = frozenset({TAG_COMMAND_FIELD, TAG_MESSAGE_ID, TAG_MESSAGE_ID_RESPONDED, TAG_PRIORITY,
                        TAG_DATA_SET_TYPE, TAG_STATUS, TAG_MOVE_ORIGINATOR_ID})
_UI: Final = frozenset({TAG_AFFECTED_SOP_CLASS, TAG_AFFECTED_SOP_INSTANCE})
_ELEMENT: Final = struct.Struct("<HHI")


class DimseError(ValueError):
    """A command set that cannot be decoded."""


@dataclass(frozen=True, slots=True)
class Command:
    """The elements of a request command set an SCP acts on."""

    command_field: int
    message_id: int
    has_data_set: bool
    affected_sop_class_uid: str = ""
    affected_sop_instance_uid: str = ""
    priority: int = 0
    move_originator_ae: str = ""
    move_originator_id: int | None = None


def _elements(data: bytes | bytearray | memoryview) -> dict[int, bytes]:
    view = memoryview(data).cast("B")
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(view):
        if pos + 8 > len(view):
            raise DimseError("truncated command element")
        group, element, length = _ELEMENT.unpack_from(view, pos)
        pos += 8
        # PS3.7 §6.3.1: command sets hold group 0000 only, no undefined lengths.
        if group != 0 or pos + length > len(view):
            raise DimseError(f"bad command element ({group:04X},{element:04X}) of length {length}")
        out[element] = bytes(view[pos : pos + length])
        pos += length
    return out


def _us(values: Mapping[int, bytes], tag: int, *, required: bool = True) -> int | None:
    raw = values.get(tag)
    if raw is None:
        if required:
            raise DimseError(f"command element (0000,{tag:04X}) is missing")
        return None
    if len(raw) != 2:
        raise DimseError(f"command element (0000,{tag:04X}) is not US")
    return int(struct.unpack("<H", raw)[0])


def _text(values: Mapping[int, bytes], tag: int) -> str:
    # PS3.5 §6.2: UI values are NUL padded, AE values space padded.
    return values.get(tag, b"").decode("ascii", "replace").strip("\x00 ")


def decode_command(data: bytes | bytearray | memoryview) -> Command:
    """The command set of a DIMSE request (PS3.7 §9.3, Annex E)."""
    values = _elements(data)
    command_field = _us(values, TAG_COMMAND_FIELD)
    data_set_type = _us(values, TAG_DATA_SET_TYPE)
    message_id = _us(values, TAG_MESSAGE_ID, required=command_field != C_CANCEL_RQ)
    assert command_field is not None and data_set_type is not None
    return Command(
        command_field=command_field,
        message_id=message_id if message_id is not None else 0,
        has_data_set=data_set_type != NO_DATA_SET,
        affected_sop_class_uid=_text(values, TAG_AFFECTED_SOP_CLASS),
        affected_sop_instance_uid=_text(values, TAG_AFFECTED_SOP_INSTANCE),
        priority=_us(values, TAG_PRIORITY, required=False) or 0,
        move_originator_ae=_text(values, TAG_MOVE_ORIGINATOR_AE),
        move_originator_id=_us(values, TAG_MOVE_ORIGINATOR_ID, required=False),
    )


def _value(tag: int, value: int | str) -> bytes:
    if tag in _US:
        return struct.pack("<H", int(value))
    raw = str(value).encode("ascii")
    if len(raw) % 2:
        # PS3.5 §6.2: UI pads with NUL, other strings with a space.
        raw += b"\x00" if tag in _UI else b" "
    return raw


def encode_command(elements: Mapping[int, int | str]) -> bytes:
    """A command set of ``elements`` ({tag: value}, group 0000) in tag order, led by its
    Command Group Length (PS3.7 §6.3.1, §E.1)."""
    body = bytearray()
    for tag in sorted(elements):
        if tag == TAG_GROUP_LENGTH or tag >> 16:
            raise ValueError(f"not an encodable command element: {tag:08X}")
        value = _value(tag, elements[tag])
        body += _ELEMENT.pack(0, tag & 0xFFFF, len(value)) + value
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<I", len(body)) + bytes(body)


def encode_response(
    *, command_field: int, message_id: int, status: int, sop_class_uid: str = "", sop_instance_uid: str = ""
) -> bytes:
    """A response command set without a data set (PS3.7 §9.3: Command Data Set Type 0x0101)."""
    elements: dict[int, int | str] = {
        TAG_COMMAND_FIELD: command_field,
        TAG_MESSAGE_ID_RESPONDED: message_id,
        TAG_DATA_SET_TYPE: NO_DATA_SET,
        TAG_STATUS: status,
    }
    if sop_class_uid:
        elements[TAG_AFFECTED_SOP_CLASS] = sop_class_uid
    if sop_instance_uid:
        elements[TAG_AFFECTED_SOP_INSTANCE] = sop_instance_uid
    return encode_command(elements)


def encode_store_rsp(*, message_id: int, sop_class_uid: str, sop_instance_uid: str, status: int) -> bytes:
    """C-STORE-RSP (PS3.7 §9.3.1.2 Table 9.3-2)."""
    return encode_response(command_field=C_STORE_RSP, message_id=message_id, status=status,
                           sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid)


def encode_echo_rsp(*, message_id: int, sop_class_uid: str, status: int) -> bytes:
    """C-ECHO-RSP (PS3.7 §9.3.5.2 Table 9.3-13)."""
    return encode_response(command_field=C_ECHO_RSP, message_id=message_id, status=status, sop_class_uid=sop_class_uid)
