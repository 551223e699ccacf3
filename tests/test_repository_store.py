"""The repository's document store and index, on SQLite and PostgreSQL: staging, commit, discard
with shared contents, reconciliation claims, the start-up sweep, and migrations that match the
table definitions."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from repository.db import VERSION_TABLE, make_engine, upgrade
from repository.schema import metadata
from repository.store import DocumentStore, Owner, Staged, StoreConflict
from tests.support.repository import repository_db_url  # noqa: F401  (fixture)
from xds.soap.attachments import Spool


@pytest.fixture
def engine(repository_db_url: str) -> Iterator[Engine]:  # noqa: F811
    engine = make_engine(repository_db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine, tmp_path: Path) -> DocumentStore:
    return DocumentStore(tmp_path / "store", engine)


def _staged(store: DocumentStore, spool: Spool, uid: str, data: bytes, mime: str = "text/plain") -> Staged:
    # Over the spool's memory threshold when large, so both attachment kinds are exercised.
    attachment = spool.store_bytes(data, content_id=f"{uid}@test", content_type=mime)
    return Staged(unique_id=uid, mime_type=mime, attachment=attachment)


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    # Other actors may share the database (one PostgreSQL for a whole site): compare our tables only.
    def ours(name: str | None, type_: str, parent: object) -> bool:
        return type_ != "table" or name in metadata.tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "include_name": ours})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_stage_is_invisible_until_commit(store: DocumentStore) -> None:
    data = os.urandom(200_000)
    with Spool(store.spool_dir) as spool:
        store.stage("sub-1", [_staged(store, spool, "1.2.3", data)], lease_seconds=600)
    path = store.path_for(hashlib.sha256(data).hexdigest())
    assert path.read_bytes() == data
    assert store.lookup(["1.2.3"]) == {}
    assert store.existing(["1.2.3"])["1.2.3"].state == "pending"
    assert store.commit("sub-1") == 1
    found = store.lookup(["1.2.3"])["1.2.3"]
    assert (found.size, found.sha1, found.mime_type) == (len(data), hashlib.sha1(data).hexdigest(), "text/plain")
    assert found.path.read_bytes() == data


def test_discard_removes_rows_and_files_nobody_else_uses(store: DocumentStore) -> None:
    shared, own = b"shared content" * 10_000, b"own content"
    with Spool(store.spool_dir) as spool:
        store.stage("keep", [_staged(store, spool, "1.1", shared)], lease_seconds=600)
        store.commit("keep")
        store.stage("drop", [_staged(store, spool, "2.1", shared), _staged(store, spool, "2.2", own)], lease_seconds=600)
    assert store.discard("drop") == 2
    assert store.existing(["2.1", "2.2"]) == {}
    assert store.path_for(hashlib.sha256(shared).hexdigest()).read_bytes() == shared
    assert not store.path_for(hashlib.sha256(own).hexdigest()).exists()
    assert store.counts() == {"committed": 1, "blobs": 1}


def test_identical_contents_are_stored_once(store: DocumentStore) -> None:
    data = b"x" * 100_000
    with Spool(store.spool_dir) as spool:
        store.stage("a", [_staged(store, spool, "3.1", data), _staged(store, spool, "3.2", data)], lease_seconds=600)
    assert store.commit("a") == 2
    files = [p for p in store.objects_dir.rglob("*") if p.is_file()]
    assert len(files) == 1
    assert store.counts()["blobs"] == 1


def test_a_uniqueid_cannot_be_staged_twice(store: DocumentStore) -> None:
    with Spool(store.spool_dir) as spool:
        store.stage("a", [_staged(store, spool, "4.1", b"one")], lease_seconds=600)
        with pytest.raises(StoreConflict):
            store.stage("b", [_staged(store, spool, "4.1", b"two")], lease_seconds=600)
    assert store.existing(["4.1"])["4.1"].submission_id == "a"


def test_decisions_only_apply_to_the_owner(store: DocumentStore, engine: Engine, tmp_path: Path) -> None:
    other = DocumentStore(tmp_path / "store", engine)
    with Spool(store.spool_dir) as spool:
        store.stage("a", [_staged(store, spool, "5.1", b"content")], lease_seconds=600)
    assert other.commit("a") == 0
    assert other.discard("a") == 0
    assert store.commit("a") == 1


def test_claimable_after_the_lease_expires(store: DocumentStore, engine: Engine, tmp_path: Path) -> None:
    now = [1_000_000.0]
    first = DocumentStore(tmp_path / "store", engine, clock=lambda: now[0])
    second = DocumentStore(tmp_path / "store", engine, clock=lambda: now[0])
    with Spool(first.spool_dir) as spool:
        first.stage("a", [_staged(first, spool, "6.1", b"content")], lease_seconds=600)
    assert second.claimable() == []
    now[0] += 601
    [pending] = second.claimable()
    assert [d.unique_id for d in pending.documents] == ["6.1"]
    assert second.claim(pending, lease_seconds=60)
    assert not first.claim(pending, lease_seconds=60)  # the owner changed under it
    assert first.commit("a") == 0  # the original submitter lost the decision
    assert second.commit("a") == 1


def test_claimable_when_the_owner_process_is_gone(store: DocumentStore, engine: Engine, tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = Owner.current()
    gone = Owner(me.host, child.pid, "deadbeef")
    elsewhere = Owner("another-host", child.pid, "cafe")
    for owner, sub in ((gone, "g"), (elsewhere, "e")):
        writer = DocumentStore(tmp_path / "store", engine, owner=owner)
        with Spool(writer.spool_dir) as spool:
            writer.stage(sub, [_staged(writer, spool, f"7.{sub}", b"c" + sub.encode())], lease_seconds=600)
    reader = DocumentStore(tmp_path / "store", engine, owner=me)
    assert [p.submission_id for p in reader.claimable()] == ["g"]


def test_sweep_removes_only_old_unreferenced_files(store: DocumentStore) -> None:
    with Spool(store.spool_dir) as spool:
        store.stage("a", [_staged(store, spool, "8.1", b"kept" * 50_000)], lease_seconds=600)
    store.commit("a")
    orphan = store.path_for("ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crash")
    fresh = store.path_for("cd" * 32)
    fresh.parent.mkdir(parents=True, exist_ok=True)
    fresh.write_bytes(b"being placed right now")
    old = store.clock() - 7200
    os.utime(orphan, (old, old))

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = store.spool_root / Owner(store.owner.host, child.pid, "dead").dirname
    far_old = store.spool_root / Owner("other-host", 1, "old").dirname
    far_new = store.spool_root / Owner("other-host", 2, "new").dirname
    for directory in (dead, far_old, far_new):
        directory.mkdir()
        (directory / "xds-part-1.tmp").write_bytes(b"partial upload")
    for path in (far_old / "xds-part-1.tmp", far_old):
        os.utime(path, (old, old))
    mine = store.spool_dir / "xds-part-mine.tmp"
    mine.write_bytes(b"an upload in progress")
    os.utime(mine, (old, old))

    assert store.sweep(min_age=3600) == 3
    assert not orphan.exists() and not dead.exists() and not far_old.exists()
    assert fresh.exists() and far_new.exists() and mine.exists()
    assert store.lookup(["8.1"])["8.1"].path.exists()


def test_a_commit_without_flush_is_still_a_commit(store: DocumentStore, engine: Engine) -> None:
    with Spool(store.spool_dir) as spool:
        store.stage("a", [_staged(store, spool, "9.1", b"quick")], lease_seconds=600)
    assert store.commit("a", durable=False) == 1
    assert store.lookup(["9.1"])["9.1"].committed
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            # The pooled connection is back to flushing every commit (2 = FULL).
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_stage_if_new_checks_and_stages_in_one_go(store: DocumentStore) -> None:
    data = os.urandom(150_000)
    with Spool(store.spool_dir) as spool:
        assert store.stage_if_new("first", [_staged(store, spool, "7.1", data)], lease_seconds=600) == {}
        assert store.existing(["7.1"])["7.1"].submission_id == "first"
        assert store.path_for(hashlib.sha256(data).hexdigest()).read_bytes() == data
        # An indexed uniqueId: its row is returned and nothing of the second submission is recorded.
        found = store.stage_if_new(
            "second", [_staged(store, spool, "7.1", b"other"), _staged(store, spool, "7.2", b"new")], lease_seconds=600
        )
    assert set(found) == {"7.1"} and found["7.1"].submission_id == "first"
    assert store.existing(["7.2"]) == {}
    assert store.counts() == {"pending": 1, "blobs": 1}
    assert not store.path_for(hashlib.sha256(b"new").hexdigest()).exists()


def test_stage_if_new_records_nothing_when_its_insert_conflicts(store: DocumentStore) -> None:
    """The insert itself refusing a uniqueId (here: the same one twice in the submission; in
    service: a concurrent submission that took it after the check) is a StoreConflict, and the
    transaction leaves no row, no blob and no file."""
    with Spool(store.spool_dir) as spool:
        twice = [_staged(store, spool, "8.1", os.urandom(100_000)), _staged(store, spool, "8.1", b"again")]
        with pytest.raises(StoreConflict):
            store.stage_if_new("sub", twice, lease_seconds=600)
    assert store.existing(["8.1"]) == {}
    assert store.counts() == {"blobs": 0}
    assert not any(path.is_file() for path in store.objects_dir.rglob("*"))


def test_prepare_flushes_and_makes_the_bucket_without_recording_anything(store: DocumentStore) -> None:
    data = os.urandom(100_000)
    with Spool(store.spool_dir) as spool:
        attachment = spool.store_bytes(data, content_id="p@test", content_type="text/plain")
        store.prepare([attachment])
        target = store.path_for(attachment.sha256_hex)
        assert target.parent.is_dir() and not target.exists()
        assert attachment.path is not None and attachment.path.read_bytes() == data
    assert store.counts() == {"blobs": 0}


def test_staging_without_placing_then_placing_the_flushed_files(store: DocumentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    large, small = os.urandom(120_000), b"small content"
    with Spool(store.spool_dir) as spool:
        staged = [_staged(store, spool, "8.1", large), _staged(store, spool, "8.2", small)]
        store.prepare([s.attachment for s in staged])
        assert store.stage_if_new("sub", staged, lease_seconds=600, place=False) == {}
        # Recorded as pending, but nothing at the content addresses yet.
        assert store.counts() == {"pending": 2, "blobs": 2}
        targets = [store.path_for(s.attachment.sha256_hex) for s in staged]
        assert not any(t.exists() for t in targets)
        fsynced: list[str] = []
        real_fsync = os.fsync

        def recording_fsync(fd: int) -> None:
            fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", recording_fsync)
        prepared_spool_file = str(staged[0].attachment.path)
        store.place(staged, flushed=True)
    assert [t.read_bytes() for t in targets] == [large, small]
    # The prepared spool file is not flushed again, only its new directory entry; the in-memory
    # document, which prepare could not flush, is written to a spool file and flushed here.
    spool_files = [name for name in fsynced if name.startswith(str(store.spool_dir))]
    assert prepared_spool_file not in spool_files and len(spool_files) == 1
    assert str(targets[0].parent) in fsynced and str(targets[1].parent) in fsynced


def test_a_new_bucket_flushes_only_the_directories_that_changed(store: DocumentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fsynced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    first = store.objects_dir / "ab" / "cd" / ("abcd" + "0" * 60)
    store._make_parent(first)
    assert fsynced == [str(store.objects_dir / "ab"), str(store.objects_dir)]
    fsynced.clear()
    store._make_parent(store.objects_dir / "ab" / "ef" / ("abef" + "0" * 60))  # "ab" exists already
    assert fsynced == [str(store.objects_dir / "ab")]
    fsynced.clear()
    store._make_parent(first)  # nothing new
    assert fsynced == []
