"""The Imaging Document Source's RAD-69 handler: the I/O around :mod:`imaging_source.rad69`.

Instances are looked up in one query per 900 UIDs (in a worker thread); each returned instance
is one MTOM part, streamed from its file when it goes out as stored, or transcoded lazily (one
instance in memory at a time, as the part is sent) otherwise, so a response of any batch size
holds no more than one instance in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread

from imaging_source import rad69
from imaging_source.dicomstore import DicomStore
from imaging_source.model import StoredInstance
from imaging_source.transcode import Transcoder
from xds.errors import ErrorCode, RegistryError
from xds.http.server import SoapRequest, SoapResponse
from xds.soap.mtom_encode import OutgoingPart, new_content_id
from xds.vocabulary import MIME_DICOM, Action

__all__ = ["ImagingDocumentSource"]

log = logging.getLogger(__name__)


class ImagingDocumentSource:
    """RAD-69 over a :class:`DicomStore`; ``source_id`` is this source's repositoryUniqueId."""

    def __init__(self, store: DicomStore, *, source_id: str, transcoder: Transcoder | None = None) -> None:
        self.store = store
        self.source_id = source_id
        self.transcoder = transcoder or Transcoder()

    def _lookup(self, request: rad69.Rad69Request) -> dict[str, StoredInstance]:
        found = self.store.instances(d.document_id for d in request.documents if d.document_id)
        # An index row whose file vanished (disk trouble) is not returnable: report it, do not
        # fail half-way through a streamed response.
        return {uid: item for uid, item in found.items() if item.path.is_file()}

    def _parts(self, planned: list[rad69.Planned]) -> list[OutgoingPart]:
        parts = []
        for item in planned:
            if item.as_stored:
                parts.append(OutgoingPart(item.content_id, MIME_DICOM, item.instance.path))
            else:
                parts.append(OutgoingPart(item.content_id, MIME_DICOM, self._lazy(item.instance.path, item.transfer_syntax)))
        return parts

    def _lazy(self, path: Path, transfer_syntax: str) -> Iterator[bytes]:
        yield from self.transcoder.chunks(path, transfer_syntax)

    async def retrieve(self, request: SoapRequest) -> SoapResponse:
        """RAD TF-3 §4.69: Retrieve Imaging Document Set."""
        parsed, errors = rad69.parse_request(request.body)
        instances = await anyio.to_thread.run_sync(self._lookup, parsed) if parsed.documents else {}
        planned, more = rad69.plan(
            parsed,
            source_id=self.source_id,
            instances=instances,
            choose=self.transcoder.choose,
            new_content_id=new_content_id,
        )
        errors = errors + more
        if not parsed.documents and not errors:
            errors.append(RegistryError(ErrorCode.REPOSITORY_ERROR, "the request names no document"))
        log.info("RAD-69: %d requested, %d returned, %d errors", len(parsed.documents), len(planned), len(errors))
        return SoapResponse(
            action=Action.RAD69_RESPONSE,
            body=rad69.build_response(planned, errors),
            attachments=self._parts(planned),
            mtom=True,
        )
