"""Patient self-service on consent grants: a grant's label and the PIN-pending flag (DESIGN §4).

Both are plain ADD COLUMNs (a constant default), so neither database rewrites consent_grant.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('consent_grant', sa.Column('label', sa.String(length=120), nullable=True))
    op.add_column(
        'consent_grant',
        sa.Column('pin_pending', sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # SQLite 3.35+ and PostgreSQL drop a column in place; batch mode would rebuild the table
    # and its partial unique index.
    op.drop_column('consent_grant', 'pin_pending')
    op.drop_column('consent_grant', 'label')
