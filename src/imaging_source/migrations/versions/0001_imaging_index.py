"""Edge Server index: patients, studies, series, instances (the DICOM information model) and PACS nodes.

Revision ID: i0001
Revises:
"""

from alembic import op
import sqlalchemy as sa


revision = "i0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imaging_patient",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.String(length=8), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_patient"),
        sa.UniqueConstraint("patient_id", "issuer", name="uq_imaging_patient_patient_id_issuer"),
    )
    op.create_table(
        "imaging_study",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("patient_ref", _ID, nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("accession", sa.String(length=64), nullable=False),
        sa.Column("accession_issuer", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=16), nullable=False),
        sa.Column("study_date", sa.String(length=8), nullable=False),
        sa.Column("study_time", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=64), nullable=False),
        sa.Column("referring_physician", sa.String(length=200), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_scheme", sa.String(length=64), nullable=False),
        sa.Column("procedure_meaning", sa.String(length=64), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["patient_ref"], ["imaging_patient.id"], name="fk_imaging_study_patient_ref_imaging_patient"),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_study"),
        sa.UniqueConstraint("study_uid", name="uq_imaging_study_study_uid"),
    )
    op.create_index("ix_imaging_study_patient_ref", "imaging_study", ["patient_ref"])
    op.create_index("ix_imaging_study_accession", "imaging_study", ["accession"])
    op.create_table(
        "imaging_series",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("study_ref", _ID, nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=64), nullable=False),
        sa.Column("body_part", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["study_ref"], ["imaging_study.id"], name="fk_imaging_series_study_ref_imaging_study"),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_series"),
        sa.UniqueConstraint("series_uid", name="uq_imaging_series_series_uid"),
    )
    op.create_index("ix_imaging_series_study_ref", "imaging_series", ["study_ref"])
    op.create_table(
        "imaging_instance",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("series_ref", _ID, nullable=False),
        sa.Column("sop_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["series_ref"], ["imaging_series.id"], name="fk_imaging_instance_series_ref_imaging_series"),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_instance"),
        sa.UniqueConstraint("sop_uid", name="uq_imaging_instance_sop_uid"),
    )
    op.create_index("ix_imaging_instance_series_ref", "imaging_instance", ["series_ref"])
    op.create_table(
        "imaging_pacs_node",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("ae_title", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_pacs_node"),
        sa.UniqueConstraint("name", name="uq_imaging_pacs_node_name"),
    )


def downgrade() -> None:
    op.drop_table("imaging_pacs_node")
    op.drop_table("imaging_instance")
    op.drop_table("imaging_series")
    op.drop_table("imaging_study")
    op.drop_table("imaging_patient")
