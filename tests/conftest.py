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
from sqlalchemy import Engine

from support.databases import create_database, make_database
from yilian import db, migrations
from yilian.config import get_settings

# Background jobs of the app stay off in tests (they would write into other tests' data); a test that is about a job
# asks for it explicitly.
os.environ.setdefault("YILIAN_OUTREACH_ALERT_INTERVAL_MINUTES", "0")


# Fixtures through which a test reaches a database. A test that asks for none of them runs the same code on either
# backend, so the PostgreSQL pass of `scripts/test` (YILIAN_TEST_DB_ONLY=1) leaves it to the SQLite pass.
DATABASE_FIXTURES = {"engine", "demo_site"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("YILIAN_TEST_DB_ONLY") != "1":
        return
    keep, drop = [], []
    for item in items:
        # Browser tests run in this pass only (the SQLite pass skips them), whatever they ask for.
        needed = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("e2e")
        (keep if needed else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The session's migrated database; also the default engine (YILIAN_DATABASE_URL) for code under test."""
    root = tmp_path_factory.mktemp("db")
    os.environ["YILIAN_DATA_DIR"] = str(root)
    # Servers started by tests run no background SLA sweep unless a test asks for one (tests/referrals/test_timers.py).
    os.environ.setdefault("YILIAN_REFERRALS_SWEEP_SECONDS", "0")
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
        # Keep idle connections longer than any pause in a test (uvicorn's default is 5 s): the tests' client reuses
        # its connection, and one the server closed just as a request went out fails as "Server disconnected".
        config = uvicorn.Config(
            create_app(), host="127.0.0.1", port=self.port, log_level="warning", timeout_keep_alive=300
        )
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

    def __init__(self, url: str, db_url: str, env: dict[str, str], proc: object, log: Path):
        self.url, self.db_url, self.env, self.proc, self.log = url, db_url, env, proc, log


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    import socket
    import subprocess
    import sys
    import time

    import httpx

    root = tmp_path_factory.mktemp("demo")
    name = f"yilian_t_demo_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url, drop = create_database(root, name)
    env = {**os.environ, "YILIAN_DATABASE_URL": db_url, "YILIAN_DATA_DIR": str(root)}
    cli = [sys.executable, "-m", "yilian"]
    built = subprocess.run([*cli, "demo", "--no-serve"], env=env, capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        pytest.fail(f"yilian demo --no-serve failed:\n{built.stdout}\n{built.stderr}")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    # The server's log goes to a file: an unread pipe would fill up and stall the server.
    log = root / "serve.log"
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # a loaded 2-core CI machine can take a minute
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"yilian serve did not come up: {log.read_text(errors='replace')}")
    yield DemoSite(url, db_url, env, proc, log)
    proc.terminate()
    proc.wait(timeout=10)
    drop()  # type: ignore[operator]
