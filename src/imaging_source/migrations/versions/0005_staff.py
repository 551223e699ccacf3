"""Edge Server staff console: staff users (scrypt password hashes, roles, lock-out) and the
console's audit trail of staff actions.

Revision ID: i0005
Revises: i0004
"""

from alembic import op
import sqlalchemy as sa


revision = "i0005"
down_revision = "i0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "imaging_staff_user",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=True),
        sa.Column("last_login", sa.Float(), nullable=True),
        sa.Column("password_changed", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_staff_user"),
        sa.UniqueConstraint("username", name="uq_imaging_staff_user_username"),
    )
    op.create_table(
        "imaging_staff_action",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("staff", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_imaging_staff_action"),
    )
    op.create_index("ix_imaging_staff_action_at", "imaging_staff_action", ["at"])
    op.create_index("ix_imaging_staff_action_patient_id", "imaging_staff_action", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_imaging_staff_action_patient_id", table_name="imaging_staff_action")
    op.drop_index("ix_imaging_staff_action_at", table_name="imaging_staff_action")
    op.drop_table("imaging_staff_action")
    op.drop_table("imaging_staff_user")
