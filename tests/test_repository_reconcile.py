"""The reconciler's decisions, with the registry's answers scripted: keep what the registry holds
for this repository with this exact content, drop everything else, wait when it cannot tell."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Engine

from repository.db import make_engine, upgrade
from repository.reconcile import Reconciler
from repository.registry_link import RegisteredEntry, RegistryUnavailable
from repository.store import DocumentStore, Staged
from xds.soap.attachments import Spool

REPO = "1.2.3.4"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.sqlite'}")
    upgrade(engine)
    return engine


def _stage(store: DocumentStore, submission: str, documents: dict[str, bytes]) -> None:
    with Spool(store.spool_dir) as spool:
        staged = [
            Staged(uid, "text/plain", spool.store_bytes(data, content_id=uid, content_type="text/plain"))
            for uid, data in documents.items()
        ]
        store.stage(submission, staged, lease_seconds=-1)  # already expired: claimable at once


def _entry(uid: str, data: bytes, *, repository: str = REPO, sha1: str | None = None) -> RegisteredEntry:
    return RegisteredEntry(uid, (sha1 or hashlib.sha1(data).hexdigest()).upper(), str(len(data)), repository)


def test_keeps_only_exact_matches(engine: Engine, tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "store", engine)
    docs = {"1.1": b"registered here", "1.2": b"registered elsewhere", "1.3": b"other hash", "1.4": b"not registered"}
    _stage(store, "s", docs)

    async def lookup(unique_ids: Sequence[str]) -> dict[str, list[RegisteredEntry]]:
        assert sorted(unique_ids) == sorted(docs)
        return {
            "1.1": [_entry("1.1", docs["1.1"])],
            "1.2": [_entry("1.2", docs["1.2"], repository="9.9.9")],
            "1.3": [_entry("1.3", docs["1.3"], sha1=hashlib.sha1(b"x").hexdigest())],
        }

    reconciler = Reconciler(store, lookup, repository_id=REPO, lease_seconds=60, retry_after=60)
    report = anyio.run(reconciler.run_once)
    assert (report.committed, report.discarded, report.deferred) == (1, 3, 0)
    assert set(store.lookup(docs)) == {"1.1"}
    assert store.existing(docs).keys() == {"1.1"}
    assert sorted(p.name for p in store.objects_dir.rglob("*") if p.is_file()) == [hashlib.sha256(docs["1.1"]).hexdigest()]


def test_waits_when_the_registry_cannot_tell(engine: Engine, tmp_path: Path) -> None:
    now = [1_000.0]
    store = DocumentStore(tmp_path / "store", engine, clock=lambda: now[0])
    _stage(store, "s", {"2.1": b"content"})

    async def unavailable(unique_ids: Sequence[str]) -> dict[str, list[RegisteredEntry]]:
        raise RegistryUnavailable("connection refused")

    reconciler = Reconciler(store, unavailable, repository_id=REPO, lease_seconds=60, retry_after=30)
    report = anyio.run(reconciler.run_once)
    assert (report.committed, report.discarded, report.deferred) == (0, 0, 1)
    assert store.existing(["2.1"])["2.1"].state == "pending"
    assert store.claimable() == []  # it waits retry_after before the next attempt
    now[0] += 31
    assert [p.submission_id for p in store.claimable()] == ["s"]


def test_a_registered_document_whose_file_is_missing_is_not_committed(engine: Engine, tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "store", engine)
    data = b"lost file"
    _stage(store, "s", {"3.1": data})
    store.path_for(hashlib.sha256(data).hexdigest()).unlink()

    async def lookup(unique_ids: Sequence[str]) -> dict[str, list[RegisteredEntry]]:
        return {"3.1": [_entry("3.1", data)]}

    report = anyio.run(Reconciler(store, lookup, repository_id=REPO, lease_seconds=60, retry_after=60).run_once)
    assert (report.committed, report.discarded) == (0, 1)
    assert store.lookup(["3.1"]) == {}


def test_reconcile_command_settles_a_stopped_repository(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from repository.cli import repository
    from repository.store import Owner
    from tests.support.repository import live_pair

    with live_pair(tmp_path, f"sqlite:///{tmp_path / 'repository.sqlite'}") as live:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        engine = make_engine(live.repository_db)
        dead = Owner(Owner.current().host, child.pid, "gone")
        earlier = DocumentStore(live.store_dir, engine, owner=dead, clock=lambda: time.time() - 3600)
        with Spool(earlier.spool_dir) as spool:
            staged = Staged("4.1", "text/plain", spool.store_bytes(b"never registered", content_id="x", content_type="text/plain"))
            earlier.stage("crashed", [staged], lease_seconds=7200)
        engine.dispose()
        result = CliRunner().invoke(
            repository,
            ["reconcile", "--registry", live.registry_url, "--db", live.repository_db, "--store", str(live.store_dir),
             "--repository-id", live.repository_id],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "discarded 1" in result.output and "0 pending" in result.output
        assert live.store_files() == []


def test_a_dead_owners_registered_documents_are_kept_at_once_the_rest_later(engine: Engine, tmp_path: Path) -> None:
    import subprocess
    import sys

    from repository.store import Owner

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    now = [10_000.0]
    dead = DocumentStore(tmp_path / "store", engine, owner=Owner(Owner.current().host, child.pid, "x"), clock=lambda: now[0])
    with Spool(dead.spool_dir) as spool:
        staged = [
            Staged(uid, "text/plain", spool.store_bytes(uid.encode(), content_id=uid, content_type="text/plain"))
            for uid in ("5.1", "5.2")
        ]
        dead.stage("crashed", staged, lease_seconds=600)
    store = DocumentStore(tmp_path / "store", engine, clock=lambda: now[0])

    async def lookup(unique_ids: Sequence[str]) -> dict[str, list[RegisteredEntry]]:
        return {"5.1": [_entry("5.1", b"5.1")]}

    reconciler = Reconciler(store, lookup, repository_id=REPO, lease_seconds=600, retry_after=60, settle_after=180)
    now[0] += 5  # a restart, seconds after the crash
    first = anyio.run(reconciler.run_once)
    assert (first.committed, first.discarded) == (1, 0)
    assert set(store.lookup(["5.1", "5.2"])) == {"5.1"}
    assert store.existing(["5.2"])["5.2"].state == "pending"
    assert anyio.run(reconciler.run_once) == type(first)()  # nothing to do before the call could have ended
    now[0] += 180
    later = anyio.run(reconciler.run_once)
    assert (later.committed, later.discarded) == (0, 1)
    assert store.existing(["5.2"]) == {}
