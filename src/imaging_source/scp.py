"""The Edge Server's Storage SCP (C-STORE) and Verification SCP (C-ECHO), on asyncio.

The Upper Layer (:mod:`imaging_source.dul`) and the command sets (:mod:`imaging_source.dimse`)
are sans-I/O; this module is their adapter: one event loop (uvloop when installed) in its own
thread, one task per association, TCP_NODELAY on every accepted socket (performance-anchors
lesson 3: a C-STORE-RSP is one small PDU, and Nagle plus delayed ACK cost ~40 ms each).

Every instance is written as it arrives: the data set's PDVs are appended to a
:class:`~imaging_source.dicomstore.StagingFile` behind our File Meta Information
(:mod:`imaging_source.part10`), so no instance is ever held whole in memory and the bytes are
kept exactly as received, in the presentation context's transfer syntax; only the header is
parsed. Every Storage SOP Class is accepted in every transfer syntax, so a PACS can C-MOVE
compressed studies here unchanged.

C-STORE statuses (PS3.4 §B.2.3): 0x0000 Success; 0xA700 Refused: Out of Resources (the disk
or the index failed); 0xA900 Error: Data Set does not match SOP Class; 0xC000 Error: Cannot
understand (no readable header, missing or non-UID identifiers).

With an :class:`~imaging_source.intake.Intake` the association only checks and writes the
instance; indexing happens in batches off the association (the Edge Server's default);
without one, each instance is indexed before its response.

Public API::

    StorageSCP(store, *, ae_title, host="127.0.0.1", port=11112, max_pdu=0,
               allowed_calling_aets=None, network_timeout=60.0, intake=None,
               artim_timeout=30.0, max_associations=32)
        .start() / .stop() / context manager; .port (bound port; 0 picks a free one)
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy.exc import SQLAlchemyError

from imaging_source import dimse, dul
from imaging_source.dicomstore import DatasetMismatch, DicomStore, InvalidInstance, StagingFile
from imaging_source.intake import Intake
from imaging_source.part10 import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION

__all__ = [
    "STATUS_CANNOT_UNDERSTAND",
    "STATUS_MISMATCH",
    "STATUS_OUT_OF_RESOURCES",
    "STATUS_SUCCESS",
    "StorageSCP",
]

log = logging.getLogger(__name__)

# PS3.4 Table B.2-1 (C-STORE status); PS3.7 Annex C (general statuses).
STATUS_SUCCESS: Final = 0x0000
STATUS_OUT_OF_RESOURCES: Final = 0xA700
STATUS_MISMATCH: Final = 0xA900
STATUS_CANNOT_UNDERSTAND: Final = 0xC000
STATUS_SOP_CLASS_NOT_SUPPORTED: Final = 0x0122
STATUS_UNRECOGNIZED_OPERATION: Final = 0x0211

#: The abstract syntaxes we accept: every Storage SOP Class pynetdicom knows, and Verification.
SUPPORTED_ABSTRACT_SYNTAXES: Final = frozenset(
    [str(c.abstract_syntax) for c in AllStoragePresentationContexts] + [str(Verification)]
)
#: The transfer syntaxes we accept: all of them (instances are stored as received).
SUPPORTED_TRANSFER_SYNTAXES: Final = frozenset(str(ts) for ts in ALL_TRANSFER_SYNTAXES)
#: A command set larger than this is not a C-STORE or C-ECHO request.
_MAX_COMMAND: Final = 64 * 1024
#: Received data waiting for the association task before the socket stops being read.
_PAUSE_AT: Final = 8 * 1024 * 1024
_RESUME_AT: Final = 1024 * 1024
#: Temporary files kept ready for the next instances.
_PREPARED_FILES: Final = 4
#: Prepared files older than this are replaced (DicomStore.sweep_tmp removes old ones).
_PREPARED_MAX_AGE: Final = 600.0


@dataclass(frozen=True, slots=True)
class _Broken:
    """The parser refused the input: abort with this provider reason."""

    reason: int


@dataclass(slots=True)
class _Message:
    """A C-STORE (or other) request whose data set is arriving."""

    command: dimse.Command
    context_id: int
    staging: StagingFile | None
    status: int  # the status to answer with when the data set is not to be stored


class _Closed(Exception):
    """The transport connection is gone."""


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Association(asyncio.Protocol):
    """One transport connection: the acceptor side of PS3.8's state machine, simplified to
    what a Storage SCP needs (Sta2 awaiting A-ASSOCIATE-RQ, Sta6 established, Sta13 closing)."""

    def __init__(self, scp: StorageSCP) -> None:
        self.scp = scp
        self.parser = dul.PduParser()
        self.events: collections.deque[dul.Event | _Broken] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False
        self.pending = 0
        self.waiter: asyncio.Future[None] | None = None
        self.peer_max_pdu = 0
        self.contexts: dict[int, tuple[str, str]] = {}  # accepted id -> (abstract, transfer syntax)
        self.calling_ae = ""
        self.command = bytearray()
        self.message: _Message | None = None
        self.loop_time = asyncio.get_running_loop().time
        self.last_activity = self.loop_time()

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.scp._start_association(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.loop_time()
        try:
            events = self.parser.feed(data)
        except dul.ProtocolError as exc:
            log.warning("DICOM peer broke the protocol: %s", exc)
            self.events.append(_Broken(exc.reason))
            self._wake()
            return
        message = self.message
        for event in events:
            if (
                not self.events
                and isinstance(event, dul.PDataChunk)
                and message is not None
                and not event.command
                and not event.last
                and event.context_id == message.context_id
            ):
                # The task waits for this very data set piece: write it now, sparing a task
                # wake-up per PDU (a sender's 16 KiB PDUs make ~30 per CT image).
                self._write_chunk(message, event.data)
                continue
            if isinstance(event, dul.PDataChunk):
                self.pending += len(event.data)
            self.events.append(event)
        if not self.events:
            return
        if self.pending > _PAUSE_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # -- the association task ------------------------------------------------------------------
    async def next_event(self, timeout: float, *, artim: bool = False) -> dul.Event | _Broken:
        """The next event; raises TimeoutError or _Closed. The network timeout counts from the
        last bytes received; ARTIM (``artim``) from the call, whatever trickles in meanwhile."""
        loop = asyncio.get_running_loop()
        while not self.events:
            if self.closed:
                raise _Closed
            self.waiter = loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError:
                # Data set pieces written straight from data_received count as activity.
                if not artim and loop.time() - self.last_activity < timeout:
                    continue
                raise
        event = self.events.popleft()
        if isinstance(event, dul.PDataChunk):
            self.pending -= len(event.data)
            if self.paused and self.pending < _RESUME_AT and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
        return event

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def abort(self, reason: int, *, source: int = dul.ABORT_SOURCE_PROVIDER) -> None:
        """Send A-ABORT and close (PS3.8 §9.2.4 AA-1 / §7.3)."""
        self.send(dul.encode_abort(dul.Abort(source, reason)))
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def wait_peer_close(self) -> None:
        """Sta13: after A-ASSOCIATE-RJ or A-RELEASE-RP the requestor closes; ARTIM bounds the wait
        (PS3.8 §9.1.5)."""
        try:
            while True:
                event = await self.next_event(self.scp.artim_timeout, artim=True)
                if isinstance(event, _Broken):
                    return
        except (_Closed, TimeoutError):
            return

    async def run(self) -> None:
        try:
            await self._run()
        except _Closed:
            pass
        except TimeoutError:
            log.info("DICOM association from %r timed out", self.calling_ae or "?")
            self.abort(dul.ABORT_REASON_NOT_SPECIFIED)
        finally:
            if self.message is not None and self.message.staging is not None:
                self.message.staging.discard()
            self.message = None
            self.close()

    async def _run(self) -> None:
        try:
            # PS3.8 §9.1.5: ARTIM runs from the transport connection until A-ASSOCIATE-RQ;
            # on expiry the connection is closed, no A-ABORT (PS3.8 §9.2 AA-2).
            event = await self.next_event(self.scp.artim_timeout, artim=True)
        except TimeoutError:
            self.close()
            return
        if isinstance(event, _Broken):
            self.abort(event.reason)
            return
        if not isinstance(event, dul.AssociateRQ):
            # PS3.8 §9.2 state table, Sta2: any other PDU -> AA-1 (A-ABORT).
            self.abort(dul.ABORT_REASON_UNEXPECTED_PDU)
            return
        if not self._negotiate(event):
            await self.wait_peer_close()
            return
        while True:
            event = await self.next_event(self.scp.network_timeout)
            if isinstance(event, dul.PDataChunk):
                if not await self._on_pdata(event):
                    return
            elif isinstance(event, dul.ReleaseRQ):
                # PS3.8 §7.2: the acceptor answers A-RELEASE-RP and the requestor closes.
                self.send(dul.encode_release_rp())
                await self.wait_peer_close()
                return
            elif isinstance(event, dul.Abort):
                log.info("DICOM association from %s aborted by the peer (%d, %d)", self.calling_ae, event.source, event.reason)
                return
            elif isinstance(event, _Broken):
                self.abort(event.reason)
                return
            else:
                self.abort(dul.ABORT_REASON_UNEXPECTED_PDU)
                return

    # -- association negotiation ---------------------------------------------------------------
    def _reject(self, result: int, source: int, reason: int) -> bool:
        self.send(dul.encode_associate_rj(dul.AssociateRJ(result, source, reason)))
        return False

    def _negotiate(self, rq: dul.AssociateRQ) -> bool:
        """Answer A-ASSOCIATE-RQ with AC or RJ (PS3.8 §7.1.1); True when established."""
        self.calling_ae = rq.calling_ae
        scp = self.scp
        if not rq.protocol_version & 0x0001:
            # PS3.8 §9.3.2: bit 0 of the protocol version must be set.
            return self._reject(dul.RJ_PERMANENT, dul.RJ_SOURCE_ACSE, dul.RJ_ACSE_PROTOCOL_VERSION)
        if rq.application_context != dul.APPLICATION_CONTEXT:
            # PS3.7 Annex A.2.1: the only DICOM application context name.
            return self._reject(dul.RJ_PERMANENT, dul.RJ_SOURCE_USER, dul.RJ_USER_CONTEXT_NAME)
        if scp.check_called_ae and rq.called_ae.strip() != scp.ae_title.strip():
            # PS3.8 §9.3.4 (A-ASSOCIATE-RJ reason 7): the association is for another AE.
            log.warning("DICOM association for called AE %r (we are %r) rejected", rq.called_ae, scp.ae_title)
            return self._reject(dul.RJ_PERMANENT, dul.RJ_SOURCE_USER, dul.RJ_USER_CALLED_AE)
        if scp.allowed_calling_aets is not None and rq.calling_ae not in scp.allowed_calling_aets:
            log.warning("DICOM association from unknown calling AE %r rejected", rq.calling_ae)
            return self._reject(dul.RJ_PERMANENT, dul.RJ_SOURCE_USER, dul.RJ_USER_CALLING_AE)
        if scp._active > scp.max_associations:
            # PS3.8 §9.3.4: transient, service-provider (presentation), local limit exceeded.
            return self._reject(dul.RJ_TRANSIENT, dul.RJ_SOURCE_PRESENTATION, dul.RJ_PRESENTATION_LOCAL_LIMIT)
        results = []
        for pc in rq.contexts:
            if pc.abstract_syntax not in SUPPORTED_ABSTRACT_SYNTAXES:
                result, chosen = dul.PC_ABSTRACT_SYNTAX_NOT_SUPPORTED, ""
            else:
                # The proposer's first acceptable transfer syntax (PS3.8 §9.3.3.2).
                chosen = next((ts for ts in pc.transfer_syntaxes if ts in SUPPORTED_TRANSFER_SYNTAXES), "")
                result = dul.PC_ACCEPTANCE if chosen else dul.PC_TRANSFER_SYNTAXES_NOT_SUPPORTED
            if result == dul.PC_ACCEPTANCE:
                self.contexts[pc.context_id] = (pc.abstract_syntax, chosen)
            shown = chosen or (pc.transfer_syntaxes[0] if pc.transfer_syntaxes else "1.2.840.10008.1.2")
            results.append(dul.PresentationContextAC(pc.context_id, result, shown))
        # PS3.7 Annex D.3.3.2: we send PDUs no longer than the peer's maximum (0 = unlimited).
        self.peer_max_pdu = rq.max_length
        # Role selection, asynchronous operations and extended negotiation items
        # (PS3.7 Annex D.3.3.3-6) are not answered: the defaults apply.
        ac = dul.AssociateAC(
            called_ae=rq.called_ae, calling_ae=rq.calling_ae, results=tuple(results), max_length=scp.max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID, implementation_version=IMPLEMENTATION_VERSION,
        )
        self.send(dul.encode_associate_ac(ac))
        return True

    # -- DIMSE -----------------------------------------------------------------------------------
    def _respond(self, context_id: int, command: bytes) -> None:
        self.send(b"".join(dul.encode_pdata(context_id, command, command=True, max_pdu=self.peer_max_pdu)))

    def _write_chunk(self, message: _Message, data: memoryview | bytes) -> None:
        """Append a data set piece to the instance's file (a failed write: Out of Resources)."""
        if message.staging is None:
            return
        try:
            message.staging.write(data)
        except OSError as exc:
            log.error("C-STORE from %s: writing failed: %s", self.calling_ae, exc)
            message.staging.discard()
            message.staging, message.status = None, STATUS_OUT_OF_RESOURCES

    async def _on_pdata(self, chunk: dul.PDataChunk) -> bool:
        """One piece of a command or data set; False when the association was aborted."""
        context = self.contexts.get(chunk.context_id)
        if context is None:
            # PS3.8 §9.3.5.1: the id must name an accepted presentation context.
            log.warning("DICOM peer %s used presentation context %d, not accepted", self.calling_ae, chunk.context_id)
            self.abort(dul.ABORT_REASON_INVALID_PARAMETER)
            return False
        if chunk.command:
            if self.message is not None or len(self.command) + len(chunk.data) > _MAX_COMMAND:
                self.abort(dul.ABORT_REASON_UNEXPECTED_PARAMETER)
                return False
            self.command += chunk.data
            if chunk.last:
                return self._on_command(chunk.context_id, context)
            return True
        message = self.message
        if message is None or message.context_id != chunk.context_id:
            # PS3.7 §9.3.1: a data set follows its command on the same presentation context.
            self.abort(dul.ABORT_REASON_UNEXPECTED_PARAMETER)
            return False
        self._write_chunk(message, chunk.data)
        if chunk.last:
            self.message = None
            status = message.status
            if message.staging is not None:
                status = await self.scp._complete(message.staging, self.calling_ae)
            self._respond(chunk.context_id, dimse.encode_store_rsp(
                message_id=message.command.message_id, sop_class_uid=message.command.affected_sop_class_uid,
                sop_instance_uid=message.command.affected_sop_instance_uid, status=status,
            ) if message.command.command_field == dimse.C_STORE_RQ else dimse.encode_response(
                command_field=message.command.command_field | 0x8000, message_id=message.command.message_id,
                status=status, sop_class_uid=message.command.affected_sop_class_uid,
            ))
        return True

    def _on_command(self, context_id: int, context: tuple[str, str]) -> bool:
        try:
            command = dimse.decode_command(self.command)
        except dimse.DimseError as exc:
            log.warning("DICOM peer %s sent an unreadable command: %s", self.calling_ae, exc)
            self.abort(dul.ABORT_REASON_INVALID_PARAMETER)
            return False
        finally:
            self.command.clear()
        abstract, transfer_syntax = context
        if command.command_field == dimse.C_ECHO_RQ and not command.has_data_set:
            # PS3.7 §9.3.5: C-ECHO-RSP with Success.
            self._respond(context_id, dimse.encode_echo_rsp(
                message_id=command.message_id, sop_class_uid=command.affected_sop_class_uid or abstract,
                status=STATUS_SUCCESS))
            return True
        if command.command_field == dimse.C_CANCEL_RQ:
            return True  # PS3.7 §9.3.2.3: nothing to cancel; C-CANCEL has no response
        if command.command_field != dimse.C_STORE_RQ:
            if command.has_data_set:
                self.message = _Message(command, context_id, None, STATUS_UNRECOGNIZED_OPERATION)
            else:
                self._respond(context_id, dimse.encode_response(
                    command_field=command.command_field | 0x8000, message_id=command.message_id,
                    status=STATUS_UNRECOGNIZED_OPERATION, sop_class_uid=command.affected_sop_class_uid))
            return True
        if not command.has_data_set:
            self._respond(context_id, dimse.encode_store_rsp(
                message_id=command.message_id, sop_class_uid=command.affected_sop_class_uid,
                sop_instance_uid=command.affected_sop_instance_uid, status=STATUS_CANNOT_UNDERSTAND))
            return True
        self.message = _Message(command, context_id, None, STATUS_SUCCESS)
        if command.affected_sop_class_uid != abstract or abstract == str(Verification):
            # PS3.7 §9.1.1.1: the SOP Class of a C-STORE is the context's abstract syntax.
            self.message.status = STATUS_SOP_CLASS_NOT_SUPPORTED
            return True
        prepared = self.scp._take_prepared()
        try:
            self.message.staging = self.scp.store.open_staging(
                sop_class_uid=command.affected_sop_class_uid, sop_instance_uid=command.affected_sop_instance_uid,
                transfer_syntax=transfer_syntax, source_ae=self.calling_ae, prepared=prepared,
            )
        except InvalidInstance as exc:
            log.warning("C-STORE from %s refused: %s", self.calling_ae, exc)
            self.message.status = STATUS_CANNOT_UNDERSTAND
            if prepared is not None:
                self.scp._prepared.append((*prepared, time.monotonic()))
        except OSError as exc:
            log.error("C-STORE from %s failed: %s", self.calling_ae, exc)
            self.message.status = STATUS_OUT_OF_RESOURCES
        return True


class StorageSCP:
    """A C-STORE + C-ECHO SCP that stores into ``store``; serves in its own thread and event loop."""

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
        artim_timeout: float = 30.0,
        max_associations: int = 32,
        check_called_ae: bool = True,
    ) -> None:
        self.store = store
        self.check_called_ae = check_called_ae
        self.intake = intake
        self.ae_title = ae_title
        self.host = host
        # PS3.7 Annex D.3.3.2: what we advertise; 0 = no limit on the PDUs the peer sends us.
        self.max_pdu = max_pdu
        self.allowed_calling_aets = frozenset(allowed_calling_aets) if allowed_calling_aets is not None else None
        self.network_timeout = network_timeout
        self.artim_timeout = artim_timeout
        self.max_associations = max_associations
        self._requested_port = port
        self._bound_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._associations: set[_Association] = set()
        self._active = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        # Temporary files made ahead of the C-STOREs (file creation is slow on some filesystems).
        self._prepared: collections.deque[tuple[Path, int, float]] = collections.deque()
        self._preparing = 0

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the free one chosen for port 0)."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    # -- the store side (executor threads) -----------------------------------------------------
    async def _complete(self, staging: StagingFile, source_ae: str) -> int:
        """Finish a received instance and hand it to the index; its C-STORE status (PS3.4 §B.2.3).

        Only the blocking steps leave the event loop's thread: the fsync, and indexing when there
        is no intake. Header checks and the hand-over to the intake stay in it, which keeps the
        other threads from competing for the GIL on every instance.
        """
        loop = asyncio.get_running_loop()
        try:
            if self.store.fsync:
                await loop.run_in_executor(self._executor, staging.close)
            staged = staging.finish()
            if self.intake is not None:
                # Indexed in batches by the intake's thread; when its queue is full, wait for room
                # off the loop (back-pressure on this association only, not on every one).
                if not self.intake.offer_staged(staged):
                    await loop.run_in_executor(self._executor, self.intake.submit_staged, staged)
            else:
                await loop.run_in_executor(self._executor, self.store.commit_staged, [staged])
        except DatasetMismatch as exc:
            log.warning("C-STORE from %s refused: %s", source_ae, exc)
            return STATUS_MISMATCH
        except InvalidInstance as exc:
            log.warning("C-STORE from %s refused: %s", source_ae, exc)
            return STATUS_CANNOT_UNDERSTAND
        except (OSError, SQLAlchemyError, sqlite3.Error, RuntimeError) as exc:  # RuntimeError: intake stopped
            staging.discard()
            log.error("C-STORE from %s failed: %s", source_ae, exc)
            return STATUS_OUT_OF_RESOURCES
        return STATUS_SUCCESS

    # -- the loop side --------------------------------------------------------------------------
    def _take_prepared(self) -> tuple[Path, int] | None:
        """A temporary file made ahead (None: none ready), and more made in a worker thread."""
        prepared = None
        while self._prepared and prepared is None:
            path, fd, made = self._prepared.popleft()
            if time.monotonic() - made < _PREPARED_MAX_AGE:
                prepared = (path, fd)
            else:  # DicomStore.sweep_tmp removes old staging files: never use a stale one
                os.close(fd)
                path.unlink(missing_ok=True)
        if self._preparing + len(self._prepared) < _PREPARED_FILES and self._loop is not None:
            self._preparing += 1
            future = self._loop.run_in_executor(self._executor, self.store.prepare_staging_file)
            future.add_done_callback(self._prepared_done)
        return prepared

    def _prepared_done(self, future: asyncio.Future[tuple[Path, int]]) -> None:
        self._preparing -= 1
        if not future.cancelled() and future.exception() is None:
            self._prepared.append((*future.result(), time.monotonic()))

    def _drop_prepared(self) -> None:
        while self._prepared:
            path, fd, _ = self._prepared.popleft()
            os.close(fd)
            path.unlink(missing_ok=True)

    def _start_association(self, association: _Association) -> None:
        assert self._loop is not None
        self._associations.add(association)
        self._active += 1
        task = self._loop.create_task(association.run())
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            self._associations.discard(association)
            self._active -= 1
            if not finished.cancelled() and finished.exception() is not None:
                log.error("DICOM association failed", exc_info=finished.exception())

        task.add_done_callback(done)

    def _serve(self, started: threading.Event, failure: list[BaseException]) -> None:
        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Association(self), self.host, self._requested_port, reuse_address=True)
            )
            self._bound_port = int(self._server.sockets[0].getsockname()[1])
        except BaseException as exc:
            failure.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for association in list(self._associations):
            association.abort(dul.ABORT_REASON_NOT_SPECIFIED)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        while self._preparing:
            await asyncio.sleep(0.01)
        self._drop_prepared()

    def start(self) -> None:
        """Listen (non-blocking: the associations are served in the SCP's own thread)."""
        if self._thread is not None:
            return
        started = threading.Event()
        failure: list[BaseException] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"dicom-store-{self.ae_title}")
        self._thread = threading.Thread(target=self._serve, args=(started, failure), name=f"dicom-scp-{self.ae_title}", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._executor.shutdown()
            raise failure[0]
        log.info("DICOM Storage SCP %s listening on %s:%d", self.ae_title, self.host, self.port)

    def stop(self) -> None:
        """Stop listening and end the open associations (A-ABORT)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop = self._loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._server = None
        self._loop = None
        self._bound_port = None

    def __enter__(self) -> StorageSCP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
