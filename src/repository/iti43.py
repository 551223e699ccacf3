"""ITI-43 Retrieve Document Set at the Document Repository (ITI TF-2b §3.43), sans-I/O.

:func:`parse_request` reads an ``xds:RetrieveDocumentSetRequest``; :func:`answer` decides, per
DocumentRequest, what to return given the documents the store holds; :func:`build_response`
writes the ``xds:RetrieveDocumentSetResponse`` whose ``Document`` elements are ``xop:Include``
references to MIME parts the caller streams from disk.

Public API::

    DocumentRequest(home, repository_id, document_id)
    Found(request, mime_type, content_id)
    parse_request(element) -> tuple[list[DocumentRequest], list[RegistryError]]
    answer(requests, *, repository_id, available) -> tuple[list[tuple[DocumentRequest, T]], list[RegistryError]]
    response_status(found, errors) -> str
    build_response(found, errors) -> etree._Element
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from lxml import etree

from xds.errors import ErrorCode, RegistryError
from xds.metadata.responses import build_registry_response
from xds.soap.mtom import xop_include
from xds.vocabulary import NS_XDS, ResponseStatus
from xds.xml import qname

__all__ = ["DocumentRequest", "Found", "answer", "build_response", "parse_request", "response_status"]

REQUEST: Final = qname(NS_XDS, "RetrieveDocumentSetRequest")
RESPONSE: Final = qname(NS_XDS, "RetrieveDocumentSetResponse")
_DOCUMENT_REQUEST: Final = qname(NS_XDS, "DocumentRequest")
_DOCUMENT_RESPONSE: Final = qname(NS_XDS, "DocumentResponse")
_HOME: Final = qname(NS_XDS, "HomeCommunityId")
_REPOSITORY: Final = qname(NS_XDS, "RepositoryUniqueId")
_DOCUMENT_ID: Final = qname(NS_XDS, "DocumentUniqueId")
_MIME_TYPE: Final = qname(NS_XDS, "mimeType")
_DOCUMENT: Final = qname(NS_XDS, "Document")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """One ``xds:DocumentRequest``: (HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId)."""

    home: str | None
    repository_id: str
    document_id: str


@dataclass(frozen=True, slots=True)
class Found:
    """A document to return: its request, the registered mimeType and the MIME part's Content-ID."""

    request: DocumentRequest
    mime_type: str
    content_id: str


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


def parse_request(element: etree._Element) -> tuple[list[DocumentRequest], list[RegistryError]]:
    """The DocumentRequests of a RetrieveDocumentSetRequest, and errors for unusable ones."""
    errors: list[RegistryError] = []
    if element.tag != REQUEST:
        errors.append(
            RegistryError(
                ErrorCode.REPOSITORY_ERROR,
                f"the ITI-43 body is {etree.QName(element).localname}, not xds:RetrieveDocumentSetRequest",
            )
        )
        return [], errors
    requests: list[DocumentRequest] = []
    items = element.findall(_DOCUMENT_REQUEST)
    if not items:
        # XDS.b_DocumentRepository.xsd: DocumentRequest is 1..unbounded.
        errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "RetrieveDocumentSetRequest holds no DocumentRequest"))
    for item in items:
        document_id = _text(item, _DOCUMENT_ID)
        repository_id = _text(item, _REPOSITORY)
        if not document_id:
            errors.append(
                RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "a DocumentRequest has no DocumentUniqueId", "")
            )
            continue
        if not repository_id:
            errors.append(
                RegistryError(
                    ErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"the DocumentRequest for {document_id} has no RepositoryUniqueId",
                    document_id,
                )
            )
            continue
        home = _text(item, _HOME)
        requests.append(DocumentRequest(home=home or None, repository_id=repository_id, document_id=document_id))
    return requests, errors


def answer(
    requests: Sequence[DocumentRequest], *, repository_id: str, available: Mapping[str, T]
) -> tuple[list[tuple[DocumentRequest, T]], list[RegistryError]]:
    """Pair each request with its stored document, or say why it cannot be returned.

    ``available`` maps the uniqueIds this repository can return to whatever the caller needs.
    """
    found: list[tuple[DocumentRequest, T]] = []
    errors: list[RegistryError] = []
    for request in requests:
        # ITI TF-2b §3.43.4.1.3: a request for another repository is XDSUnknownRepositoryId
        # (NIST simulators say XDSRepositoryWrongRepositoryUniqueId; the TF code is used here).
        if request.repository_id != repository_id:
            errors.append(
                RegistryError(
                    ErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"repositoryUniqueId {request.repository_id} is not this repository ({repository_id}); "
                    f"document {request.document_id} not returned",
                    request.document_id,
                )
            )
            continue
        document = available.get(request.document_id)
        if document is None:
            # ITI TF-2b §3.43.4.1.3; xds-notes §2: the DocumentUniqueId goes in location.
            errors.append(
                RegistryError(
                    ErrorCode.DOCUMENT_UNIQUE_ID_ERROR,
                    f"document {request.document_id} is not available in repository {repository_id}",
                    request.document_id,
                )
            )
            continue
        found.append((request, document))
    return found, errors


def response_status(found: Sequence[object], errors: Sequence[RegistryError]) -> str:
    """ITI TF-2b §3.43.4.2.3: Success when everything asked for is returned, PartialSuccess when
    some of it is, Failure when none is."""
    if not found:
        return ResponseStatus.FAILURE
    if any(e.is_error for e in errors):
        return ResponseStatus.PARTIAL_SUCCESS
    return ResponseStatus.SUCCESS


def build_response(found: Sequence[Found], errors: Sequence[RegistryError]) -> etree._Element:
    """The RetrieveDocumentSetResponse: the RegistryResponse, then one DocumentResponse per
    document, whose content is an ``xop:Include`` of the part ``content_id``."""
    root = etree.Element(RESPONSE, nsmap={"xds": NS_XDS})
    root.append(build_registry_response(list(errors), status=response_status(found, errors)))
    for item in found:
        response = etree.SubElement(root, _DOCUMENT_RESPONSE)
        # ITI TF-2b §3.43.4.2.2: HomeCommunityId only when the request carried it.
        if item.request.home is not None:
            etree.SubElement(response, _HOME).text = item.request.home
        etree.SubElement(response, _REPOSITORY).text = item.request.repository_id
        etree.SubElement(response, _DOCUMENT_ID).text = item.request.document_id
        # ITI TF-2b §3.43.4.2.2: the mimeType as registered (NIST 12360).
        etree.SubElement(response, _MIME_TYPE).text = item.mime_type
        etree.SubElement(response, _DOCUMENT).append(xop_include(item.content_id))
    return root
