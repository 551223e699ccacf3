"""Our own ``lcm:SubmitObjectsRequest`` builder, written from ITI TF-3 §4.2 (ebRIM 3.0 encoding).

The conformance runner must not share metadata code with the actors it judges, so it writes its
own. Every object is described by a frozen spec whose defaults form a complete, valid object; a
test changes what it needs with :func:`dataclasses.replace` or drops attributes with ``omit``.

::

    sub = Submission(ids, patient_id)
    doc = sub.add_document(document_spec(ids, patient_id))
    folder = sub.add_folder(folder_spec(ids, patient_id))
    sub.add_to_folder(folder, doc)
    request = sub.element()
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from conformance_tests.data import codes as c
from conformance_tests.data.codes import Coded
from conformance_tests.data.ids import IdFactory
from xds.vocabulary import (
    EXTERNAL_IDENTIFIER_NAMES,
    NS_LCM,
    NS_RIM,
    AssociationType,
    IdScheme,
    Node,
    ObjectType,
    Scheme,
    SlotName,
    SubmissionSetStatus,
)

__all__ = [
    "AssociationSpec",
    "Author",
    "DocumentSpec",
    "FolderSpec",
    "Submission",
    "SubmissionSetSpec",
    "document_spec",
    "folder_spec",
]

# A repository OID for ITI-42 test data (the repository is not contacted by registry tests).
REPOSITORY_UNIQUE_ID: Final = "1.3.6.1.4.1.21367.13.40.290"
SOURCE_PATIENT_AUTHORITY: Final = "1.3.6.1.4.1.21367.2009.1.2.300"

_NSMAP: Final = {"lcm": NS_LCM, "rim": NS_RIM}


def _rim(local: str) -> str:
    return f"{{{NS_RIM}}}{local}"


# -- specs ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Author:
    """An author (ITI TF-3 §4.2.3.1.4): person (XCN), institutions (XON), roles, specialties."""

    person: str = "^Smitty^Gerald^^^"
    institutions: tuple[str, ...] = ("Conformance Clinic^^^^^^^^^1.3.6.1.4.1.21367.2017.2.6.2",)
    roles: tuple[str, ...] = ("Attending",)
    specialties: tuple[str, ...] = ("Radiology",)


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentSpec:
    """A DocumentEntry (ITI TF-3 §4.2.3.2; Table 4.3.1-3 for ITI-42 optionality).

    ``omit`` names attributes to leave out (for negative tests): any of ``classCode``,
    ``confidentialityCode``, ``creationTime``, ``formatCode``, ``healthcareFacilityTypeCode``,
    ``languageCode``, ``practiceSettingCode``, ``sourcePatientId``, ``typeCode``, ``hash``,
    ``size``, ``repositoryUniqueId``, ``patientId``, ``uniqueId``, ``mimeType``.
    """

    symbol: str
    unique_id: str
    patient_id: str
    entry_uuid: str | None = None
    mime_type: str = "text/plain"
    object_type: str = ObjectType.STABLE_DOCUMENT_ENTRY
    class_code: Coded = c.CLASS_REPORTS
    confidentiality: tuple[Coded, ...] = (c.CONF_NORMAL,)
    format_code: Coded = c.FORMAT_XDS_MS
    facility_type: Coded = c.HCFT_HOSPITAL
    practice_setting: Coded = c.PRACTICE_GENERAL
    type_code: Coded = c.TYPE_CONSULTATION
    event_codes: tuple[Coded, ...] = ()
    creation_time: str = "20240115103000"
    service_start: str | None = "20240115100000"
    service_stop: str | None = "20240115110000"
    language: str = "en-us"
    source_patient_id: str = f"SRC1^^^&{SOURCE_PATIENT_AUTHORITY}&ISO"
    source_patient_info: tuple[str, ...] = ("PID-5|Doe^Jane^^^", "PID-7|19700101", "PID-8|F")
    authors: tuple[Author, ...] = (Author(),)
    content: bytes = b"conformance test document\n"
    hash: str | None = None
    size: int | None = None
    repository_unique_id: str = REPOSITORY_UNIQUE_ID
    reference_ids: tuple[str, ...] = ()
    title: str = "Conformance test document"
    extra_slots: tuple[tuple[str, tuple[str, ...]], ...] = ()
    omit: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        """The id the submission uses: the pre-assigned entryUUID or the symbolic id."""
        return self.entry_uuid or self.symbol

    @property
    def sha1(self) -> str:
        """The hash slot value: given, or the SHA-1 of the content (ITI TF-3 §4.2.3.2, hash)."""
        return self.hash if self.hash is not None else hashlib.sha1(self.content).hexdigest()

    @property
    def length(self) -> int:
        return self.size if self.size is not None else len(self.content)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmissionSetSpec:
    """A SubmissionSet (ITI TF-3 §4.2.3.3)."""

    symbol: str = "SubmissionSet01"
    unique_id: str
    source_id: str
    patient_id: str
    entry_uuid: str | None = None
    submission_time: str = "20240115120000"
    content_type: Coded = c.CONTENT_HOSPITAL
    authors: tuple[Author, ...] = (Author(),)
    title: str = "Conformance test submission"

    @property
    def id(self) -> str:
        return self.entry_uuid or self.symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderSpec:
    """A Folder (ITI TF-3 §4.2.3.4); ``last_update_time`` is sent only to test that the
    registry ignores it (the registry maintains it)."""

    symbol: str = "Folder01"
    unique_id: str
    patient_id: str
    entry_uuid: str | None = None
    codes: tuple[Coded, ...] = (c.FOLDER_REFERRALS,)
    title: str = "Conformance test folder"
    last_update_time: str | None = None

    @property
    def id(self) -> str:
        return self.entry_uuid or self.symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociationSpec:
    """An Association (ITI TF-3 §4.2.2)."""

    symbol: str
    type: str
    source: str
    target: str
    submission_set_status: str | None = None
    documentation: Coded | None = None


def document_spec(ids: IdFactory, patient_id: str, *, symbol: str = "Document01", **changes: object) -> DocumentSpec:
    """A complete DocumentEntry with a fresh uniqueId and content unique to it."""
    unique_id = str(changes.pop("unique_id", None) or ids.oid())
    content = changes.pop("content", None) or f"conformance test document {unique_id}\n".encode()
    return DocumentSpec(symbol=symbol, unique_id=unique_id, patient_id=patient_id, content=content, **changes)  # type: ignore[arg-type]


def folder_spec(ids: IdFactory, patient_id: str, *, symbol: str = "Folder01", **changes: object) -> FolderSpec:
    """A complete Folder with a fresh uniqueId."""
    unique_id = str(changes.pop("unique_id", None) or ids.oid())
    return FolderSpec(symbol=symbol, unique_id=unique_id, patient_id=patient_id, **changes)  # type: ignore[arg-type]


# -- encoding helpers ----------------------------------------------------------------------------
def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> None:
    slot = etree.SubElement(parent, _rim("Slot"), name=name)
    value_list = etree.SubElement(slot, _rim("ValueList"))
    for value in values:
        etree.SubElement(value_list, _rim("Value")).text = value


def _name(parent: etree._Element, text: str) -> None:
    name = etree.SubElement(parent, _rim("Name"))
    etree.SubElement(name, _rim("LocalizedString"), value=text)


def _coded(parent: etree._Element, scheme: str, owner: str, code: Coded, symbol: str) -> None:
    # ITI TF-3 §4.2.3.1.2: a coded value is a Classification whose nodeRepresentation is the code,
    # with one codingScheme Slot value and the display name as its Name.
    element = etree.SubElement(
        parent,
        _rim("Classification"),
        id=symbol,
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation=code.code,
    )
    _slot(element, SlotName.CODING_SCHEME, [code.scheme])
    _name(element, code.display)


def _author(parent: etree._Element, scheme: str, owner: str, author: Author, symbol: str) -> None:
    # ITI TF-3 §4.2.3.1.4: an author is a Classification with an empty nodeRepresentation whose
    # Slots carry the author's attributes.
    element = etree.SubElement(
        parent,
        _rim("Classification"),
        id=symbol,
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation="",
    )
    if author.person:
        _slot(element, SlotName.AUTHOR_PERSON, [author.person])
    if author.institutions:
        _slot(element, SlotName.AUTHOR_INSTITUTION, author.institutions)
    if author.roles:
        _slot(element, SlotName.AUTHOR_ROLE, author.roles)
    if author.specialties:
        _slot(element, SlotName.AUTHOR_SPECIALTY, author.specialties)


def _external_id(parent: etree._Element, scheme: str, owner: str, value: str, symbol: str) -> None:
    # ITI TF-3 §4.2.3.1.5: ExternalIdentifier with registryObject, identificationScheme, value
    # and the attribute name as its Name.
    element = etree.SubElement(
        parent,
        _rim("ExternalIdentifier"),
        id=symbol,
        registryObject=owner,
        identificationScheme=scheme,
        value=value,
    )
    _name(element, EXTERNAL_IDENTIFIER_NAMES[scheme])


def _document(parent: etree._Element, spec: DocumentSpec) -> None:
    owner = spec.id
    omit = spec.omit
    attrs = {"id": owner, "objectType": spec.object_type}
    if "mimeType" not in omit:
        attrs["mimeType"] = spec.mime_type
    element = etree.SubElement(parent, _rim("ExtrinsicObject"), attrs)
    # Slots first: ebRIM 3.0 RegistryObjectType is Slot*, Name?, Description?, VersionInfo?,
    # Classification*, ExternalIdentifier*.
    slots: list[tuple[str, tuple[str, ...]]] = [
        (SlotName.CREATION_TIME, (spec.creation_time,)),
        (SlotName.HASH, (spec.sha1,)),
        (SlotName.LANGUAGE_CODE, (spec.language,)),
        (SlotName.REPOSITORY_UNIQUE_ID, (spec.repository_unique_id,)),
        (SlotName.SIZE, (str(spec.length),)),
        (SlotName.SOURCE_PATIENT_ID, (spec.source_patient_id,)),
    ]
    for name, values in slots:
        if name not in omit:
            _slot(element, name, values)
    if spec.service_start is not None:
        _slot(element, SlotName.SERVICE_START_TIME, [spec.service_start])
    if spec.service_stop is not None:
        _slot(element, SlotName.SERVICE_STOP_TIME, [spec.service_stop])
    if spec.source_patient_info:
        _slot(element, SlotName.SOURCE_PATIENT_INFO, spec.source_patient_info)
    if spec.reference_ids:
        _slot(element, SlotName.REFERENCE_ID_LIST, spec.reference_ids)
    for name, values in spec.extra_slots:
        _slot(element, name, values)
    _name(element, spec.title)
    serial = 0

    def next_symbol() -> str:
        nonlocal serial
        serial += 1
        return f"{spec.symbol}-c{serial}"

    for author in spec.authors:
        _author(element, Scheme.DE_AUTHOR, owner, author, next_symbol())
    coded: list[tuple[str, str, tuple[Coded, ...]]] = [
        ("classCode", Scheme.DE_CLASS_CODE, (spec.class_code,)),
        ("confidentialityCode", Scheme.DE_CONFIDENTIALITY_CODE, spec.confidentiality),
        ("eventCodeList", Scheme.DE_EVENT_CODE, spec.event_codes),
        ("formatCode", Scheme.DE_FORMAT_CODE, (spec.format_code,)),
        ("healthcareFacilityTypeCode", Scheme.DE_HEALTHCARE_FACILITY_TYPE_CODE, (spec.facility_type,)),
        ("practiceSettingCode", Scheme.DE_PRACTICE_SETTING_CODE, (spec.practice_setting,)),
        ("typeCode", Scheme.DE_TYPE_CODE, (spec.type_code,)),
    ]
    for attribute, scheme, codes in coded:
        if attribute in omit:
            continue
        for code in codes:
            _coded(element, scheme, owner, code, next_symbol())
    if "patientId" not in omit:
        _external_id(element, IdScheme.DE_PATIENT_ID, owner, spec.patient_id, next_symbol())
    if "uniqueId" not in omit:
        _external_id(element, IdScheme.DE_UNIQUE_ID, owner, spec.unique_id, next_symbol())


def _submission_set(parent: etree._Element, spec: SubmissionSetSpec) -> None:
    owner = spec.id
    element = etree.SubElement(parent, _rim("RegistryPackage"), id=owner)
    _slot(element, SlotName.SUBMISSION_TIME, [spec.submission_time])
    _name(element, spec.title)
    for n, author in enumerate(spec.authors, start=1):
        _author(element, Scheme.SS_AUTHOR, owner, author, f"{spec.symbol}-a{n}")
    _coded(element, Scheme.SS_CONTENT_TYPE_CODE, owner, spec.content_type, f"{spec.symbol}-ct")
    _external_id(element, IdScheme.SS_UNIQUE_ID, owner, spec.unique_id, f"{spec.symbol}-uid")
    _external_id(element, IdScheme.SS_SOURCE_ID, owner, spec.source_id, f"{spec.symbol}-src")
    _external_id(element, IdScheme.SS_PATIENT_ID, owner, spec.patient_id, f"{spec.symbol}-pid")
    # ITI TF-3 §4.2.3.3: a RegistryPackage is a SubmissionSet by this Classification.
    etree.SubElement(
        parent, _rim("Classification"), id=f"{spec.symbol}-node", classifiedObject=owner,
        classificationNode=Node.SUBMISSION_SET,
    )


def _folder(parent: etree._Element, spec: FolderSpec) -> None:
    owner = spec.id
    element = etree.SubElement(parent, _rim("RegistryPackage"), id=owner)
    if spec.last_update_time is not None:
        _slot(element, SlotName.LAST_UPDATE_TIME, [spec.last_update_time])
    _name(element, spec.title)
    for n, code in enumerate(spec.codes, start=1):
        _coded(element, Scheme.FD_CODE_LIST, owner, code, f"{spec.symbol}-code{n}")
    _external_id(element, IdScheme.FD_UNIQUE_ID, owner, spec.unique_id, f"{spec.symbol}-uid")
    _external_id(element, IdScheme.FD_PATIENT_ID, owner, spec.patient_id, f"{spec.symbol}-pid")
    # ITI TF-3 §4.2.3.4: a RegistryPackage is a Folder by this Classification.
    etree.SubElement(
        parent, _rim("Classification"), id=f"{spec.symbol}-node", classifiedObject=owner,
        classificationNode=Node.FOLDER,
    )


def _association(parent: etree._Element, spec: AssociationSpec) -> None:
    element = etree.SubElement(
        parent,
        _rim("Association"),
        id=spec.symbol,
        associationType=spec.type,
        sourceObject=spec.source,
        targetObject=spec.target,
    )
    if spec.submission_set_status is not None:
        # ITI TF-3 §4.2.2.1.1: SS-DE HasMember carries SubmissionSetStatus Original/Reference.
        _slot(element, SlotName.SUBMISSION_SET_STATUS, [spec.submission_set_status])
    if spec.documentation is not None:
        # ITI TF-3 §4.2.2.2 (relationship associations): an optional coded Classification,
        # the associationDocumentation, documents why the relationship was made.
        _coded(element, Scheme.ASSOCIATION_DOCUMENTATION, spec.symbol, spec.documentation, f"{spec.symbol}-doc")


# -- the submission ------------------------------------------------------------------------------
@dataclass(slots=True)
class Submission:
    """One ITI-42 submission being put together: a SubmissionSet and what it carries."""

    ids: IdFactory
    patient_id: str
    submission_set: SubmissionSetSpec | None = None
    documents: list[DocumentSpec] = field(default_factory=list)
    folders: list[FolderSpec] = field(default_factory=list)
    associations: list[AssociationSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.submission_set is None:
            self.submission_set = SubmissionSetSpec(
                unique_id=self.ids.oid(), source_id=self.ids.oid(), patient_id=self.patient_id
            )

    @property
    def ss(self) -> SubmissionSetSpec:
        assert self.submission_set is not None
        return self.submission_set

    def _next_association(self) -> str:
        return f"Association{len(self.associations) + 1:02d}"

    def associate(
        self,
        kind: str,
        source: str,
        target: str,
        *,
        submission_set_status: str | None = None,
        documentation: Coded | None = None,
    ) -> str:
        """Add an Association; return its id."""
        symbol = self._next_association()
        self.associations.append(
            AssociationSpec(
                symbol=symbol,
                type=kind,
                source=source,
                target=target,
                submission_set_status=submission_set_status,
                documentation=documentation,
            )
        )
        return symbol

    def add_document(self, spec: DocumentSpec, *, documentation: Coded | None = None) -> str:
        """Add a DocumentEntry and its SS HasMember (SubmissionSetStatus Original); return its id."""
        self.documents.append(spec)
        self.associate(
            AssociationType.HAS_MEMBER,
            self.ss.id,
            spec.id,
            submission_set_status=SubmissionSetStatus.ORIGINAL,
            documentation=documentation,
        )
        return spec.id

    def add_folder(self, spec: FolderSpec) -> str:
        """Add a Folder and its SS HasMember (no SubmissionSetStatus, NIST issue #593)."""
        self.folders.append(spec)
        self.associate(AssociationType.HAS_MEMBER, self.ss.id, spec.id)
        return spec.id

    def add_to_folder(self, folder: str, document: str) -> str:
        """Put a DocumentEntry into a Folder: FD-DE HasMember plus SS HasMember of that
        association (ITI TF-3 §4.2.2.1); either end may be an existing registry object."""
        link = self.associate(AssociationType.HAS_MEMBER, folder, document)
        self.associate(AssociationType.HAS_MEMBER, self.ss.id, link)
        return link

    def add_reference(self, document: str) -> str:
        """Reference an existing DocumentEntry from this SubmissionSet (SubmissionSetStatus Reference)."""
        return self.associate(
            AssociationType.HAS_MEMBER, self.ss.id, document, submission_set_status=SubmissionSetStatus.REFERENCE
        )

    def relate(self, kind: str, source: str, target: str, *, documentation: Coded | None = None) -> str:
        """A relationship Association (RPLC, APND, XFRM, XFRM_RPLC, signs) from a new DE."""
        return self.associate(kind, source, target, documentation=documentation)

    def element(self) -> etree._Element:
        """The ``lcm:SubmitObjectsRequest`` (ITI TF-2b §3.42.4.1.2)."""
        root = etree.Element(f"{{{NS_LCM}}}SubmitObjectsRequest", nsmap=_NSMAP)
        objects = etree.SubElement(root, _rim("RegistryObjectList"))
        for document in self.documents:
            _document(objects, document)
        _submission_set(objects, self.ss)
        for folder in self.folders:
            _folder(objects, folder)
        for association in self.associations:
            _association(objects, association)
        return root
