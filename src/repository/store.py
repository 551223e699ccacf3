"""The document store: content-addressed files plus an index (SQLAlchemy), and the states that
make a Provide and Register all-or-nothing across a crash.

Files live under ``<root>/objects/ab/cd/<sha256>``; identical contents are stored once. A file
reaches its final name only by an atomic rename of a complete, fsynced spool file (each process
spools under ``<root>/spool/<host>_<pid>_<instance>``, on the same filesystem, so the rename is
not a copy).

The order of operations of one ITI-41 submission, and why it is crash-safe
--------------------------------------------------------------------------
1. **Spool and hash.** The HTTP layer streams each MTOM part to a spool file while computing its
   SHA-1, SHA-256 and size. Nothing in the store or the index yet: a crash leaves only a spool
   file, swept at start (:meth:`DocumentStore.sweep`).
2. **Stage.** One index transaction records every document as ``pending`` (owner = this process,
   lease = a deadline well beyond the registry call) and locks/creates each ``blob`` row; after
   the commit, each spool file is fsynced and renamed to its content address (skipped when the
   content is already there). ``pending`` rows are invisible to ITI-43.
3. **Register.** ITI-42 to the registry.
4. **Decide.** Registry Success -> ``committed`` (now retrievable). Registry Failure, or a
   request that never reached it -> the rows are deleted and a file no other row uses is
   unlinked. Outcome unknown (timeout, broken reply) -> the rows stay ``pending`` with a short
   grace lease, for the reconciler.

Whatever instant a crash hits, the registry and the store end up agreeing:

* before step 2 commits: no rows, no object file; only spool files, in the spool directory of a
  process that no longer exists, which the start-up sweep removes (the directory of a live
  worker, or of a process on another host that may be alive, is left alone until its files are
  older than a grace period);
* between 2 and 4: ``pending`` rows whose owner is gone. At start, and periodically, the
  :class:`~repository.reconcile.Reconciler` asks the registry (ITI-18 GetDocuments by uniqueId)
  whether each document was registered with this repository's id, hash and size: yes ->
  ``committed`` (the file was renamed into place before ITI-42 was sent), no -> deleted;
* after 4: nothing to do. The ``committed`` update is not even flushed to disk (see
  :meth:`DocumentStore.commit`): if a power cut undoes it, the rows are pending again and the
  reconciler commits them, because the registry has them (a registry answers Success only once
  its commit is durable: ours on PostgreSQL, and on SQLite at ``synchronous=FULL``).

What this cannot settle: a registry that carries out an ITI-42 request after the repository gave
up on it *and* after the grace period that follows (``pending_grace``, 300 s by default) has
passed; by then the reconciler has deleted the documents. The reconciler's ITI-18 queries must be
allowed by the registry's access policy (under the consent policy the repository is a trusted
client).

A ``pending`` row is taken over by a reconciler only when its lease expired, or when its owner
is a process on this host that no longer exists; both updates (commit, delete) are conditional on
the owner, so a slow submitter and a reconciler never both decide. Documents of a dead owner that
the registry holds are committed at once; those it does not hold are deleted only once the ITI-42
call the dead process may have sent has had the time to end (one call deadline after staging).

Creating and deleting a file for one content is serialised by the ``blob`` row (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite has one writer at a time): a delete unlinks only when no
``document`` row refers to the content, and a stage inserts its row before it renames, so a
concurrent delete either sees the new row or finishes before the rename.

Public API::

    Owner(host, pid, instance)         # .current(), .parse(text), .is_gone_here()
    Staged(unique_id, mime_type, attachment)
    StoredDocument(...)                # one index row (+ .path)
    DocumentStore(root, engine, *, owner=None, clock=time.time)
        .spool_dir / .objects_dir / .path_for(sha256)
        .existing(unique_ids) -> dict[str, StoredDocument]       (any state)
        .lookup(unique_ids) -> dict[str, StoredDocument]         (committed only)
        .prepare(attachments)                                    (fsync + bucket dirs, ahead of stage)
        .stage(submission_id, staged, *, lease_seconds)
        .stage_if_new(submission_id, staged, *, lease_seconds, place=True) -> dict[str, StoredDocument]
        .place(staged, *, flushed=False)                         (after stage_if_new(place=False))
        .commit(submission_id, *, owner=None, unique_ids=None, durable=True) -> int
        .discard(submission_id, *, owner=None, unique_ids=None) -> int
        .extend_lease(submission_id, *, until, owner=None) -> int
        .claimable(*, now=None) -> list[PendingSubmission]
        .claim(pending, *, lease_seconds) -> bool
        .sweep(*, min_age) -> int
        .counts() -> dict[str, int]
    StoreConflict(Exception)
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from repository import schema as t
from xds.db import sqlite_driver_sql
from xds.durable import fsync_dir
from xds.soap.attachments import Attachment

__all__ = [
    "DocumentStore",
    "Owner",
    "PendingSubmission",
    "Staged",
    "StoreConflict",
    "StoredDocument",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_TMP_SUFFIX: Final = ".tmp"
#: Largest number of values in one SQL ``IN`` list.
_BATCH: Final = 500


class StoreConflict(Exception):
    """A concurrent submission took one of the uniqueIds between the check and the insert."""


class _AlreadyIndexed(Exception):
    """Rolls back :meth:`DocumentStore.stage_if_new`'s transaction; carries the rows it found."""

    def __init__(self, rows: dict[str, StoredDocument]) -> None:
        super().__init__(f"{len(rows)} uniqueId(s) already indexed")
        self.rows = rows


@dataclass(frozen=True, slots=True)
class Owner:
    """Which process works on a pending submission: host name, process id and a per-start id."""

    host: str
    pid: int
    instance: str

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        host, _, rest = text.rpartition("/")
        host, _, pid = host.rpartition("/")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), rest)

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.instance}"

    @property
    def dirname(self) -> str:
        """The owner as a directory name (``host_pid_instance``)."""
        return f"{self.host.replace('/', '-')}_{self.pid}_{self.instance}"

    @classmethod
    def from_dirname(cls, name: str) -> Owner | None:
        host, _, rest = name.rpartition("_")
        host, _, pid = host.rpartition("_")
        if not host or not pid.isdigit() or not rest:
            return None
        return cls(host, int(pid), rest)

    def is_gone_here(self, *, me: Owner) -> bool:
        """True when this owner ran on our host, is not us, and its process no longer exists.

        Conservative: a process id that was reused counts as alive (the lease then decides).
        """
        if self.host != me.host or str(self) == str(me):
            return False
        if self.pid == me.pid:
            return False  # another store in this very process: it may be working on it
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


@dataclass(frozen=True, slots=True)
class Staged:
    """A document to stage: its uniqueId, registered mimeType and spooled content."""

    unique_id: str
    mime_type: str
    attachment: Attachment


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One row of the index."""

    unique_id: str
    sha256: str
    sha1: str
    size: int
    mime_type: str
    state: str
    submission_id: str
    owner: str
    lease_until: float
    path: Path

    @property
    def committed(self) -> bool:
        return self.state == t.COMMITTED


@dataclass(frozen=True, slots=True)
class PendingSubmission:
    """The pending documents of one interrupted submission, as the reconciler sees them:
    when they were staged, and whether they were taken from a dead owner before their lease
    ran out (its ITI-42 call may then still be on its way to the registry)."""

    submission_id: str
    owner: str
    documents: tuple[StoredDocument, ...]
    created: float = 0.0
    owner_gone: bool = False


# Statements of the hot paths, built once: SQLAlchemy then only looks up their compiled form
# (building a statement per call costs more than running it on SQLite).
_D = t.document
_BY_UNIQUE_ID = select(_D).where(_D.c.unique_id.in_(bindparam("unique_ids", expanding=True)))
_COMMITTED_BY_UNIQUE_ID = _BY_UNIQUE_ID.where(_D.c.state == t.COMMITTED)
_COMMIT_SUBMISSION = (
    update(_D)
    .where(_D.c.submission_id == bindparam("b_submission"), _D.c.state == t.PENDING, _D.c.owner == bindparam("b_owner"))
    .values(state=t.COMMITTED, committed=bindparam("b_now"))
)

_LOCK_BLOB = select(t.blob.c.sha256).where(t.blob.c.sha256 == bindparam("b_sha256")).with_for_update()
_INSERT_DOCUMENTS = insert(_D)
_INSERT_BLOB_IF_MISSING = {
    "postgresql": postgresql.insert(t.blob).on_conflict_do_nothing(index_elements=["sha256"]),
    "sqlite": sqlite.insert(t.blob).on_conflict_do_nothing(index_elements=["sha256"]),
}


# SQLite: the staging statements as driver SQL, compiled once from the tables. Run with
# ``exec_driver_sql`` they skip SQLAlchemy's per-execution work (cache key, compiled-cache look-up,
# parameter processing) on the path every ITI-41 takes; errors still arrive as SQLAlchemy
# exceptions (IntegrityError for a uniqueId taken meanwhile). On SQLite the blob row needs no
# lock of its own: the first statement takes the database's single write lock.
_SQLITE_INSERT_BLOB_IF_MISSING = sqlite_driver_sql(
    sqlite.insert(t.blob)
    .values({c.name: bindparam(c.name) for c in t.blob.columns})
    .on_conflict_do_nothing(index_elements=["sha256"])
)
_SQLITE_INSERT_DOCUMENT = sqlite_driver_sql(
    insert(_D).values({c.name: bindparam(c.name) for c in _D.columns if c.name != "id"})
)
_SQLITE_DOCUMENT_COLUMNS = ", ".join(c.name for c in _D.columns)


def _sqlite_documents_by_unique_id(count: int) -> str:
    return f"SELECT {_SQLITE_DOCUMENT_COLUMNS} FROM {_D.name} WHERE unique_id IN ({', '.join('?' * count)})"


def _chunks(items: Sequence[str], size: int = _BATCH) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _fsync_all(paths: Sequence[Path]) -> None:
    """fsync every path (files or directories), in order, one after the other.

    Measured on a busy virtual disk, one after the other beats one thread per path. Called with
    a spooled file first and then the directories just created: the file's fsync commits the
    journal transaction that holds the new entries, so the directory fsyncs after it are cheap.
    """
    for path in paths:
        fsync_dir(path)


class DocumentStore:
    """Content-addressed files under ``root`` and their index on ``engine`` (see the module
    documentation for the protocol)."""

    def __init__(self, root: Path, engine: Engine, *, owner: Owner | None = None, clock: Clock = time.time) -> None:
        self.root = Path(root)
        self.engine = engine
        self.owner = owner or Owner.current()
        self.clock = clock
        self.objects_dir = self.root / "objects"
        self.spool_root = self.root / "spool"
        #: This process's spool directory (one per owner, so a restart can tell a dead
        #: process's leftovers from a live worker's uploads).
        self.spool_dir = self.spool_root / self.owner.dirname
        # The spool directory itself is created by whoever spools into it (the HTTP layer).
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.spool_root.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        """Where the content with this SHA-256 lives (two levels of 256 directories)."""
        return self.objects_dir / sha256[:2] / sha256[2:4] / sha256

    @staticmethod
    def _create_parent(path: Path) -> list[Path]:
        """Create the bucket directories of ``path``; returns the directories that received a new
        entry (to be fsynced: new directory entries are durable only once their parents are)."""
        bucket = path.parent
        if bucket.is_dir():
            return []
        changed = [bucket.parent]
        if not bucket.parent.is_dir():
            changed.append(bucket.parent.parent)
        bucket.mkdir(parents=True, exist_ok=True)
        return changed

    def _make_parent(self, path: Path) -> None:
        _fsync_all(self._create_parent(path))

    # -- reading -----------------------------------------------------------------------------
    def _row(self, row: object) -> StoredDocument:
        return StoredDocument(
            unique_id=row.unique_id,  # type: ignore[attr-defined]
            sha256=row.sha256,  # type: ignore[attr-defined]
            sha1=row.sha1,  # type: ignore[attr-defined]
            size=row.size,  # type: ignore[attr-defined]
            mime_type=row.mime_type,  # type: ignore[attr-defined]
            state=row.state,  # type: ignore[attr-defined]
            submission_id=row.submission_id,  # type: ignore[attr-defined]
            owner=row.owner,  # type: ignore[attr-defined]
            lease_until=row.lease_until,  # type: ignore[attr-defined]
            path=self.path_for(row.sha256),  # type: ignore[attr-defined]
        )

    def _select(self, unique_ids: Iterable[str], *, committed_only: bool) -> dict[str, StoredDocument]:
        wanted = sorted(set(unique_ids))
        found: dict[str, StoredDocument] = {}
        query = _COMMITTED_BY_UNIQUE_ID if committed_only else _BY_UNIQUE_ID
        with self.engine.connect() as conn:
            for batch in _chunks(wanted):
                for row in conn.execute(query, {"unique_ids": list(batch)}):
                    found[row.unique_id] = self._row(row)
        return found

    def existing(self, unique_ids: Iterable[str]) -> dict[str, StoredDocument]:
        """Index rows for these uniqueIds, whatever their state."""
        return self._select(unique_ids, committed_only=False)

    def lookup(self, unique_ids: Iterable[str]) -> dict[str, StoredDocument]:
        """The retrievable (committed) documents among these uniqueIds."""
        return self._select(unique_ids, committed_only=True)

    def counts(self) -> dict[str, int]:
        """Number of rows per state, and of blobs."""
        d = t.document
        with self.engine.connect() as conn:
            result = {row.state: row.n for row in conn.execute(select(d.c.state, func.count().label("n")).group_by(d.c.state))}
            result["blobs"] = conn.execute(select(func.count()).select_from(t.blob)).scalar_one()
        return result

    # -- staging -----------------------------------------------------------------------------
    def _insert_blob_if_missing(self, conn: Connection, sha256: str, size: int, now: float) -> None:
        values = {"sha256": sha256, "size": size, "created": now}
        statement = _INSERT_BLOB_IF_MISSING.get(conn.dialect.name)
        if statement is not None:
            conn.execute(statement, values)
        elif conn.execute(_LOCK_BLOB, {"b_sha256": sha256}).first() is None:  # pragma: no cover - other databases
            conn.execute(insert(t.blob).values(**values))

    @staticmethod
    def _lock_blob(conn: Connection, sha256: str) -> bool:
        """Lock the blob row until the transaction ends; False if there is none."""
        return conn.execute(_LOCK_BLOB, {"b_sha256": sha256}).first() is not None

    def prepare(self, attachments: Iterable[Attachment]) -> None:
        """Ahead of staging, beside other work (fsync and mkdir release the GIL): flush each
        spooled file to disk and create the directories of its content address, so that staging
        is left with a commit and renames. Idempotent and harmless for content that is never
        staged: nothing is recorded and nothing reaches an object name. The directories are
        created first and fsynced after the files (see :func:`_fsync_all`). When it returns,
        :meth:`place` may be told ``flushed=True`` for these attachments."""
        to_flush: list[Path] = []
        for attachment in attachments:
            if attachment.path is not None:
                to_flush.append(attachment.path)
            to_flush.extend(self._create_parent(self.path_for(attachment.sha256_hex)))
        _fsync_all(list(dict.fromkeys(to_flush)))

    def _pending_rows(
        self, submission_id: str, staged: Sequence[Staged], *, now: float, lease_seconds: float
    ) -> list[dict[str, object]]:
        return [
            {
                "unique_id": s.unique_id,
                "sha256": s.attachment.sha256_hex,
                "sha1": s.attachment.sha1_hex,
                "size": s.attachment.size,
                "mime_type": s.mime_type,
                "state": t.PENDING,
                "submission_id": submission_id,
                "owner": str(self.owner),
                "lease_until": now + lease_seconds,
                "created": now,
                "committed": None,
            }
            for s in staged
        ]

    def _lock_blobs(self, conn: Connection, staged: Sequence[Staged], now: float) -> None:
        """Create (if missing) and lock the blob row of every content in ``staged``.

        The first statement of the staging transaction writes, so on SQLite the transaction holds
        the write lock from its start (it never has to upgrade a read snapshot, which can fail).
        """
        # Blob rows in a fixed order, so two submissions never wait on each other in a cycle.
        for sha256, size in sorted({(s.attachment.sha256_hex, s.attachment.size) for s in staged}):
            self._insert_blob_if_missing(conn, sha256, size, now)
            self._lock_blob(conn, sha256)

    def stage(self, submission_id: str, staged: Sequence[Staged], *, lease_seconds: float) -> None:
        """Step 2: record ``staged`` as pending (one transaction), then move each file into place.

        Raises :class:`StoreConflict` when a uniqueId is already in the index (a concurrent
        submission won the race); nothing is recorded then.
        """
        if not staged:
            return
        now = self.clock()
        rows = self._pending_rows(submission_id, staged, now=now, lease_seconds=lease_seconds)
        try:
            with self.engine.begin() as conn:
                self._lock_blobs(conn, staged, now)
                conn.execute(_INSERT_DOCUMENTS, rows)
        except IntegrityError as exc:
            raise StoreConflict(str(exc.orig)) from exc
        self._place_files(staged)

    def stage_if_new(
        self, submission_id: str, staged: Sequence[Staged], *, lease_seconds: float, place: bool = True
    ) -> dict[str, StoredDocument]:
        """The index check of step 2 and the staging in one transaction (the common case of a
        submission whose uniqueIds are all new costs one commit, not two).

        Returns the index rows (any state) already recorded under these uniqueIds. When there
        are some, nothing is staged and the caller decides (refuse, or :meth:`stage` only the new
        ones); when there are none, ``staged`` is recorded as pending and the files are moved
        into place, as :meth:`stage` does. Raises :class:`StoreConflict` like :meth:`stage`.

        With ``place=False`` the files are left where they are and the caller must call
        :meth:`place` before anything depends on them (before ITI-42): this lets the index
        commit run while the spooled files are still being flushed (:meth:`prepare`).
        """
        if not staged:
            return {}
        now = self.clock()
        rows = self._pending_rows(submission_id, staged, now=now, lease_seconds=lease_seconds)
        wanted = sorted({s.unique_id for s in staged})
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    self._stage_on_sqlite(conn, staged, wanted, rows, now)
                else:
                    self._lock_blobs(conn, staged, now)
                    found: dict[str, StoredDocument] = {}
                    for batch in _chunks(wanted):
                        for row in conn.execute(_BY_UNIQUE_ID, {"unique_ids": list(batch)}):
                            found[row.unique_id] = self._row(row)
                    if found:
                        raise _AlreadyIndexed(found)
                    conn.execute(_INSERT_DOCUMENTS, rows)
        except _AlreadyIndexed as indexed:  # rolled back: nothing recorded
            return indexed.rows
        except IntegrityError as exc:
            raise StoreConflict(str(exc.orig)) from exc
        if place:
            self._place_files(staged)
        return {}

    def _stage_on_sqlite(
        self, conn: Connection, staged: Sequence[Staged], wanted: Sequence[str], rows: list[dict[str, object]], now: float
    ) -> None:
        """:meth:`stage_if_new`'s transaction on SQLite, in driver SQL (same statements)."""
        for sha256, size in sorted({(s.attachment.sha256_hex, s.attachment.size) for s in staged}):
            conn.exec_driver_sql(_SQLITE_INSERT_BLOB_IF_MISSING, {"sha256": sha256, "size": size, "created": now})
        found: dict[str, StoredDocument] = {}
        for batch in _chunks(wanted):
            for row in conn.exec_driver_sql(_sqlite_documents_by_unique_id(len(batch)), tuple(batch)):
                found[row.unique_id] = self._row(row)
        if found:
            raise _AlreadyIndexed(found)
        conn.exec_driver_sql(_SQLITE_INSERT_DOCUMENT, rows[0] if len(rows) == 1 else rows)

    def place(self, staged: Sequence[Staged], *, flushed: bool = False) -> None:
        """The second half of :meth:`stage_if_new` with ``place=False``: each spool file fsynced
        and renamed to its content address (after the staging commit, never before it).

        ``flushed=True``: :meth:`prepare` returned for these attachments, so their spool files
        are on disk already and only the renames (and their directories) are flushed here."""
        self._place_files(staged, flushed=flushed)

    def _place_files(self, staged: Sequence[Staged], *, flushed: bool = False) -> None:
        """After the staging commit: each spool file fsynced and renamed to its content address."""
        for s in staged:
            target = self.path_for(s.attachment.sha256_hex)
            if target.exists():
                continue  # the same content is stored already; the spool copy is dropped
            self._make_parent(target)
            if s.attachment.in_memory:
                # Written to the spool first, so a crash never leaves a temporary file among
                # the objects; move_to then fsyncs and renames it.
                s.attachment.detach()
                s.attachment.move_to(target, fsync=True)
            else:
                s.attachment.move_to(target, fsync=True, flushed=flushed)

    # -- deciding ----------------------------------------------------------------------------
    def _pending_filter(self, submission_id: str, owner: str | None, unique_ids: Iterable[str] | None):  # type: ignore[no-untyped-def]
        d = t.document
        clauses = [d.c.submission_id == submission_id, d.c.state == t.PENDING, d.c.owner == (owner or str(self.owner))]
        if unique_ids is not None:
            clauses.append(d.c.unique_id.in_(list(unique_ids)))
        return clauses

    def commit(
        self,
        submission_id: str,
        *,
        owner: str | None = None,
        unique_ids: Iterable[str] | None = None,
        durable: bool = True,
    ) -> int:
        """Step 4 on Success: the submission's pending rows (of ``owner``) become retrievable.

        ``durable=False`` skips the flush to disk at commit (SQLite ``synchronous=NORMAL``,
        PostgreSQL ``synchronous_commit=off`` for this transaction only): a process crash keeps
        the commit, a power cut may undo it, which leaves the rows pending for the reconciler,
        who commits them again because the registry has them. It saves an fsync per submission.
        """
        if unique_ids is None:
            query = _COMMIT_SUBMISSION
            params: dict[str, object] = {"b_submission": submission_id, "b_owner": owner or str(self.owner), "b_now": self.clock()}
        else:
            query = update(t.document).where(*self._pending_filter(submission_id, owner, unique_ids)).values(
                state=t.COMMITTED, committed=self.clock()
            )
            params = {}
        with self.engine.connect() as conn:
            relaxed = not durable and conn.dialect.name == "sqlite"
            # The pragmas go straight to the driver (no statement compilation, no transaction of
            # their own); the relaxed level holds for this connection until it is reset below.
            driver = conn.connection.driver_connection if relaxed else None
            if driver is not None:
                driver.execute("PRAGMA synchronous=NORMAL")
            try:
                if not durable and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                result = conn.execute(query, params)
                conn.commit()
            finally:
                if driver is not None:
                    conn.rollback()
                    driver.execute("PRAGMA synchronous=FULL")
        return result.rowcount

    def discard(self, submission_id: str, *, owner: str | None = None, unique_ids: Iterable[str] | None = None) -> int:
        """Step 4 on Failure: delete the pending rows (of ``owner``) and every file no row uses."""
        d = t.document
        with self.engine.begin() as conn:
            # The DELETE comes first: on SQLite it takes the write lock for the whole transaction.
            removed = conn.execute(
                delete(d).where(*self._pending_filter(submission_id, owner, unique_ids)).returning(d.c.sha256)
            ).all()
            for sha256 in sorted({row.sha256 for row in removed}):
                if not self._lock_blob(conn, sha256):
                    continue
                users = conn.execute(select(func.count()).select_from(d).where(d.c.sha256 == sha256)).scalar_one()
                if users:
                    continue
                conn.execute(delete(t.blob).where(t.blob.c.sha256 == sha256))
                self.path_for(sha256).unlink(missing_ok=True)
        return len(removed)

    def extend_lease(self, submission_id: str, *, until: float, owner: str | None = None) -> int:
        """Set the lease of the submission's pending rows (of ``owner``) to ``until``."""
        d = t.document
        with self.engine.begin() as conn:
            result = conn.execute(
                update(d).where(*self._pending_filter(submission_id, owner, None)).values(lease_until=until)
            )
        return result.rowcount

    # -- reconciliation ----------------------------------------------------------------------
    def claimable(self, *, now: float | None = None) -> list[PendingSubmission]:
        """Pending submissions a reconciler may take over: the lease expired, or the owner is a
        process on this host that no longer exists."""
        moment = self.clock() if now is None else now
        d = t.document
        groups: dict[tuple[str, str], list[StoredDocument]] = defaultdict(list)
        created: dict[tuple[str, str], float] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(d).where(d.c.state == t.PENDING).order_by(d.c.id)):
                key = (row.submission_id, row.owner)
                groups[key].append(self._row(row))
                created[key] = max(created.get(key, 0.0), row.created)
        result = []
        for (submission_id, owner), docs in groups.items():
            expired = all(doc.lease_until <= moment for doc in docs)
            parsed = Owner.parse(owner)
            gone = not expired and parsed is not None and parsed.is_gone_here(me=self.owner)
            if expired or gone:
                result.append(PendingSubmission(submission_id, owner, tuple(docs), created[(submission_id, owner)], gone))
        return result

    def claim(self, pending: PendingSubmission, *, lease_seconds: float) -> bool:
        """Take over ``pending`` (compare-and-set on its owner); False if someone else did."""
        d = t.document
        with self.engine.begin() as conn:
            result = conn.execute(
                update(d)
                .where(d.c.submission_id == pending.submission_id, d.c.state == t.PENDING, d.c.owner == pending.owner)
                .values(owner=str(self.owner), lease_until=self.clock() + lease_seconds)
            )
        return result.rowcount > 0

    # -- start-up sweep ----------------------------------------------------------------------
    def sweep(self, *, min_age: float) -> int:
        """Delete what a crash before step 2 leaves behind; returns the number of files removed.

        * spool directories of other owners whose process is gone (same host), or whose files
          are all older than ``min_age`` seconds (a crashed process on another host);
        * object files no ``blob`` row refers to, older than ``min_age``.
        """
        limit = self.clock() - min_age
        removed = 0
        for directory in self.spool_root.iterdir():
            if not directory.is_dir() or directory == self.spool_dir:
                continue
            owner = Owner.from_dirname(directory.name)
            files = [p for p in directory.iterdir() if p.is_file()]
            gone = owner is not None and owner.is_gone_here(me=self.owner)
            stale = all(p.stat().st_mtime < limit for p in files) and directory.stat().st_mtime < limit
            if gone or stale:
                for path in files:
                    path.unlink(missing_ok=True)
                removed += len(files)
                shutil.rmtree(directory, ignore_errors=True)
        for first in sorted(self.objects_dir.iterdir()):
            if not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                removed += self._sweep_bucket(second, limit)
        return removed

    def _sweep_bucket(self, bucket: Path, limit: float) -> int:
        files = [p for p in bucket.iterdir() if p.is_file()]
        removed = 0
        names = [p.name for p in files if not p.name.endswith(_TMP_SUFFIX)]
        known: set[str] = set()
        with self.engine.connect() as conn:
            for batch in _chunks(names):
                known.update(conn.execute(select(t.blob.c.sha256).where(t.blob.c.sha256.in_(batch))).scalars())
        for path in files:
            if path.name in known:
                continue
            try:
                if path.stat().st_mtime >= limit:
                    continue
            except FileNotFoundError:
                continue
            log.info("sweep: removing unreferenced file %s", path)
            path.unlink(missing_ok=True)
            removed += 1
        return removed
