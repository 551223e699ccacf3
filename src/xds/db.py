"""Database engines for every actor's index: SQLite in WAL mode as the embedded default,
PostgreSQL (psycopg 3) by URL, schemas owned by each actor's Alembic migrations.

One place for what all actors want of a connection; each actor says only what differs (how
durable a SQLite commit must be, its migrations directory, its Alembic version table, which
lets several actors share one database).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final, Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import ClauseElement

__all__ = ["PING_AFTER_IDLE_S", "make_engine", "sqlite_driver_sql", "sqlite_url", "upgrade"]

#: SQLite ``synchronous`` levels (WAL): FULL fsyncs the WAL at every commit, so a commit survives a
#: power cut once it returns; NORMAL fsyncs only at checkpoints (~0.4 ms less per commit here,
#: performance-anchors §1.4): a process crash loses nothing, a power cut may undo the last commits.
Synchronous = Literal["NORMAL", "FULL"]

# A pooled connection idle for longer than this is pinged before use; one used more recently is
# taken as alive. Under load every transaction would otherwise pay a "SELECT 1" round trip
# (``pool_pre_ping``: ~0.13 ms CPU plus a backend wake-up per checkout, docs/benchmarks.md), while
# the failure it guards against (the server restarted, the connection dropped) follows idleness.
PING_AFTER_IDLE_S = 1.0
_CHECKED_IN: Final = "xds_checked_in"


#: SQLite with sqlite3's named parameters (``:name``), for :func:`sqlite_driver_sql`.
_SQLITE_NAMED: Final = sqlite.dialect(paramstyle="named")


def sqlite_driver_sql(statement: ClauseElement) -> str:
    """``statement`` as SQLite driver SQL with named parameters, compiled once by the caller and
    run with ``Connection.exec_driver_sql``: on a hot path this skips SQLAlchemy's per-execution
    work (cache key, compiled-cache look-up, parameter processing), while errors still arrive as
    SQLAlchemy exceptions."""
    return str(statement.compile(dialect=_SQLITE_NAMED))


def sqlite_url(data_dir: Path, name: str) -> str:
    """The embedded default database ``name`` under a data directory (created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / name).resolve()}"


def _sqlite_pragmas(*, synchronous: Synchronous, cache_kib: int | None) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run beside the single writer.
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if cache_kib:
            cur.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        cur.close()

    return on_connect


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling, as ``pool_pre_ping`` but only after idleness.

    Raising ``DisconnectionError`` makes the pool discard this connection and check out another
    (SQLAlchemy's documented pattern), so a dead connection never reaches a transaction.
    """
    if dbapi_connection.closed:
        raise exc.DisconnectionError("connection closed")
    last = record.info.get(_CHECKED_IN)
    if last is not None and time.monotonic() - last < PING_AFTER_IDLE_S:
        return
    autocommit = dbapi_connection.autocommit
    try:
        if not autocommit:
            dbapi_connection.autocommit = True
        dbapi_connection.execute("SELECT 1")
    except Exception as error:  # any failure of the ping means the connection is unusable
        raise exc.DisconnectionError(f"ping failed: {error}") from error
    finally:
        if not autocommit and not dbapi_connection.closed:
            dbapi_connection.autocommit = False


def make_engine(
    url: str, *, synchronous: Synchronous = "FULL", sqlite_cache_kib: int | None = None, echo: bool = False
) -> Engine:
    """An engine for ``url``: SQLite with WAL (``synchronous`` FULL unless told otherwise: every
    actor answers only after its commit is on disk), foreign keys and a busy timeout; PostgreSQL
    through psycopg 3 (a bare ``postgresql://`` URL is taken to mean it) with a pool that pings a
    connection only after it sat idle."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas(synchronous=synchronous, cache_kib=sqlite_cache_kib))
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=10, pool_recycle=3600)
    event.listen(engine.pool, "checkin", _note_checkin)
    event.listen(engine.pool, "checkout", _ping_if_idle)
    return engine


def alembic_config(engine: Engine, migrations: Path) -> Config:
    """An Alembic configuration running ``migrations`` on ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, migrations: Path) -> None:
    """Bring the schema of ``migrations`` to its newest revision (idempotent)."""
    command.upgrade(alembic_config(engine, migrations), "head")
