"""Indicator definitions as data: sets/*.yaml, read and checked once (at start-up, `install()`), then looked up by id.

A definition names its tables and columns in the snapshot format (schema.py); a typo is an error at start-up that
names the file and the indicator, not a wrong number months later."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from yilian.errors import Invalid, NotFound
from yilian.indicators import rules, schema

SETS_DIR = Path(__file__).parent / "sets"


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str
    en: str

    def pick(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class ScopeBy(BaseModel):
    """How a row belongs to a scope: through a facility-id column, or through a county-code column."""

    model_config = ConfigDict(extra="forbid")
    facility: str | None = None
    division: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ScopeBy:
        if (self.facility is None) == (self.division is None):
            raise ValueError("scope_by takes exactly one of facility or division")
        return self

    @property
    def column(self) -> str:
        return self.facility or self.division or ""


class Measure(BaseModel):
    """Rows of one table, filtered, in the period, in the scope, reduced to one number."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str | None = Field(None, alias="from")
    population: Literal["residents"] | None = None
    date: str | None = None  # the row's date column, in the period
    during: tuple[str, str] | None = None  # [start, end] columns: the row's span overlaps the period
    year: str | None = None  # an integer year column, in the period's years
    where: dict[str, Any] = Field(default_factory=dict)
    count: Literal["rows"] | None = None
    count_distinct: str | None = None
    sum: str | None = None
    mean: str | None = None
    median: str | None = None
    per: str | None = None  # sum(sum) / sum(per): a per-capita mean
    scale: float = 1.0
    scope_by: ScopeBy | None = None

    @property
    def table(self) -> str | None:
        return self.from_

    @property
    def reducer(self) -> tuple[str, str | None]:
        for kind in ("count_distinct", "sum", "mean", "median"):
            col = getattr(self, kind)
            if col:
                return kind, col
        return "count", None

    def tables(self) -> set[str]:
        out = {self.from_} if self.from_ else set()
        for cond in self.where.values():
            if isinstance(cond, dict) and isinstance(cond.get("in"), str):
                out.add(cond["in"].split(".")[0])
        return out

    def columns(self) -> set[str]:
        cols = set(self.where)
        cols |= {
            c for c in (self.date, self.year, self.count_distinct, self.sum, self.mean, self.median, self.per) if c
        }
        cols |= set(self.during or ())
        return cols


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: float
    period: str = "*"
    scope: str = "*"
    comparison: Literal["ge", "gt", "le", "lt", "eq"] | None = None
    note: str | None = None


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: Text
    aspect: str
    unit: str
    direction: Literal["higher", "lower"]
    description: Text | None = None
    numerator: Measure | None = None
    denominator: Measure | None = None
    scope_by: ScopeBy | None = None
    growth_of: str | None = None
    assessment: bool = False
    # a function of the 2025 guide whose activity no domain of Yilian records: always "no data", never "not used"
    unrecorded: bool = False
    targets: list[TargetIn] = Field(default_factory=list)
    set_id: str = ""
    source: str = ""

    @property
    def kind(self) -> str:
        if self.assessment:
            return "assessment"
        if self.unrecorded:
            return "unrecorded"
        if self.growth_of:
            return "growth"
        return "ratio" if self.denominator is not None else "value"

    def rule_targets(self) -> list[rules.Target]:
        default = "le" if self.direction == "lower" else "ge"
        return [rules.Target(t.value, t.period, t.scope, t.comparison or default) for t in self.targets]

    def scope_of(self, measure: Measure) -> ScopeBy | None:
        return measure.scope_by or self.scope_by

    def tables(self) -> set[str]:
        out: set[str] = set()
        for m in (self.numerator, self.denominator):
            if m is not None:
                out |= m.tables()
        if self.assessment:
            out.add("assessment")
        return out


class SetSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: str
    year: int


class IndicatorSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: Text
    source: SetSource
    scope_level: Literal["county", "facility"] = "county"
    scope_facility_level: str | None = None
    indicators: list[Indicator]

    @property
    def source_text(self) -> str:
        return f"{self.source.document} ({self.source.year})"


ASPECTS: dict[str, Text] = {
    "resources": Text(zh="资源共享与下沉", en="Resource sharing"),
    "services": Text(zh="服务能力与分工", en="Service capacity and division of labour"),
    "insurance": Text(zh="医保基金使用", en="Medical-insurance fund"),
    "costs": Text(zh="费用与薪酬", en="Costs and pay"),
    "outcomes": Text(zh="健康结果", en="Health outcomes"),
    "governance": Text(zh="统一管理与协同（评判项）", en="Unified management and coordination (assessed)"),
    "volume": Text(zh="服务量", en="Volume"),
    "timeliness": Text(zh="及时性", en="Timeliness"),
    "continuity": Text(zh="连续性", en="Continuity"),
    "complexity": Text(zh="技术难度", en="Complexity"),
    "efficiency": Text(zh="运行效率", en="Efficiency"),
    "retention": Text(zh="患者留治", en="Patients kept in the province"),
    "sharing": Text(zh="资源共享", en="Sharing"),
    "recognition": Text(zh="结果互认", en="Mutual recognition"),
    # the five classes of the 2025 function guide for county medical communities
    "fg_regional": Text(zh="区域服务协同", en="Regional service coordination"),
    "fg_convenience": Text(zh="便民服务", en="Convenience services"),
    "fg_management": Text(zh="医疗管理协同", en="Medical-management coordination"),
    "fg_public_health": Text(zh="公共卫生协同", en="Public-health coordination"),
    "fg_primary": Text(zh="基层一体化管理", en="Integrated primary management"),
}

_OPS = {"ne", "eq", "in", "ge", "gt", "le", "lt", "not_null", "is_null"}


def _check_measure(ind: Indicator, m: Measure, what: str) -> None:
    where = f"{ind.id}.{what}"
    if m.population:
        if m.from_:
            raise ValueError(f"{where}: population and from are exclusive")
        return
    if not m.from_ or m.from_ not in schema.TABLES:
        raise ValueError(f"{where}: from must name a snapshot table ({', '.join(schema.TABLES)}), not {m.from_!r}")
    cols = schema.columns(m.from_)
    for c in sorted(m.columns()):
        if c not in cols:
            raise ValueError(f"{where}: table {m.from_} has no column {c!r}")
    for col, cond in m.where.items():
        if isinstance(cond, dict):
            bad = set(cond) - _OPS
            if bad:
                raise ValueError(f"{where}: unknown condition {sorted(bad)} on {col}")
            ref = cond.get("in")
            if isinstance(ref, str):
                table, _, column = ref.partition(".")
                if table not in schema.TABLES or column not in schema.columns(table):
                    raise ValueError(f"{where}: {col} in {ref!r} names no snapshot column")
    if sum(1 for k in ("count", "count_distinct", "sum", "mean", "median") if getattr(m, k)) != 1:
        raise ValueError(f"{where}: say exactly one of count, count_distinct, sum, mean, median")
    scope = ind.scope_of(m)
    if scope is None:
        raise ValueError(f"{where}: no scope_by (on the indicator or the measure)")
    if scope.column not in cols:
        raise ValueError(f"{where}: scope column {scope.column!r} is not in {m.from_}")


def check_set(s: IndicatorSet) -> None:
    ids = {i.id for i in s.indicators}
    if len(ids) != len(s.indicators):
        raise ValueError("duplicate indicator ids")
    for ind in s.indicators:
        if ind.unit not in rules.UNITS:
            raise ValueError(f"{ind.id}: unknown unit {ind.unit!r} ({', '.join(rules.UNITS)})")
        if ind.aspect not in ASPECTS:
            raise ValueError(f"{ind.id}: unknown aspect {ind.aspect!r}")
        kinds = [ind.assessment, ind.unrecorded, ind.growth_of is not None, ind.numerator is not None]
        if sum(kinds) != 1:
            raise ValueError(f"{ind.id}: an indicator is an assessment, unrecorded, a growth_of, or has a numerator")
        if ind.growth_of and ind.growth_of not in ids:
            raise ValueError(f"{ind.id}: growth_of {ind.growth_of!r} is not in the set")
        if ind.numerator is not None:
            _check_measure(ind, ind.numerator, "numerator")
        if ind.denominator is not None:
            if ind.numerator is None:
                raise ValueError(f"{ind.id}: a denominator needs a numerator")
            _check_measure(ind, ind.denominator, "denominator")
        ind.set_id, ind.source = s.id, s.source_text


# libyaml's parser when it is built in: the pure-Python one takes over a second for the shipped sets
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_set(text: str, origin: str) -> IndicatorSet:
    try:
        data = yaml.load(text, Loader=_Loader)  # a safe loader (libyaml's or Python's)
        s = IndicatorSet.model_validate(data)
        check_set(s)
    except (yaml.YAMLError, ValidationError, ValueError) as exc:
        raise Invalid(f"indicator set {origin}: {exc}", field=origin) from exc
    return s


def columns_read(s: IndicatorSet) -> dict[str, set[str]]:
    """Per snapshot table, the columns the set's measures filter, reduce, date or scope by (`in:` lists included)."""
    out: dict[str, set[str]] = {}
    for ind in s.indicators:
        for m in (ind.numerator, ind.denominator):
            if m is None or m.table is None:
                continue
            cols = out.setdefault(m.table, set())
            cols |= m.columns()
            scope = ind.scope_of(m)
            if scope is not None:
                cols.add(scope.column)
            for cond in m.where.values():
                if isinstance(cond, dict) and isinstance(cond.get("in"), str):
                    table, _, column = cond["in"].partition(".")
                    out.setdefault(table, set()).add(column)
    return out


@lru_cache(maxsize=1)
def load_all() -> dict[str, IndicatorSet]:
    """Every shipped set by id; raises Invalid naming the file if one is wrong (called at start-up)."""
    out: dict[str, IndicatorSet] = {}
    for path in sorted(SETS_DIR.glob("*.yaml")):
        s = parse_set(path.read_text(encoding="utf-8"), path.name)
        out[s.id] = s
    return out


def get_set(set_id: str, field: str = "set") -> IndicatorSet:
    sets = load_all()
    if set_id not in sets:
        raise NotFound(f"no indicator set {set_id!r}; known: {', '.join(sets)}", field=field)
    return sets[set_id]


def get_indicator(indicator_id: str, field: str = "indicator") -> Indicator:
    for s in load_all().values():
        for ind in s.indicators:
            if ind.id == indicator_id:
                return ind
    raise NotFound(f"no indicator {indicator_id!r}", field=field)
