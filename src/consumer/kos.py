"""Reading an XDS-I.b imaging manifest: a DICOM Key Object Selection Document (RAD TF-3
§4.68.4.1.2.1; xds-notes §7.2) into frozen dataclasses, sans-I/O (bytes in, objects out).

What the consumer needs of it is the Current Requested Procedure Evidence Sequence (0040,A375),
PS3.3 §C.17.2.1 Hierarchical SOP Instance Reference Macro: Study -> Referenced Series Sequence
(0008,1115) with the Retrieve Location UID (0040,E011), the repositoryUniqueId of the Imaging
Document Source that answers RAD-69 for it -> Referenced SOP Sequence (0008,1199) with the
Referenced SOP Class and Instance UIDs.

Public API::

    KosError(ValueError)
    ImageReference(study_uid, series_uid, sop_class_uid, sop_instance_uid, retrieve_location_uid,
                   retrieve_ae_title)
    SeriesReference(series_uid, retrieve_location_uid, retrieve_ae_title, instances)
    StudyReference(study_uid, series)
    Manifest(sop_instance_uid, study_uid, patient_id, patient_name, accession, studies)
        .images() -> tuple[ImageReference, ...]     # every referenced instance, in KOS order
        .study_uids -> tuple[str, ...]
    read_manifest(data: bytes) -> Manifest
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from xds.vocabulary import KOS_SOP_CLASS_UID

__all__ = [
    "ImageReference",
    "KosError",
    "Manifest",
    "SeriesReference",
    "StudyReference",
    "read_manifest",
]


class KosError(ValueError):
    """The document is not a usable KOS manifest (not DICOM, not a KOS, or no references)."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """One referenced instance with the study and series it belongs to and where to get it."""

    study_uid: str
    series_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    retrieve_location_uid: str
    retrieve_ae_title: str = ""


@dataclass(frozen=True, slots=True)
class SeriesReference:
    """An item of the Referenced Series Sequence (0008,1115), PS3.3 Table C.17-3."""

    series_uid: str
    retrieve_location_uid: str
    retrieve_ae_title: str
    instances: tuple[tuple[str, str], ...]  # (SOP Class UID, SOP Instance UID)


@dataclass(frozen=True, slots=True)
class StudyReference:
    """An item of the Current Requested Procedure Evidence Sequence (0040,A375)."""

    study_uid: str
    series: tuple[SeriesReference, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parts of a KOS manifest the consumer uses."""

    sop_instance_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    accession: str
    studies: tuple[StudyReference, ...]

    @property
    def study_uids(self) -> tuple[str, ...]:
        return tuple(study.study_uid for study in self.studies)

    def images(self) -> tuple[ImageReference, ...]:
        """Every referenced instance (each once, first mention wins), in manifest order."""
        seen: set[str] = set()
        out: list[ImageReference] = []
        for study in self.studies:
            for series in study.series:
                for sop_class, sop_instance in series.instances:
                    if sop_instance in seen:
                        continue
                    seen.add(sop_instance)
                    out.append(
                        ImageReference(
                            study.study_uid,
                            series.series_uid,
                            sop_class,
                            sop_instance,
                            series.retrieve_location_uid,
                            series.retrieve_ae_title,
                        )
                    )
        return tuple(out)


def _text(item: Dataset, keyword: str) -> str:
    value: Any = item.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        # A multi-valued Retrieve AE Title: the first is enough for display.
        value = next(iter(value), "")
    return str(value).strip()


def _series(item: Dataset, *, study_uid: str) -> SeriesReference:
    series_uid = _text(item, "SeriesInstanceUID")
    if not series_uid:
        raise KosError(f"a Referenced Series item of study {study_uid} has no Series Instance UID")
    instances: list[tuple[str, str]] = []
    for sop in item.get("ReferencedSOPSequence", []):
        sop_class = _text(sop, "ReferencedSOPClassUID")
        sop_instance = _text(sop, "ReferencedSOPInstanceUID")
        if not sop_class or not sop_instance:
            raise KosError(f"a Referenced SOP item of series {series_uid} lacks its SOP Class or Instance UID")
        instances.append((sop_class, sop_instance))
    # PS3.3 Table C.17-3; RAD TF-3 §4.68.4.1.2.1: the Retrieve Location UID names the Imaging
    # Document Source (its repositoryUniqueId) that serves the series over RAD-69.
    return SeriesReference(
        series_uid=series_uid,
        retrieve_location_uid=_text(item, "RetrieveLocationUID"),
        retrieve_ae_title=_text(item, "RetrieveAETitle"),
        instances=tuple(instances),
    )


def _evidence(ds: Dataset) -> tuple[StudyReference, ...]:
    studies: list[StudyReference] = []
    for item in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        study_uid = _text(item, "StudyInstanceUID")
        if not study_uid:
            raise KosError("an evidence item has no Study Instance UID")
        series = tuple(_series(s, study_uid=study_uid) for s in item.get("ReferencedSeriesSequence", []))
        studies.append(StudyReference(study_uid, series))
    return tuple(studies)


def read_manifest(data: bytes) -> Manifest:
    """Parse the Part 10 bytes of a KOS manifest.

    Raises :class:`KosError` when the bytes are not DICOM, not a Key Object Selection Document
    (SOP Class 1.2.840.10008.5.1.4.1.1.88.59) or reference no instance.
    """
    try:
        ds = dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, OSError) as exc:
        raise KosError(f"the manifest is not readable DICOM: {exc}") from None
    sop_class = _text(ds, "SOPClassUID")
    # RAD TF-3 §4.68.4.1.2.1: the manifest is a Key Object Selection Document.
    if sop_class != KOS_SOP_CLASS_UID:
        raise KosError(f"SOP Class {sop_class or '(none)'} is not a Key Object Selection Document")
    try:
        studies = _evidence(ds)
    except (ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, KosError):
            raise
        raise KosError(f"unreadable Current Requested Procedure Evidence Sequence: {exc}") from None
    manifest = Manifest(
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        accession=_text(ds, "AccessionNumber"),
        studies=studies,
    )
    if not manifest.images():
        raise KosError("the manifest references no instance (empty Current Requested Procedure Evidence Sequence)")
    return manifest
