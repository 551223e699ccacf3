"""RAD-69 Retrieve Imaging Document Set at the Imaging Document Source (RAD TF-3 §4.69), sans-I/O.

:func:`parse_request` reads an ``xdsi:RetrieveImagingDocumentSetRequest`` (schema
XDSI.b_ImagingDocumentSource.xsd; xds-notes §7.4), :func:`plan` decides for each requested
instance whether and in which transfer syntax it is returned, and :func:`build_response` writes
the ``xds:RetrieveDocumentSetResponse`` (xds-notes §7.5) whose ``Document`` elements are
``xop:Include`` references to MIME parts the caller streams.

The error cases are those of the NIST catalogue (ids_2018-4811, xds-notes §8.5):

=====  ==========================================  =========================================
case   request                                     answer
=====  ==========================================  =========================================
01     RepositoryUniqueId not this source's        Failure, XDSUnknownRepositoryId
02     SOP Instance UID unknown                    Failure, XDSDocumentUniqueIdError
03/04  SOP Instance not in the series / study      Failure, XDSDocumentUniqueIdError
05-07  empty studyInstanceUID / seriesInstanceUID  Failure, XDSRepositoryError
08     empty TransferSyntaxUID list                Failure, XDSRepositoryError
09     only unsupported transfer syntaxes          Failure, XDSRepositoryError "cannot encode"
=====  ==========================================  =========================================

Some returned and some not is PartialSuccess (RAD69-003, ITI TF-2b §3.43.4.2.3).

Public API::

    ImageRequest(study_uid, series_uid, home, repository_id, document_id)
    Rad69Request(documents, transfer_syntaxes)
    Planned(request, instance, transfer_syntax, content_id)
    parse_request(element) -> tuple[Rad69Request, list[RegistryError]]
    plan(request, *, source_id, instances, choose, new_content_id) -> tuple[list[Planned], list[RegistryError]]
    unknown_instance_error(uid) -> RegistryError
    response_status(planned, errors) -> str
    build_response(planned, errors) -> etree._Element
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from imaging_source.model import StoredInstance
from xds.errors import ErrorCode, RegistryError
from xds.metadata.responses import build_registry_response
from xds.soap.mtom import xop_include
from xds.vocabulary import MIME_DICOM, NS_XDS, NS_XDSI, ResponseStatus
from xds.xml import qname

__all__ = [
    "ImageRequest",
    "Planned",
    "REQUEST",
    "RESPONSE",
    "Rad69Request",
    "build_response",
    "parse_request",
    "plan",
    "response_status",
    "unknown_instance_error",
]

REQUEST: Final = qname(NS_XDSI, "RetrieveImagingDocumentSetRequest")
RESPONSE: Final = qname(NS_XDS, "RetrieveDocumentSetResponse")
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


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One ``xds:DocumentRequest`` with the study and series it was asked under."""

    study_uid: str
    series_uid: str
    home: str | None
    repository_id: str
    document_id: str


@dataclass(frozen=True, slots=True)
class Rad69Request:
    """The parsed request: every DocumentRequest in order, and the accepted transfer syntaxes."""

    documents: tuple[ImageRequest, ...]
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Planned:
    """An instance to return: its request, where it is, the syntax it goes out in, its part."""

    request: ImageRequest
    instance: StoredInstance
    transfer_syntax: str
    content_id: str

    @property
    def as_stored(self) -> bool:
        return self.transfer_syntax == self.instance.transfer_syntax


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


def parse_request(element: etree._Element) -> tuple[Rad69Request, list[RegistryError]]:
    """The DocumentRequests and transfer syntaxes of a RAD-69 request, and request errors."""
    errors: list[RegistryError] = []
    if element.tag != REQUEST:
        errors.append(
            RegistryError(
                ErrorCode.REPOSITORY_ERROR,
                f"the RAD-69 body is {etree.QName(element).localname}, not xdsi:RetrieveImagingDocumentSetRequest",
            )
        )
        return Rad69Request((), ()), errors
    documents: list[ImageRequest] = []
    studies = element.findall(_STUDY)
    if not studies:
        errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "the request holds no StudyRequest"))
    for study in studies:
        study_uid = (study.get("studyInstanceUID") or "").strip()
        series_items = study.findall(_SERIES)
        if not series_items:
            errors.append(
                RegistryError(ErrorCode.REPOSITORY_ERROR, f"StudyRequest {study_uid!r} holds no SeriesRequest", study_uid)
            )
        for series in series_items:
            series_uid = (series.get("seriesInstanceUID") or "").strip()
            items = series.findall(_DOCUMENT_REQUEST)
            if not items:
                errors.append(
                    RegistryError(
                        ErrorCode.REPOSITORY_ERROR, f"SeriesRequest {series_uid!r} holds no DocumentRequest", series_uid
                    )
                )
            for item in items:
                documents.append(
                    ImageRequest(
                        study_uid=study_uid,
                        series_uid=series_uid,
                        home=_text(item, _HOME) or None,
                        repository_id=_text(item, _REPOSITORY) or "",
                        document_id=_text(item, _DOCUMENT_ID) or "",
                    )
                )
    syntaxes: tuple[str, ...] = ()
    ts_list = element.find(_TS_LIST)
    if ts_list is None:
        errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "the request has no TransferSyntaxUIDList"))
    else:
        syntaxes = tuple(value for value in ((ts.text or "").strip() for ts in ts_list.findall(_TS)) if value)
        if not syntaxes:
            # Gazelle rad69 OCL: at least one non-empty TransferSyntaxUID (NIST 4811 case 08).
            errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "the TransferSyntaxUIDList has no non-empty TransferSyntaxUID"))
    return Rad69Request(tuple(documents), syntaxes), errors


def unknown_instance_error(uid: str) -> RegistryError:
    """RAD TF-3 §4.69.4.2.3 (ITI TF-2b §3.43.4.1.3): the answer for an instance this source
    does not hold (NIST 4811 case 02); location = the SOP Instance UID (RAD69-019)."""
    return RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, f"SOP Instance {uid} is not available here", uid)


def plan(
    request: Rad69Request,
    *,
    source_id: str,
    instances: Mapping[str, StoredInstance],
    choose: Callable[[str, Sequence[str]], str | None],
    new_content_id: Callable[[], str],
) -> tuple[list[Planned], list[RegistryError]]:
    """Decide each DocumentRequest: return it (in which syntax) or say why not.

    ``instances`` maps the requested SOP Instance UIDs this source holds to where they are;
    ``choose(stored_ts, requested)`` is :meth:`Transcoder.choose`.
    """
    planned: list[Planned] = []
    errors: list[RegistryError] = []
    if not request.transfer_syntaxes:
        return planned, errors  # parse_request already reported it: nothing can be encoded
    for doc in request.documents:
        uid = doc.document_id
        # NIST 4811 cases 05-07: empty UIDs are request errors (Gazelle rad69 OCL rules).
        if not doc.study_uid or not doc.series_uid:
            empty = " and ".join(
                name for name, value in (("studyInstanceUID", doc.study_uid), ("seriesInstanceUID", doc.series_uid)) if not value
            )
            errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, f"empty {empty} in the request for {uid or '(no uid)'}", uid))
            continue
        # RAD TF-3 §4.69.4.1.3 (ITI TF-2b §3.43.4.1.3): another source's documents (case 01).
        if doc.repository_id != source_id:
            errors.append(
                RegistryError(
                    ErrorCode.UNKNOWN_REPOSITORY_ID,
                    f"RepositoryUniqueId {doc.repository_id or '(empty)'} is not this Imaging Document Source "
                    f"({source_id}); {uid or '(no uid)'} not returned",
                    uid,
                )
            )
            continue
        if not uid:
            errors.append(RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, "a DocumentRequest has no DocumentUniqueId"))
            continue
        stored = instances.get(uid)
        # Cases 02-04: unknown, or not in the study / series it was asked under.
        if stored is None:
            errors.append(unknown_instance_error(uid))
            continue
        if stored.study_uid != doc.study_uid:
            errors.append(
                RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, f"SOP Instance {uid} is not in study {doc.study_uid}", uid)
            )
            continue
        if stored.series_uid != doc.series_uid:
            errors.append(
                RegistryError(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR, f"SOP Instance {uid} is not in series {doc.series_uid}", uid)
            )
            continue
        # RAD TF-3 §4.69.4.2.3 (RAD69-005): one of the requested syntaxes, or fail (cases 08/09).
        target = choose(stored.transfer_syntax, request.transfer_syntaxes)
        if target is None:
            errors.append(
                RegistryError(
                    ErrorCode.REPOSITORY_ERROR,
                    f"cannot encode {uid} (stored in {stored.transfer_syntax}) in requested transfer syntaxes "
                    f"{', '.join(request.transfer_syntaxes)}",
                    uid,
                )
            )
            continue
        planned.append(Planned(doc, stored, target, new_content_id()))
    return planned, errors


def response_status(planned: Sequence[object], errors: Sequence[RegistryError]) -> str:
    """RAD69-003 / ITI TF-2b §3.43.4.2.3: Success when all is returned, PartialSuccess when
    some is, Failure when none is."""
    if not planned:
        return ResponseStatus.FAILURE
    if any(e.is_error for e in errors):
        return ResponseStatus.PARTIAL_SUCCESS
    return ResponseStatus.SUCCESS


def build_response(planned: Sequence[Planned], errors: Sequence[RegistryError]) -> etree._Element:
    """The RetrieveDocumentSetResponse: RegistryResponse, then one DocumentResponse per instance."""
    root = etree.Element(RESPONSE, nsmap={"xds": NS_XDS})
    root.append(build_registry_response(list(errors), status=response_status(planned, errors)))
    for item in planned:
        response = etree.SubElement(root, _DOCUMENT_RESPONSE)
        # RAD TF-3 §4.69.4.2.2; NIST ids_2018-4820: HomeCommunityId only when it was sent.
        if item.request.home is not None:
            etree.SubElement(response, _HOME).text = item.request.home
        etree.SubElement(response, _REPOSITORY).text = item.request.repository_id
        etree.SubElement(response, _DOCUMENT_ID).text = item.request.document_id
        etree.SubElement(response, _MIME_TYPE).text = MIME_DICOM
        etree.SubElement(response, _DOCUMENT).append(xop_include(item.content_id))
    return root
