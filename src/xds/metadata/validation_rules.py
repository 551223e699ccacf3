"""Per-object XDS metadata rules: required attributes, cardinalities and formats of DocumentEntry,
SubmissionSet, Folder and Association (ITI TF-3 Tables 4.2.3.2-1, 4.2.3.3-1, 4.2.3.4-1), slot
names, and codes against the affinity domain.

Each rule appends to a :class:`Findings` collector and never stops at the first problem.
:mod:`xds.metadata.validation` runs these together with the submission-structure rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, runtime_checkable

from xds.errors import ErrorCode, RegistryError
from xds.metadata import hl7types as hl7
from xds.metadata.ebrim_names import CODE_ATTRIBUTE_NAMES, KNOWN_IHE_SLOT_NAMES
from xds.metadata.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    RegistryObject,
    Slot,
    SubmissionSet,
)
from xds.vocabulary import DocumentAvailability, ObjectType

__all__ = [
    "CodeValidator",
    "Findings",
    "check_association_codes",
    "check_codes",
    "check_document_entry",
    "check_folder",
    "check_submission_set",
    "describe",
    "location_of",
]

Check = Callable[[str], "str | None"]

# RFC 2045 §5.1: type "/" subtype, then optional parameters.
_MIME_TYPE: Final = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\s*;.*)?")
_AVAILABILITY: Final = (DocumentAvailability.ONLINE, DocumentAvailability.OFFLINE)


@runtime_checkable
class CodeValidator(Protocol):
    """An affinity domain's code sets (``codes.xml``), as validation asks about them.

    ``attribute`` is a ``CodeType/@name`` of codes.xml (the keys of
    :data:`xds.vocabulary.CODE_SCHEMES`, plus ``mimeType``). Comparison is exact on code and
    codingScheme.
    """

    def contains(self, attribute: str, code: Code) -> bool:
        """True when ``code`` (code and codingScheme) is in the code set of ``attribute``."""
        ...

    def knows(self, attribute: str) -> bool:
        """True when the affinity domain configures a code set for ``attribute``."""
        ...

    def mime_types(self) -> Collection[str]:
        """The allowed mimeTypes; empty when the affinity domain does not restrict them."""
        ...


@dataclass(slots=True)
class Findings:
    """The collector every rule appends to; ``default_code`` is the actor's metadata error."""

    default_code: ErrorCode
    items: list[RegistryError] = field(default_factory=list)

    def error(self, context: str, location: str, *, code: ErrorCode | None = None) -> None:
        self.items.append(RegistryError(code or self.default_code, context, location))


def describe(obj: RegistryObject) -> str:
    """``DocumentEntry Document01``: how a codeContext names an object."""
    return f"{type(obj).__name__} {obj.id or '(no id)'}"


def location_of(obj: RegistryObject) -> str:
    """The RegistryError location: the uniqueId when known, else the entryUUID/symbolic id."""
    unique_id = getattr(obj, "unique_id", None)
    return unique_id or obj.id


# -- small helpers --------------------------------------------------------------------------------


def _required(f: Findings, obj: RegistryObject, name: str, value: str | None, check: Check | None = None) -> None:
    """A required single-valued attribute: present, and well formed when ``check`` is given."""
    if value is None:
        f.error(f"{describe(obj)}: required attribute {name} is missing", location_of(obj))
        return
    _format(f, obj, name, value, check)


def _format(f: Findings, obj: RegistryObject, name: str, value: str | None, check: Check | None) -> None:
    """An attribute, when present, must pass ``check``."""
    if value is None or check is None:
        return
    problem = check(value)
    if problem:
        f.error(f"{describe(obj)}: {name} '{value}' {problem}", location_of(obj))


def _each(f: Findings, obj: RegistryObject, name: str, values: Iterable[str], check: Check) -> None:
    for value in values:
        _format(f, obj, name, value, check)


def _required_code(f: Findings, obj: RegistryObject, name: str, code: Code | None) -> None:
    if code is None:
        f.error(f"{describe(obj)}: required attribute {name} is missing", location_of(obj))
        return
    _code_form(f, obj, name, code)


def _required_codes(f: Findings, obj: RegistryObject, name: str, codes: Sequence[Code]) -> None:
    if not codes:
        f.error(f"{describe(obj)}: required attribute {name} is missing (at least one code)", location_of(obj))
    for code in codes:
        _code_form(f, obj, name, code)


def _code_form(f: Findings, obj: RegistryObject, name: str, code: Code) -> None:
    """ITI TF-3 §4.2.3.1.2: a coded value has a code (nodeRepresentation) and exactly one
    codingScheme."""
    if not code.code:
        f.error(f"{describe(obj)}: {name} classification has an empty nodeRepresentation", location_of(obj))
    if not code.scheme:
        f.error(f"{describe(obj)}: {name} code '{code.code}' has no codingScheme", location_of(obj))


def _id_form(f: Findings, obj: RegistryObject) -> None:
    """ebRIM 3.0 Identifiable/@id is required; a ``urn:uuid:`` id must be a UUID (ITI TF-3 §4.2.3.1.7)."""
    if not obj.id:
        f.error(f"{describe(obj)}: the object has no id (entryUUID)", location_of(obj))
    elif obj.id.startswith("urn:uuid:"):
        problem = hl7.check_uuid_urn(obj.id)
        if problem:
            f.error(f"{describe(obj)}: id '{obj.id}' {problem}", location_of(obj))


def _slot_names(f: Findings, obj: RegistryObject, slots: Sequence[Slot], where: str = "") -> None:
    """ITI TF-3 §4.1.14: a slot the TF does not define must be extra metadata, named with a
    ``urn:`` that is not ``urn:ihe:`` (NIST rejects other names with XDSRegistryMetadataError)."""
    for s in slots:
        if not s.name.startswith("urn:"):
            f.error(
                f"{describe(obj)}{where}: slot name '{s.name}' is not defined by XDS and is not a urn: (extra metadata)",
                location_of(obj),
            )
        elif s.name.startswith("urn:ihe:") and s.name not in KNOWN_IHE_SLOT_NAMES:
            f.error(
                f"{describe(obj)}{where}: slot name '{s.name}' uses the reserved urn:ihe: prefix but is not an IHE slot",
                location_of(obj),
            )


def _authors(f: Findings, obj: RegistryObject, authors: Sequence[Author]) -> None:
    """ITI TF-3 §4.2.3.1.4: each author has at least one sub-attribute; authorPerson XCN,
    authorInstitution XON, authorTelecommunication XTN."""
    for author in authors:
        if not (author.person or author.institutions or author.roles or author.specialties or author.telecommunications):
            f.error(f"{describe(obj)}: an author has none of authorPerson, authorInstitution, authorRole, "
                    "authorSpecialty, authorTelecommunication", location_of(obj))
        _format(f, obj, "authorPerson", author.person, hl7.check_xcn)
        _each(f, obj, "authorInstitution", author.institutions, hl7.check_xon)
        _each(f, obj, "authorTelecommunication", author.telecommunications, hl7.check_xtn)
        _slot_names(f, obj, author.extra_slots, " (author)")


def _limited(f: Findings, obj: RegistryObject, limited: bool) -> None:
    # ITI TF-3 §4.2.3.2 (limitedMetadata): XDR and XDM only; not valid in an XDS submission.
    if limited:
        f.error(f"{describe(obj)}: limitedMetadata classification is not allowed in XDS", location_of(obj))


# -- objects ----------------------------------------------------------------------------------------


def check_document_entry(
    f: Findings, de: DocumentEntry, *, hash_and_size_required: bool, repository_unique_id_required: bool
) -> None:
    """ITI TF-3 Table 4.2.3.2-1 (and NIST 11998a): required attributes, cardinality, formats."""
    _id_form(f, de)
    where = location_of(de)
    # objectType: Stable or On-Demand (ITI TF-3 §4.2.5.2).
    if not de.object_type:
        f.error(f"{describe(de)}: required attribute objectType is missing", where)
    elif de.object_type not in ObjectType.DOCUMENT_ENTRY_TYPES:
        f.error(
            f"{describe(de)}: objectType '{de.object_type}' is neither the Stable nor the On-Demand DocumentEntry type",
            where,
        )
    # mimeType: required, RFC 2045 type/subtype.
    if not de.mime_type:
        f.error(f"{describe(de)}: required attribute mimeType is missing", where)
    elif _MIME_TYPE.fullmatch(de.mime_type) is None:
        f.error(f"{describe(de)}: mimeType '{de.mime_type}' is not a MIME type", where)
    _required(f, de, "patientId", de.patient_id, hl7.check_patient_id)
    _required(f, de, "uniqueId", de.unique_id, hl7.check_document_unique_id)
    # NIST 11998a: each of the nine is required on its own.
    _required_code(f, de, "classCode", de.class_code)
    _required_codes(f, de, "confidentialityCode", de.confidentiality_codes)
    _required(f, de, "creationTime", de.creation_time, hl7.check_dtm)
    _required_code(f, de, "formatCode", de.format_code)
    _required_code(f, de, "healthcareFacilityTypeCode", de.healthcare_facility_type_code)
    _required(f, de, "languageCode", de.language_code, hl7.check_language_code)
    _required_code(f, de, "practiceSettingCode", de.practice_setting_code)
    _required(f, de, "sourcePatientId", de.source_patient_id, hl7.check_cx)
    _required_code(f, de, "typeCode", de.type_code)
    for code in de.event_codes:
        _code_form(f, de, "eventCodeList", code)
    # hash, size, repositoryUniqueId: required at the registry (ITI-42), optional from a
    # Document Source in ITI-41 (ITI TF-2b §3.41.4.1.3.1; the repository adds them).
    if hash_and_size_required:
        _required(f, de, "hash", de.hash, hl7.check_hash)
        _required(f, de, "size", de.size, hl7.check_size)
    else:
        _format(f, de, "hash", de.hash, hl7.check_hash)
        _format(f, de, "size", de.size, hl7.check_size)
    if repository_unique_id_required:
        _required(f, de, "repositoryUniqueId", de.repository_unique_id, hl7.check_oid)
    else:
        _format(f, de, "repositoryUniqueId", de.repository_unique_id, hl7.check_oid)
    _format(f, de, "serviceStartTime", de.service_start_time, hl7.check_dtm)
    _format(f, de, "serviceStopTime", de.service_stop_time, hl7.check_dtm)
    _format(f, de, "legalAuthenticator", de.legal_authenticator, hl7.check_xcn)
    _each(f, de, "sourcePatientInfo", de.source_patient_info, hl7.check_source_patient_info)
    _each(f, de, "referenceIdList", de.reference_ids, hl7.check_cxi)
    if de.document_availability is not None and de.document_availability not in _AVAILABILITY:
        f.error(f"{describe(de)}: documentAvailability '{de.document_availability}' is neither Online nor Offline", where)
    _authors(f, de, de.authors)
    _limited(f, de, de.limited_metadata)
    _slot_names(f, de, de.extra_slots)


def check_submission_set(f: Findings, ss: SubmissionSet) -> None:
    """ITI TF-3 Table 4.2.3.3-1: uniqueId, sourceId, patientId, submissionTime and (NIST, XDS)
    contentTypeCode are required."""
    _id_form(f, ss)
    _required(f, ss, "uniqueId", ss.unique_id, hl7.check_unique_id)
    _required(f, ss, "sourceId", ss.source_id, hl7.check_oid)
    _required(f, ss, "patientId", ss.patient_id, hl7.check_patient_id)
    _required(f, ss, "submissionTime", ss.submission_time, hl7.check_dtm)
    _required_code(f, ss, "contentTypeCode", ss.content_type_code)
    _each(f, ss, "intendedRecipient", ss.intended_recipients, hl7.check_intended_recipient)
    _authors(f, ss, ss.authors)
    _limited(f, ss, ss.limited_metadata)
    _slot_names(f, ss, ss.extra_slots)


def check_folder(f: Findings, fd: Folder) -> None:
    """ITI TF-3 Table 4.2.3.4-1: uniqueId, patientId and codeList (1..*) are required;
    lastUpdateTime is the registry's and not checked."""
    _id_form(f, fd)
    _required(f, fd, "uniqueId", fd.unique_id, hl7.check_unique_id)
    _required(f, fd, "patientId", fd.patient_id, hl7.check_patient_id)
    _required_codes(f, fd, "codeList", fd.codes)
    _limited(f, fd, fd.limited_metadata)
    _slot_names(f, fd, fd.extra_slots)


def check_association_codes(f: Findings, a: Association) -> None:
    """Association id form, documentation code form and slot names (ITI TF-3 §4.2.2)."""
    _id_form(f, a)
    for code in a.documentation:
        _code_form(f, a, "associationDocumentation", code)
    _slot_names(f, a, a.extra_slots)


# -- the affinity domain ------------------------------------------------------------------------


def _coded(obj: RegistryObject) -> Iterable[tuple[str, Code]]:
    """(codes.xml CodeType name, code) for every coded attribute of ``obj``."""
    for attribute, name in CODE_ATTRIBUTE_NAMES.items():
        value = getattr(obj, attribute, None)
        if value is None:
            continue
        if isinstance(value, Code):
            yield name, value
        else:
            for code in value:
                yield name, code


def check_codes(f: Findings, objects: Iterable[RegistryObject], codes: CodeValidator) -> None:
    """XDS Affinity Domain vocabularies (ITI TF-1 §10.2.2; NIST codes.xml): every code, and the
    mimeType when the domain lists mime types, must be configured (xds-notes §4 item 3)."""
    mime_types = codes.mime_types()
    for obj in objects:
        for name, code in _coded(obj):
            if not code.code or not code.scheme or not codes.knows(name):
                continue  # malformed codes are reported by the form rules
            if not codes.contains(name, code):
                f.error(
                    f"{describe(obj)}: {name} code '{code.code}' (codingScheme '{code.scheme}') "
                    "not found in the Affinity Domain configuration",
                    location_of(obj),
                )
        if mime_types and isinstance(obj, DocumentEntry) and obj.mime_type and obj.mime_type not in mime_types:
            f.error(
                f"{describe(obj)}: mimeType '{obj.mime_type}' not found in the Affinity Domain configuration",
                location_of(obj),
            )
