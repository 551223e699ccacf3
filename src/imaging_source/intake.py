"""The C-STORE intake pipeline: each instance is checked and written to ``incoming/`` in the
association's thread, and indexed in batches by one background thread.

Why: the SCP answers one C-STORE at a time per association, so everything done before the
response is latency the sender waits for (performance-anchors §1.5: pynetdicom's protocol alone cost ~4-5 ms
per instance). The handler keeps what decides the C-STORE status (PS3.4 §B.2.3): parsing the
header (Cannot understand) and writing the bytes, fsynced when configured (Out of Resources).
The index transaction, the rename into ``studies/`` and the arrival notices follow, many
instances per transaction.

Crash safety: the index is committed before the files leave ``incoming/``, and
:meth:`DicomStore.recover_incoming` indexes and places whatever a stop or crash left there, so
an instance answered with Success is never lost from the index once its bytes were on disk.
Readers (RAD-69, WADO, C-MOVE waits) see an instance a few milliseconds after its C-STORE
response; :meth:`Intake.flush` waits for that.

Public API::

    Intake(store, *, max_batch=256, max_pending=1024)
        .start() / .stop() / context manager
        .submit(data) -> InstanceHeader     # Part 10 bytes; raises InvalidInstance, OSError
        .submit_dataset(dataset, *, transfer_syntax, source_ae='') -> InstanceHeader
        .submit_staged(staged) -> InstanceHeader    # already in incoming/ (DicomStore.open_staging)
        .flush(timeout=None) -> bool        # everything submitted so far is indexed
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from typing import Final

from imaging_source.dicomstore import DicomStore, Staged
from imaging_source.model import InstanceHeader

__all__ = ["Intake"]

log = logging.getLogger(__name__)

_STOP: Final = object()
#: Attempts to index a batch before it is left in incoming/ for the next start.
_ATTEMPTS: Final = 5


class Intake:
    """Stages instances synchronously and indexes them in batches in a background thread."""

    def __init__(self, store: DicomStore, *, max_batch: int = 256, max_pending: int = 1024) -> None:
        self.store = store
        self.max_batch = max_batch
        # Bounded: a sender faster than the index waits in submit() (back-pressure).
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        self._submitted = 0
        self._finished = 0

    def start(self) -> None:
        """Recover what a previous run left in ``incoming/``, then start the indexer."""
        if self._thread is not None:
            return
        recovered = self.store.recover_incoming()
        if recovered:
            log.info("recovered %d instance(s) left in incoming/", recovered)
        self._thread = threading.Thread(target=self._run, name="dicom-intake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Index everything submitted, then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join()

    def __enter__(self) -> Intake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(self, data: bytes | bytearray | memoryview) -> InstanceHeader:
        """Check and write one Part 10 instance; it is indexed shortly after.

        Raises :class:`~imaging_source.header.InvalidInstance` (Cannot understand) or
        :class:`OSError` (Out of Resources) before anything is promised.
        """
        if self._thread is None:
            raise RuntimeError("the intake is not running")
        return self._enqueue(self.store.stage_bytes(data))

    def submit_dataset(self, dataset: io.BytesIO, *, transfer_syntax: str, source_ae: str = "") -> InstanceHeader:
        """:meth:`submit` for a bare dataset as a C-STORE carries it (no copy of its bytes)."""
        if self._thread is None:
            raise RuntimeError("the intake is not running")
        return self._enqueue(self.store.stage_dataset(dataset, transfer_syntax=transfer_syntax, source_ae=source_ae))

    def submit_staged(self, staged: Staged) -> InstanceHeader:
        """Index an instance already checked and written to ``incoming/`` (a
        :class:`~imaging_source.dicomstore.StagingFile` the SCP streamed into)."""
        if self._thread is None:
            raise RuntimeError("the intake is not running")
        return self._enqueue(staged)

    @property
    def backlog(self) -> int:
        """Instances received and waiting in the queue for the index (approximate)."""
        return self._queue.qsize()

    @property
    def full(self) -> bool:
        return self._queue.full()

    def offer_staged(self, staged: Staged) -> bool:
        """:meth:`submit_staged` without blocking: False (nothing queued) when the queue is full,
        so an event loop can wait for room in a worker thread instead of stalling every other
        association it serves."""
        if self._thread is None:
            raise RuntimeError("the intake is not running")
        with self._done:
            self._submitted += 1
        try:
            self._queue.put_nowait(staged)
        except queue.Full:
            with self._done:
                self._submitted -= 1
            return False
        return True

    def _enqueue(self, staged: Staged) -> InstanceHeader:
        with self._done:
            self._submitted += 1
        self._queue.put(staged)
        return staged.header

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every instance submitted so far is indexed (or failed); False on timeout."""
        with self._done:
            target = self._submitted
            return self._done.wait_for(lambda: self._finished >= target, timeout=timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[Staged] = [first]  # type: ignore[list-item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._commit(batch)
            with self._done:
                self._finished += len(batch)
                self._done.notify_all()

    def _commit(self, batch: list[Staged]) -> None:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self.store.commit_staged(batch)
                return
            except Exception:  # a locked or lost database: retry, then leave it to recovery
                log.exception("indexing %d received instance(s) failed (attempt %d of %d)", len(batch), attempt, _ATTEMPTS)
                time.sleep(0.2 * attempt)
        log.error("%d instance(s) stay in %s until the next start", len(batch), self.store.incoming_dir)
