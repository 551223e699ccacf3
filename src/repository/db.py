"""Engine set-up for the repository's index (see :mod:`xds.db`), schema by Alembic
(``repository/migrations``).

The index decides what survives a crash (see :mod:`repository.store`), so SQLite runs with
``synchronous=FULL``: the WAL is fsynced at every commit, so a committed 'pending' or 'committed'
state survives a power cut. Alembic keeps its revision in its own table
(``repository_alembic_version``), so the repository may share a database with the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy import Engine

from xds import db

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE: Final = "repository_alembic_version"


def sqlite_url(data_dir: Path, name: str = "repository.sqlite") -> str:
    """The embedded default database under a data directory."""
    return db.sqlite_url(data_dir, name)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the repository index at ``url``."""
    return db.make_engine(url, echo=echo)


def upgrade(engine: Engine) -> None:
    """Bring the index schema to the newest revision (idempotent)."""
    db.upgrade(engine, MIGRATIONS)
