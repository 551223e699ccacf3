"""Crash safety: the repository process is SIGKILLed while submissions are in flight, several
times, then restarted; once it has reconciled, the registry and the store agree exactly:

* every document the registry lists for this repository is retrievable, with the bytes that were
  submitted for it;
* every document in the index is known to the registry, nothing is left pending, and every file
  in the store belongs to an indexed document with the right hash.

Some rounds slow the registry's answers down, so kills also land after the registry registered a
submission and before the repository recorded it (the window reconciliation exists for).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support import factory as f
from tests.support.repository import REPOSITORY_ID, Live, RepositoryProcess, pnr_body, registry_app, with_content
from xds.http.client import SoapClient
from xds.http.server import ServerThread
from xds.vocabulary import Action

ROUNDS = 6
SUBMITTERS = 5
SIZES = (1_000, 70_000, 900_000, 6_000_000, 24_000_000)


def _content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


class SlowRegistry:
    """ASGI middleware: when ``delay`` is set, each response waits that long before it is sent
    (after the registry has done its work)."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.delay = 0.0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or not self.delay:
            await self.app(scope, receive, send)
            return
        delay = self.delay

        async def delayed_send(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)
            await send(message)

        await self.app(scope, receive, delayed_send)


def _submit(url: str, pid: str, seed: int, size: int, sent: dict[str, tuple[int, int]], lock: threading.Lock) -> None:
    sub = f.submission(pid)
    de = sub.document_entries[0]
    data = with_content(de, _content(seed, size))
    with lock:
        sent[de.unique_id] = (seed, size)
    body, parts = pnr_body(sub, {de.id: data})
    try:
        with SoapClient(url, timeout=30) as client:
            client.call(Action.ITI41, body, attachments=parts, mtom=True).close()
    except Exception:
        pass  # the server was killed under us: what happened is for the consistency check


@pytest.mark.slow
def test_sigkill_during_submissions_then_restart_leaves_registry_and_store_consistent(tmp_path: Path) -> None:
    rng = random.Random(20251128)
    app, registry_db = registry_app(tmp_path)
    slow = SlowRegistry(app)
    repository_db = f"sqlite:///{tmp_path / 'repository.sqlite'}"
    store = tmp_path / "store"
    env = {"XDS_REPOSITORY_RECONCILE_INTERVAL": "0.3", "XDS_REPOSITORY_PENDING_GRACE": "1"}
    sent: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()
    with ServerThread(slow) as registry:
        live = Live(
            registry_url=registry.url + "/registry",
            registry_db=registry_db,
            repository_url="http://unused/repository",
            store_dir=store,
            repository_db=repository_db,
        )
        pids = [live.feed(f.patient_id()) for _ in range(3)]

        def server() -> RepositoryProcess:
            process = RepositoryProcess(
                registry_url=registry.url + "/registry",
                repository_db=repository_db,
                store=store,
                data_dir=tmp_path / "data",
                extra=["--registry-timeout", "1"],
            )
            process.start(env=env)
            return process

        for round_number in range(ROUNDS):
            slow.delay = 0.8 if round_number % 2 else 0.0
            process = server()
            threads = [
                threading.Thread(
                    target=_submit,
                    args=(process.url, rng.choice(pids), rng.randrange(1 << 30), rng.choice(SIZES), sent, lock),
                )
                for _ in range(SUBMITTERS)
            ]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(0.05, 1.5))
            process.kill()
            for thread in threads:
                thread.join(timeout=60)
        slow.delay = 0.0

        process = server()
        try:
            _wait_for_reconciliation(live)
            _check_consistency(live, process, pids, sent)
        finally:
            process.stop()
            live.close()


def _pending(live: Live) -> int:
    return live.index_counts().get("pending", 0)


def _wait_for_reconciliation(live: Live, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _pending(live):
        assert time.monotonic() < deadline, "pending submissions were not reconciled"
        time.sleep(0.2)


def _index_rows(live: Live) -> Iterator[tuple[str, str, str, int, str]]:
    from repository.db import make_engine
    from repository.schema import document

    engine = make_engine(live.repository_db)
    try:
        with engine.connect() as conn:
            yield from conn.execute(
                select(document.c.unique_id, document.c.state, document.c.sha256, document.c.size, document.c.sha1)
            )
    finally:
        engine.dispose()


def _check_consistency(live: Live, process: RepositoryProcess, pids: list[str], sent: dict[str, tuple[int, int]]) -> None:
    assert sent, "no submission was attempted"
    live.client.close()
    live.client = SoapClient(process.url, timeout=60)
    live.url = process.url

    registered = {de.unique_id: de for pid in pids for de in live.patient_entries(pid)}
    ours = {uid: de for uid, de in registered.items() if de.repository_unique_id == REPOSITORY_ID}
    assert set(ours) <= set(sent)

    # 1. Everything the registry knows is retrievable, byte for byte.
    for uid in ours:
        outcome, docs = live.retrieve([(REPOSITORY_ID, uid)])
        assert outcome.codes == [], f"registered document {uid} is not retrievable: {outcome.codes}"
        seed, size = sent[uid]
        assert docs[uid][1] == _content(seed, size)

    # 2. The index holds exactly those, committed, with the right digests.
    rows = list(_index_rows(live))
    assert all(state == "committed" for _, state, *_ in rows)
    assert {uid for uid, *_ in rows} == set(ours)
    by_sha256 = {}
    for uid, _, sha256, size, sha1 in rows:
        assert (sha1, str(size)) == (ours[uid].hash, ours[uid].size)
        by_sha256[sha256] = size

    # 3. The store holds those files and nothing else; no spool file of a dead process is left.
    files = {p.name: p for p in live.store_files()}
    assert set(files) == set(by_sha256)
    for sha256, path in files.items():
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == sha256 and path.stat().st_size == by_sha256[sha256]
    spool_dirs = [p for p in (live.store_dir / "spool").iterdir()]
    assert len(spool_dirs) == 1 and not any(spool_dirs[0].iterdir())
    # The consistency is not vacuous: some submissions made it through the kills.
    assert ours, "no submission survived; the test proves nothing"
