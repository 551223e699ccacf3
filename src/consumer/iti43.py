"""ITI-43 Retrieve Document Set, the Document Consumer's side (ITI TF-2b §3.43).

The request goes out as MTOM (as the NIST simulators send it); the reply's documents are
spooled straight into the destination directory (1 MiB reads, hashed on the way) and renamed
to their final names, so a large document never sits in memory. A ``progress`` callback sees the
response bytes as they arrive (the CLI draws a progress bar with it).

Public API::

    DocumentRequest(document_id, repository_id, home=None)
    Retrieved(document_id, repository_id, home, mime_type, path, size, sha1)
    RetrieveResult(status, errors, documents)     # .ok
    Progress (Protocol): start(total: int | None), advance(n: int)
    build_request(requests) -> etree._Element
    retrieve(endpoint, requests, destination, *, progress=None, timeout=60, verify=True,
             cert=None, transport=None, security=None) -> RetrieveResult
    file_name(document_id, mime_type) -> str
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import httpx
from lxml import etree

from xds.errors import RegistryError
from xds.http.client import CertTypes, SoapClient, VerifyTypes
from xds.metadata.responses import parse_registry_response
from xds.vocabulary import NS_RS, NS_XDS, Action, ResponseStatus
from xds.xml import qname

__all__ = [
    "DocumentRequest",
    "Progress",
    "RetrieveResult",
    "Retrieved",
    "build_request",
    "file_name",
    "retrieve",
]

_REQUEST: Final = qname(NS_XDS, "RetrieveDocumentSetRequest")
_DOCUMENT_REQUEST: Final = qname(NS_XDS, "DocumentRequest")
_DOCUMENT_RESPONSE: Final = qname(NS_XDS, "DocumentResponse")
_HOME: Final = qname(NS_XDS, "HomeCommunityId")
_REPOSITORY: Final = qname(NS_XDS, "RepositoryUniqueId")
_DOCUMENT_ID: Final = qname(NS_XDS, "DocumentUniqueId")
_MIME_TYPE: Final = qname(NS_XDS, "mimeType")
_DOCUMENT: Final = qname(NS_XDS, "Document")
_REGISTRY_RESPONSE: Final = qname(NS_RS, "RegistryResponse")
_EXTENSIONS: Final = {"application/dicom": ".dcm", "text/plain": ".txt", "text/xml": ".xml", "application/xml": ".xml"}
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """One document to retrieve (ITI TF-2b §3.43.4.1.2)."""

    document_id: str
    repository_id: str
    home: str | None = None


@dataclass(frozen=True, slots=True)
class Retrieved:
    """A retrieved document, on disk."""

    document_id: str
    repository_id: str
    home: str | None
    mime_type: str
    path: Path
    size: int
    sha1: str


@dataclass(frozen=True, slots=True)
class RetrieveResult:
    status: str
    errors: tuple[RegistryError, ...]
    documents: tuple[Retrieved, ...]

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.SUCCESS


class Progress(Protocol):
    """Receives the size of the response (when announced) and each chunk's length."""

    def start(self, total: int | None) -> None: ...

    def advance(self, n: int) -> None: ...


class _CountingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._progress.advance(len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _ProgressTransport(httpx.BaseTransport):
    """Wraps a transport so the response body's bytes are reported as they are read."""

    def __init__(self, inner: httpx.BaseTransport, progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        length = response.headers.get("content-length")
        self._progress.start(int(length) if length and length.isdigit() else None)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CountingStream(response.stream, self._progress),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def build_request(requests: Sequence[DocumentRequest]) -> etree._Element:
    """An ``xds:RetrieveDocumentSetRequest`` (XDS.b_DocumentRepository.xsd)."""
    root = etree.Element(_REQUEST, nsmap={"xds": NS_XDS})
    for request in requests:
        item = etree.SubElement(root, _DOCUMENT_REQUEST)
        if request.home is not None:
            etree.SubElement(item, _HOME).text = request.home
        etree.SubElement(item, _REPOSITORY).text = request.repository_id
        etree.SubElement(item, _DOCUMENT_ID).text = request.document_id
    return root


def file_name(document_id: str, mime_type: str) -> str:
    """A safe file name for a document: its uniqueId plus an extension for its mimeType."""
    base = mime_type.split(";")[0].strip().lower()
    extension = _EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"
    return _UNSAFE.sub("_", document_id) + extension


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    return None if child is None else (child.text or "").strip()


def retrieve(
    endpoint: str,
    requests: Sequence[DocumentRequest],
    destination: Path,
    *,
    progress: Progress | None = None,
    timeout: float = 60.0,
    verify: VerifyTypes = True,
    cert: CertTypes = None,
    transport: httpx.BaseTransport | None = None,
    security: Callable[[], etree._Element | None] | None = None,
) -> RetrieveResult:
    """ITI-43 for ``requests``; each returned document is written to ``destination``.

    ``security`` returns a header block to send with the request (the consent token's
    ``wsse:Security`` header, DESIGN §4), or None.

    Raises what :meth:`SoapClient.call` raises (connection failure, SOAP fault).
    """
    destination.mkdir(parents=True, exist_ok=True)
    base = transport or httpx.HTTPTransport(verify=verify, cert=cert)
    wrapped = _ProgressTransport(base, progress) if progress is not None else base
    with SoapClient(endpoint, timeout=timeout, transport=wrapped, spool_dir=destination) as client:
        header = security() if security is not None else None
        extra = [header] if header is not None else []
        with client.call(Action.ITI43, build_request(requests), mtom=True, extra_headers=extra) as reply:
            body = reply.body
            status_element = body.find(_REGISTRY_RESPONSE)
            if status_element is None:
                raise ValueError("the ITI-43 reply has no rs:RegistryResponse")
            parsed = parse_registry_response(status_element)
            documents: list[Retrieved] = []
            for item in body.iterfind(_DOCUMENT_RESPONSE):
                document_id = _text(item, _DOCUMENT_ID) or ""
                mime_type = _text(item, _MIME_TYPE) or "application/octet-stream"
                element = item.find(_DOCUMENT)
                if element is None or not document_id:
                    continue
                attachment = reply.binary(element)
                target = destination / file_name(document_id, mime_type)
                attachment.move_to(target, fsync=False)
                documents.append(
                    Retrieved(
                        document_id=document_id,
                        repository_id=_text(item, _REPOSITORY) or "",
                        home=_text(item, _HOME),
                        mime_type=mime_type,
                        path=target,
                        size=attachment.size,
                        sha1=attachment.sha1_hex,
                    )
                )
    return RetrieveResult(parsed.status, tuple(parsed.errors), tuple(documents))
