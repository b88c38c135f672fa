"""Fixtures of the registry tests: Shanxi's divisions in the session database, demo regions in their own databases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from support.databases import make_database
from yilian.db import unit_of_work
from yilian.network import demo, service
from yilian.network.schemas import LoadReport


@dataclass
class Built:
    engine: Engine
    region: demo.DemoRegion


def _build(
    tmp_path_factory: pytest.TempPathFactory, label: str, province: str, city: str, seed: int
) -> Iterator[Built]:
    eng, drop = make_database(tmp_path_factory.mktemp(label), label)
    with unit_of_work(eng) as session:
        region = demo.build_region(session, province=province, city=city, seed=seed, project_fhir=False)
    yield Built(eng, region)
    drop()  # type: ignore[operator]


@pytest.fixture(scope="session")
def fuxin(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[Built]:
    """The operator's case: Liaoning with Fuxin in detail."""
    yield from _build(tmp_path_factory, "fuxin", "21", "2109", 7)


@pytest.fixture
def shanxi(clean_db: Engine) -> Iterator[LoadReport]:
    """Shanxi's divisions loaded into the (cleaned-after) session database."""
    with unit_of_work() as session:
        report = service.load_divisions(session, "14")
    yield report
