"""Every actor's embedded SQLite answers only after its commit is on disk: WAL with
synchronous=FULL (2), not NORMAL (1), which a power cut can undo.

Registry: an ITI-42 Success or a consent grant must survive, and the repository's final commit
trusts the registry to keep it. Repository: the pending row must be durable before ITI-42.
Edge Server: the intake commits a batch before its files leave incoming/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from imaging_source.db import make_engine as imaging_engine
from registry.store.db import make_engine as registry_engine
from repository.db import make_engine as repository_engine


@pytest.mark.parametrize(
    "make_engine",
    [registry_engine, repository_engine, imaging_engine],
    ids=["registry", "repository", "imaging_source"],
)
def test_commits_are_on_disk_when_they_return(make_engine: Callable[[str], Engine], tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'actor.sqlite'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        engine.dispose()
