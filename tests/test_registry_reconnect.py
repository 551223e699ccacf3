"""The registry survives PostgreSQL dropping its pooled connections (a database restart).

The pool pings a connection only after it has been idle (``registry.store.db``); a connection that
died while recently used is caught by ITI-42 and ITI-18, which retry once when nothing was sent for
commit. Every backend of the registry's database is terminated between two requests to simulate
the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from registry.store import objects
from xds import db
from registry.store import schema as t
from tests.support import factory as f
from tests.support.registry import RegistryUnderTest

FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"


@pytest.fixture
def pg_engine(pg_registry_url: str) -> Iterator[Engine]:
    engine = db.make_engine(pg_registry_url)
    yield engine
    engine.dispose()


@pytest.fixture
def reg(pg_engine: Engine, codes_xml) -> RegistryUnderTest:  # type: ignore[no-untyped-def]
    from profiles.codes import load_code_set

    return RegistryUnderTest(pg_engine, codes=load_code_set(codes_xml))


def _terminate_backends(engine: Engine) -> int:
    """Kill every server process attached to the engine's database, as a restart would."""
    admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": engine.url.database},
            ).scalar_one()
    finally:
        admin.dispose()
    return int(killed)


def _entries(engine: Engine, pid: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(t.document_entry).where(t.document_entry.c.patient_id == pid)).scalar_one()
        )


@pytest.mark.parametrize("idle", ["recently used", "idle"])
def test_submission_after_the_connections_were_dropped(
    reg: RegistryUnderTest, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, idle: str
) -> None:
    pid = reg.feed(f.patient_id())
    reg.ok(f.submission(pid))
    # "idle": every checkout pings first; "recently used": no ping, the retry must recover.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0 if idle == "idle" else 3600.0)
    assert _terminate_backends(pg_engine) >= 1
    sub = f.submission(pid)
    with caplog.at_level(logging.WARNING, logger="registry.iti42"):
        reg.ok(sub)
    retried = any("retrying once" in r.getMessage() for r in caplog.records)
    # The ping catches the dead connection at checkout; without it, the retry does.
    assert retried == (idle == "recently used")
    assert _entries(pg_engine, pid) == 2
    # And the registry keeps working on the renewed pool.
    reg.ok(f.submission(pid))
    assert _entries(pg_engine, pid) == 3


def test_stored_query_after_the_connections_were_dropped(
    reg: RegistryUnderTest, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = reg.feed(f.patient_id())
    reg.ok(f.submission(pid, entries=2))
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    assert _terminate_backends(pg_engine) >= 1
    answer = reg.query(FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": pid, "$XDSDocumentEntryStatus": ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"]})
    assert answer.status.endswith(":Success"), answer.errors
    assert len(answer.submission().document_entries) == 2


def test_a_failure_other_than_a_lost_connection_is_not_retried(
    reg: RegistryUnderTest, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = reg.feed(f.patient_id())
    calls: list[int] = []

    def broken(conn, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        conn.execute(text("SELECT no_such_column FROM patient"))

    monkeypatch.setattr(objects, "submission_lookups", broken)
    errors = [e for e in reg.submit(f.submission(pid)) if e.is_error]
    assert [e.code_text for e in errors] == ["XDSRegistryError"]
    assert calls == [1]
    assert _entries(pg_engine, pid) == 0
