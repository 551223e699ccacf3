"""The DICOM File Format's header, encoded directly (PS3.10 §7.1): 128-byte preamble, "DICM",
then the File Meta Information group (0002,xxxx) in Explicit VR Little Endian.

The C-STORE SCP writes each received dataset behind this header unchanged, so a received
instance costs one small encoding and no copy of its (possibly large) dataset.

Public API::

    file_meta(*, sop_class_uid, sop_instance_uid, transfer_syntax, source_ae="") -> bytes
    IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION", "PREAMBLE", "file_meta"]

#: PS3.7 §D.3.3.2 Implementation Class UID of this implementation (a fixed 2.25 UUID-derived UID).
IMPLEMENTATION_CLASS_UID: Final = "2.25.315309457925380307838633311390476342146"
IMPLEMENTATION_VERSION: Final = "IMAGESHARE01"
PREAMBLE: Final = b"\x00" * 128 + b"DICM"


def _pad(value: bytes, pad: bytes) -> bytes:
    # PS3.5 §6.2: values have even length; UI pads with NUL, other strings with a space.
    return value + pad if len(value) % 2 else value


def _short(group_element: tuple[int, int], vr: bytes, value: bytes) -> bytes:
    """An Explicit VR Little Endian element with a 2-byte length (PS3.5 §7.1.2)."""
    return struct.pack("<HH2sH", group_element[0], group_element[1], vr, len(value)) + value


def file_meta(*, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, source_ae: str = "") -> bytes:
    """Preamble, prefix and File Meta Information (PS3.10 Table 7.1-1)."""
    elements = [
        # (0002,0001) File Meta Information Version, OB: 4-byte length form (PS3.5 Table 7.1-1).
        struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01",
        _short((0x0002, 0x0002), b"UI", _pad(sop_class_uid.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0003), b"UI", _pad(sop_instance_uid.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0010), b"UI", _pad(transfer_syntax.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0012), b"UI", _pad(IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\x00")),
        _short((0x0002, 0x0013), b"SH", _pad(IMPLEMENTATION_VERSION.encode("ascii"), b" ")),
    ]
    if source_ae.strip():
        # (0002,0016) Source Application Entity Title: the AE that sent the instance.
        elements.append(_short((0x0002, 0x0016), b"AE", _pad(source_ae.strip().encode("ascii", "replace"), b" ")))
    body = b"".join(elements)
    group_length = _short((0x0002, 0x0000), b"UL", struct.pack("<I", len(body)))
    return PREAMBLE + group_length + body
