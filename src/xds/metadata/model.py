"""The XDS metadata domain model (ITI TF-3 §4.1, §4.2.3): DocumentEntry, SubmissionSet, Folder,
Association and their value types.

The model is a lenient container (as in IPF): attributes hold their wire text (HL7 v2 data types,
DTM, OIDs) so nothing is lost between the wire and the model, and validity is checked by
:mod:`xds.metadata.validation`, which also sees the wire tree for cardinality rules a typed model
cannot represent. Slots the model does not name are kept in ``extra_slots`` in wire order, so
extra (``urn:``) metadata survives a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xds.vocabulary import AssociationType, ObjectType


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: ``nodeRepresentation``, the ``codingScheme`` slot and the display name
    (ITI TF-3 §4.2.3.1.2)."""

    code: str
    scheme: str
    display: str = ""

    @property
    def query_form(self) -> str:
        """The ``CODE^^SCHEME`` form used by stored-query parameters (ITI TF-2a §3.18.4.1.2.3.4)."""
        return f"{self.code}^^{self.scheme}"


@dataclass(frozen=True, slots=True)
class Slot:
    """A rim:Slot kept verbatim (name, values in order, optional slotType)."""

    name: str
    values: tuple[str, ...]
    slot_type: str | None = None


@dataclass(slots=True, kw_only=True)
class Author:
    """An author classification (ITI TF-3 §4.2.3.1.4): person (XCN), institutions (XON), roles,
    specialties and telecommunications (XTN)."""

    person: str | None = None
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecommunications: list[str] = field(default_factory=list)
    extra_slots: list[Slot] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RegistryObject:
    """What every XDS object shares: entryUUID (``id``; symbolic in a submission), logical id and
    version (set by the registry), homeCommunityId, availabilityStatus, title, comments and the
    slots the model does not name."""

    id: str
    lid: str | None = None
    version: str | None = None
    home: str | None = None
    status: str | None = None
    title: str | None = None
    comments: str | None = None
    extra_slots: list[Slot] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class DocumentEntry(RegistryObject):
    """An XDSDocumentEntry, a rim:ExtrinsicObject (ITI TF-3 §4.2.3.2)."""

    object_type: str = ObjectType.STABLE_DOCUMENT_ENTRY
    mime_type: str = ""
    unique_id: str | None = None
    patient_id: str | None = None
    class_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    creation_time: str | None = None
    hash: str | None = None
    size: str | None = None
    repository_unique_id: str | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    uri: str | None = None
    document_availability: str | None = None
    reference_ids: list[str] = field(default_factory=list)
    # ITI TF-3 §4.2.3.2 (limitedMetadata): XDR/XDM only; an XDS registry rejects it.
    limited_metadata: bool = False

    @property
    def size_bytes(self) -> int | None:
        """``size`` as an integer, or None when absent or not a decimal integer."""
        if self.size is None or not self.size.isdigit():
            return None
        return int(self.size)


@dataclass(slots=True, kw_only=True)
class SubmissionSet(RegistryObject):
    """An XDSSubmissionSet, a classified rim:RegistryPackage (ITI TF-3 §4.2.3.3)."""

    unique_id: str | None = None
    source_id: str | None = None
    patient_id: str | None = None
    submission_time: str | None = None
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    intended_recipients: list[str] = field(default_factory=list)
    # ITI TF-3 §4.2.3.3 (limitedMetadata): XDR/XDM only; an XDS registry rejects it.
    limited_metadata: bool = False


@dataclass(slots=True, kw_only=True)
class Folder(RegistryObject):
    """An XDSFolder, a classified rim:RegistryPackage (ITI TF-3 §4.2.3.4). ``last_update_time`` is
    maintained by the registry; a submitted value is ignored."""

    unique_id: str | None = None
    patient_id: str | None = None
    codes: list[Code] = field(default_factory=list)
    last_update_time: str | None = None
    # ITI TF-3 §4.2.3.4 (limitedMetadata): XDR/XDM only; an XDS registry rejects it.
    limited_metadata: bool = False


@dataclass(slots=True, kw_only=True)
class Association(RegistryObject):
    """A rim:Association (ITI TF-3 §4.2.2): HasMember or a document relationship."""

    association_type: str = AssociationType.HAS_MEMBER
    source: str = ""
    target: str = ""
    submission_set_status: str | None = None
    documentation: list[Code] = field(default_factory=list)

    @property
    def is_relationship(self) -> bool:
        return self.association_type in AssociationType.RELATIONSHIPS


@dataclass(slots=True, kw_only=True)
class Submission:
    """The objects of one SubmitObjectsRequest or RegistryObjectList, in wire order per kind.

    ``object_refs`` holds rim:ObjectRef ids (references to existing registry objects).
    """

    submission_sets: list[SubmissionSet] = field(default_factory=list)
    document_entries: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)

    def all_objects(self) -> list[RegistryObject]:
        """Every object, submission sets first, then entries, folders and associations."""
        return [
            *self.submission_sets,
            *self.document_entries,
            *self.folders,
            *self.associations,
        ]
