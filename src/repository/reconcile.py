"""Reconciliation: settle the pending documents of interrupted submissions with the registry.

A submission stays ``pending`` in the index when its process died between staging and deciding,
or when its ITI-42 call ended without a known outcome (see :mod:`repository.store`). The
reconciler claims such a submission (lease expired, or owner process gone), asks the registry
with ITI-18 GetDocuments which of its uniqueIds are registered with this repository's id and the
stored hash and size, commits those at once and discards the rest; the rest of a submission taken
from a dead owner before its lease ran out is discarded only ``settle_after`` seconds after it was
staged (that owner's ITI-42 call may still be reaching the registry). When the registry cannot be
asked, the submission waits for the next round.

Public API::

    Lookup = Callable[[Sequence[str]], Awaitable[dict[str, list[RegisteredEntry]]]]
    ReconcileReport(committed, discarded, deferred)
    Reconciler(store, lookup, *, repository_id, lease_seconds, retry_after, settle_after=0.0)
        async run_once() -> ReconcileReport
        async run_forever(*, interval, first_round_at_once=False) -> None
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.to_thread

from repository.registry_link import RegisteredEntry, RegistryUnavailable, is_ours
from repository.store import DocumentStore, PendingSubmission

__all__ = ["Lookup", "ReconcileReport", "Reconciler"]

log = logging.getLogger(__name__)

Lookup = Callable[[Sequence[str]], Awaitable[dict[str, list[RegisteredEntry]]]]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Documents committed, discarded, and submissions left for later, in one round."""

    committed: int = 0
    discarded: int = 0
    deferred: int = 0


class Reconciler:
    """Settles claimable pending submissions of ``store`` against the registry."""

    def __init__(
        self,
        store: DocumentStore,
        lookup: Lookup,
        *,
        repository_id: str,
        lease_seconds: float,
        retry_after: float,
        settle_after: float = 0.0,
    ) -> None:
        self.store = store
        self.lookup = lookup
        self.repository_id = repository_id
        self.lease_seconds = lease_seconds
        self.retry_after = retry_after
        self.settle_after = settle_after

    async def _settle(self, pending: PendingSubmission) -> tuple[int, int]:
        owner = str(self.store.owner)
        registered = await self.lookup([d.unique_id for d in pending.documents])
        keep = [
            d.unique_id
            for d in pending.documents
            if d.path.is_file()
            and is_ours(registered.get(d.unique_id, []), sha1=d.sha1, size=d.size, repository_id=self.repository_id)
        ]
        drop = [d.unique_id for d in pending.documents if d.unique_id not in keep]
        for d in pending.documents:
            if d.unique_id in drop and registered.get(d.unique_id) and not d.path.is_file():
                log.error("document %s is registered but its file %s is missing", d.unique_id, d.path)
        committed = await anyio.to_thread.run_sync(
            lambda: self.store.commit(pending.submission_id, owner=owner, unique_ids=keep) if keep else 0
        )
        settled = pending.created + self.settle_after
        if drop and pending.owner_gone and self.store.clock() < settled:
            # The dead owner's ITI-42 may still reach the registry: ask again once it cannot.
            await anyio.to_thread.run_sync(partial(self.store.extend_lease, pending.submission_id, until=settled))
            return committed, 0
        discarded = await anyio.to_thread.run_sync(
            lambda: self.store.discard(pending.submission_id, owner=owner, unique_ids=drop) if drop else 0
        )
        return committed, discarded

    async def run_once(self) -> ReconcileReport:
        """One round over every claimable pending submission."""
        committed = discarded = deferred = 0
        for pending in await anyio.to_thread.run_sync(self.store.claimable):
            claimed = await anyio.to_thread.run_sync(partial(self.store.claim, pending, lease_seconds=self.lease_seconds))
            if not claimed:
                continue
            try:
                done, dropped = await self._settle(pending)
            except RegistryUnavailable as exc:
                deferred += 1
                await anyio.to_thread.run_sync(
                    partial(self.store.extend_lease, pending.submission_id, until=self.store.clock() + self.retry_after)
                )
                log.warning("reconciliation of submission %s deferred: %s", pending.submission_id, exc)
                continue
            committed += done
            discarded += dropped
            log.info(
                "reconciled submission %s: %d document(s) committed, %d discarded",
                pending.submission_id,
                done,
                dropped,
            )
        return ReconcileReport(committed, discarded, deferred)

    async def run_forever(self, *, interval: float, first_round_at_once: bool = False) -> None:
        """Run a round every ``interval`` seconds until cancelled (the first one immediately
        with ``first_round_at_once``); a failing round is logged, not raised."""
        if not first_round_at_once:
            await anyio.sleep(interval)
        while True:
            try:
                report = await self.run_once()
                if report.committed or report.discarded or report.deferred:
                    log.info("reconciliation round: %s", report)
            except Exception:
                log.exception("reconciliation round failed")
            await anyio.sleep(interval)
