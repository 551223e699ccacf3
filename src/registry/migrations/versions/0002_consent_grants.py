"""Consent grants: grants, their exams, failure throttles and the audit trail (DESIGN §4).

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('consent_grant',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('grant_id', sa.String(length=36), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('pin_hash', sa.String(length=200), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('parent_id', PK, nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['consent_grant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id')
    )
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_grant_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_grant_parent_id'), ['parent_id'], unique=False)
        batch_op.create_index('ux_consent_grant_live_code', ['code_digest'], unique=True,
                              sqlite_where=sa.text('NOT revoked'), postgresql_where=sa.text('NOT revoked'))

    op.create_table('consent_grant_exam',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('grant_pk', PK, nullable=False),
    sa.Column('study_uid', sa.String(length=128), nullable=False),
    sa.Column('manifest_unique_id', sa.String(length=128), nullable=True),
    sa.Column('report_unique_ids', sa.Text(), nullable=False),
    sa.Column('release_time', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['grant_pk'], ['consent_grant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_grant_exam', schema=None) as batch_op:
        batch_op.create_index('ux_consent_grant_exam', ['grant_pk', 'study_uid'], unique=True)

    op.create_table('consent_throttle',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )

    op.create_table('consent_audit',
    sa.Column('id', PK, autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('grant_id', sa.String(length=36), nullable=True),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=256), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_audit_grant_id'), ['grant_id'], unique=False)


def downgrade() -> None:
    op.drop_table('consent_audit')
    op.drop_table('consent_throttle')
    with op.batch_alter_table('consent_grant_exam', schema=None) as batch_op:
        batch_op.drop_index('ux_consent_grant_exam')
    op.drop_table('consent_grant_exam')
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_index('ux_consent_grant_live_code')
        batch_op.drop_index(batch_op.f('ix_consent_grant_parent_id'))
        batch_op.drop_index(batch_op.f('ix_consent_grant_patient_id'))
    op.drop_table('consent_grant')
