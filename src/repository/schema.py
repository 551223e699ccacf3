"""The repository's index tables (created by the Alembic migrations, never by ``create_all``).

``blob``: one row per stored content (by SHA-256), the lock that serialises creating and
deleting its file. ``document``: one row per XDSDocumentEntry.uniqueId with the state of its
submission (``pending`` until the registry accepted it, then ``committed``), who is working on
it (``owner``) and until when (``lease_until``, epoch seconds).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

PENDING: Final = "pending"
COMMITTED: Final = "committed"

_ID = BigInteger().with_variant(Integer(), "sqlite")

blob = Table(
    "repository_blob",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created", Float, nullable=False),
)

document = Table(
    "repository_document",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    # ITI TF-3 §4.2.3.2.26: a uniqueId is at most 128 characters (OID or OID^extension).
    Column("unique_id", String(128), nullable=False, unique=True),
    Column("sha256", String(64), ForeignKey("repository_blob.sha256"), nullable=False, index=True),
    Column("sha1", String(40), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("submission_id", String(64), nullable=False, index=True),
    Column("owner", String(255), nullable=False),
    Column("lease_until", Float, nullable=False),
    Column("created", Float, nullable=False),
    Column("committed", Float, nullable=True),
)

Index("ix_repository_document_state_lease", document.c.state, document.c.lease_until)
