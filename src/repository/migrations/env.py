"""Alembic environment: runs migrations on the engine the repository hands over."""

from __future__ import annotations

from alembic import context

from repository.db import VERSION_TABLE
from repository.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True, version_table=VERSION_TABLE
    )
    context.run_migrations()
