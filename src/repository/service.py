"""The Document Repository's transactions, wired to its store and its registry.

:class:`DocumentRepository` holds the ITI-41/RAD-68 and ITI-43 handlers. The protocol decisions
are in the sans-I/O modules (:mod:`repository.iti41`, :mod:`repository.iti43`,
:mod:`repository.registry_link`); this module orders the I/O around them: spooled attachments
in, store and index in worker threads, ITI-42 out, responses streamed from disk.

Provide and Register, step by step (the crash-safety argument is in :mod:`repository.store`):

1. check the request and its documents (:func:`repository.iti41.analyze`); any error -> Failure,
   nothing stored (the spool files are deleted with the request);
2. check the index: a uniqueId already stored with other content is refused, one stored with
   the same content is registered again without storing it twice, one still pending is busy;
3. add hash, size and repositoryUniqueId to the DocumentEntries; stage the documents;
4. ITI-42; commit on Success, discard on Failure (the registry's RegistryResponse is relayed
   unchanged), and when the outcome is unknown ask the registry right away (ITI-18) and, if it
   cannot tell yet, leave the documents to the reconciler.

Steps 1-3 run in one worker thread while another flushes the spooled files to disk (most of
their bytes went to the disk while they arrived: the spool writes behind); when every uniqueId
is new, the index check and the staging are one index transaction
(:meth:`DocumentStore.stage_if_new`), and the files are renamed into place after it. ITI-43
reads small documents in the thread that looks them up, so the response leaves in one write.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import anyio
import anyio.to_thread
from lxml import etree

from repository import iti41, iti43
from repository.registry_link import Outcome, RegistryClient, RegistryUnavailable, is_ours, register, registered_entries
from repository.store import DocumentStore, Staged, StoreConflict, StoredDocument
from xds.errors import ErrorCode, RegistryError
from xds.http.server import SoapRequest, SoapResponse
from xds.metadata.responses import build_registry_response
from xds.soap.attachments import Attachment
from xds.soap.mtom_encode import OutgoingPart, new_content_id
from xds.vocabulary import Action

__all__ = ["FLUSH_THREADS", "INLINE_DOCUMENT_MAX", "INLINE_RESPONSE_MAX", "DocumentRepository", "Timing"]

log = logging.getLogger(__name__)

#: ITI-41: most documents' disk flushes running at once (each in a worker thread).
FLUSH_THREADS: Final = 16
#: ITI-43: a document up to this size is read into memory and sent with the response in one write.
INLINE_DOCUMENT_MAX: Final = 2 << 20
#: ITI-43: most bytes of documents one response holds in memory (the rest stream from disk).
INLINE_RESPONSE_MAX: Final = 4 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Time limits of the registry conversation (seconds)."""

    #: Bound on one whole ITI-42 (or ITI-18) call.
    call_deadline: float
    #: Lease of a submission in flight: longer than any call, so no reconciler takes it early.
    lease: float
    #: After an unknown outcome, how long the registry gets before the reconciler asks it.
    grace: float


@dataclass(slots=True, eq=False)
class _Flush:
    """The documents' flush ahead of staging: set when it ended; ``ok`` when it succeeded (the
    files' data is then on disk and :meth:`DocumentStore.place` need not flush them again)."""

    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A submission staged and ready for ITI-42: its documents and the augmented SOR."""

    parts: Sequence[iti41.DocumentPart]
    submit_objects_request: etree._Element


class DocumentRepository:
    """ITI-41/RAD-68 and ITI-43 for one repositoryUniqueId."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        repository_id: str,
        client: RegistryClient | None,
        timing: Timing,
        validate_metadata: bool = True,
    ) -> None:
        self.store = store
        self.repository_id = repository_id
        #: The registry client; set by the app's lifespan (created on the serving event loop).
        self.client = client
        self.timing = timing
        self.validate_metadata = validate_metadata
        self._limiter: tuple[asyncio.AbstractEventLoop, anyio.CapacityLimiter] | None = None

    # -- helpers -----------------------------------------------------------------------------
    def _flush_limiter(self) -> anyio.CapacityLimiter:
        """The flushes' own bound on worker threads (per event loop). They must not share the
        default limiter with the staging threads that wait for them: with every default token
        held by a waiting stager, no flush could start."""
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._limiter[0] is not loop:
            self._limiter = (loop, anyio.CapacityLimiter(FLUSH_THREADS))
        return self._limiter[1]

    @staticmethod
    def _registry_response(errors: Sequence[RegistryError]) -> SoapResponse:
        # ITI TF-2b §3.41.4.2: rs:RegistryResponse, in the packaging of the request.
        return SoapResponse(action=Action.ITI41_RESPONSE, body=build_registry_response(list(errors)))

    def _registry(self) -> RegistryClient:
        if self.client is None:
            raise RuntimeError("the repository's registry client is not running (app lifespan not started)")
        return self.client

    async def lookup_registry(self, unique_ids: Sequence[str]) -> dict[str, list]:  # type: ignore[type-arg]
        """ITI-18 GetDocuments for these uniqueIds (the reconciler's lookup)."""
        return await registered_entries(self._registry(), unique_ids, deadline=self.timing.call_deadline)

    # -- ITI-41 / RAD-68 ---------------------------------------------------------------------
    def _index_conflicts(
        self, parts: Sequence[iti41.DocumentPart], existing: dict[str, StoredDocument]
    ) -> tuple[list[RegistryError], list[iti41.DocumentPart]]:
        errors: list[RegistryError] = []
        new: list[iti41.DocumentPart] = []
        for part in parts:
            row = existing.get(part.unique_id)
            if row is None:
                new.append(part)
            elif not row.committed:
                errors.append(
                    RegistryError(
                        ErrorCode.REPOSITORY_BUSY,
                        f"document {part.unique_id} belongs to a submission still in progress; try again later",
                        part.unique_id,
                    )
                )
            elif row.sha256 != part.attachment.sha256_hex:
                errors.append(
                    RegistryError(
                        ErrorCode.REPOSITORY_METADATA_ERROR,
                        f"document {part.unique_id} is already stored with different content "
                        f"(hash {row.sha1}, size {row.size})",
                        part.unique_id,
                    )
                )
            # else: the same document again; it is registered again but stored once.
        return errors, new

    def _prepare(self, attachments: Sequence[Attachment], flush: _Flush) -> None:
        try:
            self.store.prepare(attachments)
        except OSError:  # staging does the same again and reports the failure
            log.warning("flushing the spooled documents ahead of staging failed", exc_info=True)
        else:
            flush.ok = True
        finally:
            flush.done.set()

    def _accept(self, request: SoapRequest, submission_id: str, flush: _Flush) -> SoapResponse | _Accepted:
        """Steps 1-3 in one worker thread: analyse, augment, check the index and stage (one index
        transaction when every uniqueId is new); the documents' disk flush (:meth:`_prepare`)
        runs meanwhile in another worker thread. A response means the submission ends here."""
        analysis = iti41.analyze(request.body, binary=request.binary, validate=self.validate_metadata)
        sor = analysis.submit_objects_request
        if not analysis.ok or sor is None:
            return self._registry_response(analysis.errors)
        parts = analysis.documents
        iti41.augment(sor, parts, repository_id=self.repository_id)
        lease = self.timing.lease
        staged = [Staged(p.unique_id, p.mime_type, p.attachment) for p in parts]
        try:
            existing = self.store.stage_if_new(submission_id, staged, lease_seconds=lease, place=False)
            flush.done.wait()
            if existing:
                errors, new = self._index_conflicts(parts, existing)
                if errors:
                    return self._registry_response(errors)
                self.store.stage(
                    submission_id, [Staged(p.unique_id, p.mime_type, p.attachment) for p in new], lease_seconds=lease
                )
            else:
                # Step 2 of repository.store: the rows are committed, now the files move in
                # (their data is on disk already when the flush succeeded).
                self.store.place(staged, flushed=flush.ok)
        except StoreConflict:
            return self._registry_response(
                [RegistryError(ErrorCode.REPOSITORY_BUSY, "a concurrent submission holds one of these documents; try again later")]
            )
        except OSError as exc:
            log.exception("staging submission %s failed", submission_id)
            self.store.discard(submission_id)
            code = ErrorCode.REPOSITORY_OUT_OF_RESOURCES if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ErrorCode.REPOSITORY_ERROR
            return self._registry_response([RegistryError(code, f"the documents could not be stored: {exc.strerror}")])
        # The SubmitObjectsRequest leaves the request tree, so the ITI-42 envelope adopts it
        # instead of copying it.
        parent = sor.getparent()
        if parent is not None:
            parent.remove(sor)
        return _Accepted(parts, sor)

    async def provide_and_register(self, request: SoapRequest) -> SoapResponse:
        """ITI-41 / RAD-68 (ITI TF-2b §3.41.4.1.3; RAD TF-3 §4.68.4.1.3)."""
        marks = [time.perf_counter()]
        submission_id = uuid.uuid4().hex
        # The documents' disk flushes run beside the analysis and the index commit (CPU, and
        # another file's fsync) instead of after them; the files are renamed into place only once
        # both are done. Both run in the worker threads anyio keeps (no thread made per request).
        flush = _Flush()
        attachments = list(request.attachments.values())
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(
                partial(anyio.to_thread.run_sync, self._prepare, attachments, flush, limiter=self._flush_limiter())
            )
            try:
                accepted = await anyio.to_thread.run_sync(self._accept, request, submission_id, flush)
            except Exception as exc:
                # Raised once the flush has ended, as itself: a task group would wrap it in an
                # ExceptionGroup, and a SoapFault (a broken xop:Include, say) must stay one.
                failure = exc
        if failure is not None:
            raise failure
        if isinstance(accepted, SoapResponse):
            return accepted
        parts = accepted.parts
        marks.append(time.perf_counter())
        try:
            result = await register(self._registry(), accepted.submit_objects_request, deadline=self.timing.call_deadline)
        except BaseException:
            # Cancelled (client gone, shutdown) in the middle of the call: the outcome is unknown.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    partial(self.store.extend_lease, submission_id, until=self.store.clock() + self.timing.grace)
                )
            raise
        marks.append(time.perf_counter())
        if result.outcome is Outcome.ACCEPTED:
            # Not fsynced: if a power cut loses it, the rows are pending again and the
            # reconciler commits them (the registry has them), see repository.store.
            await anyio.to_thread.run_sync(partial(self.store.commit, submission_id, durable=False))
            marks.append(time.perf_counter())
            if log.isEnabledFor(logging.DEBUG):
                steps = ("analysed, checked and staged", "registered", "committed")
                log.debug(
                    "ITI-41 submission %s timings: %s",
                    submission_id,
                    ", ".join(f"{name} {1000 * (b - a):.1f} ms" for name, a, b in zip(steps, marks, marks[1:], strict=False)),
                )
            log.info("ITI-41 submission %s: %d document(s) stored and registered", submission_id, len(parts))
            assert result.response is not None
            return SoapResponse(action=Action.ITI41_RESPONSE, body=result.response)
        if result.outcome is Outcome.REJECTED:
            await anyio.to_thread.run_sync(self.store.discard, submission_id)
            log.info("ITI-41 submission %s refused: %s", submission_id, result.detail)
            if result.response is not None:
                # xds-notes §5 (NIST 11986): the registry's errors are relayed unchanged.
                return SoapResponse(action=Action.ITI41_RESPONSE, body=result.response)
            return self._registry_response(result.errors)
        return await self._unknown_outcome(submission_id, parts, result.errors, result.detail)

    async def _unknown_outcome(
        self,
        submission_id: str,
        parts: Sequence[iti41.DocumentPart],
        errors: Sequence[RegistryError],
        detail: str,
    ) -> SoapResponse:
        """The registry may have registered the submission: ask it now, else leave it pending."""
        log.warning("ITI-41 submission %s: outcome unknown (%s); asking the registry", submission_id, detail)
        try:
            registered = await self.lookup_registry([p.unique_id for p in parts])
        except RegistryUnavailable as exc:
            registered = None
            log.warning("ITI-41 submission %s: %s", submission_id, exc)
        if registered is not None and all(
            is_ours(
                registered.get(p.unique_id, []),
                sha1=p.attachment.sha1_hex,
                size=p.attachment.size,
                repository_id=self.repository_id,
            )
            for p in parts
        ):
            await anyio.to_thread.run_sync(self.store.commit, submission_id)
            log.info("ITI-41 submission %s: the registry holds it; stored", submission_id)
            return self._registry_response([])
        until = self.store.clock() + self.timing.grace
        await anyio.to_thread.run_sync(partial(self.store.extend_lease, submission_id, until=until))
        held = [
            RegistryError(
                error.code,
                f"{error.context}; the outcome is not known: the documents are held and will be kept "
                "only if the registry turns out to have registered them",
                error.location,
                error.severity,
            )
            for error in errors
        ]
        return self._registry_response(held)

    # -- ITI-43 ------------------------------------------------------------------------------
    def _available(self, requests: Sequence[iti43.DocumentRequest]) -> dict[str, tuple[StoredDocument, bytes | None]]:
        """The retrievable documents among ``requests``, each with its content when it is small
        enough to be sent from memory (read here, in the lookup's worker thread); larger ones
        stream from disk later."""
        wanted = [r.document_id for r in requests if r.repository_id == self.repository_id]
        available: dict[str, tuple[StoredDocument, bytes | None]] = {}
        budget = INLINE_RESPONSE_MAX
        for uid, document in self.store.lookup(wanted).items():
            content: bytes | None = None
            try:
                if document.size <= min(INLINE_DOCUMENT_MAX, budget):
                    with open(document.path, "rb", buffering=0) as f:
                        content = f.read(document.size + 1)
                    if len(content) == document.size:
                        budget -= document.size
                    else:  # not what the index says: streamed from the file, as a large one
                        content = None
                elif not document.path.is_file():
                    raise FileNotFoundError(document.path)
            except FileNotFoundError:
                log.error("document %s is in the index but its file %s is missing", uid, document.path)
                continue
            available[uid] = (document, content)
        return available

    async def retrieve(self, request: SoapRequest) -> SoapResponse:
        """ITI-43 Retrieve Document Set (ITI TF-2b §3.43.4.1.3); small documents go out from
        memory in one write, larger ones stream from disk."""
        requests, errors = iti43.parse_request(request.body)
        available = await anyio.to_thread.run_sync(self._available, requests)
        pairs, more = iti43.answer(requests, repository_id=self.repository_id, available=available)
        found: list[iti43.Found] = []
        parts: list[OutgoingPart] = []
        for doc_request, (document, content) in pairs:
            content_id = new_content_id()
            found.append(iti43.Found(doc_request, document.mime_type, content_id))
            source = document.path if content is None else content
            parts.append(OutgoingPart(content_id, document.mime_type, source, size=document.size))
        body = iti43.build_response(found, [*errors, *more])
        # ITI TF-2b §3.43.5 / xds-notes §1.4: the ITI-43 response is always MTOM.
        return SoapResponse(action=Action.ITI43_RESPONSE, body=body, attachments=parts, mtom=True)
