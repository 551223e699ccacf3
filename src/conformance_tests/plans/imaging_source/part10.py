"""Judging a returned DICOM instance against the test instance it must be (RAD-69 and RAD-55).

Two rules apply to every returned file:

* it is a DICOM Part 10 file (PS3.10 §7.1) of the requested SOP Instance, encoded in a transfer
  syntax the request accepted (RAD TF-3 §4.69.4.2.3, RAD69-005; PS3.18 for WADO-URI);
* it is the instance that was stored: in the transfer syntax it was sent in, the dataset is
  byte-identical to the bytes the C-STORE carried (a Storage SCP of level 2 keeps every element,
  PS3.4 §B.4.1); in another syntax, every data element decodes to the same value and the pixel
  data is the same, bit for bit (a lossless re-encoding, PS3.5 §10).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from typing import Final

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID

from conformance_tests.data.dicom import TestInstance, dataset_offset
from conformance_tests.model import Check

__all__ = ["judge_instance"]

_FORMAT_RULE: Final = "DICOM PS3.10 §7.1 (Part 10 file, File Meta Information); RAD TF-3 §4.69.4.2.3 (RAD69-005)"
_CONTENT_RULE: Final = (
    "RAD TF-3 §4.69.4.2.3 (the instance as stored); DICOM PS3.4 §B.4.1 (level 2 storage keeps every element); "
    "PS3.5 §10 (lossless re-encoding)"
)
_PIXEL_DATA: Final = 0x7FE00010


def _elements(ds: Dataset) -> dict[int, object]:
    """Every element but group lengths (gggg,0000), which an encoder may add or drop."""
    return {int(e.tag): e.value for e in ds if e.tag.element != 0}


def _looks_explicit(dataset: bytes) -> bool | None:
    """Whether the first data element carries a VR (PS3.5 §7.1.2) or a 4-byte length (§7.1.3);
    None when there is no element. (A reader that guesses would hide a mislabelled file.)"""
    if len(dataset) < 8:
        return None
    vr = dataset[4:6]
    return vr.isalpha() and vr.isupper()


def _compare(expected: Dataset, got: Dataset) -> list[str]:
    ours, theirs = _elements(expected), _elements(got)
    problems = [f"({t >> 16:04X},{t & 0xFFFF:04X}) missing" for t in ours if t not in theirs]
    problems += [f"({t >> 16:04X},{t & 0xFFFF:04X}) added" for t in theirs if t not in ours]
    for tag, value in ours.items():
        if tag not in theirs:
            continue
        other = theirs[tag]
        if tag == _PIXEL_DATA:
            if bytes(value) != bytes(other):  # type: ignore[arg-type]
                problems.append("Pixel Data differs")
        elif str(value) != str(other):
            problems.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {value!r} became {other!r}")
    return problems


def _differences(item: TestInstance, got: Dataset) -> list[str]:
    try:
        return _compare(item.dataset(), got)
    except Exception as exc:  # a value that cannot be decoded is a difference too
        return [f"{type(exc).__name__}: {exc}"]


def judge_instance(item: TestInstance, data: bytes | None, *, accepted: Sequence[str]) -> list[Check]:
    """The checks ``<key> Part 10`` and ``<key> content`` on the bytes returned for ``item``."""
    if data is None:
        return [Check(f"{item.key} Part 10", False, "no content returned", _FORMAT_RULE)]
    try:
        offset = dataset_offset(data)
        with warnings.catch_warnings():
            # pydicom guesses past a mislabelled encoding and warns; the check below reports it.
            warnings.simplefilter("ignore", UserWarning)
            got = dcmread(io.BytesIO(data))
        meta = got.file_meta
        syntax = str(meta.get("TransferSyntaxUID", ""))
        stored_uid = str(meta.get("MediaStorageSOPInstanceUID", ""))
        stored_class = str(meta.get("MediaStorageSOPClassUID", ""))
        elements = list(got)  # decodes every element
    except Exception as exc:  # whatever the bytes are, the verdict is "not a readable Part 10 file"
        return [Check(f"{item.key} Part 10", False, f"{len(data)} bytes, unreadable: {type(exc).__name__}: {exc}", _FORMAT_RULE)]
    problems = []
    if syntax not in accepted:
        problems.append(f"Transfer Syntax {syntax or '(none)'} was not requested ({', '.join(accepted)})")
    declared = UID(syntax) if syntax else None
    if declared is not None and declared.is_transfer_syntax and not declared.is_compressed:
        explicit = _looks_explicit(data[offset:])
        if explicit is not None and explicit == declared.is_implicit_VR:
            found = "explicit" if explicit else "implicit"
            problems.append(f"the dataset is not encoded as {syntax} says: its first element has {found} VR")
    if stored_uid != item.sop_uid:
        problems.append(f"Media Storage SOP Instance UID {stored_uid or '(none)'}")
    if stored_class != item.sop_class_uid:
        problems.append(f"Media Storage SOP Class UID {stored_class or '(none)'}")
    checks = [
        Check(
            f"{item.key} Part 10",
            not problems,
            "; ".join(problems) or f"{len(data)} bytes, {syntax}, {len(elements)} elements",
            _FORMAT_RULE,
        )
    ]
    if syntax == item.transfer_syntax:
        same = data[offset:] == item.dataset_bytes
        mine = hashlib.sha1(item.dataset_bytes).hexdigest()
        detail = (
            f"dataset byte-identical ({len(item.dataset_bytes)} bytes, SHA-1 {mine})"
            if same
            else f"sent {len(item.dataset_bytes)} dataset bytes (SHA-1 {mine}), got {len(data) - offset} "
            f"(SHA-1 {hashlib.sha1(data[offset:]).hexdigest()})"
        )
        if not same:
            differences = _differences(item, got)
            detail += ": " + ("; ".join(differences[:6]) if differences else "same values, other encoding")
        checks.append(Check(f"{item.key} content", same, detail, _CONTENT_RULE))
    else:
        differences = _differences(item, got)
        checks.append(
            Check(
                f"{item.key} content",
                not differences,
                "; ".join(differences[:6]) or f"re-encoded in {syntax}: every element and the Pixel Data identical",
                _CONTENT_RULE,
            )
        )
    return checks
