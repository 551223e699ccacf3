"""RAD-69 Retrieve Imaging Document Set, the Imaging Document Consumer's side (RAD TF-3 §4.69).

:func:`build_request` groups the instances of one batch Study -> Series -> DocumentRequest
(xds-notes §7.4, schema XDSI.b_ImagingDocumentSource.xsd); :func:`retrieve_batch` sends it as
MTOM and hands each returned instance to a callback **as a spooled part** (the client writes every
MTOM part above 64 KiB to a file in its spool directory while reading the response; nothing
holds the whole batch), so the callback can check it and rename it into place.

The response is an ``xds:RetrieveDocumentSetResponse`` (xds-notes §7.5): Success, PartialSuccess
(some returned, the others named in the RegistryErrorList, RAD69-003) or Failure. Whatever came
is kept; what did not is reported as missing, so a later run asks for it again.

Public API::

    DEFAULT_TRANSFER_SYNTAXES
    build_request(images, *, repository_id, transfer_syntaxes, home=None) -> etree._Element
    Accept = Callable[[ImageReference, Attachment], str | None]   # None = kept, else why not
    BatchResult(status, errors, kept, rejected, missing)
    retrieve_batch(client, images, *, repository_id, transfer_syntaxes, accept, home=None)
        -> BatchResult
    CountingTransport(inner, on_bytes)    # reports response body bytes as they arrive
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import httpx
from lxml import etree
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEGLossless,
    RLELossless,
)

from consumer.kos import ImageReference
from xds.errors import RegistryError
from xds.http.client import SoapClient
from xds.metadata.responses import parse_registry_response
from xds.soap.attachments import Attachment
from xds.vocabulary import MIME_DICOM, NS_RS, NS_XDS, NS_XDSI, Action
from xds.xml import qname

__all__ = [
    "DEFAULT_TRANSFER_SYNTAXES",
    "Accept",
    "BatchResult",
    "CountingTransport",
    "build_request",
    "retrieve_batch",
]

#: What we accept by default: the uncompressed syntaxes first, then the common compressed ones,
#: so a source returns an instance as stored (lossless, no transcoding) whenever it can
#: (RAD TF-3 §4.69.4.1.2: the list is the consumer's acceptable syntaxes). JPIP (.94/.95) is left
#: out: it returns a reference, not the pixels (RAD69-006).
DEFAULT_TRANSFER_SYNTAXES: Final[tuple[str, ...]] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)

_REQUEST: Final = qname(NS_XDSI, "RetrieveImagingDocumentSetRequest")
_STUDY: Final = qname(NS_XDSI, "StudyRequest")
_SERIES: Final = qname(NS_XDSI, "SeriesRequest")
_TS_LIST: Final = qname(NS_XDSI, "TransferSyntaxUIDList")
_TS: Final = qname(NS_XDSI, "TransferSyntaxUID")
_DOCUMENT_REQUEST: Final = qname(NS_XDS, "DocumentRequest")
_DOCUMENT_RESPONSE: Final = qname(NS_XDS, "DocumentResponse")
_HOME: Final = qname(NS_XDS, "HomeCommunityId")
_REPOSITORY: Final = qname(NS_XDS, "RepositoryUniqueId")
_DOCUMENT_ID: Final = qname(NS_XDS, "DocumentUniqueId")
_MIME_TYPE: Final = qname(NS_XDS, "mimeType")
_DOCUMENT: Final = qname(NS_XDS, "Document")
_REGISTRY_RESPONSE: Final = qname(NS_RS, "RegistryResponse")

#: Checks a returned instance and keeps it (None) or says why not (the part is then discarded).
Accept = Callable[[ImageReference, Attachment], str | None]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One RAD-69 exchange: the source's status and errors, and what became of each instance.

    ``kept``: SOP Instance UIDs the callback accepted; ``rejected``: (uid, reason) for parts
    that came but were refused; ``missing``: requested UIDs for which no part came.
    """

    status: str
    errors: tuple[RegistryError, ...]
    kept: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]


def build_request(
    images: Sequence[ImageReference],
    *,
    repository_id: str,
    transfer_syntaxes: Sequence[str],
    home: str | None = None,
) -> etree._Element:
    """An ``xdsi:RetrieveImagingDocumentSetRequest`` for ``images`` (RAD TF-3 §4.69.4.1.2).

    Instances are grouped by study, then series, in first-seen order; each DocumentRequest
    names ``repository_id`` (the KOS Retrieve Location UID) and the SOP Instance UID.
    """
    if not transfer_syntaxes:
        # RAD TF-3 §4.69.4.1.2: TransferSyntaxUIDList is required, with at least one UID.
        raise ValueError("a RAD-69 request needs at least one transfer syntax")
    grouped: dict[str, dict[str, list[str]]] = {}
    for image in images:
        grouped.setdefault(image.study_uid, {}).setdefault(image.series_uid, []).append(image.sop_instance_uid)
    root = etree.Element(_REQUEST, nsmap={"xdsi": NS_XDSI, "xds": NS_XDS})
    for study_uid, series_map in grouped.items():
        study = etree.SubElement(root, _STUDY, studyInstanceUID=study_uid)
        for series_uid, sops in series_map.items():
            series = etree.SubElement(study, _SERIES, seriesInstanceUID=series_uid)
            for sop in sops:
                # The SeriesRequest type extends xds:RetrieveDocumentSetRequestType (xds-b namespace).
                item = etree.SubElement(series, _DOCUMENT_REQUEST)
                if home is not None:
                    etree.SubElement(item, _HOME).text = home
                etree.SubElement(item, _REPOSITORY).text = repository_id
                etree.SubElement(item, _DOCUMENT_ID).text = sop
    ts_list = etree.SubElement(root, _TS_LIST)
    for uid in transfer_syntaxes:
        etree.SubElement(ts_list, _TS).text = uid
    return root


def _text(parent: etree._Element, tag: str) -> str:
    child = parent.find(tag)
    return "" if child is None else (child.text or "").strip()


def retrieve_batch(
    client: SoapClient,
    images: Sequence[ImageReference],
    *,
    repository_id: str,
    transfer_syntaxes: Sequence[str],
    accept: Accept,
    home: str | None = None,
) -> BatchResult:
    """One RAD-69 request for ``images``; each returned part goes to ``accept``.

    Parts ``accept`` does not claim (by moving the attachment) are deleted when the reply
    closes. Raises what :meth:`SoapClient.call` raises (connection failure, SOAP fault,
    unusable reply) and :class:`ValueError` when the reply has no ``rs:RegistryResponse``.
    """
    wanted = {image.sop_instance_uid: image for image in images}
    request = build_request(images, repository_id=repository_id, transfer_syntaxes=transfer_syntaxes, home=home)
    kept: list[str] = []
    rejected: list[tuple[str, str]] = []
    # xds-notes §1.4: RAD-69 goes out as MTOM (as the NIST simulators send it).
    with client.call(Action.RAD69, request, mtom=True) as reply:
        body = reply.body
        status_element = body.find(_REGISTRY_RESPONSE)
        if status_element is None:
            raise ValueError("the RAD-69 reply has no rs:RegistryResponse")
        parsed = parse_registry_response(status_element)
        for item in body.iterfind(_DOCUMENT_RESPONSE):
            uid = _text(item, _DOCUMENT_ID)
            image = wanted.get(uid)
            if image is None:
                rejected.append((uid, "returned but not requested"))
                continue
            if uid in kept:
                continue  # a duplicate part: the first one was kept
            mime = _text(item, _MIME_TYPE)
            element = item.find(_DOCUMENT)
            # RAD TF-3 §4.69.4.2.3: each returned instance is application/dicom, a Part 10 file.
            if mime and mime.split(";")[0].strip().lower() != MIME_DICOM:
                rejected.append((uid, f"mimeType {mime}, not {MIME_DICOM}"))
                continue
            if element is None:
                rejected.append((uid, "DocumentResponse without a Document"))
                continue
            try:
                attachment = reply.binary(element)
            except (ValueError, KeyError) as exc:
                rejected.append((uid, f"unreadable Document: {exc}"))
                continue
            reason = accept(image, attachment)
            if reason is None:
                kept.append(uid)
            else:
                rejected.append((uid, reason))
    came = set(kept) | {uid for uid, _ in rejected}
    missing = tuple(uid for uid in wanted if uid not in came)
    return BatchResult(parsed.status, tuple(parsed.errors), tuple(kept), tuple(rejected), missing)


class _CountingStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, on_bytes: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_bytes = on_bytes

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._on_bytes(len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()


class CountingTransport(httpx.BaseTransport):
    """Wraps a transport so that each response body chunk's length is reported as it is read
    (a progress bar can then move while a large batch arrives)."""

    def __init__(self, inner: httpx.BaseTransport, on_bytes: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_bytes = on_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CountingStream(response.stream, self._on_bytes),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()
