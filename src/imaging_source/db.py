"""Engine set-up for the Edge Server's index (see :mod:`xds.db`), schema by Alembic
(``imaging_source/migrations``).

SQLite runs with ``synchronous=FULL``: the C-STORE intake commits a batch to the index before
its files leave ``incoming/`` (:mod:`imaging_source.intake`), and that order protects an
acknowledged instance across a power cut only if the commit is on disk when it returns (with
NORMAL a power cut could undo the commit after the files had moved, leaving them unindexed). The
intake commits many instances per transaction, so this is one WAL fsync per batch.

Alembic keeps its revision in its own table (``imaging_alembic_version``), so the Edge Server may
share a database with the other actors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from sqlalchemy import Engine

from xds import db

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE: Final = "imaging_alembic_version"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the Edge Server index at ``url``."""
    return db.make_engine(url, echo=echo)


def upgrade(engine: Engine) -> None:
    """Bring the index schema to the newest revision (idempotent)."""
    db.upgrade(engine, MIGRATIONS)
