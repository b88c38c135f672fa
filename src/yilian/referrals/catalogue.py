"""The referral criteria shipped as data (criteria/*.yaml), read once and checked at load time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from yilian.errors import NotFound
from yilian.referrals.insurance import InsuranceRules, parse_rules
from yilian.referrals.rules import Criterion, parse_criteria


@lru_cache
def load_criteria() -> tuple[Criterion, ...]:
    out: list[Criterion] = []
    folder = resources.files("yilian.referrals") / "criteria"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            out.extend(parse_criteria(yaml.safe_load(entry.read_text(encoding="utf-8"))))
    return tuple(out)


@lru_cache
def insurance_rules(province: str) -> InsuranceRules:
    """The insurance rules of a province (insurance_rules/<code>.yaml)."""
    path = resources.files("yilian.referrals") / "insurance_rules" / f"{province}.yaml"
    if not path.is_file():
        raise NotFound(f"no insurance rules for province {province}", field="province")
    return parse_rules(yaml.safe_load(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class TravelModel:
    """routing.yaml: average speed and road factors by terrain of a division (longest code prefix wins)."""

    speed_kmh: float
    default_road_factor: float
    by_division: dict[str, float]

    def road_factor(self, division_code: str | None) -> float:
        code = division_code or ""
        for n in range(len(code), 0, -1):
            if code[:n] in self.by_division:
                return self.by_division[code[:n]]
        return self.default_road_factor


@lru_cache
def travel_model() -> TravelModel:
    doc = yaml.safe_load((resources.files("yilian.referrals") / "routing.yaml").read_text(encoding="utf-8"))
    terrain = {str(k): float(v) for k, v in (doc.get("terrain") or {}).items()}
    by_division = {}
    for code, kind in (doc.get("divisions") or {}).items():
        if str(kind) not in terrain:
            raise ValueError(f"routing.yaml: division {code} names terrain {kind!r}, not one of {', '.join(terrain)}")
        by_division[str(code)] = terrain[str(kind)]
    model = TravelModel(float(doc["speed_kmh"]), float(doc["road_factor"]), by_division)
    if model.speed_kmh <= 0 or model.default_road_factor < 1 or any(f < 1 for f in terrain.values()):
        raise ValueError("routing.yaml: speed_kmh must be positive and road factors at least 1")
    return model
