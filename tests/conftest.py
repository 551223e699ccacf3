"""Fixtures shared by the whole suite: databases (SQLite and PostgreSQL) and shared data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.support.paths import CODES_XML, SCHEMAS

PG_ADMIN_URL = os.environ.get("XDS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # the reason is shown in the skip message
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A private PostgreSQL database for this test process, dropped at the end."""
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"xds_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_registry_url(pg_database: str) -> str:
    from registry.store.db import make_engine, upgrade

    engine = make_engine(pg_database)
    upgrade(engine)
    engine.dispose()
    return pg_database


def _truncate_all(engine: Engine) -> None:
    from registry.store.schema import metadata

    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A registry database URL with an up-to-date, empty schema, on each of the two databases."""
    if request.param == "sqlite":
        from registry.store.db import make_engine, upgrade

        url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("pg_registry_url")
    from registry.store.db import make_engine

    engine = make_engine(url)
    _truncate_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def registry_engine(registry_db_url: str) -> Iterator[Engine]:
    from registry.store.db import make_engine

    engine = make_engine(registry_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def schemas_dir():  # type: ignore[no-untyped-def]
    if not SCHEMAS.is_dir():
        pytest.skip(f"shared schemas not found at {SCHEMAS}")
    return SCHEMAS


@pytest.fixture(scope="session")
def codes_xml():  # type: ignore[no-untyped-def]
    if not CODES_XML.is_file():
        pytest.skip(f"shared affinity-domain codes not found at {CODES_XML}")
    return CODES_XML
