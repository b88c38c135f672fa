"""outreach: programmes, postings, clinics, rosters

Revision ID: 0005_outreach
Revises: 0004_patients
Create Date: 2026-11-23 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import yilian.db  # noqa: F401

revision = "0005_outreach"
down_revision = "0004_patients"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outreach_programme',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('sending_facility_id', sa.Uuid(), nullable=False),
    sa.Column('receiving_facility_ids', yilian.db.JSONType, nullable=False),
    sa.Column('terms', yilian.db.JSONType, nullable=False),
    sa.Column('start', sa.Date(), nullable=True),
    sa.Column('end', sa.Date(), nullable=True),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sending_facility_id'], ['facility.id'], name=op.f('fk_outreach_programme_sending_facility_id_facility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_programme'))
    )
    with op.batch_alter_table('outreach_programme', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_programme_sending_facility_id'), ['sending_facility_id'], unique=False)

    op.create_table('outreach_demand',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('programme_id', sa.Uuid(), nullable=False),
    sa.Column('facility_id', sa.Uuid(), nullable=False),
    sa.Column('specialty', sa.String(length=64), nullable=False),
    sa.Column('sessions', sa.Integer(), nullable=False),
    sa.Column('per', sa.String(length=8), nullable=False),
    sa.Column('weekdays', yilian.db.JSONType, nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_outreach_demand_facility_id_facility')),
    sa.ForeignKeyConstraint(['programme_id'], ['outreach_programme.id'], name=op.f('fk_outreach_demand_programme_id_outreach_programme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_demand')),
    sa.UniqueConstraint('programme_id', 'facility_id', 'specialty', name='uq_outreach_demand_programme_site_specialty')
    )
    with op.batch_alter_table('outreach_demand', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_demand_programme_id'), ['programme_id'], unique=False)

    op.create_table('outreach_expert_day',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioner.id'], name=op.f('fk_outreach_expert_day_practitioner_id_practitioner')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_expert_day')),
    sa.UniqueConstraint('practitioner_id', 'day', name='uq_outreach_expert_day_practitioner_day')
    )
    with op.batch_alter_table('outreach_expert_day', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_expert_day_practitioner_id'), ['practitioner_id'], unique=False)

    op.create_table('outreach_roster',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('programme_id', sa.Uuid(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('solver_status', sa.String(length=16), nullable=True),
    sa.Column('feasible', sa.Boolean(), nullable=False),
    sa.Column('unmet_sessions', sa.Integer(), nullable=False),
    sa.Column('demand_sessions', sa.Integer(), nullable=False),
    sa.Column('shortfalls', yilian.db.JSONType, nullable=False),
    sa.Column('solved_at', yilian.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['outreach_programme.id'], name=op.f('fk_outreach_roster_programme_id_outreach_programme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_roster')),
    sa.UniqueConstraint('programme_id', 'month', name='uq_outreach_roster_programme_month')
    )
    with op.batch_alter_table('outreach_roster', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_roster_programme_id'), ['programme_id'], unique=False)

    op.create_table('outreach_posting',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('programme_id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_role_id', sa.Uuid(), nullable=True),
    sa.Column('facility_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('specialties', yilian.db.JSONType, nullable=False),
    sa.Column('recurrence', sa.String(length=128), nullable=True),
    sa.Column('start', sa.Date(), nullable=True),
    sa.Column('end', sa.Date(), nullable=True),
    sa.Column('min_days_per_week', sa.Integer(), nullable=False),
    sa.Column('min_days_per_month', sa.Integer(), nullable=False),
    sa.Column('max_outreach_days', sa.Integer(), nullable=True),
    sa.Column('day_trips', sa.Boolean(), nullable=False),
    sa.Column('created_at', yilian.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_outreach_posting_facility_id_facility')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioner.id'], name=op.f('fk_outreach_posting_practitioner_id_practitioner')),
    sa.ForeignKeyConstraint(['practitioner_role_id'], ['practitioner_role.id'], name=op.f('fk_outreach_posting_practitioner_role_id_practitioner_role')),
    sa.ForeignKeyConstraint(['programme_id'], ['outreach_programme.id'], name=op.f('fk_outreach_posting_programme_id_outreach_programme'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_posting'))
    )
    with op.batch_alter_table('outreach_posting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outreach_posting_facility_id'), ['facility_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outreach_posting_practitioner_id'), ['practitioner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outreach_posting_programme_id'), ['programme_id'], unique=False)

    op.create_table('outreach_roster_entry',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('roster_id', sa.Uuid(), nullable=False),
    sa.Column('practitioner_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('facility_id', sa.Uuid(), nullable=True),
    sa.Column('specialty', sa.String(length=64), nullable=True),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('locked_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['facility_id'], ['facility.id'], name=op.f('fk_outreach_roster_entry_facility_id_facility')),
    sa.ForeignKeyConstraint(['practitioner_id'], ['practitioner.id'], name=op.f('fk_outreach_roster_entry_practitioner_id_practitioner')),
    sa.ForeignKeyConstraint(['roster_id'], ['outreach_roster.id'], name=op.f('fk_outreach_roster_entry_roster_id_outreach_roster'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outreach_roster_entry')),
    sa.UniqueConstraint('roster_id', 'practitioner_id', 'day', name='uq_outreach_roster_entry_expert_day')
    )
    with op.batch_alter_table('outreach_roster_entry', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_roster_entry_facility_day', ['facility_id', 'day'], unique=False)
        batch_op.create_index(batch_op.f('ix_outreach_roster_entry_roster_id'), ['roster_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outreach_roster_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_roster_entry_roster_id'))
        batch_op.drop_index('ix_outreach_roster_entry_facility_day')

    op.drop_table('outreach_roster_entry')
    with op.batch_alter_table('outreach_posting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_posting_programme_id'))
        batch_op.drop_index(batch_op.f('ix_outreach_posting_practitioner_id'))
        batch_op.drop_index(batch_op.f('ix_outreach_posting_facility_id'))

    op.drop_table('outreach_posting')
    with op.batch_alter_table('outreach_roster', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_roster_programme_id'))

    op.drop_table('outreach_roster')
    with op.batch_alter_table('outreach_expert_day', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_expert_day_practitioner_id'))

    op.drop_table('outreach_expert_day')
    with op.batch_alter_table('outreach_demand', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_demand_programme_id'))

    op.drop_table('outreach_demand')
    with op.batch_alter_table('outreach_programme', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outreach_programme_sending_facility_id'))

    op.drop_table('outreach_programme')
