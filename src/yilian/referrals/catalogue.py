"""The referral criteria shipped as data (criteria/*.yaml), read once and checked at load time."""

from __future__ import annotations

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
