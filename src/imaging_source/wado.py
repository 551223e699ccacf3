"""RAD-55 WADO Retrieve, the URI form (DICOM PS3.18 §6.2 "WADO-URI"; RAD TF-3 §4.55).

``GET /wado?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..&contentType=application/dicom
[&transferSyntax=..]`` returns the instance as a Part 10 file:

* as stored, byte for byte, when it is stored in the transfer syntax asked for (absent
  ``transferSyntax`` means Explicit VR Little Endian, PS3.18 §6.2.11; ``*`` means as stored);
  otherwise transcoded like RAD-69 (:mod:`imaging_source.transcode`) or 406 when impossible;
* 404 for an unknown object, or one that is not in the named series and study, or an empty
  UID (NIST ids_2018-4810);
* 400 for a malformed request (no or another requestType, a UID parameter missing or repeated);
* 406 when ``contentType`` does not accept ``application/dicom`` (absent, it means image/jpeg,
  PS3.18 §6.2.8, which this source does not render).

Public API::

    WadoEndpoint(store, transcoder)     # an ASGI endpoint for a Starlette Route
    parse_wado_query(params) -> WadoQuery     # raises WadoError(status, reason)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import anyio.to_thread
from pydicom.uid import ExplicitVRLittleEndian
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from imaging_source.dicomstore import DicomStore
from imaging_source.transcode import Transcoder
from xds.vocabulary import MIME_DICOM

__all__ = ["NOT_FOUND_REASON", "WadoEndpoint", "WadoError", "WadoQuery", "parse_wado_query"]

_REQUIRED: Final = ("studyUID", "seriesUID", "objectUID")
#: The reason of every 404 for an object this source does not hold (or will not show).
NOT_FOUND_REASON: Final = "no such object in that series and study"
_AS_STORED: Final = "*"


class WadoError(Exception):
    """A request answered with an HTTP error status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WadoQuery:
    """A checked WADO-URI request for one DICOM object."""

    study_uid: str
    series_uid: str
    object_uid: str
    transfer_syntax: str  # a UID, or "*" for as stored


def _accepts_dicom(values: Sequence[str]) -> bool:
    for value in values:
        for media in value.split(","):
            kind = media.split(";")[0].strip().lower()
            if kind in (MIME_DICOM, "application/*", "*/*"):
                return True
    return False


def parse_wado_query(params: QueryParams) -> WadoQuery:
    """Check the query parameters (PS3.18 §6.2); raises :class:`WadoError`."""
    if params.getlist("requestType") != ["WADO"]:
        raise WadoError(400, "requestType=WADO is required (PS3.18 §6.2.1)")
    values: dict[str, str] = {}
    for name in _REQUIRED:
        given = params.getlist(name)
        if len(given) != 1:
            raise WadoError(400, f"exactly one {name} parameter is required (PS3.18 §6.2.2-6.2.4)")
        values[name] = given[0].strip()
    content = params.getlist("contentType")
    if not content or not _accepts_dicom(content):
        raise WadoError(406, "this source serves contentType=application/dicom only")
    syntaxes = params.getlist("transferSyntax")
    if len(syntaxes) > 1:
        raise WadoError(400, "at most one transferSyntax parameter")
    transfer_syntax = syntaxes[0].strip() if syntaxes else ExplicitVRLittleEndian
    for name in _REQUIRED:
        # NIST ids_2018-4810: an empty UID names no object: 404.
        if not values[name]:
            raise WadoError(404, f"{name} is empty")
    return WadoQuery(values["studyUID"], values["seriesUID"], values["objectUID"], transfer_syntax or ExplicitVRLittleEndian)


class _DicomFileResponse(FileResponse):
    chunk_size = 1 << 20  # performance-anchors §2.1: 1 MiB reads, not 64 KiB


class WadoEndpoint:
    """The WADO-URI endpoint over a :class:`DicomStore`."""

    def __init__(self, store: DicomStore, transcoder: Transcoder) -> None:
        self.store = store
        self.transcoder = transcoder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._answer(request)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return PlainTextResponse("method not allowed\n", status_code=405, headers={"allow": "GET, HEAD"})
        try:
            query = parse_wado_query(request.query_params)
            stored = await anyio.to_thread.run_sync(self.store.instance, query.object_uid)
            if stored is None or stored.series_uid != query.series_uid or stored.study_uid != query.study_uid:
                raise WadoError(404, NOT_FOUND_REASON)
            if query.transfer_syntax == _AS_STORED:
                target = stored.transfer_syntax
            else:
                chosen = self.transcoder.choose(stored.transfer_syntax, [query.transfer_syntax])
                if chosen is None:
                    raise WadoError(406, f"cannot encode the object in {query.transfer_syntax}")
                target = chosen
        except WadoError as exc:
            return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
        filename = f"{stored.sop_uid}.dcm"
        headers = {"content-disposition": f'attachment; filename="{filename}"'}
        if target == stored.transfer_syntax:
            if not stored.path.is_file():
                return PlainTextResponse("the object's file is missing\n", status_code=404)
            return _DicomFileResponse(stored.path, media_type=MIME_DICOM, headers=headers)
        data = await anyio.to_thread.run_sync(self.transcoder.encode, stored.path, target)
        return Response(data, media_type=MIME_DICOM, headers=headers)
