"""Fixtures for the outreach tests (the region itself is in roster_region.py, importable by the tests)."""

from __future__ import annotations

import pytest
from roster_region import laixi_region

from yilian.outreach.schemas import Problem


@pytest.fixture
def laixi() -> Problem:
    return laixi_region()
