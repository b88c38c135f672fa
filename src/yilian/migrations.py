"""Apply and check Alembic migrations from code (the `yilian db` commands, start-up check, tests)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import yilian
from yilian.errors import Unavailable


def import_all_models() -> None:
    """Import every `yilian.<domain>.models` so that Base.metadata knows every table (alembic autogenerate, tests)."""
    for mod in pkgutil.iter_modules(yilian.__path__):
        if mod.ispkg:
            try:
                importlib.import_module(f"yilian.{mod.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"yilian.{mod.name}.models":
                    raise


def _script_location() -> Path:
    packaged = Path(yilian.__file__).parent / "_alembic"  # wheel installs carry the history inside the package
    if packaged.exists():
        return packaged
    return Path(yilian.__file__).resolve().parents[2] / "alembic"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_script_location()))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply every migration; each domain may grow its own branch from a shared base, so "heads", not "head"."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision(engine: Engine) -> str | None:
    """The code's heads, comma-joined (one per domain branch)."""
    heads = sorted(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    return ",".join(heads) or None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        heads = sorted(MigrationContext.configure(conn).get_current_heads())
    return ",".join(heads) or None


def require_current(engine: Engine) -> None:
    """Refuse to run on a database that is behind the code: say exactly what to run."""
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        state = "is empty (no tables)" if current is None else f"is at migration {current}, code expects {head}"
        raise Unavailable(
            f"The database {engine.url.render_as_string(hide_password=True)} {state}. "
            "Run `yilian db upgrade` (or `yilian demo --no-serve` to build the demo region) first."
        )
