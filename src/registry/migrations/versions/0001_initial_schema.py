"""Initial registry schema: objects, their query columns and side tables, patients.

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('association',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_uuid', sa.String(length=64), nullable=False),
    sa.Column('association_type', sa.String(length=128), nullable=False),
    sa.Column('source_uuid', sa.String(length=64), nullable=False),
    sa.Column('target_uuid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_uuid')
    )
    with op.batch_alter_table('association', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_association_source_uuid'), ['source_uuid'], unique=False)
        batch_op.create_index(batch_op.f('ix_association_target_uuid'), ['target_uuid'], unique=False)

    op.create_table('document_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_uuid', sa.String(length=64), nullable=False),
    sa.Column('unique_id', sa.String(length=148), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('mime_type', sa.String(length=128), nullable=False),
    sa.Column('hash', sa.String(length=40), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('repository_unique_id', sa.String(length=128), nullable=True),
    sa.Column('creation_time', sa.String(length=22), nullable=True),
    sa.Column('service_start_time', sa.String(length=22), nullable=True),
    sa.Column('service_stop_time', sa.String(length=22), nullable=True),
    sa.Column('class_code', sa.String(length=256), nullable=True),
    sa.Column('class_scheme', sa.String(length=256), nullable=True),
    sa.Column('type_code', sa.String(length=256), nullable=True),
    sa.Column('type_scheme', sa.String(length=256), nullable=True),
    sa.Column('format_code', sa.String(length=256), nullable=True),
    sa.Column('format_scheme', sa.String(length=256), nullable=True),
    sa.Column('hcft_code', sa.String(length=256), nullable=True),
    sa.Column('hcft_scheme', sa.String(length=256), nullable=True),
    sa.Column('practice_code', sa.String(length=256), nullable=True),
    sa.Column('practice_scheme', sa.String(length=256), nullable=True),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_uuid')
    )
    with op.batch_alter_table('document_entry', schema=None) as batch_op:
        batch_op.create_index('ix_document_entry_patient', ['patient_id', 'status', 'object_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_entry_unique_id'), ['unique_id'], unique=False)

    op.create_table('folder',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_uuid', sa.String(length=64), nullable=False),
    sa.Column('unique_id', sa.String(length=128), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('last_update_time', sa.String(length=22), nullable=False),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_uuid'),
    sa.UniqueConstraint('unique_id')
    )
    with op.batch_alter_table('folder', schema=None) as batch_op:
        batch_op.create_index('ix_folder_patient', ['patient_id', 'status'], unique=False)

    op.create_table('patient',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('family_name', sa.String(length=256), nullable=True),
    sa.Column('given_name', sa.String(length=256), nullable=True),
    sa.Column('birth_date', sa.String(length=22), nullable=True),
    sa.Column('sex', sa.String(length=8), nullable=True),
    sa.Column('merged_into', sa.String(length=256), nullable=True),
    sa.Column('updated', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id')
    )
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_merged_into'), ['merged_into'], unique=False)

    op.create_table('registry_setting',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('submission_set',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_uuid', sa.String(length=64), nullable=False),
    sa.Column('unique_id', sa.String(length=128), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=True),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.Column('status', sa.String(length=64), nullable=False),
    sa.Column('submission_time', sa.String(length=22), nullable=True),
    sa.Column('content_type_code', sa.String(length=256), nullable=True),
    sa.Column('content_type_scheme', sa.String(length=256), nullable=True),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_uuid'),
    sa.UniqueConstraint('unique_id')
    )
    with op.batch_alter_table('submission_set', schema=None) as batch_op:
        batch_op.create_index('ix_submission_set_patient', ['patient_id', 'status'], unique=False)

    op.create_table('document_entry_author',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['document_entry.id'], )
    )
    with op.batch_alter_table('document_entry_author', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_entry_author_entry_id'), ['entry_id'], unique=False)

    op.create_table('document_entry_code',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('code', sa.String(length=256), nullable=False),
    sa.Column('scheme', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['document_entry.id'], )
    )
    with op.batch_alter_table('document_entry_code', schema=None) as batch_op:
        batch_op.create_index('ix_document_entry_code_entry', ['entry_id', 'kind'], unique=False)

    op.create_table('document_entry_reference',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['document_entry.id'], )
    )
    with op.batch_alter_table('document_entry_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_entry_reference_entry_id'), ['entry_id'], unique=False)

    op.create_table('folder_code',
    sa.Column('folder_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=256), nullable=False),
    sa.Column('scheme', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['folder_id'], ['folder.id'], )
    )
    with op.batch_alter_table('folder_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_folder_code_folder_id'), ['folder_id'], unique=False)

    op.create_table('submission_set_author',
    sa.Column('set_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['set_id'], ['submission_set.id'], )
    )
    with op.batch_alter_table('submission_set_author', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_set_author_set_id'), ['set_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('submission_set_author', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_set_author_set_id'))

    op.drop_table('submission_set_author')
    with op.batch_alter_table('folder_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_folder_code_folder_id'))

    op.drop_table('folder_code')
    with op.batch_alter_table('document_entry_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_entry_reference_entry_id'))

    op.drop_table('document_entry_reference')
    with op.batch_alter_table('document_entry_code', schema=None) as batch_op:
        batch_op.drop_index('ix_document_entry_code_entry')

    op.drop_table('document_entry_code')
    with op.batch_alter_table('document_entry_author', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_entry_author_entry_id'))

    op.drop_table('document_entry_author')
    with op.batch_alter_table('submission_set', schema=None) as batch_op:
        batch_op.drop_index('ix_submission_set_patient')

    op.drop_table('submission_set')
    op.drop_table('registry_setting')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_merged_into'))

    op.drop_table('patient')
    with op.batch_alter_table('folder', schema=None) as batch_op:
        batch_op.drop_index('ix_folder_patient')

    op.drop_table('folder')
    with op.batch_alter_table('document_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_entry_unique_id'))
        batch_op.drop_index('ix_document_entry_patient')

    op.drop_table('document_entry')
    with op.batch_alter_table('association', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_association_target_uuid'))
        batch_op.drop_index(batch_op.f('ix_association_source_uuid'))

    op.drop_table('association')
