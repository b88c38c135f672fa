"""Fixtures for the outreach tests: the roster-only region and a small Laixi-like region in a real database (both
built in tests/support/roster_region.py, which the browser test shares)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from support.roster_region import Site, build_site, laixi_region
from yilian.outreach.schemas import Problem


@pytest.fixture
def laixi() -> Problem:
    return laixi_region()


@pytest.fixture
def site(clean_db: Engine) -> Iterator[Site]:
    yield build_site()
