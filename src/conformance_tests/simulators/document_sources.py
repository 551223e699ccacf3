"""The Document Repository (ITI-43) and Imaging Document Source (RAD-69) a consumer retrieves from.

Both answer from the consumer test data (:mod:`conformance_tests.data.consumer`): the repository
serves the documents by uniqueId, each Imaging Document Source the DICOM test instances
(:mod:`conformance_tests.data.dicom`) whose series its repositoryUniqueId is the Retrieve
Location UID of. Replies are always MTOM with each document an XOP part (ITI TF-2b §3.43.5;
xds-notes §1.4), the status Success, PartialSuccess or Failure by ITI TF-2b §3.43.4.2.3.

Each Imaging Document Source also answers RAD-55 WADO-URI GETs (:meth:`SourceResponder.wado`)
for the same instances, as Part 10 files (``contentType=application/dicom``).

Inside :meth:`RepositoryResponder.withholding` / :meth:`SourceResponder.withholding` the given
uniqueIds / SOP Instance UIDs are answered with XDSDocumentUniqueIdError (location = the id), or
by WADO with HTTP 404, as if they were not available.

Public API::

    RepositoryResponder(data)        # .handler, .withholding(*unique_ids)
    SourceResponder(data, source_id) # .handler, .wado (a Starlette endpoint), .withholding(*sop_uids)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from lxml import etree
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from conformance_tests.data.consumer import ConsumerTestData
from conformance_tests.data.dicom import TestInstance
from xds.errors import ErrorCode
from xds.http.server import SoapRequest, SoapResponse
from xds.soap import OutgoingPart, new_content_id, xop_include
from xds.vocabulary import MIME_DICOM, NS_RS, NS_XDS, NS_XDSI, Action, ResponseStatus, Severity

__all__ = ["RepositoryResponder", "SourceResponder"]

EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
#: DICOM PS3.18 (WADO-URI): the parameters a request must carry.
WADO_REQUIRED: Final = ("requestType", "studyUID", "seriesUID", "objectUID")


def _text(element: etree._Element, local: str) -> str:
    return (element.findtext(f"{{{NS_XDS}}}{local}") or "").strip()


class _Reply:
    """An xds:RetrieveDocumentSetResponse being put together (ITI TF-2b §3.43.4.2)."""

    def __init__(self) -> None:
        self.root = etree.Element(f"{{{NS_XDS}}}RetrieveDocumentSetResponse", nsmap={"xds": NS_XDS, "rs": NS_RS})
        self.status = etree.SubElement(self.root, f"{{{NS_RS}}}RegistryResponse")
        self.errors: list[tuple[str, str, str]] = []
        self.parts: list[OutgoingPart] = []

    def error(self, code: str, context: str, location: str) -> None:
        self.errors.append((code, context, location))

    def document(self, request: etree._Element, data: bytes, mime_type: str) -> None:
        item = etree.SubElement(self.root, f"{{{NS_XDS}}}DocumentResponse")
        home = _text(request, "HomeCommunityId")
        # ITI TF-2b §3.43.4.2.2: HomeCommunityId only when the request carried one.
        if home:
            etree.SubElement(item, f"{{{NS_XDS}}}HomeCommunityId").text = home
        etree.SubElement(item, f"{{{NS_XDS}}}RepositoryUniqueId").text = _text(request, "RepositoryUniqueId")
        etree.SubElement(item, f"{{{NS_XDS}}}DocumentUniqueId").text = _text(request, "DocumentUniqueId")
        etree.SubElement(item, f"{{{NS_XDS}}}mimeType").text = mime_type
        content_id = new_content_id("simulator.conformance")
        etree.SubElement(item, f"{{{NS_XDS}}}Document").append(xop_include(content_id))
        self.parts.append(OutgoingPart(content_id, mime_type, data))

    def response(self, action: str) -> SoapResponse:
        returned = len(self.parts)
        # ITI TF-2b §3.43.4.2.3: all -> Success, some -> PartialSuccess, none -> Failure.
        if not self.errors:
            status = ResponseStatus.SUCCESS
        elif returned:
            status = ResponseStatus.PARTIAL_SUCCESS
        else:
            status = ResponseStatus.FAILURE
        self.status.set("status", status)
        if self.errors:
            listing = etree.SubElement(self.status, f"{{{NS_RS}}}RegistryErrorList", highestSeverity=Severity.ERROR)
            for code, context, location in self.errors:
                etree.SubElement(
                    listing, f"{{{NS_RS}}}RegistryError", errorCode=code, codeContext=context, location=location,
                    severity=Severity.ERROR,
                )  # fmt: skip
        return SoapResponse(action=action, body=self.root, attachments=self.parts, mtom=True)


class _Withholding:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._withheld: frozenset[str] = frozenset()

    @contextmanager
    def withholding(self, *ids: str) -> Iterator[None]:
        """Within the block, answer these ids with XDSDocumentUniqueIdError."""
        with self._lock:
            self._withheld = frozenset(ids)
        try:
            yield
        finally:
            with self._lock:
                self._withheld = frozenset()

    @property
    def withheld(self) -> frozenset[str]:
        with self._lock:
            return self._withheld


class RepositoryResponder(_Withholding):
    """ITI-43 over the consumer test documents."""

    def __init__(self, data: ConsumerTestData, repository_id: str) -> None:
        super().__init__()
        self.data = data
        self.repository_id = repository_id

    async def handler(self, request: SoapRequest) -> SoapResponse:
        """ITI-43 (ITI TF-2b §3.43.4.1.3): each DocumentRequest answered on its own."""
        reply = _Reply()
        withheld = self.withheld
        for item in request.body.iterfind(f"{{{NS_XDS}}}DocumentRequest"):
            repository, uid = _text(item, "RepositoryUniqueId"), _text(item, "DocumentUniqueId")
            document = self.data.by_unique_id(uid)
            if repository != self.repository_id:
                reply.error(ErrorCode.UNKNOWN_REPOSITORY_ID.value, f"this repository is {self.repository_id}", repository)
            elif document is None or uid in withheld:
                reply.error(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, f"document {uid} is not available", uid)
            else:
                reply.document(item, document.content, document.mime_type)
        return reply.response(Action.ITI43_RESPONSE)


class SourceResponder(_Withholding):
    """RAD-69 for the test instances whose series this source serves."""

    def __init__(self, data: ConsumerTestData, source_id: str) -> None:
        super().__init__()
        self.data = data
        self.source_id = source_id

    def _served(self, study_uid: str, series_uid: str, sop_uid: str) -> TestInstance | None:
        for instance in self.data.referenced_instances:
            if (instance.study_uid, instance.series_uid, instance.sop_uid) == (study_uid, series_uid, sop_uid):
                return instance if self.data.location_of(instance) == self.source_id else None
        return None

    async def handler(self, request: SoapRequest) -> SoapResponse:
        """RAD-69 (RAD TF-3 §4.69.4.1.3): Study -> Series -> DocumentRequest; the stored Explicit
        VR Little Endian file when that syntax is accepted, else XDSRepositoryError."""
        reply = _Reply()
        withheld = self.withheld
        syntaxes: Sequence[str] = [
            (e.text or "").strip()
            for e in request.body.iterfind(f"{{{NS_XDSI}}}TransferSyntaxUIDList/{{{NS_XDSI}}}TransferSyntaxUID")
        ]
        for study in request.body.iterfind(f"{{{NS_XDSI}}}StudyRequest"):
            for series in study.iterfind(f"{{{NS_XDSI}}}SeriesRequest"):
                for item in series.iterfind(f"{{{NS_XDS}}}DocumentRequest"):
                    repository, uid = _text(item, "RepositoryUniqueId"), _text(item, "DocumentUniqueId")
                    found = self._served(study.get("studyInstanceUID", ""), series.get("seriesInstanceUID", ""), uid)
                    if repository != self.source_id:
                        reply.error(ErrorCode.UNKNOWN_REPOSITORY_ID.value, f"this source is {self.source_id}", repository)
                    elif found is None or uid in withheld:
                        reply.error(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR.value, f"instance {uid} is not available here", uid)
                    elif EXPLICIT_VR_LITTLE_ENDIAN not in syntaxes:
                        # RAD TF-3 §4.69.4.1.3: a syntax the source cannot produce fails the item.
                        reply.error(
                            ErrorCode.REPOSITORY_ERROR.value,
                            f"cannot encode {uid} in {', '.join(syntaxes) or 'no transfer syntax'}", uid,
                        )  # fmt: skip
                    else:
                        reply.document(item, found.data, MIME_DICOM)
        return reply.response(Action.RAD69_RESPONSE)

    async def wado(self, request: Request) -> Response:
        """RAD-55 WADO-URI (RAD TF-3 §4.55; DICOM PS3.18 WADO-URI): ``requestType=WADO`` with
        studyUID, seriesUID and objectUID; the Part 10 file when ``contentType`` asks for
        ``application/dicom``. A missing parameter is 400, an instance not served here 404
        (xds-notes §1.1), a content type the simulator cannot render (e.g. the image/jpeg a
        request without contentType defaults to) 406."""
        params = request.query_params
        missing = [name for name in WADO_REQUIRED if not params.get(name)]
        if missing or params.get("requestType") != "WADO":
            detail = f"missing {', '.join(missing)}" if missing else f"requestType {params.get('requestType')!r}"
            return PlainTextResponse(f"bad WADO-URI request: {detail}", status_code=400)
        found = self._served(params["studyUID"], params["seriesUID"], params["objectUID"])
        if found is None or params["objectUID"] in self.withheld:
            return PlainTextResponse("no such instance at this source", status_code=404)
        wanted = [t.split(";")[0].strip() for t in params.get("contentType", "").split(",") if t.strip()]
        if MIME_DICOM not in wanted:
            return PlainTextResponse(
                f"this source renders no {', '.join(wanted) or 'image/jpeg (the default)'}; ask for {MIME_DICOM}",
                status_code=406,
            )
        syntax = params.get("transferSyntax")
        if syntax and syntax != EXPLICIT_VR_LITTLE_ENDIAN:
            return PlainTextResponse(f"cannot encode in {syntax}", status_code=406)
        return Response(found.data, media_type=MIME_DICOM)
