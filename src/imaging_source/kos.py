"""The XDS-I.b imaging manifest: a DICOM Key Object Selection Document (PS3.3 §A.35.4) listing
every instance of a study, for RAD-68 (RAD TF-3 §4.68.4.1.2.1; xds-notes §7.2).

* SOP Class 1.2.840.10008.5.1.4.1.1.88.59, Modality KO, a **new** Series and SOP Instance UID.
* The Patient and General Study attributes are copied unchanged from a stored instance of the
  study (Patient ID, name, birth date, sex, Accession Number, Study Instance UID...), in that
  instance's Specific Character Set, so they are byte-identical to the images'.
* Document title (0040,A043): (113030, DCM, "Manifest"), template TID 2010.
* Current Requested Procedure Evidence Sequence (0040,A375), PS3.3 §C.17.2.1 Hierarchical SOP
  Instance Reference Macro: Study -> Referenced Series (with Retrieve AE Title (0008,0054) and
  Retrieve Location UID (0040,E011) = this source's repositoryUniqueId) -> Referenced SOP.
* The content tree (PS3.16 TID 2010) repeats each instance as an IMAGE, WAVEFORM or COMPOSITE
  content item, CONTAINS-related to the root container.

:func:`build_kos` is pure (a dataset in, a dataset out); :func:`encode_part10` writes the Part 10
bytes (Explicit VR Little Endian) that RAD-68 sends as ``application/dicom``.

Public API::

    build_kos(contents, header, *, source_id, retrieve_ae_title, now=None, new_uid=new_uid,
              series_number=KOS_SERIES_NUMBER, manufacturer=MANUFACTURER,
              description=None) -> Dataset
    encode_part10(dataset) -> bytes
    kos_for_study(store, study_uid, **options) -> Dataset       # reads the sample header
    new_uid() -> str
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Final

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from imaging_source.dicomstore import DicomStore
from imaging_source.header import read_dataset_header
from imaging_source.model import InstanceRef, StudyContents
from imaging_source.part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION
from xds.vocabulary import KOS_SOP_CLASS_UID

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "KOS_SERIES_NUMBER",
    "MANIFEST_TITLE",
    "build_kos",
    "encode_part10",
    "kos_for_study",
    "new_uid",
]

#: (code value, coding scheme designator, code meaning) of the document title: PS3.16 CID 7010,
#: the XDS-I manifest title (RAD TF-3 §4.68.4.1.2.1).
MANIFEST_TITLE: Final = ("113030", "DCM", "Manifest")
#: PS3.16 TID 2010 "Key Object Selection", from the DICOM Content Mapping Resource.
TEMPLATE: Final = ("DCMR", "2010")
KOS_SERIES_NUMBER: Final = 999
MANUFACTURER: Final = "imageshare-xds"

# Attributes of the Patient and General Study modules (PS3.3 §C.7.1.1, §C.7.2.1) copied from
# the images, unchanged; absent ones are written empty when the module makes them Type 2.
_PATIENT_STUDY_TYPE2: Final = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
_PATIENT_STUDY_OPTIONAL: Final = (
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDsSequence",
    "PatientBirthTime",
    "IssuerOfAccessionNumberSequence",
    "StudyDescription",
    "ProcedureCodeSequence",
    "ReferringPhysicianIdentificationSequence",
)


def new_uid() -> str:
    """A fresh UID under the UUID arc 2.25 (PS3.5 §B.2)."""
    return str(generate_uid(prefix=None))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _value_type(sop_class_uid: str) -> str:
    """TID 2010 row 5: IMAGE for image storage classes, WAVEFORM, else COMPOSITE."""
    name = UID(sop_class_uid).name
    if "Image" in name:
        return "IMAGE"
    if "Waveform" in name:
        return "WAVEFORM"
    return "COMPOSITE"


def _sop_ref(ref: InstanceRef) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_uid
    return item


def build_kos(
    contents: StudyContents,
    header: Dataset,
    *,
    source_id: str,
    retrieve_ae_title: str,
    now: dt.datetime | None = None,
    new_uid: Callable[[], str] = new_uid,
    series_number: int = KOS_SERIES_NUMBER,
    manufacturer: str = MANUFACTURER,
    description: str | None = None,
) -> Dataset:
    """The KOS manifest of ``contents``; ``header`` is the dataset of one of its instances."""
    if not contents.series or contents.instance_count == 0:
        raise ValueError(f"study {contents.study.study_uid} has no stored instance to reference")
    if str(header.get("StudyInstanceUID", "")) != contents.study.study_uid:
        raise ValueError("the sample header is not an instance of the study")
    if not retrieve_ae_title or not source_id:
        # RAD TF-3 §4.68.4.1.2.1: Retrieve AE Title and Retrieve Location UID are required.
        raise ValueError("a KOS needs a Retrieve AE Title and a Retrieve Location UID")
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    date, time = moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")

    ds = Dataset()
    # SOP Common (PS3.3 §C.12.1): same character set as the copied attributes.
    if "SpecificCharacterSet" in header:
        ds.SpecificCharacterSet = header.SpecificCharacterSet
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.SOPClassUID = KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = new_uid()
    ds.TimezoneOffsetFromUTC = "+0000"
    # Patient (§C.7.1.1) and General Study (§C.7.2.1), identical to the images (xds-notes §7.2).
    for keyword in _PATIENT_STUDY_TYPE2:
        if keyword in header:
            ds[keyword] = header[keyword]
        else:
            setattr(ds, keyword, "")
    for keyword in _PATIENT_STUDY_OPTIONAL:
        if keyword in header:
            ds[keyword] = header[keyword]
    ds.StudyInstanceUID = contents.study.study_uid
    # Key Object Document Series (§C.17.6.1): KO, a new series.
    ds.Modality = "KO"
    ds.SeriesInstanceUID = new_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDate = date
    ds.SeriesTime = time
    ds.SeriesDescription = description or "XDS-I manifest"
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence()
    # General Equipment (§C.7.5.1).
    ds.Manufacturer = manufacturer
    # Key Object Document (§C.17.6.2).
    ds.InstanceNumber = 1
    ds.ContentDate = date
    ds.ContentTime = time
    if contents.study.accession:
        ds.ReferencedRequestSequence = DicomSequence([_request(ds)])
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence(
        [_evidence(contents, source_id=source_id, retrieve_ae_title=retrieve_ae_title)]
    )
    # SR Document Content (§C.17.3) with TID 2010.
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code(*MANIFEST_TITLE)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = TEMPLATE
    ds.ContentTemplateSequence = DicomSequence([template])
    items = []
    for series in contents.series:
        for ref in series.instances:
            item = Dataset()
            item.RelationshipType = "CONTAINS"
            item.ValueType = _value_type(ref.sop_class_uid)
            item.ReferencedSOPSequence = DicomSequence([_sop_ref(ref)])
            items.append(item)
    ds.ContentSequence = DicomSequence(items)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds.file_meta = meta
    return ds


def _request(ds: Dataset) -> Dataset:
    """Referenced Request Sequence item (§C.17.6.2, §C.4.11 Request Attributes Macro)."""
    item = Dataset()
    item.StudyInstanceUID = ds.StudyInstanceUID
    item.AccessionNumber = ds.AccessionNumber
    if "IssuerOfAccessionNumberSequence" in ds:
        item.IssuerOfAccessionNumberSequence = ds.IssuerOfAccessionNumberSequence
    item.ReferencedStudySequence = DicomSequence()
    item.RequestedProcedureDescription = ds.get("StudyDescription", "")
    item.RequestedProcedureCodeSequence = DicomSequence(list(ds.get("ProcedureCodeSequence", [])[:1]))
    item.RequestedProcedureID = ""
    item.PlacerOrderNumberImagingServiceRequest = ""
    item.FillerOrderNumberImagingServiceRequest = ""
    return item


def _evidence(contents: StudyContents, *, source_id: str, retrieve_ae_title: str) -> Dataset:
    """One study item of the Hierarchical SOP Instance Reference Macro (PS3.3 §C.17.2.1)."""
    study = Dataset()
    study.StudyInstanceUID = contents.study.study_uid
    series_items = []
    for series in contents.series:
        item = Dataset()
        item.SeriesInstanceUID = series.series_uid
        # PS3.3 Table C.17-3; RAD TF-3 §4.68.4.1.2.1: where RAD-69 / C-MOVE retrieves it.
        item.RetrieveAETitle = retrieve_ae_title
        item.RetrieveLocationUID = source_id
        item.ReferencedSOPSequence = DicomSequence([_sop_ref(ref) for ref in series.instances])
        series_items.append(item)
    study.ReferencedSeriesSequence = DicomSequence(series_items)
    return study


def encode_part10(dataset: Dataset) -> bytes:
    """The Part 10 file bytes (PS3.10 §7.1), in the transfer syntax of its File Meta."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def kos_for_study(
    store: DicomStore,
    study_uid: str,
    *,
    source_id: str,
    retrieve_ae_title: str,
    now: dt.datetime | None = None,
) -> Dataset:
    """Build the KOS of a stored study (reads the header of one of its instances)."""
    contents = store.contents(study_uid)
    if contents is None:
        raise LookupError(f"study {study_uid} is not stored here")
    header = read_dataset_header(contents.sample_path)
    return build_kos(contents, header, source_id=source_id, retrieve_ae_title=retrieve_ae_title, now=now)
