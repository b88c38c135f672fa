"""The Alembic history creates exactly the tables the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from yilian import migrations
from yilian.db import Base


def test_the_migrations_match_the_models(engine: Engine) -> None:
    migrations.import_all_models()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, Base.metadata)
    # Index and constraint naming differ harmlessly between backends; tables and columns must not.
    real = [d for d in diff if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
    assert real == [], f"models and migrations disagree: {real}"


def test_the_database_is_at_every_head_of_the_history(engine: Engine) -> None:
    assert migrations.current_revision(engine) == migrations.head_revision(engine)
