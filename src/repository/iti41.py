"""ITI-41 Provide and Register Document Set-b (and RAD-68) at the Document Repository, sans-I/O.

:func:`analyze` takes the request body and a way to get each ``xds:Document``'s bytes (an
:class:`~xds.soap.attachments.Attachment`, already hashed while it was spooled) and runs the
repository's checks (ITI TF-2b §3.41.4.1.3; xds-notes §5), collecting every finding:

* each ``xds:Document`` matches a DocumentEntry (``rim:ExtrinsicObject`` with the same id) and
  each DocumentEntry a Document: **XDSMissingDocument**, **XDSMissingDocumentMetadata**;
* no DocumentEntry uniqueId twice: **XDSRepositoryDuplicateUniqueIdInMessage**;
* a submitted ``size`` or ``hash`` equals the length and SHA-1 of the bytes received (hash
  compared case-insensitively): **XDSRepositoryMetadataError**;
* the metadata rules of the core validator with the repository's profile (default code
  XDSRepositoryMetadataError).

:func:`augment` then writes ``hash``, ``size`` and ``repositoryUniqueId`` into each
ExtrinsicObject of the SubmitObjectsRequest *tree* (replacing a submitted slot's values, or
adding the slot after the existing ones, where ebRIM wants slots), so everything else the source
sent reaches the registry untouched.

Public API::

    DocumentPart(entry_id, unique_id, mime_type, attachment)
    Analysis(errors, documents, submit_objects_request)     # .ok
    analyze(body, *, binary, validate=True) -> Analysis
    augment(submit_objects_request, documents, *, repository_id) -> None
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from xds.errors import ErrorCode, RegistryError
from xds.soap.attachments import Attachment
from xds.vocabulary import NS_LCM, NS_RIM, NS_XDS, IdScheme, SlotName
from xds.xml import qname

__all__ = ["Analysis", "DocumentPart", "analyze", "augment"]

REQUEST: Final = qname(NS_XDS, "ProvideAndRegisterDocumentSetRequest")
_DOCUMENT: Final = qname(NS_XDS, "Document")
_SUBMIT: Final = qname(NS_LCM, "SubmitObjectsRequest")
_OBJECT_LIST: Final = qname(NS_RIM, "RegistryObjectList")
_EXTRINSIC: Final = qname(NS_RIM, "ExtrinsicObject")
_EXTERNAL_ID: Final = qname(NS_RIM, "ExternalIdentifier")
_SLOT: Final = qname(NS_RIM, "Slot")
_VALUE_LIST: Final = qname(NS_RIM, "ValueList")
_VALUE: Final = qname(NS_RIM, "Value")
#: ITI TF-3 §4.2.3.1.6 (uniqueId): at most 128 characters; the index column has that width.
MAX_UNIQUE_ID: Final = 128

Binary = Callable[[etree._Element], Attachment]


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """One document of the submission: its DocumentEntry's id, uniqueId, mimeType and bytes."""

    entry_id: str
    unique_id: str
    mime_type: str
    attachment: Attachment


@dataclass(frozen=True, slots=True)
class Analysis:
    """What :func:`analyze` found: errors (empty = go ahead), the documents, the SOR element."""

    errors: tuple[RegistryError, ...]
    documents: tuple[DocumentPart, ...]
    submit_objects_request: etree._Element | None

    @property
    def ok(self) -> bool:
        return not any(e.is_error for e in self.errors)


def _error(code: ErrorCode, context: str, location: str = "") -> RegistryError:
    return RegistryError(code, context, location)


def _unique_id(entry: etree._Element) -> str | None:
    for ext in entry.iterchildren(_EXTERNAL_ID):
        if ext.get("identificationScheme") == IdScheme.DE_UNIQUE_ID:
            value = ext.get("value")
            return value.strip() if value is not None else None
    return None


def _slots(entry: etree._Element, name: str) -> list[etree._Element]:
    return [slot for slot in entry.iterchildren(_SLOT) if slot.get("name") == name]


def _first_value(slot: etree._Element) -> str | None:
    value = slot.find(f"{_VALUE_LIST}/{_VALUE}")
    return None if value is None else (value.text or "").strip()


def _document_entries(sor: etree._Element) -> list[etree._Element]:
    object_list = sor.find(_OBJECT_LIST)
    if object_list is None:
        return []
    # In XDS every rim:ExtrinsicObject is a DocumentEntry (ITI TF-3 §4.2.3.2); a wrong
    # objectType is the validator's finding.
    return list(object_list.iterchildren(_EXTRINSIC))


def _check_content(entry_id: str, unique_id: str, entry: etree._Element, attachment: Attachment) -> list[RegistryError]:
    """ITI TF-2b §3.41.4.1.3: a submitted size/hash must describe the bytes received."""
    errors: list[RegistryError] = []
    for slot in _slots(entry, SlotName.HASH)[:1]:
        submitted = _first_value(slot)
        # NIST 11981 submit_uppercase_hash: the comparison ignores case.
        if submitted is not None and submitted.lower() != attachment.sha1_hex:
            errors.append(
                _error(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"DocumentEntry {entry_id}: submitted hash {submitted} is not the SHA-1 of the document "
                    f"received ({attachment.sha1_hex})",
                    unique_id,
                )
            )
    for slot in _slots(entry, SlotName.SIZE)[:1]:
        submitted = _first_value(slot)
        if submitted is not None and (not submitted.isdigit() or int(submitted) != attachment.size):
            errors.append(
                _error(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"DocumentEntry {entry_id}: submitted size {submitted} is not the size of the document "
                    f"received ({attachment.size} bytes)",
                    unique_id,
                )
            )
    return errors


def _validate_metadata(sor: etree._Element) -> list[RegistryError]:
    """The core validator's findings with the ITI-41 repository profile."""
    from xds.metadata.ebrim import decode_submit_objects_request
    from xds.metadata.validation import ValidationProfile, validate_submission

    decoded = decode_submit_objects_request(sor)
    return list(
        validate_submission(
            decoded.submission,
            findings_from_decode=decoded.findings,
            profile=ValidationProfile.ITI41_REPOSITORY,
            codes=None,
        )
    )


def analyze(body: etree._Element, *, binary: Binary, validate: bool = True) -> Analysis:
    """Run the repository's ITI-41 checks on ``body`` (see the module documentation).

    ``binary`` returns the content of an ``xds:Document`` element (its XOP part or decoded
    inline base64); it may raise :class:`~xds.soap.fault.SoapFault` for a broken reference.
    """
    errors: list[RegistryError] = []
    if body.tag != REQUEST:
        # NIST checks that the body matches the action (xds-notes §1.3).
        errors.append(
            _error(
                ErrorCode.REPOSITORY_METADATA_ERROR,
                f"the ITI-41 body is {etree.QName(body).localname}, not xds:ProvideAndRegisterDocumentSetRequest",
            )
        )
        return Analysis(tuple(errors), (), None)
    sors = body.findall(_SUBMIT)
    if len(sors) != 1:
        errors.append(
            _error(
                ErrorCode.REPOSITORY_METADATA_ERROR,
                f"ProvideAndRegisterDocumentSetRequest holds {len(sors)} lcm:SubmitObjectsRequest elements, not one",
            )
        )
        return Analysis(tuple(errors), (), None)
    sor = sors[0]

    documents: dict[str, etree._Element] = {}
    for element in body.iterchildren(_DOCUMENT):
        doc_id = (element.get("id") or "").strip()
        if not doc_id:
            errors.append(_error(ErrorCode.MISSING_DOCUMENT_METADATA, "an xds:Document has no id attribute"))
            continue
        if doc_id in documents:
            errors.append(
                _error(ErrorCode.REPOSITORY_METADATA_ERROR, f"two xds:Document elements have the id {doc_id}", doc_id)
            )
            continue
        documents[doc_id] = element

    entries = _document_entries(sor)
    entry_ids = {eo.get("id", "") for eo in entries}
    # ITI TF-2b §3.41.4.1.3: a Document without a DocumentEntry.
    for doc_id in documents:
        if doc_id not in entry_ids:
            errors.append(
                _error(
                    ErrorCode.MISSING_DOCUMENT_METADATA,
                    f"xds:Document {doc_id} has no DocumentEntry (rim:ExtrinsicObject) with that id",
                    doc_id,
                )
            )

    unique_ids = Counter(uid for uid in (_unique_id(eo) for eo in entries) if uid)
    # ITI TF-2b §3.41.4.1.3: the same DocumentEntry uniqueId twice in one submission.
    for uid, count in unique_ids.items():
        if count > 1:
            errors.append(
                _error(
                    ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                    f"DocumentEntry uniqueId {uid} appears {count} times in the submission",
                    uid,
                )
            )

    parts: list[DocumentPart] = []
    for entry in entries:
        entry_id = entry.get("id", "")
        unique_id = _unique_id(entry)
        element = documents.get(entry_id)
        if element is None:
            # ITI TF-2b §3.41.4.1.3; NIST 11983: a DocumentEntry without its Document.
            errors.append(
                _error(
                    ErrorCode.MISSING_DOCUMENT,
                    f"DocumentEntry {entry_id} (uniqueId {unique_id}) has no xds:Document",
                    entry_id,
                )
            )
            continue
        if not unique_id:
            errors.append(
                _error(ErrorCode.REPOSITORY_METADATA_ERROR, f"DocumentEntry {entry_id} has no uniqueId", entry_id)
            )
            continue
        if len(unique_id) > MAX_UNIQUE_ID:
            errors.append(
                _error(
                    ErrorCode.REPOSITORY_METADATA_ERROR,
                    f"DocumentEntry {entry_id}: uniqueId is longer than {MAX_UNIQUE_ID} characters",
                    entry_id,
                )
            )
            continue
        mime_type = (entry.get("mimeType") or "").strip()
        if not mime_type:
            # The repository must return the registered mimeType on retrieve (NIST 12360).
            errors.append(
                _error(ErrorCode.REPOSITORY_METADATA_ERROR, f"DocumentEntry {entry_id} has no mimeType", unique_id)
            )
            continue
        attachment = binary(element)
        errors += _check_content(entry_id, unique_id, entry, attachment)
        parts.append(DocumentPart(entry_id=entry_id, unique_id=unique_id, mime_type=mime_type, attachment=attachment))

    if validate:
        seen = {(e.code_text, e.location) for e in errors}
        for finding in _validate_metadata(sor):
            if (finding.code_text, finding.location) not in seen:
                errors.append(finding)
    return Analysis(tuple(errors), tuple(parts), sor)


def _set_slot(entry: etree._Element, name: str, value: str) -> None:
    existing = _slots(entry, name)
    if existing:
        slot = existing[0]
        for duplicate in existing[1:]:
            entry.remove(duplicate)
        value_list = slot.find(_VALUE_LIST)
        if value_list is None:
            value_list = etree.SubElement(slot, _VALUE_LIST)
        for old in list(value_list):
            value_list.remove(old)
        etree.SubElement(value_list, _VALUE).text = value
        return
    slot = etree.Element(_SLOT, name=name)
    etree.SubElement(etree.SubElement(slot, _VALUE_LIST), _VALUE).text = value
    # ebRIM 3.0: an ExtrinsicObject's Slots come first, before Name, Description, ...
    slots = list(entry.iterchildren(_SLOT))
    position = entry.index(slots[-1]) + 1 if slots else 0
    entry.insert(position, slot)


def augment(sor: etree._Element, documents: Sequence[DocumentPart], *, repository_id: str) -> None:
    """ITI TF-2b §3.41.4.1.3: give each DocumentEntry this repository's id and the hash (lower-case
    hex SHA-1) and size of the bytes received, in the tree itself."""
    by_id = {eo.get("id", ""): eo for eo in _document_entries(sor)}
    for document in documents:
        entry = by_id[document.entry_id]
        _set_slot(entry, SlotName.HASH, document.attachment.sha1_hex)
        _set_slot(entry, SlotName.SIZE, str(document.attachment.size))
        _set_slot(entry, SlotName.REPOSITORY_UNIQUE_ID, repository_id)
