"""Insurance continuity along a referral chain: pure arithmetic in fen, with the reasons in words.

Inside a consortium chain the second deductible (二次起付线) is waived — the patient pays only what the higher level's
deductible exceeds what was already paid — and, where the region says so, the referring level's rate applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LevelTerms:
    deductible: int  # fen
    rate: float


@dataclass(frozen=True)
class InsuranceRules:
    region: str
    annual_cap: int
    levels: Mapping[str, LevelTerms]
    waive_second_deductible: bool
    keep_referring_level_rate: bool
    max_rate_level: str
    out_of_county_reduction: float


@dataclass(frozen=True)
class Estimate:
    cost: int
    deductible: int
    rate: float
    fund_pays: int
    out_of_pocket: int
    reasons: tuple[str, ...]


class RulesError(ValueError):
    pass


def parse_rules(doc: Mapping[str, Any]) -> InsuranceRules:
    try:
        levels = {k: LevelTerms(int(v["deductible"]), float(v["rate"])) for k, v in doc["levels"].items()}
        chain = doc.get("chain_referral", {})
        rules = InsuranceRules(
            region=str(doc["region"]),
            annual_cap=int(doc["annual_cap"]),
            levels=levels,
            waive_second_deductible=bool(chain.get("waive_second_deductible", False)),
            keep_referring_level_rate=bool(chain.get("keep_referring_level_rate", False)),
            max_rate_level=str(chain.get("max_rate_level", "county_hospital")),
            out_of_county_reduction=float(doc.get("out_of_county_without_referral", {}).get("rate_reduction", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RulesError(f"insurance rules: missing or malformed {exc}") from exc
    for name, terms in levels.items():
        if not 0 <= terms.rate <= 1 or terms.deductible < 0:
            raise RulesError(f"insurance rules: level {name} needs 0 ≤ rate ≤ 1 and a deductible ≥ 0")
    if rules.max_rate_level not in levels:
        raise RulesError(f"insurance rules: max_rate_level {rules.max_rate_level} is not a level")
    return rules


def estimate(
    rules: InsuranceRules,
    *,
    cost: int,
    level: str,
    referred_from: str | None = None,  # level of the referring facility, when referred inside the chain
    deductible_paid: int = 0,  # already paid for this episode at the referring level
    out_of_county_without_referral: bool = False,
    used_this_year: int = 0,  # fund payments already made this year (for the cap)
) -> Estimate:
    if level not in rules.levels:
        raise RulesError(f"no insurance terms for level {level}")
    if cost < 0:
        raise RulesError("cost must be ≥ 0")
    terms = rules.levels[level]
    reasons: list[str] = []
    deductible, rate = terms.deductible, terms.rate
    if referred_from is not None and rules.waive_second_deductible:
        deductible = max(0, terms.deductible - deductible_paid)
        reasons.append(
            f"chain referral: second deductible waived, pays only the difference ({deductible / 100:.0f} 元)"
        )
    if referred_from is not None and rules.keep_referring_level_rate and referred_from in rules.levels:
        cap_rate = rules.levels[rules.max_rate_level].rate
        better = min(rules.levels[referred_from].rate, cap_rate)
        if better > rate:
            rate = better
            reasons.append(f"chain referral: {referred_from} rate {better:.0%} applies")
    if out_of_county_without_referral and referred_from is None:
        rate = max(0.0, rate - rules.out_of_county_reduction)
        reasons.append(f"out of county without referral: rate reduced by {rules.out_of_county_reduction:.0%}")
    covered_base = max(0, cost - deductible)
    fund = min(round(covered_base * rate), max(0, rules.annual_cap - used_this_year))
    if fund < round(covered_base * rate):
        reasons.append("annual cap reached")
    return Estimate(cost, min(deductible, cost), rate, fund, cost - fund, tuple(reasons))


def before_and_after(
    rules: InsuranceRules, *, cost: int, level: str, referred_from: str, deductible_paid: int
) -> tuple[Estimate, Estimate]:
    """What the patient would pay going on their own (out of county) versus through the consortium chain."""
    alone = estimate(rules, cost=cost, level=level, out_of_county_without_referral=True)
    chain = estimate(rules, cost=cost, level=level, referred_from=referred_from, deductible_paid=deductible_paid)
    return alone, chain
