"""Fixtures for the outreach tests (the region itself is in tests/support/roster_region.py)."""

from __future__ import annotations

import pytest

from support.roster_region import laixi_region
from yilian.outreach.schemas import Problem


@pytest.fixture
def laixi() -> Problem:
    return laixi_region()
