"""patients: master patient index links and review queue

Revision ID: 0004_patients
Revises: 0003_network
Create Date: 2026-11-23 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import yilian.db

revision = "0004_patients"
down_revision = "0003_network"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mpi_person',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('merged_into_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['mpi_person.id'], name=op.f('fk_mpi_person_merged_into_id_mpi_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_person'))
    )
    op.create_table('mpi_review',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('left_ref', sa.String(length=80), nullable=False),
    sa.Column('right_ref', sa.String(length=80), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('vector', yilian.db.JSONType, nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', yilian.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_review')),
    sa.UniqueConstraint('left_ref', 'right_ref', name='uq_mpi_review_pair')
    )
    with op.batch_alter_table('mpi_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpi_review_left_ref'), ['left_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_review_right_ref'), ['right_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_review_status'), ['status'], unique=False)

    op.create_table('mpi_link',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('patient_ref', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=12), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('matched_ref', sa.String(length=80), nullable=True),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['mpi_person.id'], name=op.f('fk_mpi_link_person_id_mpi_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_link'))
    )
    with op.batch_alter_table('mpi_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpi_link_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_link_patient_ref'), ['patient_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_link_person_id'), ['person_id'], unique=False)

    op.create_table('mpi_record',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_ref', sa.String(length=80), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('link_method', sa.String(length=20), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('resident_id', sa.String(length=18), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=True),
    sa.Column('name_pinyin', sa.String(length=128), nullable=True),
    sa.Column('name_fuzzy', sa.String(length=128), nullable=True),
    sa.Column('surname_fuzzy', sa.String(length=32), nullable=True),
    sa.Column('name_variants', yilian.db.JSONType, nullable=False),
    sa.Column('dob', sa.String(length=8), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('month_day', sa.String(length=4), nullable=True),
    sa.Column('gender', sa.String(length=8), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('county', sa.String(length=6), nullable=True),
    sa.Column('town', sa.String(length=24), nullable=True),
    sa.Column('facility', sa.String(length=64), nullable=True),
    sa.Column('display', yilian.db.JSONType, nullable=False),
    sa.Column('updated_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['mpi_person.id'], name=op.f('fk_mpi_record_person_id_mpi_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpi_record')),
    sa.UniqueConstraint('patient_ref', name=op.f('uq_mpi_record_patient_ref'))
    )
    with op.batch_alter_table('mpi_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpi_record_dob'), ['dob'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_record_name'), ['name'], unique=False)
        batch_op.create_index('ix_mpi_record_name_fuzzy_birth_year', ['name_fuzzy', 'birth_year'], unique=False)
        batch_op.create_index('ix_mpi_record_name_fuzzy_month_day', ['name_fuzzy', 'month_day'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_record_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_record_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpi_record_resident_id'), ['resident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mpi_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_record_resident_id'))
        batch_op.drop_index(batch_op.f('ix_mpi_record_phone'))
        batch_op.drop_index(batch_op.f('ix_mpi_record_person_id'))
        batch_op.drop_index('ix_mpi_record_name_fuzzy_month_day')
        batch_op.drop_index('ix_mpi_record_name_fuzzy_birth_year')
        batch_op.drop_index(batch_op.f('ix_mpi_record_name'))
        batch_op.drop_index(batch_op.f('ix_mpi_record_dob'))

    op.drop_table('mpi_record')
    with op.batch_alter_table('mpi_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_link_person_id'))
        batch_op.drop_index(batch_op.f('ix_mpi_link_patient_ref'))
        batch_op.drop_index(batch_op.f('ix_mpi_link_at'))

    op.drop_table('mpi_link')
    with op.batch_alter_table('mpi_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpi_review_status'))
        batch_op.drop_index(batch_op.f('ix_mpi_review_right_ref'))
        batch_op.drop_index(batch_op.f('ix_mpi_review_left_ref'))

    op.drop_table('mpi_review')
    op.drop_table('mpi_person')
