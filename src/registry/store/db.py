"""Engine set-up for the registry: SQLite (WAL, ``synchronous=FULL``, 64 MiB page cache) as the
embedded default, PostgreSQL by URL (see :mod:`xds.db`).

FULL, because the registry's rows are the record itself: an ITI-42 Success (or a consent grant)
is answered only once its commit is on disk, as PostgreSQL's default ``synchronous_commit=on``
does. With NORMAL a power cut could take back registrations already acknowledged, and the
repository, whose final commit trusts the registry to have kept them (:mod:`repository.store`),
would then delete documents its clients were told were stored.

The schema is created and upgraded by Alembic (``registry/migrations``), never by ``create_all``,
so a database made by one release upgrades cleanly in the next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy import Engine

from xds import db

MIGRATIONS: Final = Path(__file__).resolve().parent.parent / "migrations"


def sqlite_url(data_dir: Path, name: str = "registry.sqlite") -> str:
    """The embedded default database under a data directory."""
    return db.sqlite_url(data_dir, name)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the registry database at ``url``."""
    return db.make_engine(url, sqlite_cache_kib=65536, echo=echo)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    db.upgrade(engine, MIGRATIONS)
