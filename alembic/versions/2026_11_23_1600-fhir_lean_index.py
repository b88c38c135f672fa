"""fhir: search-index rows without their own key or foreign key (cheaper bulk import)

Revision ID: 0020_fhir_lean_index
Revises: 0002_fhir
Create Date: 2026-11-23 16:00:00

Each index row paid a random-uuid primary-key B-tree insert and a foreign-key check against fhir_resource; the store
writes and deletes index rows only together with their resource, so neither bought anything. Rows are kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_fhir_lean_index"
down_revision = "0002_fhir"
branch_labels = None
depends_on = None

TABLES = ("fhir_idx_token", "fhir_idx_string", "fhir_idx_date", "fhir_idx_reference", "fhir_idx_quantity")


def upgrade() -> None:
    for table in TABLES:
        # batch mode: SQLite rebuilds the table (copying its rows), PostgreSQL alters it in place.
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_resource_pk_fhir_resource", type_="foreignkey")
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.drop_column("pk")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("pk", sa.Uuid(), nullable=True))
        # Existing rows get a fresh key each (gen_random_uuid on PostgreSQL; SQLite: a random 16-byte hex).
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"UPDATE {table} SET pk = gen_random_uuid()")
        else:
            op.execute(f"UPDATE {table} SET pk = lower(hex(randomblob(16)))")
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("pk", existing_type=sa.Uuid(), nullable=False)
            batch_op.create_primary_key(f"pk_{table}", ["pk"])
            batch_op.create_foreign_key(
                f"fk_{table}_resource_pk_fhir_resource", "fhir_resource", ["resource_pk"], ["pk"], ondelete="CASCADE"
            )
