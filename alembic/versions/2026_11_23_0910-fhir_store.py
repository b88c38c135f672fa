"""fhir: resource store and search index

Revision ID: 0002_fhir
Revises: 0001_kernel
Create Date: 2026-11-23 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import yilian.db  # noqa: F401

revision = "0002_fhir"
down_revision = "0001_kernel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fhir_export_job',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('request_url', sa.String(length=2048), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('types', yilian.db.JSONType, nullable=True),
    sa.Column('output', yilian.db.JSONType, nullable=True),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('finished_at', yilian.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fhir_export_job'))
    )
    op.create_table('fhir_import_checkpoint',
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('imported', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('finished', sa.Boolean(), nullable=False),
    sa.Column('updated_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('path', name=op.f('pk_fhir_import_checkpoint'))
    )
    op.create_table('fhir_resource',
    sa.Column('pk', sa.Uuid(), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('res_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_updated', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_fhir_resource')),
    sa.UniqueConstraint('res_type', 'res_id', name='uq_fhir_resource_type_id')
    )
    with op.batch_alter_table('fhir_resource', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_resource_type_updated', ['res_type', 'last_updated', 'res_id'], unique=False)

    op.create_table('fhir_idx_date',
    sa.Column('pk', sa.Uuid(), nullable=False),
    sa.Column('resource_pk', sa.Uuid(), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('low', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('high', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['fhir_resource.pk'], name=op.f('fk_fhir_idx_date_resource_pk_fhir_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_fhir_idx_date'))
    )
    with op.batch_alter_table('fhir_idx_date', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_idx_date_lookup', ['res_type', 'param', 'low', 'high', 'resource_pk'], unique=False)
        batch_op.create_index('ix_fhir_idx_date_resource', ['resource_pk'], unique=False)

    op.create_table('fhir_idx_quantity',
    sa.Column('pk', sa.Uuid(), nullable=False),
    sa.Column('resource_pk', sa.Uuid(), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['fhir_resource.pk'], name=op.f('fk_fhir_idx_quantity_resource_pk_fhir_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_fhir_idx_quantity'))
    )
    with op.batch_alter_table('fhir_idx_quantity', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_idx_quantity_lookup', ['res_type', 'param', 'value', 'resource_pk'], unique=False)
        batch_op.create_index('ix_fhir_idx_quantity_resource', ['resource_pk'], unique=False)

    op.create_table('fhir_idx_reference',
    sa.Column('pk', sa.Uuid(), nullable=False),
    sa.Column('resource_pk', sa.Uuid(), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['fhir_resource.pk'], name=op.f('fk_fhir_idx_reference_resource_pk_fhir_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_fhir_idx_reference'))
    )
    with op.batch_alter_table('fhir_idx_reference', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_idx_reference_lookup', ['res_type', 'param', 'target_id', 'target_type', 'resource_pk'], unique=False)
        batch_op.create_index('ix_fhir_idx_reference_resource', ['resource_pk'], unique=False)
        batch_op.create_index('ix_fhir_idx_reference_target', ['target_id', 'target_type', 'param'], unique=False)

    op.create_table('fhir_idx_string',
    sa.Column('pk', sa.Uuid(), nullable=False),
    sa.Column('resource_pk', sa.Uuid(), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value_norm', sa.String(length=255), nullable=False),
    sa.Column('value_exact', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['fhir_resource.pk'], name=op.f('fk_fhir_idx_string_resource_pk_fhir_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_fhir_idx_string'))
    )
    with op.batch_alter_table('fhir_idx_string', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_idx_string_lookup', ['res_type', 'param', 'value_norm', 'resource_pk'], unique=False, postgresql_ops={'value_norm': 'varchar_pattern_ops'})
        batch_op.create_index('ix_fhir_idx_string_resource', ['resource_pk'], unique=False)

    op.create_table('fhir_idx_token',
    sa.Column('pk', sa.Uuid(), nullable=False),
    sa.Column('resource_pk', sa.Uuid(), nullable=False),
    sa.Column('res_type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.String(length=255), nullable=True),
    sa.Column('code', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['resource_pk'], ['fhir_resource.pk'], name=op.f('fk_fhir_idx_token_resource_pk_fhir_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_fhir_idx_token'))
    )
    with op.batch_alter_table('fhir_idx_token', schema=None) as batch_op:
        batch_op.create_index('ix_fhir_idx_token_lookup', ['res_type', 'param', 'code', 'system', 'resource_pk'], unique=False)
        batch_op.create_index('ix_fhir_idx_token_resource', ['resource_pk'], unique=False)

    op.create_table('fhir_resource_version',
    sa.Column('resource_pk', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_updated', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('resource', yilian.db.JSONType, nullable=True),
    sa.ForeignKeyConstraint(['resource_pk'], ['fhir_resource.pk'], name=op.f('fk_fhir_resource_version_resource_pk_fhir_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resource_pk', 'version', name=op.f('pk_fhir_resource_version'))
    )


def downgrade() -> None:
    op.drop_table('fhir_resource_version')
    with op.batch_alter_table('fhir_idx_token', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_idx_token_resource')
        batch_op.drop_index('ix_fhir_idx_token_lookup')

    op.drop_table('fhir_idx_token')
    with op.batch_alter_table('fhir_idx_string', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_idx_string_resource')
        batch_op.drop_index('ix_fhir_idx_string_lookup', postgresql_ops={'value_norm': 'varchar_pattern_ops'})

    op.drop_table('fhir_idx_string')
    with op.batch_alter_table('fhir_idx_reference', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_idx_reference_target')
        batch_op.drop_index('ix_fhir_idx_reference_resource')
        batch_op.drop_index('ix_fhir_idx_reference_lookup')

    op.drop_table('fhir_idx_reference')
    with op.batch_alter_table('fhir_idx_quantity', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_idx_quantity_resource')
        batch_op.drop_index('ix_fhir_idx_quantity_lookup')

    op.drop_table('fhir_idx_quantity')
    with op.batch_alter_table('fhir_idx_date', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_idx_date_resource')
        batch_op.drop_index('ix_fhir_idx_date_lookup')

    op.drop_table('fhir_idx_date')
    with op.batch_alter_table('fhir_resource', schema=None) as batch_op:
        batch_op.drop_index('ix_fhir_resource_type_updated')

    op.drop_table('fhir_resource')
    op.drop_table('fhir_import_checkpoint')
    op.drop_table('fhir_export_job')
