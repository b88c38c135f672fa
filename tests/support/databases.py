"""Test databases: a SQLite file or a fresh PostgreSQL database per use, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from yilian import db, migrations

PG_ADMIN_URL = os.environ.get("YILIAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def backend() -> str:
    return os.environ.get("YILIAN_TEST_DB", "sqlite")


def create_database(tmp_root: Path, name: str) -> tuple[str, object]:
    """Make an empty database; return its URL and a function that drops it."""
    if backend() == "postgresql":
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            admin.dispose()
            if os.environ.get("CI") == "true":
                pytest.exit(f"PostgreSQL is required in CI and unreachable at {PG_ADMIN_URL}: {exc}", returncode=3)
            pytest.exit(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}", returncode=3)
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

        def drop() -> None:
            db.reset_engines()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        return url, drop
    path = tmp_root / f"{name}.db"
    return f"sqlite:///{path}", lambda: None


def make_database(tmp_root: Path, label: str) -> tuple[Engine, object]:
    name = f"yilian_t_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url, drop = create_database(tmp_root, name)
    engine = db.get_engine(url)
    migrations.upgrade(engine)
    return engine, drop
