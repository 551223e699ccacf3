"""Repository index: stored contents (blobs) and documents with their submission state.

Revision ID: r0001
Revises:
"""

from alembic import op
import sqlalchemy as sa


revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "repository_blob",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_repository_blob"),
    )
    op.create_table(
        "repository_document",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("unique_id", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("committed", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sha256"], ["repository_blob.sha256"], name="fk_repository_document_sha256_repository_blob"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_repository_document"),
        sa.UniqueConstraint("unique_id", name="uq_repository_document_unique_id"),
    )
    op.create_index("ix_repository_document_sha256", "repository_document", ["sha256"])
    op.create_index("ix_repository_document_submission_id", "repository_document", ["submission_id"])
    op.create_index("ix_repository_document_state_lease", "repository_document", ["state", "lease_until"])


def downgrade() -> None:
    op.drop_table("repository_document")
    op.drop_table("repository_blob")
