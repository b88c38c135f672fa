"""Per-region limits of shared diagnostics (data/limits.yaml): turnaround targets, critical-value limits and the
validity windows of recognised items. Read once; a region edits the file, not the code."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from yilian.diagnostics import catalogue
from yilian.diagnostics.rules import MEASURES, Measure, Modality, Priority, RecognisedItem

LIMITS = Path(__file__).parent / "data" / "limits.yaml"


@dataclass(frozen=True)
class Limits:
    targets: Mapping[tuple[Modality, Priority], timedelta]
    measures: Mapping[str, Measure]  # with the region's critical limits
    validity_days: Mapping[str, int]  # item code → days, where the region departs from the catalogue
    sources: tuple[str, ...]

    def item(self, item: RecognisedItem) -> RecognisedItem:
        """The catalogue item with this region's validity window."""
        days = self.validity_days.get(item.code)
        return item if days is None else dataclasses.replace(item, validity_days=days)


@lru_cache
def _raw() -> dict[str, Any]:
    raw = yaml.safe_load(LIMITS.read_text(encoding="utf-8"))
    for i, region in enumerate(raw.get("regions") or []):
        if not str(region.get("division", "")).isdigit():
            raise ValueError(f"{LIMITS.name}: regions[{i}] needs a division code (digits)")
    return dict(raw)


def _apply(
    targets: dict[Any, timedelta], measures: dict[str, Measure], days: dict[str, int], part: dict[str, Any], where: str
) -> None:
    for modality, by_priority in (part.get("turnaround_minutes") or {}).items():
        for priority, minutes in by_priority.items():
            try:
                key = (Modality(modality), Priority(priority))
            except ValueError:
                raise ValueError(
                    f"{LIMITS.name}: {where}.turnaround_minutes.{modality}.{priority} is not known"
                ) from None
            targets[key] = timedelta(minutes=float(minutes))
    for code, bounds in (part.get("critical") or {}).items():
        if code not in MEASURES:
            raise ValueError(f"{LIMITS.name}: {where}.critical.{code} is not a known measure")
        low, high = bounds.get("low", measures[code].low), bounds.get("high", measures[code].high)
        measures[code] = dataclasses.replace(
            measures[code], low=None if low is None else float(low), high=None if high is None else float(high)
        )
    for code, n in (part.get("validity_days") or {}).items():
        catalogue.get(code, field=f"{where}.validity_days")
        days[code] = int(n)


@lru_cache(maxsize=512)
def for_division(division_code: str) -> Limits:
    """The limits that hold at a place: defaults, overridden by the province, then the city, then the county."""
    raw = _raw()
    targets: dict[Any, timedelta] = {}
    measures = {code: dataclasses.replace(m, low=None, high=None) for code, m in MEASURES.items()}
    days: dict[str, int] = {}
    _apply(targets, measures, days, raw["defaults"], "defaults")
    missing = [(m, p) for m in Modality for p in Priority if (m, p) not in targets]
    if missing:
        raise ValueError(f"{LIMITS.name}: defaults.turnaround_minutes lacks {missing[0][0]}.{missing[0][1]}")
    sources = []
    regions = sorted(raw.get("regions") or [], key=lambda r: len(str(r["division"])))
    for region in regions:
        division = str(region["division"])
        if division_code.startswith(division):
            _apply(targets, measures, days, region, f"regions[{division}]")
            sources.append(str(region.get("source", "")))
    return Limits(targets, measures, days, tuple(sources))


def defaults() -> Limits:
    return for_division("")
