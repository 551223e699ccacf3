"""The test data the simulated peers of a Document Consumer / Imaging Document Consumer serve.

One patient with four SubmissionSets, the same on every run (deterministic ids under a root the
runner owns):

* ``reports``: two documents, ``report`` (text/plain) and ``letter`` (text/xml);
* ``ct``: the KOS manifest ``kos-ct`` of the ``ct`` test study (:mod:`conformance_tests.data.dicom`,
  one series at the first Imaging Document Source) and its report ``ct-report``;
* ``mm``: the KOS manifest ``kos-mm`` of the ``mm`` study, whose CT series is served by the first
  source and whose MR series by the second (one RAD-69 per Retrieve Location UID, xds-notes §7.6);
* ``other``: one document of a second patient (a query must not return it).

The registry objects are the ebRIM 3.0 encoding of :mod:`conformance_tests.data.metadata` with
entryUUIDs for every id, ``status`` Approved and ``lid`` set, as a registry returns them
(ITI TF-2a §3.18.4.1.3.5).

Public API::

    CONSUMER_ROOT, REPOSITORY_ID, SOURCE_IDS, HOME_COMMUNITY_ID
    StoredDocument(key, spec, submission_set)      # .unique_id .entry_uuid .content .mime_type
    ConsumerTestData(patient_id, other_patient_id, documents, submission_sets, objects,
                     images, manifests)           # .document(key) .instances_of(kos key) ...
    consumer_test_data(*, assigning_authority=DEFAULT_ASSIGNING_AUTHORITY) -> ConsumerTestData
    kos_manifest(study, *, locations, root, number=1) -> bytes
"""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from conformance_tests.data import codes as c
from conformance_tests.data.dicom import ImagingTestData, TestInstance, TestStudy, imaging_test_data
from conformance_tests.data.ids import ACCESSION_ISSUER, DEFAULT_ASSIGNING_AUTHORITY, IdFactory
from conformance_tests.data.metadata import DocumentSpec, Submission, SubmissionSetSpec, document_spec
from xds.vocabulary import KOS_SOP_CLASS_UID, MIME_DICOM, NS_RIM, ReferenceIdType, Status

__all__ = [
    "CONSUMER_ROOT",
    "HOME_COMMUNITY_ID",
    "REPOSITORY_ID",
    "SOURCE_IDS",
    "ConsumerTestData",
    "StoredDocument",
    "consumer_test_data",
    "kos_manifest",
]

#: ISO/IEC 9834-8 root of every id of the consumer test data, owned by this runner.
CONSUMER_ROOT: Final = f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, 'imageshare.conformance.consumer').int}.1"
#: The simulated Document Repository's repositoryUniqueId.
REPOSITORY_ID: Final = f"{CONSUMER_ROOT}.10"
#: The simulated Imaging Document Sources' repositoryUniqueIds (the KOS Retrieve Location UIDs).
SOURCE_IDS: Final = (f"{CONSUMER_ROOT}.20", f"{CONSUMER_ROOT}.21")
RETRIEVE_AE_TITLES: Final = ("IDSSIM1", "IDSSIM2")
#: The homeCommunityId the simulated registry puts on its objects when told to (XCA style), as a
#: urn:oid: URI (ITI TF-3 §4.2.3.2, homeCommunityId).
HOME_COMMUNITY_ID: Final = f"urn:oid:{CONSUMER_ROOT}.30"
_UUID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_OID, CONSUMER_ROOT)
_REFERENCE_ATTRIBUTES: Final = ("classifiedObject", "registryObject", "sourceObject", "targetObject")


def _entry_uuid(label: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, label)}"


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document the simulated registry describes and the simulated repository holds."""

    key: str
    spec: DocumentSpec
    submission_set: str  # the key of its SubmissionSet

    @property
    def unique_id(self) -> str:
        return self.spec.unique_id

    @property
    def entry_uuid(self) -> str:
        return self.spec.id

    @property
    def content(self) -> bytes:
        return self.spec.content

    @property
    def mime_type(self) -> str:
        return self.spec.mime_type

    @property
    def patient_id(self) -> str:
        return self.spec.patient_id


@dataclass(frozen=True, slots=True)
class ConsumerTestData:
    """Everything the consumer's peers serve, and the registry objects describing it."""

    patient_id: str
    other_patient_id: str
    documents: tuple[StoredDocument, ...]
    #: SubmissionSet key -> its entryUUID, uniqueId and patient id.
    submission_sets: Mapping[str, tuple[str, str, str]]
    #: Every registry object (DocumentEntries, SubmissionSets, Associations), as returned.
    objects: tuple[etree._Element, ...]
    images: ImagingTestData
    #: KOS document key -> the test study it references.
    manifests: Mapping[str, str]

    def document(self, key: str) -> StoredDocument:
        for item in self.documents:
            if item.key == key:
                return item
        raise KeyError(f"no consumer test document {key!r}")

    def by_unique_id(self, unique_id: str) -> StoredDocument | None:
        return next((d for d in self.documents if d.unique_id == unique_id), None)

    def of_patient(self, patient_id: str) -> tuple[StoredDocument, ...]:
        return tuple(d for d in self.documents if d.patient_id == patient_id)

    def instances_of(self, kos_key: str) -> tuple[TestInstance, ...]:
        """The instances the manifest ``kos_key`` references."""
        return self.images.study(self.manifests[kos_key]).instances

    def location_of(self, instance: TestInstance) -> str:
        """The Retrieve Location UID (source repositoryUniqueId) of ``instance``'s series."""
        return _locations(self.images.study(instance.study_key))[instance.series_uid]

    @property
    def referenced_instances(self) -> tuple[TestInstance, ...]:
        return tuple(i for key in self.manifests for i in self.instances_of(key))


def _locations(study: TestStudy) -> dict[str, str]:
    """Series UID -> source id: the first series at the first source, a second series (of a
    multi-modality study) at the second."""
    series = study.series_uids
    if study.key == "mm":
        return {series[0]: SOURCE_IDS[0], series[1]: SOURCE_IDS[1]}
    return {uid: SOURCE_IDS[0] for uid in series}


def kos_manifest(study: TestStudy, *, locations: Mapping[str, str], root: str, number: int = 1) -> bytes:
    """A Key Object Selection Document (RAD TF-3 §4.68.4.1.2.1; DICOM PS3.3 A.35.4) listing
    every instance of ``study`` in the Current Requested Procedure Evidence Sequence, each
    series with its Retrieve AE Title and Retrieve Location UID, as a Part 10 file."""
    first = study.instances[0].dataset()
    ds = Dataset()
    ds.SpecificCharacterSet = first.SpecificCharacterSet
    ds.SOPClassUID = KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = f"{root}.{number}.1"
    ds.StudyDate = first.StudyDate
    ds.StudyTime = first.StudyTime
    ds.ContentDate = "20250103"
    ds.ContentTime = "090000"
    ds.AccessionNumber = first.AccessionNumber
    ds.Modality = "KO"
    ds.Manufacturer = "Conformance Test Data"
    ds.ReferringPhysicianName = ""
    ds.PatientName = first.PatientName
    ds.PatientID = first.PatientID
    ds.PatientBirthDate = first.PatientBirthDate
    ds.PatientSex = first.PatientSex
    ds.StudyInstanceUID = study.study_uid
    # RAD TF-3 §4.68.4.1.2.1: the manifest is in a new series of its own.
    ds.SeriesInstanceUID = f"{ds.SOPInstanceUID}.1"
    ds.StudyID = "1"
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = "113030", "DCM", "Manifest"
    ds.ConceptNameCodeSequence = DicomSequence([title])
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentSequence = DicomSequence([])
    evidence = Dataset()
    evidence.StudyInstanceUID = study.study_uid
    series_items = []
    for series_uid in study.series_uids:
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        location = locations[series_uid]
        item.RetrieveAETitle = RETRIEVE_AE_TITLES[SOURCE_IDS.index(location)] if location in SOURCE_IDS else "IDSSIM"
        item.RetrieveLocationUID = location
        sops = []
        for instance in study.series(series_uid):
            sop = Dataset()
            sop.ReferencedSOPClassUID = instance.sop_class_uid
            sop.ReferencedSOPInstanceUID = instance.sop_uid
            sops.append(sop)
        item.ReferencedSOPSequence = DicomSequence(sops)
        series_items.append(item)
    evidence.ReferencedSeriesSequence = DicomSequence(series_items)
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([evidence])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(f"{root}.0")
    meta.ImplementationVersionName = "XDSCONF_1"
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _registry_objects(submissions: Sequence[Submission]) -> tuple[etree._Element, ...]:
    """The objects of ``submissions`` as a registry returns them: every id an entryUUID (symbolic
    ids replaced, references followed), ``lid`` = id, status Approved, and each SubmissionSet's
    classifying Classification inside its RegistryPackage (ITI TF-3 §4.2.3.3; §4.1.3 lid)."""
    objects: list[etree._Element] = []
    for sub in submissions:
        listing = sub.element().find(f"{{{NS_RIM}}}RegistryObjectList")
        assert listing is not None
        renamed: dict[str, str] = {}
        for element in listing.iter():
            ident = element.get("id")
            if ident is not None and not ident.startswith("urn:uuid:"):
                renamed[ident] = _entry_uuid(f"{sub.ss.unique_id}/{ident}")
        for element in listing.iter():
            for attribute in ("id", *_REFERENCE_ATTRIBUTES):
                value = element.get(attribute)
                if value in renamed:
                    element.set(attribute, renamed[value])
        top = list(listing)
        by_id = {e.get("id"): e for e in top}
        for element in top:
            local = etree.QName(element).localname
            if local == "Classification":
                owner = by_id.get(element.get("classifiedObject"))
                if owner is not None:
                    # Moved inside its RegistryPackage, before the ExternalIdentifiers (ebRIM 3.0
                    # RegistryObjectType: Slot*, Name?, Description?, VersionInfo?, Classification*,
                    # ExternalIdentifier*).
                    first = owner.find(f"{{{NS_RIM}}}ExternalIdentifier")
                    if first is not None:
                        first.addprevious(element)
                    else:
                        owner.append(element)
        for element in top:
            local = etree.QName(element).localname
            if local == "Classification":
                continue
            if local in ("ExtrinsicObject", "RegistryPackage"):
                element.set("lid", element.get("id", ""))
                element.set("status", Status.APPROVED)
            objects.append(copy.deepcopy(element))
    return tuple(objects)


def consumer_test_data(*, assigning_authority: str = DEFAULT_ASSIGNING_AUTHORITY) -> ConsumerTestData:
    """The consumer test data (the same on every call for the same assigning authority)."""
    ids = IdFactory(assigning_authority=assigning_authority, root=CONSUMER_ROOT, token="IDC")
    patient = f"XDSCONS-1^^^&{assigning_authority}&ISO"
    other = f"XDSCONS-2^^^&{assigning_authority}&ISO"
    images = imaging_test_data()
    documents: list[StoredDocument] = []
    submissions: list[Submission] = []
    sets: dict[str, tuple[str, str, str]] = {}
    serial = 0

    def submission(key: str, pid: str) -> Submission:
        spec = SubmissionSetSpec(
            symbol=f"SubmissionSet_{key}",
            unique_id=f"{CONSUMER_ROOT}.3.{len(sets) + 1}",
            source_id=f"{CONSUMER_ROOT}.4",
            patient_id=pid,
            entry_uuid=_entry_uuid(f"ss/{key}"),
            title=f"Consumer test submission {key}",
        )
        sets[key] = (spec.id, spec.unique_id, pid)
        sub = Submission(ids, pid, submission_set=spec)
        submissions.append(sub)
        return sub

    def add(sub: Submission, ss_key: str, key: str, content: bytes, **changes: object) -> None:
        nonlocal serial
        serial += 1
        spec = document_spec(
            ids,
            sub.patient_id,
            symbol=f"Document_{key}",
            unique_id=str(changes.pop("unique_id", f"{CONSUMER_ROOT}.2.{serial}")),
            content=content,
            entry_uuid=_entry_uuid(f"de/{key}"),
            repository_unique_id=REPOSITORY_ID,
            title=f"Consumer test document {key}",
            **changes,
        )
        sub.add_document(spec)
        documents.append(StoredDocument(key, spec, ss_key))

    reports = submission("reports", patient)
    add(reports, "reports", "report", b"Report of the consumer conformance test.\nImpression: normal.\n")
    add(reports, "reports", "letter", b"<?xml version=\"1.0\"?>\n<letter>consumer conformance test</letter>\n",
        mime_type="text/xml")  # fmt: skip
    manifests: dict[str, str] = {}
    for number, study_key in enumerate(("ct", "mm"), start=1):
        study = images.study(study_key)
        data = kos_manifest(study, locations=_locations(study), root=f"{CONSUMER_ROOT}.5", number=number)
        sub = submission(study_key, patient)
        accession = study.instances[0].dataset().AccessionNumber
        add(
            sub, study_key, f"kos-{study_key}", data,
            unique_id=_kos_uid(data), mime_type=MIME_DICOM, format_code=c.FORMAT_KOS, class_code=c.CLASS_IMAGES,
            type_code=c.TYPE_IMAGING,
            reference_ids=(f"{accession}^^^&{ACCESSION_ISSUER}&ISO^{ReferenceIdType.ACCESSION}",
                           f"{study.study_uid}^^^^{ReferenceIdType.STUDY_INSTANCE_UID}"),
        )  # fmt: skip
        manifests[f"kos-{study_key}"] = study_key
        if study_key == "ct":
            add(sub, study_key, "ct-report", b"CT chest report of the consumer conformance test.\n")
    add(submission("other", other), "other", "other", b"A document of another patient.\n")
    objects = _registry_objects(submissions)
    return ConsumerTestData(
        patient_id=patient,
        other_patient_id=other,
        documents=tuple(documents),
        submission_sets=sets,
        objects=objects,
        images=images,
        manifests=manifests,
    )


def _kos_uid(part10: bytes) -> str:
    """RAD TF-3 §4.68.4.1.2.3.2: the manifest's uniqueId is its SOP Instance UID."""
    return str(dcmread(io.BytesIO(part10), stop_before_pixels=True).SOPInstanceUID)

