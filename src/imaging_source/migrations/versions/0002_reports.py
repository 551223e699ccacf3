"""Edge Server RIS intake: reports (newest per accession, plus every version) and orders.

Revision ID: i0002
Revises: i0001
"""

from alembic import op
import sqlalchemy as sa


revision = "i0002"
down_revision = "i0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imaging_report",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status_time", sa.Float(), nullable=True),
        sa.Column("received", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_scheme", sa.String(length=64), nullable=False),
        sa.Column("procedure_meaning", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_report"),
        sa.UniqueConstraint("accession", name="uq_imaging_report_accession"),
    )
    op.create_index("ix_imaging_report_patient_id", "imaging_report", ["patient_id", "issuer"])
    op.create_table(
        "imaging_report_version",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status_time", sa.Float(), nullable=True),
        sa.Column("received", sa.Float(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_report_version"),
    )
    op.create_index("ix_imaging_report_version_accession", "imaging_report_version", ["accession"])
    op.create_table(
        "imaging_order",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("placer_number", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_scheme", sa.String(length=64), nullable=False),
        sa.Column("procedure_meaning", sa.String(length=200), nullable=False),
        sa.Column("order_control", sa.String(length=2), nullable=False),
        sa.Column("order_status", sa.String(length=2), nullable=False),
        sa.Column("canceled", sa.Boolean(), nullable=False),
        sa.Column("transaction_time", sa.Float(), nullable=True),
        sa.Column("scheduled_time", sa.Float(), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_order"),
        sa.UniqueConstraint("accession", name="uq_imaging_order_accession"),
    )
    op.create_index("ix_imaging_order_patient_id", "imaging_order", ["patient_id", "issuer"])


def downgrade() -> None:
    op.drop_index("ix_imaging_order_patient_id", table_name="imaging_order")
    op.drop_table("imaging_order")
    op.drop_index("ix_imaging_report_version_accession", table_name="imaging_report_version")
    op.drop_table("imaging_report_version")
    op.drop_index("ix_imaging_report_patient_id", table_name="imaging_report")
    op.drop_table("imaging_report")
