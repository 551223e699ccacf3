"""ITI-41 Provide and Register Document Set-b from files: the Document Source side the CLI uses
to put documents in (ITI TF-2b §3.41).

:func:`describe` builds a complete submission (one SubmissionSet, one DocumentEntry per file,
HasMember associations) from a few options, with defaults taken from the Connectathon affinity
domain (``shared/affinity-domain/codes.xml``), so that a document can be submitted with nothing
but a patient ID. :func:`provide_and_register` sends it as MTOM, each file streamed from disk.

Public API::

    DocumentOptions(...)        # every metadata option, with defaults
    FileDocument(path, entry, content_id)
    describe(paths, options, *, now=None) -> tuple[Submission, list[FileDocument]]
    build_request(submission, documents) -> etree._Element
    provide_and_register(endpoint, submission, documents, *, timeout=60, verify=True,
                         cert=None, transport=None) -> SubmitResult
    SubmitResult(status, errors)              # .ok
    new_oid() -> str
"""

from __future__ import annotations

import hashlib
import mimetypes
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx
from lxml import etree

from xds.errors import RegistryError
from xds.http.client import CertTypes, SoapClient, VerifyTypes
from xds.metadata.ebrim import encode_submit_objects_request
from xds.metadata.model import Association, Author, Code, DocumentEntry, Submission, SubmissionSet
from xds.metadata.responses import parse_registry_response
from xds.soap.attachments import CHUNK_SIZE
from xds.soap.mtom import xop_include
from xds.soap.mtom_encode import OutgoingPart, new_content_id
from xds.vocabulary import (
    MIME_DICOM,
    NS_XDS,
    Action,
    AssociationType,
    ResponseStatus,
    SubmissionSetStatus,
)
from xds.xml import qname

__all__ = [
    "DocumentOptions",
    "FileDocument",
    "SubmitResult",
    "build_request",
    "describe",
    "new_oid",
    "provide_and_register",
]

_REQUEST: Final = qname(NS_XDS, "ProvideAndRegisterDocumentSetRequest")
_DOCUMENT: Final = qname(NS_XDS, "Document")

# Defaults from the Connectathon affinity domain (codes.xml), meaningful for any document.
CLASS_REPORTS: Final = Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports")
CLASS_IMAGES: Final = Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
TYPE_SUMMARY: Final = Code("34133-9", "2.16.840.1.113883.6.1", "Summary of episode note")
FORMAT_MIME_SUFFICIENT: Final = Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3", "mimeType Sufficient")
FORMAT_KOS: Final = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")
CONFIDENTIALITY_NORMAL: Final = Code("N", "2.16.840.1.113883.5.25", "normal")
FACILITY_AMBULATORY: Final = Code("35971002", "2.16.840.1.113883.6.96", "Ambulatory care site")
PRACTICE_RADIOLOGY: Final = Code("309964003", "2.16.840.1.113883.6.96", "Radiology department (environment)")
CONTENT_UNSPECIFIED: Final = Code("UNSPECIFIED-CONTENT-TYPE", "1.3.6.1.4.1.21367.2017.3", "Unspecified Clinical Activity")
#: sourceId of submissions made with this tool when none is given (an OID under 2.25).
DEFAULT_SOURCE_ID: Final = "2.25.94250148364520409128016346106271851107"


def new_oid() -> str:
    """A fresh OID under the UUID arc (ITI TF-3 §4.2.3.2.26: uniqueIds may be 2.25 OIDs)."""
    return f"2.25.{uuid.uuid4().int}"


def _dtm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True, kw_only=True)
class DocumentOptions:
    """The metadata the CLI asks for; everything but the patient has a default.

    Codes left as None are chosen per document: IMAGES and the KOS format for
    application/dicom, REPORTS and "mimeType Sufficient" otherwise.
    """

    patient_id: str
    mime_type: str | None = None
    title: str | None = None
    class_code: Code | None = None
    type_code: Code = TYPE_SUMMARY
    format_code: Code | None = None
    confidentiality_code: Code = CONFIDENTIALITY_NORMAL
    healthcare_facility_type_code: Code = FACILITY_AMBULATORY
    practice_setting_code: Code = PRACTICE_RADIOLOGY
    content_type_code: Code = CONTENT_UNSPECIFIED
    event_codes: tuple[Code, ...] = ()
    author_person: str | None = None
    author_institution: str | None = None
    source_id: str = DEFAULT_SOURCE_ID
    language_code: str = "en-US"
    submission_title: str | None = None
    # Send hash and size so the repository checks the transfer (XDSRepositoryMetadataError).
    include_hash: bool = True
    unique_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class FileDocument:
    """A file to send and the DocumentEntry describing it."""

    path: Path
    entry: DocumentEntry
    content_id: str


@dataclass(frozen=True, slots=True)
class SubmitResult:
    status: str
    errors: tuple[RegistryError, ...]

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.SUCCESS


def _guess_mime(path: Path) -> str:
    if path.suffix.lower() in (".dcm", ".dicom"):
        return MIME_DICOM
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _digest(path: Path) -> tuple[str, int]:
    sha1, size = hashlib.sha1(), 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK_SIZE):
            sha1.update(chunk)
            size += len(chunk)
    return sha1.hexdigest(), size


def describe(
    paths: Sequence[Path], options: DocumentOptions, *, now: datetime | None = None
) -> tuple[Submission, list[FileDocument]]:
    """A complete submission for ``paths`` (ITI TF-3 §4.2.3: every R attribute is set)."""
    moment = now or datetime.now(UTC)
    if options.unique_ids and len(options.unique_ids) != len(paths):
        raise ValueError("give one uniqueId per file, or none")
    authors = []
    if options.author_person or options.author_institution:
        authors.append(
            Author(
                person=options.author_person,
                institutions=[options.author_institution] if options.author_institution else [],
            )
        )
    ss = SubmissionSet(
        id="SubmissionSet01",
        unique_id=new_oid(),
        source_id=options.source_id,
        patient_id=options.patient_id,
        submission_time=_dtm(moment),
        content_type_code=options.content_type_code,
        authors=[Author(person=a.person, institutions=list(a.institutions)) for a in authors],
        title=options.submission_title,
    )
    documents: list[FileDocument] = []
    associations: list[Association] = []
    for index, path in enumerate(paths, start=1):
        mime = options.mime_type or _guess_mime(path)
        is_dicom = mime == MIME_DICOM
        entry = DocumentEntry(
            id=f"Document{index:02d}",
            mime_type=mime,
            unique_id=options.unique_ids[index - 1] if options.unique_ids else new_oid(),
            patient_id=options.patient_id,
            class_code=options.class_code or (CLASS_IMAGES if is_dicom else CLASS_REPORTS),
            confidentiality_codes=[options.confidentiality_code],
            event_codes=list(options.event_codes),
            format_code=options.format_code or (FORMAT_KOS if is_dicom else FORMAT_MIME_SUFFICIENT),
            healthcare_facility_type_code=options.healthcare_facility_type_code,
            practice_setting_code=options.practice_setting_code,
            type_code=options.type_code,
            authors=[Author(person=a.person, institutions=list(a.institutions)) for a in authors],
            creation_time=_dtm(moment),
            language_code=options.language_code,
            source_patient_id=options.patient_id,
            title=options.title if options.title and len(paths) == 1 else path.name,
        )
        if options.include_hash:
            entry.hash, size = _digest(path)
            entry.size = str(size)
        documents.append(FileDocument(path=path, entry=entry, content_id=new_content_id()))
        associations.append(
            Association(
                id=f"Association{index:02d}",
                association_type=AssociationType.HAS_MEMBER,
                source=ss.id,
                target=entry.id,
                submission_set_status=SubmissionSetStatus.ORIGINAL,
            )
        )
    submission = Submission(
        submission_sets=[ss], document_entries=[d.entry for d in documents], associations=associations
    )
    return submission, documents


def build_request(submission: Submission, documents: Sequence[FileDocument]) -> etree._Element:
    """The ``xds:ProvideAndRegisterDocumentSetRequest``: metadata, then one ``xds:Document`` per
    file holding an ``xop:Include`` of its MIME part."""
    root = etree.Element(_REQUEST, nsmap={"xds": NS_XDS})
    root.append(encode_submit_objects_request(submission))
    for document in documents:
        element = etree.SubElement(root, _DOCUMENT, id=document.entry.id)
        element.append(xop_include(document.content_id))
    return root


def provide_and_register(
    endpoint: str,
    submission: Submission,
    documents: Sequence[FileDocument],
    *,
    timeout: float = 60.0,
    verify: VerifyTypes = True,
    cert: CertTypes = None,
    transport: httpx.BaseTransport | None = None,
) -> SubmitResult:
    """Send ITI-41 as MTOM (files streamed 1 MiB at a time) and read the RegistryResponse.

    Raises what :meth:`SoapClient.call` raises (connection failure, SOAP fault).
    """
    parts = [OutgoingPart(d.content_id, d.entry.mime_type, d.path) for d in documents]
    with SoapClient(endpoint, timeout=timeout, verify=verify, cert=cert, transport=transport) as client:
        with client.call(Action.ITI41, build_request(submission, documents), attachments=parts, mtom=True) as reply:
            parsed = parse_registry_response(reply.body)
    return SubmitResult(parsed.status, tuple(parsed.errors))
