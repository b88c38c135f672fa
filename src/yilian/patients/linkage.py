"""Record linkage: batch with Splink 5 on DuckDB, incremental in plain Python, the same levels and weights in both.

Batch (imports, re-runs): features → an Arrow table → Splink blocks and scores the pairs in SQL (the comparison levels
of rules.COMPARISONS written as SQL over precomputed columns; m/u fixed, not trained) → each pair routed by
rules.route → clusters as connected components of auto-links, built strongest first and refusing any union that
would put two different valid ID numbers, or two records that the rules keep apart, into one person.

Incremental (one registration): the caller finds candidates by the same blocking keys (an index lookup) and
`score_candidates` scores them with rules.score_pair: no Splink session per record.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from yilian.patients import rules
from yilian.patients.features import no_gc
from yilian.patients.rules import Features, Outcome, PairScore

# Blocking: pairs are only compared when they share one of these keys. Each rule catches errors the others miss:
# the ID card (exact links), the phone (any name or birth-date error), the full birth date (name errors: homophones,
# dropped or swapped characters), the name sound + birth year (day/month swapped or mistyped), the name sound + day
# and month (year mistyped). A name error AND a birth-date error AND no shared phone is left to review by search.
# The name sound alone would be simpler but compares every 王伟 with every other (≈ 1.4 M pairs per 100,000).
BLOCKING_RULES = (
    "l.resident_id = r.resident_id",
    "l.phone = r.phone",
    "l.dob = r.dob",
    "l.name_fuzzy = r.name_fuzzy AND l.birth_year = r.birth_year",
    "l.name_fuzzy = r.name_fuzzy AND substr(l.dob, 5, 4) = substr(r.dob, 5, 4)",
)

# The SQL form of each level in rules.COMPARISONS (same values, same order). Null levels come first.
_NULL_SQL = {
    "resident_id": '"resident_id_l" IS NULL OR "resident_id_r" IS NULL',
    "name": '"name_l" IS NULL OR "name_r" IS NULL',
    "dob": '"dob_l" IS NULL OR "dob_r" IS NULL',
    "gender": '"gender_l" IS NULL OR "gender_r" IS NULL',
    "phone": '"phone_l" IS NULL OR "phone_r" IS NULL',
    "address": '"county_l" IS NULL OR "county_r" IS NULL',
}
_LEVEL_SQL: dict[tuple[str, int], str] = {
    ("resident_id", 1): '"resident_id_l" = "resident_id_r"',
    ("resident_id", 0): "ELSE",
    ("name", 5): '"name_l" = "name_r"',
    ("name", 4): '"name_pinyin_l" = "name_pinyin_r"',
    ("name", 3): '"name_fuzzy_l" = "name_fuzzy_r"',
    ("name", 2): 'list_contains("name_variants_l", "name_fuzzy_r") OR list_contains("name_variants_r", "name_fuzzy_l")',
    ("name", 1): '"surname_fuzzy_l" = "surname_fuzzy_r" AND levenshtein("name_fuzzy_l", "name_fuzzy_r") <= 2',
    ("name", 0): "ELSE",
    ("dob", 4): '"dob_l" = "dob_r"',
    ("dob", 3): '"dob_l" = "dob_swap_r"',
    ("dob", 2): 'hamming("dob_l", "dob_r") = 1',
    ("dob", 1): '"birth_year_l" = "birth_year_r"',
    ("dob", 0): "ELSE",
    ("gender", 1): '"gender_l" = "gender_r"',
    ("gender", 0): "ELSE",
    ("phone", 2): '"phone_l" = "phone_r"',
    ("phone", 1): 'length("phone_l") = length("phone_r") AND hamming("phone_l", "phone_r") = 1',
    ("phone", 0): "ELSE",
    ("address", 3): '"county_l" = "county_r" AND "town_l" = "town_r"',
    ("address", 2): '"county_l" = "county_r"',
    ("address", 1): 'substr("county_l", 1, 4) = substr("county_r", 1, 4)',
    ("address", 0): "ELSE",
}

_COLUMNS = (
    "resident_id",
    "name",
    "name_pinyin",
    "name_fuzzy",
    "surname_fuzzy",
    "name_variants",
    "dob",
    "dob_swap",
    "birth_year",
    "gender",
    "phone",
    "county",
    "town",
)


def splink_settings() -> dict[str, Any]:
    """The Splink model: dedupe, our blocking rules, our levels with fixed m/u (see rules.COMPARISONS)."""
    comparisons = []
    for comparison in rules.COMPARISONS:
        levels: list[dict[str, Any]] = [
            {"sql_condition": _NULL_SQL[comparison.name], "label_for_charts": "null", "is_null_level": True}
        ]
        for level in comparison.levels:
            entry: dict[str, Any] = {
                "sql_condition": _LEVEL_SQL[(comparison.name, level.value)],
                "label_for_charts": level.label,
                "m_probability": level.m,
                "u_probability": level.u,
            }
            if level.tf:
                entry |= {
                    "tf_adjustment_column": "name",
                    "tf_adjustment_weight": 1.0,
                    "tf_minimum_u_value": rules.TF_MINIMUM,
                }
            levels.append(entry)
        comparisons.append({"output_column_name": comparison.name, "comparison_levels": levels})
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "ref",
        "probability_two_random_records_match": rules.PRIOR_MATCH,
        "blocking_rules_to_generate_predictions": list(BLOCKING_RULES),
        "comparisons": comparisons,
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": False,
    }


def to_arrow(records: list[Features]) -> pa.Table:
    def col(name: str) -> list[Any]:
        out: list[Any] = []
        for f in records:
            value = getattr(f, name)
            if name == "name_variants":
                out.append(list(value))
            else:
                out.append(value if value not in ("", None) else None)
        return out

    data: dict[str, Any] = {"ref": [f.ref for f in records]}
    for name in _COLUMNS:
        if name == "name_variants":
            data[name] = pa.array(col(name), type=pa.list_(pa.string()))
        elif name == "birth_year":
            data[name] = pa.array(col(name), type=pa.int32())
        else:
            data[name] = pa.array(col(name), type=pa.string())
    return pa.table(data)


def name_frequencies(records: Iterable[Features]) -> dict[str, float]:
    """Share of records carrying each name, as Splink computes its term-frequency table."""
    counts = Counter(f.name for f in records if f.name)
    total = sum(counts.values()) or 1
    return {name: n / total for name, n in counts.items()}


@dataclass
class LinkResult:
    clusters: list[list[str]]  # every record exactly once; singletons included
    links: list[PairScore]  # auto-links accepted into clusters
    review: list[PairScore]  # uncertain pairs for a person to decide
    refused: list[PairScore] = field(default_factory=list)  # auto-links refused by the anti-chaining guard
    pairs_scored: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def predict_pairs(records: list[Features], *, threshold: float) -> tuple[list[PairScore], int]:
    """Score all blocked pairs with Splink on an in-memory DuckDB; return those at or above `threshold`."""
    import duckdb
    from splink import DuckDBAPI, Linker

    if len(records) < 2:
        return [], 0
    con = duckdb.connect()
    try:
        db_api = DuckDBAPI(connection=con)
        table = to_arrow(records)
        df = db_api.register(table, table_name="mpi_records")
        linker = Linker(df, splink_settings(), log_level=logging.WARNING)
        blocked = linker.inference.predict(threshold_match_probability=0.0)
        total = int(con.execute(f"SELECT count(*) FROM {blocked.physical_name}").fetchone()[0])  # type: ignore[index]
        gammas = ", ".join(f"gamma_{c.name}" for c in rules.COMPARISONS)
        rows = con.execute(
            f"SELECT ref_l, ref_r, match_weight, match_probability, {gammas} FROM {blocked.physical_name} "
            f"WHERE match_probability >= ? OR gamma_resident_id = 1",
            [threshold],
        ).fetchall()
    finally:
        con.close()
    by_ref = {f.ref: f for f in records}
    scores = []
    for row in rows:
        left, right, weight, prob = row[0], row[1], float(row[2]), float(row[3])
        vector = {c.name: int(g) for c, g in zip(rules.COMPARISONS, row[4:], strict=True)}
        a, b = by_ref[left], by_ref[right]
        if rules.hard_negative(a, b):
            scores.append(PairScore(left, right, 0.0, weight, vector, "hard-negative"))
        elif rules.exact_link(a, b):
            scores.append(PairScore(left, right, 1.0, weight, vector, "exact-id"))
        else:
            scores.append(PairScore(left, right, prob, weight, vector, "probabilistic"))
    return scores, total


class _Components:
    """Union-find that remembers each component's members and valid ID numbers."""

    def __init__(self, refs: Iterable[str]):
        self.parent = {r: r for r in refs}
        self.members = {r: [r] for r in self.parent}

    def find(self, r: str) -> str:
        root = r
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[r] != root:
            self.parent[r], r = root, self.parent[r]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))


def may_join(
    left: list[Features],
    right: list[Features],
    *,
    name_tf: Callable[[str], float | None],
    review: float,
    apart: set[frozenset[str]] | None = None,
) -> bool:
    """Guard against chaining: two groups join only if every cross pair is at least worth a review and breaks none of
    the vetoes of rules.auto_link_allowed (A~B and B~C must not make A~C when A and C contradict each other), and
    none is a hard negative or a pair a person has already kept apart."""
    ids = {f.resident_id for f in left if f.resident_id}
    other_ids = {f.resident_id for f in right if f.resident_id}
    if ids and other_ids and ids != other_ids:
        return False
    for a in left:
        for b in right:
            if apart and frozenset((a.ref, b.ref)) in apart:
                return False
            score = rules.score_pair(a, b, name_tf=name_tf(a.name) if a.name == b.name else None)
            if score.method == "hard-negative":
                return False
            if score.method == "probabilistic" and (
                score.probability < review or not rules.auto_link_allowed(score.vector)
            ):
                return False
    return True


def split_ambiguous(
    links: list[PairScore], by_ref: dict[str, Features], name_tf: Callable[[str], float | None], *, review: float
) -> tuple[list[PairScore], list[PairScore]]:
    """A record that would auto-link to two records which cannot be one person (赵建 ~ 赵建国 and 赵建 ~ 赵建宁, twins)
    is ambiguous: whichever link came first would decide. Its probabilistic links go to review instead."""
    partners: dict[str, list[str]] = {}
    linked: set[tuple[str, str]] = set()
    for s in links:
        partners.setdefault(s.left, []).append(s.right)
        partners.setdefault(s.right, []).append(s.left)
        linked.add((s.left, s.right) if s.left < s.right else (s.right, s.left))
    unsure: set[str] = set()
    for ref, others in partners.items():
        if len(others) < 2:
            continue
        for a, b in itertools.combinations(others, 2):
            if (a, b) in linked or (b, a) in linked:
                continue  # the three records link each other: one person
            if not may_join([by_ref[a]], [by_ref[b]], name_tf=name_tf, review=review):
                unsure.add(ref)
                break
    if not unsure:
        return links, []
    keep, doubtful = [], []
    for s in links:
        if s.method == "probabilistic" and (s.left in unsure or s.right in unsure):
            doubtful.append(s)
        else:
            keep.append(s)
    return keep, doubtful


def link_batch(
    records: list[Features],
    *,
    auto_link: float,
    review: float,
    progress: Callable[[str], None] | None = None,
    apart: set[frozenset[str]] | None = None,
) -> LinkResult:
    """Link a whole set of records: pairs, routes and clusters. `apart`: pairs a person decided are two people."""
    with no_gc():
        return _link_batch(records, auto_link=auto_link, review=review, progress=progress, apart=apart)


def _link_batch(
    records: list[Features],
    *,
    auto_link: float,
    review: float,
    progress: Callable[[str], None] | None,
    apart: set[frozenset[str]] | None,
) -> LinkResult:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    say(f"scoring pairs among {len(records)} records with Splink (DuckDB)")
    scores, total = predict_pairs(records, threshold=min(review, auto_link))
    timings["predict_s"] = time.perf_counter() - started

    t = time.perf_counter()
    by_ref = {f.ref: f for f in records}
    tf = name_frequencies(records)
    links, review_pairs, refused = [], [], []
    for score in scores:
        route = rules.route(score, auto_link=auto_link, review=review)
        if route == Outcome.LINK:
            links.append(score)
        elif route == Outcome.REVIEW:
            review_pairs.append(score)
    links, ambiguous = split_ambiguous(links, by_ref, tf.get, review=review)
    review_pairs.extend(ambiguous)
    say(f"{len(links)} auto-links, {len(review_pairs)} pairs for review; building clusters")

    components = _Components(by_ref)
    accepted: list[PairScore] = []
    # Strongest evidence first, so that a weak link never decides which group a record ends up in.
    links.sort(key=lambda s: (s.method != "exact-id", -s.weight, s.left, s.right))  # ties: same order every run
    for score in links:
        ra, rb = components.find(score.left), components.find(score.right)
        if ra == rb:
            accepted.append(score)
            continue
        left = [by_ref[r] for r in components.members[ra]]
        right = [by_ref[r] for r in components.members[rb]]
        # Two single records: the only cross pair is this link, already routed (vetoes passed, IDs not different).
        singles = len(left) == 1 and len(right) == 1 and not (apart and frozenset((score.left, score.right)) in apart)
        if singles or may_join(left, right, name_tf=tf.get, review=review, apart=apart):
            components.union(ra, rb)
            accepted.append(score)
        else:
            refused.append(score)
    # A refused auto-link is still a strong signal: a person should look, unless the IDs already say no.
    for score in refused:
        a, b = by_ref[score.left], by_ref[score.right]
        if not rules.hard_negative(a, b) and not (apart and frozenset((a.ref, b.ref)) in apart):
            review_pairs.append(score)
    clusters = sorted((sorted(m) for m in components.members.values()), key=lambda c: c[0])
    # Pairs already inside one cluster, or already decided apart, need no review.
    review_pairs = [
        s
        for s in review_pairs
        if components.find(s.left) != components.find(s.right) and not (apart and frozenset((s.left, s.right)) in apart)
    ]
    timings["cluster_s"] = time.perf_counter() - t
    return LinkResult(
        clusters=clusters, links=accepted, review=review_pairs, refused=refused, pairs_scored=total, timings=timings
    )


def score_candidates(
    new: Features, candidates: Iterable[Features], *, name_tf: Callable[[str], float | None]
) -> list[PairScore]:
    """Incremental matching: score one record against its blocking candidates, best first."""
    out = []
    for candidate in candidates:
        if candidate.ref == new.ref:
            continue
        tf = name_tf(new.name) if new.name and new.name == candidate.name else None
        out.append(rules.score_pair(new, candidate, name_tf=tf))
    out.sort(key=lambda s: (s.method != "exact-id", -s.probability, -s.weight))
    return out


def blocking_keys(f: Features) -> list[tuple[str, Any]]:
    """The same blocks as BLOCKING_RULES, as (column, value) lookups for an index."""
    keys: list[tuple[str, Any]] = []
    if f.resident_id:
        keys.append(("resident_id", f.resident_id))
    if f.phone:
        keys.append(("phone", f.phone))
    if f.dob:
        keys.append(("dob", f.dob))
    if f.name_fuzzy and f.birth_year:
        keys.append(("name_fuzzy+birth_year", (f.name_fuzzy, f.birth_year)))
    if f.name_fuzzy and f.dob:
        keys.append(("name_fuzzy+month_day", (f.name_fuzzy, f.dob[4:])))
    return keys


class MemoryIndex:
    """An in-memory candidate index (tests, benchmarks, the CLI on files): blocking keys → records."""

    def __init__(self, records: Iterable[Features] = ()):
        self.blocks: dict[tuple[str, Any], list[Features]] = {}
        self.names: Counter[str] = Counter()
        self.size = 0
        for f in records:
            self.add(f)

    def add(self, f: Features) -> None:
        for key in blocking_keys(f):
            self.blocks.setdefault(key, []).append(f)
        if f.name:
            self.names[f.name] += 1
        self.size += 1

    def candidates(self, f: Features) -> list[Features]:
        seen: dict[str, Features] = {}
        for key in blocking_keys(f):
            for c in self.blocks.get(key, ()):
                seen.setdefault(c.ref, c)
        return list(seen.values())

    def name_tf(self, name: str) -> float | None:
        # The new record counts too, as it will once it is in the index (Splink counts both sides).
        return (self.names[name] + 1) / (self.size + 1) if name else None

    def match(self, f: Features) -> list[PairScore]:
        return score_candidates(f, self.candidates(f), name_tf=self.name_tf)
