from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, text

from yilian import db


def test_a_pooled_connection_cut_while_idle_is_replaced_before_a_request_uses_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the database restarts (or a connection is cut) while the app is idle, the next request still works: a
    connection that sat in the pool longer than PING_AFTER_IDLE_S is pinged at checkout and replaced if it is gone."""
    if engine.dialect.name != "postgresql":
        pytest.skip("needs a database server that can cut a connection")
    app_engine = db.get_engine()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    with app_engine.connect() as conn:
        pid = conn.execute(text("select pg_backend_pid()")).scalar_one()
    url = app_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as other:
        other.execute("select pg_terminate_backend(%s)", [pid])
    with app_engine.connect() as conn:
        assert conn.execute(text("select pg_backend_pid()")).scalar_one() != pid
