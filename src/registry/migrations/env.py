"""Alembic environment: runs migrations on the engine the registry hands over."""

from __future__ import annotations

from alembic import context

from registry.store import grants_schema  # noqa: F401  (declares the consent tables)
from registry.store.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
