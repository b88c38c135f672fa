"""network: divisions, facilities, consortia, grids, practitioners

Revision ID: 0003_network
Revises: 0002_fhir
Create Date: 2026-11-23 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0003_network"
down_revision = "0002_fhir"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('division',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('position_approximate', sa.Boolean(), nullable=False),
    sa.Column('population', sa.Integer(), nullable=True),
    sa.Column('urban', sa.Integer(), nullable=True),
    sa.Column('rural', sa.Integer(), nullable=True),
    sa.Column('households', sa.Integer(), nullable=True),
    sa.Column('census', yilian.db.JSONType, nullable=True),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_division'))
    )

    with op.batch_alter_table('division', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_division_parent_code'), ['parent_code'], unique=False)

    op.create_table('facility',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('ownership', sa.String(length=16), nullable=False),
    sa.Column('division_code', sa.String(length=12), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('position_approximate', sa.Boolean(), nullable=False),
    sa.Column('beds', sa.Integer(), nullable=False),
    sa.Column('doctors', sa.Integer(), nullable=False),
    sa.Column('nurses', sa.Integer(), nullable=False),
    sa.Column('staff_total', sa.Integer(), nullable=False),
    sa.Column('departments', yilian.db.JSONType, nullable=False),
    sa.Column('fourth_level_surgery', sa.Boolean(), nullable=False),
    sa.Column('chest_pain_centre', sa.Boolean(), nullable=False),
    sa.Column('stroke_centre', sa.Boolean(), nullable=False),
    sa.Column('trauma_centre', sa.Boolean(), nullable=False),
    sa.Column('critical_maternal_centre', sa.Boolean(), nullable=False),
    sa.Column('critical_neonatal_centre', sa.Boolean(), nullable=False),
    sa.Column('imaging_reading_centre', sa.Boolean(), nullable=False),
    sa.Column('ecg_reading_centre', sa.Boolean(), nullable=False),
    sa.Column('lab_centre', sa.Boolean(), nullable=False),
    sa.Column('pathology_centre', sa.Boolean(), nullable=False),
    sa.Column('sterile_supply', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['division_code'], ['division.code'], name=op.f('fk_facility_division_code_division')),
    sa.ForeignKeyConstraint(['parent_id'], ['facility.id'], name=op.f('fk_facility_parent_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facility')),
    sa.UniqueConstraint('code', name=op.f('uq_facility_code'))
    )

    with op.batch_alter_table('facility', schema=None) as batch_op:
        batch_op.create_index('ix_facility_division_code', ['division_code'], unique=False, postgresql_ops={'division_code': 'varchar_pattern_ops'})
        batch_op.create_index('ix_facility_level_division', ['level', 'division_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_facility_name'), ['name'], unique=False)

    op.create_table('consortium',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('form', sa.String(length=32), nullable=False),
    sa.Column('lead_facility_id', sa.Uuid(), nullable=False),
    sa.Column('division_code', sa.String(length=12), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('specialty', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['division_code'], ['division.code'], name=op.f('fk_consortium_division_code_division')),
    sa.ForeignKeyConstraint(['lead_facility_id'], ['facility.id'], name=op.f('fk_consortium_lead_facility_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consortium')),
    sa.UniqueConstraint('name', name=op.f('uq_consortium_name'))
    )

    with op.batch_alter_table('consortium', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consortium_form'), ['form'], unique=False)
        batch_op.create_index(batch_op.f('ix_consortium_lead_facility_id'), ['lead_facility_id'], unique=False)

    op.create_table('practitioner',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('gender', sa.String(length=8), nullable=False),
    sa.Column('title', sa.String(length=24), nullable=False),
    sa.Column('specialty', sa.String(length=64), nullable=True),
    sa.Column('home_facility_id', sa.Uuid(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['home_facility_id'], ['facility.id'], name=op.f('fk_practitioner_home_facility_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_practitioner'))
    )

    with op.batch_alter_table('practitioner', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_practitioner_home_facility_id'), ['home_facility_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_practitioner_name'), ['name'], unique=False)

    op.create_table('consortium_member',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('consortium_id', sa.Uuid(), nullable=False),
    sa.Column('facility_id', sa.Uuid(), nullable=False),
    sa.Column('membership', sa.String(length=8), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('joined_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['consortium_id'], ['consortium.id'], name=op.f('fk_consortium_member_consortium_id_consortium'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_consortium_member_facility_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consortium_member')),
    sa.UniqueConstraint('consortium_id', 'facility_id', name='uq_consortium_member_facility')
    )

    with op.batch_alter_table('consortium_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consortium_member_facility_id'), ['facility_id'], unique=False)

    op.create_table('grid',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('city_code', sa.String(length=4), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('consortium_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['city_code'], ['division.code'], name=op.f('fk_grid_city_code_division')),
    sa.ForeignKeyConstraint(['consortium_id'], ['consortium.id'], name=op.f('fk_grid_consortium_id_consortium')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid')),
    sa.UniqueConstraint('city_code', 'name', name='uq_grid_city_name')
    )

    with op.batch_alter_table('grid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_city_code'), ['city_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_grid_consortium_id'), ['consortium_id'], unique=False)

    op.create_table('practitioner_role',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('facility_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('specialty', sa.String(length=64), nullable=True),
    sa.Column('start', sa.Date(), nullable=True),
    sa.Column('end', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_practitioner_role_facility_id_facility')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioner.id'], name=op.f('fk_practitioner_role_practitioner_id_practitioner'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_practitioner_role'))
    )

    with op.batch_alter_table('practitioner_role', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_practitioner_role_facility_id'), ['facility_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_practitioner_role_practitioner_id'), ['practitioner_id'], unique=False)

    op.create_table('grid_township',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('grid_id', sa.Uuid(), nullable=False),
    sa.Column('city_code', sa.String(length=4), nullable=False),
    sa.Column('township_code', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['grid.id'], name=op.f('fk_grid_township_grid_id_grid'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['township_code'], ['division.code'], name=op.f('fk_grid_township_township_code_division')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_township')),
    sa.UniqueConstraint('city_code', 'township_code', name='uq_grid_township_city_township')
    )

    with op.batch_alter_table('grid_township', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_township_grid_id'), ['grid_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('grid_township', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_township_grid_id'))

    op.drop_table('grid_township')

    with op.batch_alter_table('practitioner_role', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_practitioner_role_practitioner_id'))
        batch_op.drop_index(batch_op.f('ix_practitioner_role_facility_id'))

    op.drop_table('practitioner_role')

    with op.batch_alter_table('grid', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_consortium_id'))
        batch_op.drop_index(batch_op.f('ix_grid_city_code'))

    op.drop_table('grid')

    with op.batch_alter_table('consortium_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consortium_member_facility_id'))

    op.drop_table('consortium_member')

    with op.batch_alter_table('practitioner', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_practitioner_name'))
        batch_op.drop_index(batch_op.f('ix_practitioner_home_facility_id'))

    op.drop_table('practitioner')

    with op.batch_alter_table('consortium', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consortium_lead_facility_id'))
        batch_op.drop_index(batch_op.f('ix_consortium_form'))

    op.drop_table('consortium')

    with op.batch_alter_table('facility', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facility_name'))
        batch_op.drop_index('ix_facility_level_division')
        batch_op.drop_index('ix_facility_division_code', postgresql_ops={'division_code': 'varchar_pattern_ops'})

    op.drop_table('facility')

    with op.batch_alter_table('division', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_division_parent_code'))

    op.drop_table('division')
