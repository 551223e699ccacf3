"""Edge Server share jobs: one row per shared exam, its state history, and autosend patients.

Revision ID: i0003
Revises: i0002
"""

from alembic import op
import sqlalchemy as sa


revision = "i0003"
down_revision = "i0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imaging_job",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("state_since", sa.Float(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", sa.Float(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("release_time", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=False),
        sa.Column("autosend", sa.Boolean(), nullable=False),
        sa.Column("submission_uid", sa.String(length=64), nullable=True),
        sa.Column("kos_uid", sa.String(length=64), nullable=True),
        sa.Column("report_uid", sa.String(length=64), nullable=True),
        sa.Column("report_mime", sa.String(length=64), nullable=True),
        sa.Column("submitted", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_job"),
    )
    op.create_index("ix_imaging_job_study_uid", "imaging_job", ["study_uid"])
    op.create_index("ix_imaging_job_state", "imaging_job", ["state"])
    op.create_index("ix_imaging_job_next_attempt", "imaging_job", ["next_attempt"])
    op.create_table(
        "imaging_job_event",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("job_ref", _ID, nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["job_ref"], ["imaging_job.id"], name="fk_imaging_job_event_job_ref_imaging_job"),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_job_event"),
    )
    op.create_index("ix_imaging_job_event_job_ref", "imaging_job_event", ["job_ref"])
    op.create_table(
        "imaging_autosend",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_autosend"),
        sa.UniqueConstraint("patient_id", "issuer", name="uq_imaging_autosend_patient_id_issuer"),
    )


def downgrade() -> None:
    op.drop_table("imaging_autosend")
    op.drop_index("ix_imaging_job_event_job_ref", table_name="imaging_job_event")
    op.drop_table("imaging_job_event")
    op.drop_index("ix_imaging_job_next_attempt", table_name="imaging_job")
    op.drop_index("ix_imaging_job_state", table_name="imaging_job")
    op.drop_index("ix_imaging_job_study_uid", table_name="imaging_job")
    op.drop_table("imaging_job")
