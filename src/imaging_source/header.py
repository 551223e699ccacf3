"""Read the indexed attributes of a DICOM Part 10 instance without touching its pixel data.

The header is parsed with pydicom up to (not including) Pixel Data (7FE0,0010) or any other bulk
pixel element, so a 1 GiB multi-frame costs what its header costs (performance-anchors §1.5:
ingest never decodes pixels).
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path
from typing import IO, Final

from pydicom import dcmread
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from imaging_source.model import InstanceHeader

__all__ = ["InvalidInstance", "header_from_dataset", "read_dataset_header", "read_header", "read_stream_header", "safe_uid"]

# PS3.5 §9.1: a UID is digits and dots, components without leading zeros, at most 64 characters.
# The store accepts what real devices send (leading zeros too) but nothing that is not a UID.
_UID_CHARS: Final = re.compile(r"[0-9]+(\.[0-9]+)*")


class InvalidInstance(ValueError):
    """The bytes are not a storable DICOM instance (no Part 10 header, no UIDs)."""


def safe_uid(value: str) -> bool:
    """Whether ``value`` looks like a UID (and is therefore safe as a file name)."""
    return len(value) <= 64 and _UID_CHARS.fullmatch(value) is not None


# PS3.3 §C.12.1.1.2: the character sets whose bytes map to one Python codec. Values in any other
# (ISO 2022 code extensions) go through pydicom's full conversion.
_CODECS: Final = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_KEYWORDS: Final = (
    "SpecificCharacterSet", "SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID",
    "PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "StudyID", "StudyDate", "StudyTime", "StudyDescription", "ReferringPhysicianName", "Modality",
    "SeriesNumber", "SeriesDescription", "BodyPartExamined", "InstanceNumber",
    "UniversalEntityID", "LocalNamespaceEntityID", "CodeValue", "LongCodeValue", "CodingSchemeDesignator",
    "CodeMeaning",
)
_TAGS: Final[dict[str, int]] = {k: int(tag_for_keyword(k) or 0) for k in _KEYWORDS}


def _tag(keyword: str) -> int:
    return _TAGS[keyword]


def _charset(ds: Dataset) -> str | None:
    """The codec of the dataset's strings when it is a simple one (else None)."""
    element = ds.get_item(_tag("SpecificCharacterSet"))
    if element is None:
        return "latin-1"
    raw = element.value
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    text = raw if isinstance(raw, str) else "\\".join(raw)
    return _CODECS.get(text.strip().strip("\\").strip())


def _text(ds: Dataset, keyword: str, codec: str | None = "latin-1") -> str:
    """A string attribute, read from its raw bytes when the character set allows: pydicom's
    value conversion costs ~80 us per element, which matters at hundreds of instances/s."""
    element = ds.get_item(_tag(keyword))
    if element is None:
        return ""
    if isinstance(element, RawDataElement) and isinstance(element.value, bytes) and codec is not None:
        return element.value.rstrip(b"\x00 ").decode(codec, "replace").strip()
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    if not text:
        return None
    try:
        return int(text.split("\\")[0])
    except ValueError:
        return None


def header_from_dataset(ds: Dataset, *, transfer_syntax: str) -> InstanceHeader:
    """The :class:`InstanceHeader` of a dataset (its pixel data is never read)."""
    codec = _charset(ds)
    uids = {k: _text(ds, k) for k in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")}
    for keyword, value in uids.items():
        # PS3.4 §B.2.3: a dataset the SCP cannot index is "Cannot understand".
        if not value:
            raise InvalidInstance(f"{keyword} is missing")
        if not safe_uid(value):
            raise InvalidInstance(f"{keyword} {value!r} is not a UID")
    accession_issuer = ""
    issuer_seq = ds.get("IssuerOfAccessionNumberSequence")
    if issuer_seq:
        accession_issuer = _text(issuer_seq[0], "UniversalEntityID") or _text(issuer_seq[0], "LocalNamespaceEntityID")
    code, scheme, meaning = "", "", ""
    procedure = ds.get("ProcedureCodeSequence")
    if procedure:
        item = procedure[0]
        code = _text(item, "CodeValue") or _text(item, "LongCodeValue")
        scheme = _text(item, "CodingSchemeDesignator")
        meaning = _text(item, "CodeMeaning")
    return InstanceHeader(
        sop_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        transfer_syntax=transfer_syntax,
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        patient_id=_text(ds, "PatientID", codec),
        issuer=_text(ds, "IssuerOfPatientID", codec),
        patient_name=_text(ds, "PatientName", codec),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
        accession=_text(ds, "AccessionNumber", codec),
        accession_issuer=accession_issuer,
        study_id=_text(ds, "StudyID", codec),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription", codec),
        referring_physician=_text(ds, "ReferringPhysicianName", codec),
        procedure_code=code,
        procedure_scheme=scheme,
        procedure_meaning=meaning,
        modality=_text(ds, "Modality"),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", codec),
        body_part=_text(ds, "BodyPartExamined"),
        instance_number=_int(ds, "InstanceNumber"),
    )


def read_dataset_header(source: bytes | bytearray | memoryview | Path | IO[bytes]) -> Dataset:
    """The dataset of a Part 10 file, read up to its pixel data (PS3.10 §7.1)."""
    fp: IO[bytes] | Path
    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        return dcmread(fp, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise InvalidInstance(f"not a DICOM Part 10 instance: {exc}") from exc


def read_header(source: bytes | bytearray | memoryview | Path | IO[bytes]) -> InstanceHeader:
    """The :class:`InstanceHeader` of a Part 10 file (PS3.10 §7.1: preamble, DICM, meta)."""
    ds = read_dataset_header(source)
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not transfer_syntax:
        raise InvalidInstance("the File Meta Information has no Transfer Syntax UID (0002,0010)")
    try:
        return header_from_dataset(ds, transfer_syntax=transfer_syntax)
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, InvalidInstance):
            raise
        raise InvalidInstance(f"unreadable header: {exc}") from exc


# PS3.3 §C.7.6.3 / §C.7.6.23-24: Pixel Data, Float and Double Float Pixel Data end the header.
_PIXEL_TAGS: Final = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


def _at_pixels(tag: BaseTag, _vr: str | None, _length: int) -> bool:
    return int(tag) in _PIXEL_TAGS


def read_stream_header(fp: IO[bytes], *, transfer_syntax: str) -> InstanceHeader:
    """The :class:`InstanceHeader` of a bare dataset (no File Meta, as a C-STORE carries it)
    encoded in ``transfer_syntax`` (PS3.5 §10); reading stops at the pixel data."""
    uid = UID(transfer_syntax)
    if not uid.is_transfer_syntax:
        raise InvalidInstance(f"unknown transfer syntax {transfer_syntax}")
    try:
        fp.seek(0)
        if uid.is_deflated:
            # PS3.5 §A.5: the whole dataset is deflated (RFC 1951, no zlib header).
            fp = io.BytesIO(zlib.decompressobj(-zlib.MAX_WBITS).decompress(fp.read()))
        ds = read_dataset(fp, uid.is_implicit_VR, uid.is_little_endian, stop_when=_at_pixels)
        return header_from_dataset(ds, transfer_syntax=transfer_syntax)
    except InvalidInstance:
        raise
    except (EOFError, ValueError, KeyError, TypeError, NotImplementedError, OSError, zlib.error) as exc:
        raise InvalidInstance(f"unreadable dataset: {exc}") from exc
    finally:
        fp.seek(0)
