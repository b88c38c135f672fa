"""The twin runs on NumPy arrays, not the database: its tests need no database fixture.

Scales are small (a few tens of thousands of simulated residents) so that the whole folder stays well under a minute;
counts in results are still reported per year at full census population.
"""

from __future__ import annotations

import pytest

from yilian.twin import scenarios


@pytest.fixture(scope="session")
def baseline() -> scenarios.Scenario:
    return scenarios.load("baseline-linfen")
