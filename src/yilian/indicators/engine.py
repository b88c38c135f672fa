"""The indicator engine: definitions (data) → Ibis expressions over a snapshot → one result per indicator and scope.

Every number is an Ibis expression executed by DuckDB here; the same expressions run on any Ibis backend (PySpark for
a province). Scopes are computed together: a measure is one grouped query over all requested scopes, not one per scope.
A table that is not recorded, a column nobody fills, a period outside what was recorded, a zero denominator: each gives
a null value with a status and a note, never a 0 that looks like a measurement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from yilian.errors import Invalid, NotFound
from yilian.indicators import definitions, prepare, rules, schema
from yilian.indicators.definitions import Indicator, IndicatorSet, Measure
from yilian.indicators.snapshot import Snapshot


@dataclass
class Scope:
    key: str  # county code, consortium id or facility id
    name: str
    kind: str  # division | consortium | facility
    facility_ids: set[str] = field(default_factory=set)
    counties: set[str] = field(default_factory=set)
    population: int | None = None


@dataclass
class Result:
    id: str
    name: str
    name_en: str
    set: str
    aspect: str
    scope: str
    scope_name: str
    scope_kind: str
    period: str
    value: float | None
    numerator: float | None
    denominator: float | None
    unit: str
    direction: str
    target: float | None
    meets_target: bool | None
    status: str
    note: str | None
    snapshot: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _empty(table: str) -> pa.Table:
    return schema.arrow_schema(table).empty_table()


class Engine:
    """One snapshot, opened once; compute as many sets, periods and scopes as needed against it."""

    def __init__(self, snap: Snapshot, con: Any = None):
        self.snap = snap
        self.con = con or ibis.duckdb.connect()
        # Table names in the engine's own connection are the same for every engine, so that its queries' SQL is the
        # same on every snapshot (and compiled once per process, `_SQL`); on a connection shared with others, unique.
        self._suffix = "" if con is None else f"_{id(self)}"
        self._full: dict[str, ir.Table] = {}
        # a server shares one engine per snapshot between requests: one computation at a time on its connection
        self.lock = threading.RLock()
        self._base: dict[str, ir.Table] = {}
        self._enriched: dict[str, ir.Table] = {}
        self._coverage: dict[tuple[str, str | None], rules.Coverage] = {}
        self._filled: dict[str, dict[str, int]] = {}
        self._measured: dict[tuple[Any, ...], dict[str, float | None]] = {}
        # the columns definitions read, per table: only these (and the derived ones) are in the working tables
        self._wanted: dict[str, set[str]] = {}
        self._shape: tuple[Any, ...] = ()  # the columns kept, as part of a query's SQL cache key
        for s in definitions.load_all().values():
            self._want(s)
        self.as_of = snap.taken_at.date()

    def _want(self, iset: IndicatorSet) -> None:
        """Make sure the working tables hold every column `iset` reads (a set not shipped may read others)."""
        for t, cols in definitions.columns_read(iset).items():
            have = self._wanted.setdefault(t, set())
            if not cols <= have:
                have |= cols
                self._enriched.pop(t, None)
                self._filled.pop(t, None)
                self._shape = tuple(sorted((t, tuple(sorted(c))) for t, c in self._wanted.items()))

    # ------------------------------------------------------------------ tables
    def base(self, name: str) -> ir.Table:
        if name not in self._base:
            info = self.snap.tables.get(name)
            if info is not None and info.rows > 0:
                self._base[name] = self.con.read_parquet(str(info.path), table_name=f"s_{name}{self._suffix}")
            else:
                self._base[name] = ibis.memtable(_empty(name))
        return self._base[name]

    def table(self, name: str) -> ir.Table:
        """The table as measures read it: prepared (registry joined in) and only the columns definitions read plus the
        derived ones. On DuckDB a view over the snapshot's prepared Parquet file, not a copy: the joins were done
        when the snapshot was taken, and copying 5 million rows into memory cost more than the few scans it saves."""
        if name not in self._enriched:
            expr = self.full_table(name)
            if name in self._wanted:
                keep = self._wanted[name] | set(schema.DERIVED.get(name, {}))
                expr = expr.select(*[c for c in expr.columns if c in keep])
            if self.con.name == "duckdb":
                # a named view keeps later expressions small (Ibis compiles them in milliseconds, not the tenths of a
                # second the joins of a snapshot written before prepared tables take) and their SQL the same
                self._enriched[name] = self.con.create_view(f"e_{name}{self._suffix}", expr, overwrite=True)
            else:  # PySpark: a cached DataFrame, read once for the set's several Spark jobs
                self._enriched[name] = expr.cache()
        return self._enriched[name]

    def full_table(self, name: str) -> ir.Table:
        """The table with the registry joined in and every column (for the drill-down). The snapshot
        keeps it prepared; one written before prepared tables existed is joined here."""
        if name not in self._full:
            info = self.snap.tables.get(name)
            if info is not None and info.rows > 0 and info.prepared is not None:
                self._full[name] = self.con.read_parquet(str(info.prepared), table_name=f"p_{name}{self._suffix}")
            else:
                self._full[name] = prepare.enrich(name, self.base(name), self.base)
        return self._full[name]

    # ------------------------------------------------------------------ what the snapshot can answer
    def coverage(self, name: str, date_col: str | None) -> rules.Coverage:
        key = (name, date_col)
        if key not in self._coverage:
            info = self.snap.tables.get(name)
            rows = info.rows if info else 0
            if rows == 0 or date_col is None:
                self._coverage[key] = rules.Coverage(rows)
            else:
                t = self.base(name)
                col = t[date_col]
                (got,) = self._run(("coverage", name, date_col), lambda: t.aggregate(a=col.min(), b=col.max()))
                self._coverage[key] = rules.Coverage(rows, _as_date(got["a"]), _as_date(got["b"]))
        return self._coverage[key]

    def filled(self, name: str) -> dict[str, int]:
        """How many rows fill each column of a table (derived columns included), in one query per table."""
        if name not in self._filled:
            t = self.table(name)
            (row,) = self._run(("filled", name), lambda: t.aggregate(**{c: t[c].count() for c in t.columns}))
            self._filled[name] = {c: int(v or 0) for c, v in row.items()}
        return self._filled[name]

    def missing(self, m: Measure, period: rules.Period, ind: Indicator | None = None) -> rules.Missing | None:
        """Why a measure cannot be trusted for this period, if it cannot: its tables not recorded or not covering the
        period, or a column it filters, groups or reduces on that no row fills (a foreign key nobody sends is not
        recorded, which is not the same as 'none')."""
        if m.population:
            return None
        assert m.table is not None
        # a span (postings, disease management) stays current after it starts: only a dated event has coverage
        date_col = m.date
        found = None
        for table in sorted(m.tables()):
            cov = self.coverage(table, date_col if table == m.table else None)
            miss = rules.missing_data(table, cov, period, self.as_of)
            if miss and miss.status == "no_data":
                return miss
            found = found or miss
        # a condition on nullness (closed_at not null) reads null as information; every other column must be filled
        nullness = {c for c, v in m.where.items() if isinstance(v, dict) and ({"not_null", "is_null"} & set(v))}
        needed = (set(m.where) - nullness) | {
            c for c in (m.date, m.count_distinct, m.sum, m.mean, m.median, m.per) if c
        }
        scope = ind.scope_of(m) if ind is not None else None
        if scope is not None:
            needed.add(scope.column)
        filled = self.filled(m.table)
        for col in sorted(needed):
            if filled.get(col, 1) == 0:
                return rules.Missing("no_data", f"no data: {m.table}.{col} is not recorded")
        return found

    # ------------------------------------------------------------------ filters
    def _condition(self, t: ir.Table, col: str, cond: Any) -> ir.BooleanValue:
        c = t[col]
        if isinstance(cond, list):
            return c.isin(cond)
        if not isinstance(cond, dict):
            return c == cond
        preds = []
        for op, v in cond.items():
            if op == "in" and isinstance(v, str):
                table, _, column = v.partition(".")
                preds.append(c.isin(self.table(table)[column]))
            elif op == "in":
                preds.append(c.isin(list(v)))
            elif op == "ne":
                preds.append(c.isnull() | (c != v))
            elif op == "not_null":
                preds.append(c.notnull() if v else c.isnull())
            elif op == "is_null":
                preds.append(c.isnull() if v else c.notnull())
            else:
                preds.append({"eq": c.__eq__, "ge": c.__ge__, "gt": c.__gt__, "le": c.__le__, "lt": c.__lt__}[op](v))
        out = preds[0]
        for p in preds[1:]:
            out = out & p
        return out

    # ------------------------------------------------------------------ scopes
    def scope_maps(self, scopes: list[Scope]) -> tuple[ir.Table, ir.Table]:
        fac = [(s.key, f) for s in scopes for f in s.facility_ids]
        div = [(s.key, c) for s in scopes for c in s.counties]
        fmap = ibis.memtable(
            pa.table(
                {"scope_key": [a for a, _ in fac], "scope_fid": [b for _, b in fac]},
                schema=pa.schema([("scope_key", pa.string()), ("scope_fid", pa.string())]),
            )
        )
        dmap = ibis.memtable(
            pa.table(
                {"scope_key": [a for a, _ in div], "scope_county": [b for _, b in div]},
                schema=pa.schema([("scope_key", pa.string()), ("scope_county", pa.string())]),
            )
        )
        return fmap, dmap

    def in_scopes(
        self,
        ind: Indicator,
        m: Measure,
        t: ir.Table,
        maps: tuple[ir.Table, ir.Table],
        scopes: list[Scope] | None = None,
    ) -> ir.Table:
        by = ind.scope_of(m)
        assert by is not None
        county_col = self._county_column(ind, m, t, scopes) if scopes else None
        if county_col is not None:
            # Whole counties: a row's scope is its county column, so no join with the scope map over millions of
            # rows (the same rows as the join: a county scope holds exactly the facilities whose county it is).
            return t.filter(t[county_col].isin([s.key for s in scopes or []])).mutate(scope_key=t[county_col])
        fmap, dmap = maps
        if by.facility:
            return t.inner_join(fmap, t[by.facility] == fmap.scope_fid)
        return t.inner_join(dmap, t[by.column] == dmap.scope_county)

    def _county_column(self, ind: Indicator, m: Measure, t: ir.Table, scopes: list[Scope]) -> str | None:
        """The county column that says a row's scope, when every scope is a whole county and `t` has it."""
        by = ind.scope_of(m)
        assert by is not None
        col = by.division or COUNTY_OF.get(by.facility or "")
        return col if col and col in t.columns and all(_whole_county(s) for s in scopes) else None

    # ------------------------------------------------------------------ measures
    def _window_preds(self, t: ir.Table, m: Measure, period: rules.Period) -> list[ir.BooleanValue]:
        """The measure's period conditions (by date, span or year) on `t`."""
        preds = []
        start, end = period.start, period.end
        if m.date:
            col = t[m.date]
            if col.type().is_timestamp():
                preds += [
                    col >= datetime.combine(start, datetime.min.time()),
                    col < datetime.combine(end, datetime.min.time()),
                ]
            else:
                preds += [col >= start, col < end]
        if m.during:
            s, e = t[m.during[0]], t[m.during[1]]
            preds += [s.isnull() | (s < end), e.isnull() | (e >= start)]
        if m.year:
            last = end - timedelta(days=1)
            preds += [t[m.year] >= start.year, t[m.year] <= last.year]
        return preds

    def _window(self, m: Measure, period: rules.Period, t: ir.Table | None = None) -> ir.Table:
        """The measure's table, in the period (by date, span or year), before its own conditions."""
        assert m.table is not None
        t = self.table(m.table) if t is None else t
        preds = self._window_preds(t, m, period)
        return t.filter(*preds) if preds else t

    def _where(self, t: ir.Table, m: Measure) -> ir.BooleanValue | None:
        out = None
        for col, cond in m.where.items():
            p = self._condition(t, col, cond)
            out = p if out is None else out & p
        return out

    def _metric(self, j: ir.Table, m: Measure, pred: ir.BooleanValue | None) -> ir.Value:
        kind, col = m.reducer
        if kind == "count_distinct":
            return j[col].nunique(where=pred)
        if kind == "mean":
            return j[col].mean(where=pred)
        # median(where=…) compiles on Spark to a percentile whose fraction is not a constant, which Spark refuses;
        # a median over the filtered column (nulls ignored) is the same number on every backend
        return (j[col] if pred is None else ibis.ifelse(pred, j[col], ibis.null())).median()

    def _key(self, ind: Indicator, m: Measure, period: rules.Period) -> tuple[Any, ...]:
        return (ind.id, id(m), period.label)

    def _run(self, key: tuple[Any, ...] | None, build: Callable[[], ir.Table]) -> list[dict[str, Any]]:
        """Execute a query. On DuckDB its SQL is compiled once per process and key: building and compiling the Ibis
        expression costs as much as running it on half a million rows, and it depends only on the definitions (the
        key says which), the columns kept and the table names, never on the snapshot's data, so an engine on a new
        snapshot reuses what the last one compiled."""
        if key is None or self.con.name != "duckdb":
            return list(self.con.to_pyarrow(build()).to_pylist())
        full = (self._suffix, self._shape, key)
        sql = _SQL.get(full)
        if sql is None:
            sql = _SQL[full] = str(self.con.compile(build()))
        return list(self.con.con.sql(sql).to_arrow_table().to_pylist())

    @staticmethod
    def _signature(members: list[tuple[Indicator, Measure, rules.Period]]) -> tuple[Any, ...]:
        """What a query's SQL depends on: the measures (their definitions, not their identity), scopes and periods."""
        return tuple(
            (ind.id, m.model_dump_json(), ind.scope_of(m).model_dump_json(), p.start, p.end)  # type: ignore[union-attr]
            for ind, m, p in members
        )

    def prefetch(
        self,
        items: list[tuple[Indicator, Measure, rules.Period]],
        scopes: list[Scope],
        maps: tuple[ir.Table, ir.Table],
    ) -> None:
        """Compute many measures at once, with as few scans of each table as the reducers allow.

        Counts and sums add up: all of them on one table — every period, every scope column — are one grouped query
        (each a filtered aggregate, grouped by the scope columns themselves), and the groups are added up per scope
        here, so no row is joined to a scope map. Distinct counts, means and medians do not add up: they are one
        grouped query per table, window and scope column, rows joined to their scope."""
        additive: dict[tuple[Any, ...], list[tuple[Indicator, Measure, rules.Period]]] = {}
        other: dict[tuple[Any, ...], list[tuple[Indicator, Measure, rules.Period]]] = {}
        for ind, m, period in items:
            if m.population or self._key(ind, m, period) in self._measured:
                continue
            by = ind.scope_of(m)
            assert by is not None
            if m.reducer[0] in ("count", "sum"):
                additive.setdefault((m.table, m.date, m.during, m.year), []).append((ind, m, period))
            else:
                gkey = (m.table, m.date, m.during, m.year, by.facility, by.division, period.label)
                other.setdefault(gkey, []).append((ind, m, period))
        for members in additive.values():
            self._additive(members, scopes)
        for members in other.values():

            def build(members: list[tuple[Indicator, Measure, rules.Period]] = members) -> ir.Table:
                ind0, m0, period0 = members[0]
                t = self._window(m0, period0)
                single = len(members) == 1 and self._where(t, m0) is not None
                if single:
                    # one measure: its conditions filter the rows before the join (as a filter on the aggregate, a
                    # distinct count would test every row of the table, an `in` list too)
                    t = t.filter(self._where(t, m0))
                j = self.in_scopes(ind0, m0, t, maps, scopes)
                metrics = {
                    f"m{i}": self._metric(j, m, None if single else self._where(j, m))
                    for i, (_, m, _) in enumerate(members)
                }
                return j.group_by("scope_key").aggregate(**metrics)

            # a query joined to the scope maps (tables of this request) is not kept; one by county columns is
            ind0, m0, _ = members[0]
            assert m0.table is not None
            by_county = self._county_column(ind0, m0, self.table(m0.table), scopes) is not None
            key = ("by", self._signature(members), tuple(s.key for s in scopes)) if by_county else None
            table = self._run(key, build)
            for i, (ind, m, period) in enumerate(members):
                got = {str(row["scope_key"]): row[f"m{i}"] for row in table}
                self._measured[self._key(ind, m, period)] = self._settle(m, got, scopes)

    def _scope_column(self, ind: Indicator, m: Measure, t: ir.Table, scopes: list[Scope]) -> tuple[str, bool]:
        """The column a measure's rows are grouped by, and whether it holds a county (else a facility id)."""
        by = ind.scope_of(m)
        assert by is not None
        if by.division:
            return by.division, True
        county_col = COUNTY_OF.get(by.facility or "")
        if county_col and county_col in t.columns and all(_whole_county(s) for s in scopes):
            return county_col, True  # whole counties: a few groups instead of one per facility
        return by.facility or "", False

    def _additive(self, members: list[tuple[Indicator, Measure, rules.Period]], scopes: list[Scope]) -> None:
        m0 = members[0][1]
        assert m0.table is not None
        t = self.table(m0.table)

        def build() -> ir.Table:
            # only the rows of the periods asked for (their union: the year and the one before, for a growth)
            lo = min((p for _, _, p in members), key=lambda p: p.start)
            hi = max((p for _, _, p in members), key=lambda p: p.end)
            window = self._window_preds(t, m0, rules.Period(lo.label, lo.start, hi.end))
            rows = t.filter(*window) if window else t
            keys: list[str] = []
            metrics: dict[str, ir.Value] = {}
            for i, (ind, m, period) in enumerate(members):
                col, _ = self._scope_column(ind, m, rows, scopes)
                if col not in keys:
                    keys.append(col)
                pred = None
                where = self._where(rows, m)
                for p in self._window_preds(rows, m, period) + ([where] if where is not None else []):
                    pred = p if pred is None else pred & p
                kind, value = m.reducer
                if kind == "count":
                    metrics[f"n{i}"] = rows.count(where=pred)
                else:
                    assert value is not None
                    metrics[f"n{i}"] = rows[value].sum(where=pred).cast("float64")
                    if m.per:
                        metrics[f"d{i}"] = rows[m.per].sum(where=pred).cast("float64")
            return rows.group_by(keys).aggregate(**metrics)

        whole = all(_whole_county(s) for s in scopes)  # the only thing of the scopes the SQL depends on
        table = self._run(("sum", self._signature(members), whole), build)
        # which scopes a county or a facility id belongs to (a facility may be in a county and in a consortium)
        by_county: dict[str, list[str]] = {}
        by_facility: dict[str, list[str]] = {}
        for s in scopes:
            for c in s.counties:
                by_county.setdefault(c, []).append(s.key)
            for f in s.facility_ids:
                by_facility.setdefault(f, []).append(s.key)
        for i, (ind, m, period) in enumerate(members):
            col, is_county = self._scope_column(ind, m, t, scopes)
            lookup = by_county if is_county else by_facility
            num: dict[str, float] = {}
            den: dict[str, float] = {}
            for row in table:
                for key in lookup.get(str(row[col]), ()) if row[col] is not None else ():
                    if row[f"n{i}"] is not None:
                        num[key] = num.get(key, 0.0) + row[f"n{i}"]
                    if m.per and row[f"d{i}"] is not None:
                        den[key] = den.get(key, 0.0) + row[f"d{i}"]
            got: dict[str, Any]
            if m.per:
                got = {k: (num[k] / den[k] if k in num and den.get(k) else None) for k in set(num) | set(den)}
            else:
                got = num
            self._measured[self._key(ind, m, period)] = self._settle(m, got, scopes)

    def _settle(self, m: Measure, got: dict[str, Any], scopes: list[Scope]) -> dict[str, float | None]:
        kind, _ = m.reducer
        zero = 0.0 if kind in ("count", "count_distinct") or (kind == "sum" and not m.per) else None
        out: dict[str, float | None] = {}
        for s in scopes:
            v = got.get(s.key, zero)
            if v is None or v != v:
                v = zero if kind in ("count", "count_distinct") or (kind == "sum" and not m.per) else None
            out[s.key] = None if v is None else round(float(v) * m.scale, 6)
        return out

    def measure(
        self, ind: Indicator, m: Measure, period: rules.Period, scopes: list[Scope], maps: tuple[ir.Table, ir.Table]
    ) -> dict[str, float | None]:
        """The measure for every scope (absent scope: 0 for counts and sums, None for means and medians)."""
        if m.population:
            return {s.key: (float(s.population) if s.population else None) for s in scopes}
        key = self._key(ind, m, period)
        if key not in self._measured:
            self.prefetch([(ind, m, period)], scopes, maps)
        return self._measured[key]

    def filtered(self, m: Measure, period: rules.Period) -> ir.Table:
        """The rows a measure counts, with all their columns: in the period and meeting its conditions (the
        drill-down)."""
        assert m.table is not None
        t = self._window(m, period, self.full_table(m.table))
        pred = self._where(t, m)
        return t.filter(pred) if pred is not None else t

    # ------------------------------------------------------------------ indicators
    def compute(
        self, iset: IndicatorSet, period: rules.Period, scopes: list[Scope], only: set[str] | None = None
    ) -> list[Result]:
        with self.lock:
            return self._compute(iset, period, scopes, only)

    def _compute(
        self, iset: IndicatorSet, period: rules.Period, scopes: list[Scope], only: set[str] | None = None
    ) -> list[Result]:
        self._want(iset)
        maps = self.scope_maps(scopes)
        self._measured = {}
        wanted = [
            i
            for i in iset.indicators
            if only is None
            or i.id in only
            or i.id in {x.growth_of for x in iset.indicators if only is None or x.id in only}
        ]
        # every measure of the set (and the year before, for growths) in one go: a scan per table where possible
        growth = [by for i in wanted if i.growth_of and (by := next(x for x in iset.indicators if x.id == i.growth_of))]
        items = self._measures(wanted, period) + (self._measures(growth, period.previous()) if growth else [])
        self.prefetch(items, scopes, maps)
        values: dict[str, dict[str, rules.Value]] = {}
        parts: dict[str, dict[str, tuple[float | None, float | None]]] = {}
        by_id = {i.id: i for i in iset.indicators}
        order = [i for i in iset.indicators if only is None or i.id in only]
        for ind in order:
            if ind.growth_of and ind.growth_of not in values:
                base = by_id[ind.growth_of]
                values[base.id], parts[base.id] = self._values(base, period, scopes, maps)
            if ind.id not in values:
                values[ind.id], parts[ind.id] = self._values(ind, period, scopes, maps, by_id)
        out = []
        for ind in order:
            for s in scopes:
                v = values[ind.id][s.key]
                num, den = parts[ind.id][s.key]
                target = rules.target_for(ind.rule_targets(), period.start.year, s.key)
                out.append(
                    Result(
                        id=ind.id,
                        name=ind.name.zh,
                        name_en=ind.name.en,
                        set=iset.id,
                        aspect=ind.aspect,
                        scope=s.key,
                        scope_name=s.name,
                        scope_kind=s.kind,
                        period=period.label,
                        value=v.value,
                        numerator=num,
                        denominator=den,
                        unit=ind.unit,
                        direction=ind.direction,
                        target=target.value if target else None,
                        meets_target=rules.meets(v.value, target),
                        status=v.status,
                        note=v.note,
                        snapshot=self.snap.id,
                        source=ind.source,
                    )
                )
        return out

    def _measures(self, inds: list[Indicator], period: rules.Period) -> list[tuple[Indicator, Measure, rules.Period]]:
        out = []
        for ind in inds:
            ms = [m for m in (ind.numerator, ind.denominator) if m is not None]
            if any((x := self.missing(m, period, ind)) and x.status == "no_data" for m in ms):
                continue
            out += [(ind, m, period) for m in ms]
        return out

    def _values(
        self,
        ind: Indicator,
        period: rules.Period,
        scopes: list[Scope],
        maps: tuple[ir.Table, ir.Table],
        by_id: dict[str, Indicator] | None = None,
    ) -> tuple[dict[str, rules.Value], dict[str, tuple[float | None, float | None]]]:
        if ind.kind == "assessment":
            return self._assessment(ind, period, scopes)
        if ind.kind == "unrecorded":
            note = "no data: no domain of Yilian records this activity yet"
            return {s.key: rules.Value(None, "no_data", note) for s in scopes}, {s.key: (None, None) for s in scopes}
        if ind.kind == "growth":
            assert by_id is not None and ind.growth_of
            base = by_id[ind.growth_of]
            now, _ = self._values(base, period, scopes, maps)
            before, _ = self._values(base, period.previous(), scopes, maps)
            grown = {s.key: rules.growth_value(now[s.key].value, before[s.key].value) for s in scopes}
            return grown, {s.key: (now[s.key].value, before[s.key].value) for s in scopes}
        assert ind.numerator is not None
        measures = [ind.numerator] + ([ind.denominator] if ind.denominator else [])
        for m in measures:
            miss = self.missing(m, period, ind)
            if miss and miss.status == "no_data":
                return (
                    {s.key: rules.Value(None, "no_data", miss.note) for s in scopes},
                    {s.key: (None, None) for s in scopes},
                )
        per_resident = any((by := ind.scope_of(m)) is not None and by.division for m in measures)
        if per_resident and any(s.kind == "facility" for s in scopes):
            note = "no data: counted for a county's residents, not per facility"
            return {s.key: rules.Value(None, "no_data", note) for s in scopes}, {s.key: (None, None) for s in scopes}
        partial = next((x for m in measures if (x := self.missing(m, period, ind))), None)
        num = self.measure(ind, ind.numerator, period, scopes, maps)
        den = self.measure(ind, ind.denominator, period, scopes, maps) if ind.denominator else None
        vals: dict[str, rules.Value] = {}
        out_parts: dict[str, tuple[float | None, float | None]] = {}
        for s in scopes:
            n = num[s.key]
            d = den[s.key] if den is not None else None
            if den is not None:
                v = rules.ratio_value(n, d, ind.unit)
                if v.status == "no_data" and ind.denominator and ind.denominator.population:
                    v = rules.Value(None, "no_data", f"no data: census population of {s.name}")
            elif n is None:
                v = rules.Value(None, "no_data", "nothing recorded in this scope and period")
            else:
                v = rules.Value(n, "ok")
            if partial and v.status == "ok":
                v = rules.Value(v.value, partial.status, partial.note)
            vals[s.key] = v
            out_parts[s.key] = (n, d)
        return vals, out_parts

    def _assessment(
        self, ind: Indicator, period: rules.Period, scopes: list[Scope]
    ) -> tuple[dict[str, rules.Value], dict[str, tuple[float | None, float | None]]]:
        t = self.table("assessment")
        year = (period.end - timedelta(days=1)).year
        t = t.filter(t.indicator_id == ind.id, t.year >= period.start.year, t.year <= year)
        df = self.con.execute(t.order_by("year").select("scope", "value"))
        got = {str(k): bool(v) for k, v in zip(df["scope"], df["value"], strict=True)}  # the latest year wins
        vals: dict[str, rules.Value] = {}
        parts: dict[str, tuple[float | None, float | None]] = {}
        for s in scopes:
            if s.key in got:
                vals[s.key] = rules.Value(1.0 if got[s.key] else 0.0, "ok")
            else:
                vals[s.key] = rules.Value(None, "no_data", f"no assessment recorded for {period.label}")
            parts[s.key] = (vals[s.key].value, None)
        return vals, parts

    # ------------------------------------------------------------------ drill-down
    def rows(
        self, ind: Indicator, scope: Scope, period: rules.Period, part: str = "numerator", limit: int = 200
    ) -> tuple[list[dict[str, Any]], int]:
        """The rows behind a numerator (or denominator) in one scope: (first `limit` rows, how many in all)."""
        with self.lock:
            return self._rows(ind, scope, period, part, limit)

    def _rows(
        self, ind: Indicator, scope: Scope, period: rules.Period, part: str, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        m = ind.numerator if part == "numerator" else ind.denominator
        if m is None or m.population or m.table is None:
            raise NotFound(f"{ind.id} has no {part} read from rows", field="part")
        maps = self.scope_maps([scope])
        j = self.in_scopes(ind, m, self.filtered(m, period), maps)
        keep = [c for c in schema.columns(m.table) if c in j.columns]
        j = j.select(*keep)
        total = int(self.con.execute(j.count()))
        order = m.date or (m.during[0] if m.during else keep[0])
        df = self.con.execute(j.order_by(order).limit(limit))
        return [{k: _plain(v) for k, v in rec.items()} for rec in df.to_dict(orient="records")], total


# compiled SQL by (table-name suffix, columns kept, query key): shared by every engine of the process
_SQL: dict[tuple[Any, ...], str] = {}

# the county column the engine derives for each facility column a measure may be scoped by
COUNTY_OF = {
    "facility_id": "facility_county",
    "from_facility_id": "from_county",
    "to_facility_id": "to_county",
    "centre_facility_id": "centre_county",
}


def _whole_county(s: Scope) -> bool:
    return s.kind == "division" and s.counties == {s.key}


def _as_date(v: Any) -> date | None:
    if v is None or v != v:
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime().date()
    raise Invalid(f"not a date: {v!r}")


def _plain(v: Any) -> Any:
    import pandas as pd

    if v is None or (not isinstance(v, (list, dict, str)) and bool(pd.isna(v))):
        return None
    if hasattr(v, "isoformat"):
        try:
            return v.isoformat()
        except ValueError:
            return None
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item"):
        return v.item()
    return v
