"""The Edge Server's Storage SCP (C-STORE) and Verification SCP (C-ECHO), on pynetdicom.

Every instance is written to the :class:`~imaging_source.dicomstore.DicomStore` exactly as it
arrived: the file is a File Meta Information header (:mod:`imaging_source.part10`) followed by
the received dataset bytes, in the presentation context's transfer syntax, uncopied; only the
header is parsed, pixel data never (performance-anchors §1.5). Every Storage SOP Class is accepted in every transfer syntax, so a
PACS can C-MOVE compressed studies here unchanged.

C-STORE statuses (PS3.4 §B.2.3): 0x0000 Success; 0xA700 Refused: Out of Resources (the disk
or the index failed); 0xC000 Error: Cannot understand (no Part 10 header, missing or non-UID
identifiers).

With an :class:`~imaging_source.intake.Intake` the handler only checks and writes the instance;
indexing happens in batches off the association (the Edge Server's default); without one, each
instance is indexed before its response.

Public API::

    StorageSCP(store, *, ae_title, host="127.0.0.1", port=11112, max_pdu=0,
               allowed_calling_aets=None, network_timeout=60.0, intake=None)
        .start() / .stop() / context manager; .port (bound port; 0 picks a free one)
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
from collections.abc import Collection
from typing import Any, Final

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy.exc import SQLAlchemyError

from imaging_source.dicomstore import DicomStore, InvalidInstance
from imaging_source.intake import Intake

__all__ = ["STATUS_CANNOT_UNDERSTAND", "STATUS_OUT_OF_RESOURCES", "STATUS_SUCCESS", "StorageSCP"]

log = logging.getLogger(__name__)

# PS3.4 Table B.2-1 (C-STORE status).
STATUS_SUCCESS: Final = 0x0000
STATUS_OUT_OF_RESOURCES: Final = 0xA700
STATUS_CANNOT_UNDERSTAND: Final = 0xC000


class _NoDelayServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with TCP_NODELAY on every accepted connection.

    A C-STORE-RSP is one small PDU; with Nagle's algorithm and the sender's delayed ACK each
    response waits ~40 ms (performance-anchors lesson 3: the setting matters on the SCP side).
    """

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


class StorageSCP:
    """A C-STORE + C-ECHO SCP that stores into ``store``; runs in pynetdicom's server threads."""

    def __init__(
        self,
        store: DicomStore,
        *,
        ae_title: str,
        host: str = "127.0.0.1",
        port: int = 11112,
        max_pdu: int = 0,
        allowed_calling_aets: Collection[str] | None = None,
        network_timeout: float = 60.0,
        intake: Intake | None = None,
    ) -> None:
        self.store = store
        self.intake = intake
        self.ae_title = ae_title
        self.host = host
        self._requested_port = port
        self._server: Any = None
        ae = AE(ae_title=ae_title)
        # PS3.7 §D.3.3.2: 0 = no limit on the PDUs the peer may send us (fewer, larger reads).
        ae.maximum_pdu_size = max_pdu
        ae.network_timeout = network_timeout
        ae.dimse_timeout = network_timeout
        ae.acse_timeout = network_timeout
        ae.maximum_associations = 32
        if allowed_calling_aets is not None:
            ae.require_calling_aet = list(allowed_calling_aets)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        self._ae = ae

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the free one chosen for port 0)."""
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    def _on_store(self, event: Any) -> int:
        """EVT_C_STORE: write the received bytes, index the header (PS3.4 §B.2.2)."""
        try:
            # The dataset as received (PS3.7 §9.1.1.1 Data Set), in the context's transfer
            # syntax; our File Meta goes in front of it (imaging_source.part10).
            dataset = event.request.DataSet
            transfer_syntax = str(event.context.transfer_syntax)
            source_ae = str(event.assoc.requestor.ae_title)
            if self.intake is not None:
                # Indexed in batches by the intake's thread.
                self.intake.submit_dataset(dataset, transfer_syntax=transfer_syntax, source_ae=source_ae)
            else:
                staged = self.store.stage_dataset(dataset, transfer_syntax=transfer_syntax, source_ae=source_ae)
                self.store.commit_staged([staged])
        except InvalidInstance as exc:
            log.warning("C-STORE from %s refused: %s", event.assoc.requestor.ae_title, exc)
            return STATUS_CANNOT_UNDERSTAND
        except (OSError, SQLAlchemyError, sqlite3.Error) as exc:
            log.error("C-STORE from %s failed: %s", event.assoc.requestor.ae_title, exc)
            return STATUS_OUT_OF_RESOURCES
        return STATUS_SUCCESS

    def start(self) -> None:
        """Listen (non-blocking: pynetdicom serves each association in its own thread)."""
        if self._server is not None:
            return
        server = self._ae.make_server(
            (self.host, self._requested_port),
            evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
            server_class=_NoDelayServer,
        )
        thread = threading.Thread(target=server.serve_forever, name=f"dicom-scp-{self.ae_title}", daemon=True)
        thread.start()
        # AssociationServer.shutdown() deregisters itself from its AE.
        self._ae._servers.append(server)
        self._server = server
        log.info("DICOM Storage SCP %s listening on %s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        """Stop listening and end the open associations."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()

    def __enter__(self) -> StorageSCP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
