"""The ViewDefinitions shipped with Yilian (views/*.json): the flat tables indicators and dashboards read."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from yilian.errors import NotFound

VIEWS_DIR = Path(__file__).parent / "views"


def names() -> list[str]:
    return sorted(p.stem for p in VIEWS_DIR.glob("*.json"))


@lru_cache(maxsize=64)
def _load(name: str) -> str:
    path = VIEWS_DIR / f"{name}.json"
    if not path.is_file():
        raise NotFound(f"no shipped view named {name!r}; known: {', '.join(names())}", field="view")
    return path.read_text(encoding="utf-8")


def get(name: str) -> dict:
    """A fresh copy of the shipped view `name` (callers may modify it)."""
    view = json.loads(_load(name))
    assert isinstance(view, dict)
    return view
