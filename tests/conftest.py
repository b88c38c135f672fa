"""Test fixtures: a real, migrated database (SQLite file or a fresh PostgreSQL database), real rows, no mocks.

YILIAN_TEST_DB=sqlite (default) or postgresql. With postgresql, each test session creates its own database on
YILIAN_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) and drops it at the end, so parallel runs
never meet. When CI=true and PostgreSQL is unreachable the session fails rather than skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from yilian import db, migrations
from yilian.config import get_settings

PG_ADMIN_URL = os.environ.get("YILIAN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def backend() -> str:
    return os.environ.get("YILIAN_TEST_DB", "sqlite")


def _create_database(tmp_root: Path, name: str) -> tuple[str, object]:
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
    url, drop = _create_database(tmp_root, name)
    engine = db.get_engine(url)
    migrations.upgrade(engine)
    return engine, drop


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The session's migrated database; also the default engine (YILIAN_DATABASE_URL) for code under test."""
    root = tmp_path_factory.mktemp("db")
    os.environ["YILIAN_DATA_DIR"] = str(root)
    get_settings.cache_clear()
    eng, drop = make_database(root, "main")
    os.environ["YILIAN_DATABASE_URL"] = eng.url.render_as_string(hide_password=False)
    get_settings.cache_clear()
    yield eng
    drop()  # type: ignore[operator]


@pytest.fixture
def clean_db(engine: Engine) -> Iterator[Engine]:
    """The session database, emptied after the test (every table but the migration marker)."""
    yield engine
    migrations.import_all_models()
    with engine.begin() as conn:
        for table in reversed(db.Base.metadata.sorted_tables):
            conn.execute(table.delete())


class LiveServer:
    """The real app served by uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, engine: Engine):
        import socket
        import threading

        import uvicorn

        from yilian.app import create_app

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("test server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(engine: Engine) -> Iterator[LiveServer]:
    server = LiveServer(engine)
    yield server
    server.stop()


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[object]:
    import httpx

    with httpx.Client(base_url=live_server.url, timeout=30, follow_redirects=False) as client:
        yield client


class DemoSite:
    """The demo region built by `yilian demo --no-serve` into its own database, served by `yilian serve` in a child
    process: exactly what a newcomer runs, on a real port."""

    def __init__(self, url: str, db_url: str, env: dict[str, str], proc: object):
        self.url, self.db_url, self.env, self.proc = url, db_url, env, proc


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    import socket
    import subprocess
    import sys
    import time

    import httpx

    root = tmp_path_factory.mktemp("demo")
    name = f"yilian_t_demo_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url, drop = _create_database(root, name)
    env = {**os.environ, "YILIAN_DATABASE_URL": db_url, "YILIAN_DATA_DIR": str(root)}
    cli = [sys.executable, "-m", "yilian"]
    built = subprocess.run([*cli, "demo", "--no-serve"], env=env, capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        pytest.fail(f"yilian demo --no-serve failed:\n{built.stdout}\n{built.stderr}")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"yilian serve did not come up: {proc.stdout.read().decode() if proc.stdout else ''}")
    yield DemoSite(url, db_url, env, proc)
    proc.terminate()
    proc.wait(timeout=10)
    drop()  # type: ignore[operator]
