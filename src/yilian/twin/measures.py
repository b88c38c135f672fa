"""The twin's results in the indicators domain's own definitions (src/yilian/indicators/sets/*.yaml).

A commission reads the same indicator on simulated and on real data: each entry below names a definition by its id
and says which of the twin's tallies are its numerator and denominator (the twin has no rows to filter, only the
counts the definition's filters describe). Name, unit and the way a value is formed (ratio × the unit's multiplier,
null — never 0 — when the denominator is 0) come from the indicators domain at run time: change a definition's unit
there and the twin reports in the new unit.
"""

from __future__ import annotations

import math

from yilian.errors import NotFound
from yilian.indicators import definitions
from yilian.indicators import rules as indicator_rules

# definition id → (numerator tally, denominator tally or None for a count). Tallies are per area, see `sums` in
# engine._area_indicators; "_year" ones are counts a year at full census population.
MEASURES: dict[str, tuple[str, str | None]] = {
    "cc.primary_visit_share": ("visits_primary", "visits"),
    "cc.in_county_inpatient_share": ("episodes_in_county", "episodes"),
    "cc.fund_in_county_share": ("fund_in_county", "fund"),
    "cc.fund_primary_share": ("fund_primary", "fund_in_county"),
    "cc.inpatient_cost_per_case": ("ip_cost", "episodes"),
    "ref.up_referrals": ("up_referrals_year", None),
    "ref.down_referrals": ("down_referrals_year", None),
    "ref.down_up_ratio": ("down_referrals_year", "up_referrals_year"),
    "ref.out_of_county_share": ("up_out_of_county_year", "up_referrals_year"),
}


def _definition(indicator_id: str) -> definitions.Indicator | None:
    try:
        return definitions.get_indicator(indicator_id)
    except NotFound:
        return None  # a definition withdrawn by the indicators domain is simply not reported


def definition_values(sums: dict[str, float]) -> dict[str, float]:
    """Values of the mapped definitions for one area and replication (NaN where the definition gives null)."""
    out: dict[str, float] = {}
    for indicator_id, (num, den) in MEASURES.items():
        ind = _definition(indicator_id)
        if ind is None:
            continue
        if den is not None and ind.kind == "ratio":
            value = indicator_rules.ratio_value(sums[num], sums[den], ind.unit).value
        else:
            value = sums[num]  # a count: the definition has no denominator
        out[indicator_id] = math.nan if value is None else float(value)
    return out


def names(lang: str = "en") -> dict[str, str]:
    """Each mapped definition's name in the caller's language, with its unit."""
    out = {}
    for indicator_id in MEASURES:
        ind = _definition(indicator_id)
        if ind is not None:
            unit = indicator_rules.UNITS[ind.unit][1 if lang == "zh" else 2]
            out[indicator_id] = f"{ind.name.pick(lang)} ({unit})"
    return out
