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


def test_behind_a_consent_registry_the_reconciler_presents_the_service_key(tmp_path: Path) -> None:
    """A registry in the consent policy shows an anonymous ITI-18 nothing: a reconciler asking
    without the service key would take a registered document for an unregistered one and
    discard it. With ``registry_key`` (the registry's grant API key) it sees the entry and keeps
    the document."""
    import os
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from registry.app import build_registry_app
    from registry.config import RegistrySettings
    from registry.iti42 import DocumentRegistry
    from registry.patients import Patient
    from registry.store.db import make_engine as registry_engine
    from repository.cli import repository
    from repository.store import Owner
    from tests.support import factory as f
    from xds.http.client import SoapClient
    from xds.http.server import ServerThread
    from xds.metadata.ebrim import encode_submit_objects_request
    from xds.metadata.responses import parse_registry_response
    from xds.vocabulary import Action, ResponseStatus

    key = "service-key-for-the-test"
    registry_db = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    settings = RegistrySettings(db=registry_db, data_dir=tmp_path / "registry", mllp_port=0, access_policy="consent", grant_api_key=key)
    with ServerThread(build_registry_app(settings)) as server:
        registry_url = server.url + "/registry"
        pid = f.patient_id()
        reg_engine = registry_engine(registry_db)
        DocumentRegistry(reg_engine).patients.add_or_update(Patient(patient_id=pid))
        reg_engine.dispose()
        outcomes = {}
        for with_key in (False, True):
            data = f"registered document {with_key}".encode()
            uid = f"2.25.{900001 + int(with_key)}"
            sub = f.submission(pid, entries=1)
            entry = sub.document_entries[0]
            entry.unique_id, entry.repository_unique_id = uid, REPO
            entry.hash, entry.size = hashlib.sha1(data).hexdigest(), str(len(data))
            with SoapClient(registry_url, timeout=30) as client:
                reply = client.call(Action.ITI42, encode_submit_objects_request(sub))
            parsed = parse_registry_response(reply.body)
            assert parsed.status == ResponseStatus.SUCCESS, [(e.code_text, e.context) for e in parsed.errors]
            # The repository died after ITI-42 succeeded and before it recorded the outcome.
            db = f"sqlite:///{tmp_path / f'repository-{with_key}.sqlite'}"
            engine = make_engine(db)
            upgrade(engine)
            child = subprocess.Popen([sys.executable, "-c", "pass"])
            child.wait()
            store_dir = tmp_path / f"store-{with_key}"
            earlier = DocumentStore(store_dir, engine, owner=Owner(Owner.current().host, child.pid, "gone"), clock=lambda: time.time() - 3600)
            with Spool(earlier.spool_dir) as spool:
                earlier.stage("crashed", [Staged(uid, "text/plain", spool.store_bytes(data, content_id="x", content_type="text/plain"))], lease_seconds=7200)
            engine.dispose()
            env = {**os.environ, "XDS_REPOSITORY_REGISTRY_KEY": key} if with_key else {"XDS_REPOSITORY_REGISTRY_KEY": ""}
            result = CliRunner().invoke(
                repository,
                ["reconcile", "--registry", registry_url, "--db", db, "--store", str(store_dir), "--repository-id", REPO],
                env=env,
            )  # fmt: skip
            assert result.exit_code == 0, result.output
            outcomes[with_key] = result.output
    assert "discarded 1" in outcomes[False], outcomes[False]
    assert "committed 1" in outcomes[True] and "discarded 0" in outcomes[True], outcomes[True]
