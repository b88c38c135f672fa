"""fhir: token and date index rows carry the resource's patient id (a patient's search by code or date)

Revision ID: 0023_fhir_patient_index
Revises: 0020_fhir_lean_index
Create Date: 2026-11-23 20:40:00

`Observation?patient=X&code=...` took the patient's hundreds of Observations from the reference index and looked
each one up in the token index to keep a few. The token and date rows now name the patient (the target id of the
resource's `patient` reference; one copy of a row per patient when a resource names several), and the indexes lead
with it after the value, so the search reaches the matching rows directly. Existing rows are filled from
fhir_idx_reference.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_fhir_patient_index"
down_revision = "0020_fhir_lean_index"
branch_labels = None
depends_on = None

COLUMNS = {
    "fhir_idx_token": "resource_pk, res_type, param, system, code",
    "fhir_idx_date": "resource_pk, res_type, param, low, high",
}
# One row per (resource, patient id) of the `patient` search parameter.
PATIENTS = "SELECT DISTINCT resource_pk, target_id FROM fhir_idx_reference WHERE param = 'patient'"


def _empty(table: str) -> None:
    # TRUNCATE on PostgreSQL: a DELETE would leave the whole table behind as dead rows until a vacuum.
    op.execute(f"TRUNCATE {table}" if op.get_bind().dialect.name == "postgresql" else f"DELETE FROM {table}")


def upgrade() -> None:
    op.drop_index("ix_fhir_idx_token_lookup", table_name="fhir_idx_token")  # rebuilt below, once, after the rows
    for table, columns in COLUMNS.items():
        op.add_column(table, sa.Column("patient_id", sa.String(128), nullable=True))
        # Rows are rebuilt rather than updated: a resource with several patients needs one copy per patient, and
        # rewriting the table once is cheaper than updating every row in place.
        op.execute(f"CREATE TABLE {table}_old AS SELECT {columns} FROM {table}")
        _empty(table)
        op.execute(
            f"INSERT INTO {table} ({columns}, patient_id) "
            f"SELECT o.{columns.replace(', ', ', o.')}, p.target_id FROM {table}_old o "
            f"LEFT JOIN ({PATIENTS}) p ON p.resource_pk = o.resource_pk"
        )
        op.execute(f"DROP TABLE {table}_old")
    op.create_index(
        "ix_fhir_idx_token_lookup",
        "fhir_idx_token",
        ["res_type", "param", "code", "system", "patient_id", "resource_pk"],
    )
    op.create_index(
        "ix_fhir_idx_date_patient", "fhir_idx_date", ["res_type", "param", "patient_id", "low", "high", "resource_pk"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ANALYZE fhir_idx_token")
        op.execute("ANALYZE fhir_idx_date")


def downgrade() -> None:
    op.drop_index("ix_fhir_idx_date_patient", table_name="fhir_idx_date")
    op.drop_index("ix_fhir_idx_token_lookup", table_name="fhir_idx_token")
    for table, columns in COLUMNS.items():
        # Drop the per-patient copies: one row per distinct value again.
        op.execute(f"CREATE TABLE {table}_old AS SELECT DISTINCT {columns} FROM {table}")
        _empty(table)
        op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_old")
        op.execute(f"DROP TABLE {table}_old")
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("patient_id")
    op.create_index(
        "ix_fhir_idx_token_lookup", "fhir_idx_token", ["res_type", "param", "code", "system", "resource_pk"]
    )
