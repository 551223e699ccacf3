"""The Edge Server's view of stored DICOM: what one instance's header says, where an instance is,
and a study's contents (the input of the KOS builder and of the jacket).

Frozen values only; reading them from files is :mod:`imaging_source.dicomstore`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class InstanceHeader:
    """The attributes of one instance that the index keeps (PS3.3 Patient, General Study,
    General Series and SOP Common modules), as decoded strings ('' when absent)."""

    sop_uid: str  # (0008,0018)
    sop_class_uid: str  # (0008,0016)
    transfer_syntax: str  # (0002,0010)
    study_uid: str  # (0020,000D)
    series_uid: str  # (0020,000E)
    patient_id: str = ""  # (0010,0020)
    issuer: str = ""  # (0010,0021)
    patient_name: str = ""  # (0010,0010)
    birth_date: str = ""  # (0010,0030)
    sex: str = ""  # (0010,0040)
    accession: str = ""  # (0008,0050)
    accession_issuer: str = ""  # (0008,0051) > (0040,0031) Local Namespace Entity ID
    study_id: str = ""  # (0020,0010)
    study_date: str = ""  # (0008,0020)
    study_time: str = ""  # (0008,0030)
    study_description: str = ""  # (0008,1030)
    referring_physician: str = ""  # (0008,0090)
    procedure_code: str = ""  # (0008,1032) first item: Code Value
    procedure_scheme: str = ""  # ... Coding Scheme Designator
    procedure_meaning: str = ""  # ... Code Meaning
    modality: str = ""  # (0008,0060)
    series_number: int | None = None  # (0020,0011)
    series_description: str = ""  # (0008,103E)
    body_part: str = ""  # (0018,0015)
    instance_number: int | None = None  # (0020,0013)


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """Where one stored instance is, and what it is."""

    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    study_uid: str
    series_uid: str
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient as the images name them (Patient ID within its issuer)."""

    patient_id: str
    issuer: str
    name: str
    birth_date: str
    sex: str


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One instance as a KOS references it (PS3.3 §C.17.2: Referenced SOP Sequence item)."""

    sop_class_uid: str
    sop_uid: str
    instance_number: int | None = None


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """A stored series with its instances, in instance-number order."""

    series_uid: str
    modality: str
    series_number: int | None
    description: str
    body_part: str
    instances: tuple[InstanceRef, ...]


@dataclass(frozen=True, slots=True)
class StudyRecord:
    """A stored study's data (one jacket line): the General Study module plus counts."""

    study_uid: str
    patient: PatientRecord
    accession: str
    accession_issuer: str
    study_id: str
    study_date: str
    study_time: str
    description: str
    referring_physician: str
    procedure_code: str
    procedure_scheme: str
    procedure_meaning: str
    modalities: tuple[str, ...]
    series_count: int
    instance_count: int
    updated: float


@dataclass(frozen=True, slots=True)
class StudyContents:
    """Everything stored of one study: its data, its series and instances (the KOS input)."""

    study: StudyRecord
    series: tuple[SeriesRecord, ...]
    #: Path of one stored instance, whose header carries the patient and study attributes
    #: the KOS must repeat unchanged (xds-notes §7.2).
    sample_path: Path

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)


@dataclass(frozen=True, slots=True)
class Jacket:
    """A patient's jacket: every stored exam of the patient, newest first."""

    patient: PatientRecord
    studies: tuple[StudyRecord, ...]


@dataclass(frozen=True, slots=True)
class ExamReport:
    """The RIS's latest word on one exam (HL7 v2 ORU^R01 / ORM^O01), keyed by accession number.

    ``status`` is the OBR-25 Result Status as received (``F`` final, ``C`` corrected, ``P``
    preliminary, ...); ``final`` says whether it counts as final for release (``F`` or ``C``).
    ``canceled`` is set by an ORM^O01 cancellation (ORC-1 ``CA``/``OC``/``DC``): the exam leaves
    the jacket. ``text`` is the report body as plain text ('' while there is none).
    """

    accession: str
    patient_id: str
    issuer: str
    status: str
    final: bool
    text: str
    status_time: float | None  # epoch seconds of OBR-22 (status change), None when absent
    received: float  # epoch seconds the Edge Server stored this version
    canceled: bool = False
    study_uid: str = ""  # (0020,000D) when the message carried it (ZDS-1 or OBR/IPC), else ''
    procedure_code: str = ""
    procedure_scheme: str = ""
    procedure_meaning: str = ""
