"""Edge Server consent grants: which registry grant is whose, and exams still to put on grants.

Revision ID: i0004
Revises: i0003
"""

from alembic import op
import sqlalchemy as sa


revision = "i0004"
down_revision = "i0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imaging_grant",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("affinity_patient_id", sa.String(length=256), nullable=False),
        sa.Column("expires", sa.Float(), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_grant"),
        sa.UniqueConstraint("grant_id", name="uq_imaging_grant_grant_id"),
        sa.UniqueConstraint("patient_id", "issuer", name="uq_imaging_grant_patient_id_issuer"),
    )
    op.create_table(
        "imaging_grant_pending",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("job_ref", _ID, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["job_ref"], ["imaging_job.id"], name="fk_imaging_grant_pending_job_ref_imaging_job"),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_grant_pending"),
        sa.UniqueConstraint("job_ref", name="uq_imaging_grant_pending_job_ref"),
    )


def downgrade() -> None:
    op.drop_table("imaging_grant_pending")
    op.drop_table("imaging_grant")
