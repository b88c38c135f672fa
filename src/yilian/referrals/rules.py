"""Pure referral decisions: which criteria a patient meets, with the evidence. No database, no clock."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Observation:
    code: str  # LOINC
    value: float
    unit: str = ""
    at: datetime | None = None
    ref: str | None = None  # "Observation/<id>" in the shared record


@dataclass(frozen=True)
class ClinicalFacts:
    """What a doctor sees when opening a patient: diagnoses, latest observations, recorded flags, where they are."""

    conditions: frozenset[str] = frozenset()  # ICD-10 codes, e.g. "I10", "E11.9"
    observations: tuple[Observation, ...] = ()
    flags: frozenset[str] = frozenset()  # pregnant, drugs_failed, regimen_set, ...
    facility_services: frozenset[str] | None = None  # None: unknown, do not judge capability
    needed_services: frozenset[str] = frozenset()

    def latest(self, code: str) -> Observation | None:
        matching = [o for o in self.observations if o.code == code]
        if not matching:
            return None
        return max(matching, key=lambda o: (o.at is not None, o.at or datetime.min))


@dataclass(frozen=True)
class Criterion:
    id: str
    condition: str
    icd10: tuple[str, ...]
    direction: str  # up | down
    urgency: str  # routine | urgent | emergency
    name_zh: str
    name_en: str
    when: Mapping[str, Any]
    source: str
    green_channel: str | None = None


@dataclass(frozen=True)
class Match:
    criterion: Criterion
    evidence: tuple[str, ...] = field(default_factory=tuple)  # human-readable reasons, e.g. "8480-6 = 186 ≥ 180"
    observations: tuple[Observation, ...] = ()


OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "=": operator.eq,
}


class CriteriaError(ValueError):
    """A criteria file is malformed: raised at load time, naming the criterion and the key."""


def parse_criteria(doc: Mapping[str, Any]) -> list[Criterion]:
    out = []
    for raw in doc.get("criteria", []):
        cid = raw.get("id", "?")
        for key in ("id", "condition", "direction", "urgency", "name", "when", "source"):
            if key not in raw:
                raise CriteriaError(f"criterion {cid}: missing '{key}'")
        if raw["direction"] not in ("up", "down"):
            raise CriteriaError(f"criterion {cid}: direction must be up or down")
        if raw["urgency"] not in ("routine", "urgent", "emergency"):
            raise CriteriaError(f"criterion {cid}: urgency must be routine, urgent or emergency")
        _check_tree(cid, raw["when"])
        out.append(
            Criterion(
                id=raw["id"],
                condition=raw["condition"],
                icd10=tuple(raw.get("icd10", [])),
                direction=raw["direction"],
                urgency=raw["urgency"],
                name_zh=raw["name"]["zh"],
                name_en=raw["name"]["en"],
                when=raw["when"],
                source=raw["source"],
                green_channel=raw.get("green_channel"),
            )
        )
    return out


def _check_tree(cid: str, node: Mapping[str, Any]) -> None:
    if not isinstance(node, Mapping) or len(node) != 1:
        raise CriteriaError(f"criterion {cid}: each 'when' node has exactly one key")
    ((key, value),) = node.items()
    if key in ("any", "all"):
        for child in value:
            _check_tree(cid, child)
    elif key == "obs":
        if value.get("op") not in OPS or "code" not in value or "value" not in value:
            raise CriteriaError(f"criterion {cid}: obs needs code, op (one of {', '.join(OPS)}) and value")
    elif key not in ("flag", "condition", "not_capable"):
        raise CriteriaError(f"criterion {cid}: unknown test '{key}'")


def _has_condition(facts: ClinicalFacts, prefixes: tuple[str, ...] | list[str]) -> bool:
    return any(code.startswith(p) for code in facts.conditions for p in prefixes)


def _evaluate(node: Mapping[str, Any], facts: ClinicalFacts, evidence: list[str], used: list[Observation]) -> bool:
    ((key, value),) = node.items()
    if key == "any":
        return any([_evaluate(child, facts, evidence, used) for child in value])  # evaluate all: collect evidence
    if key == "all":
        return all(_evaluate(child, facts, evidence, used) for child in value)
    if key == "flag":
        hit = value in facts.flags
        if hit:
            evidence.append(value)
        return hit
    if key == "condition":
        hit = _has_condition(facts, value)
        if hit:
            evidence.append("diagnosis " + "/".join(value))
        return hit
    if key == "not_capable":
        if facts.facility_services is None or not facts.needed_services:
            return False
        missing = facts.needed_services - facts.facility_services
        if missing:
            evidence.append("not offered here: " + ", ".join(sorted(missing)))
        return bool(missing)
    obs = facts.latest(value["code"])
    if obs is None:
        return False
    hit = OPS[value["op"]](obs.value, float(value["value"]))
    if hit:
        evidence.append(
            f"{value['code']} = {obs.value:g}{(' ' + obs.unit) if obs.unit else ''} {value['op']} {value['value']}"
        )
        used.append(obs)
    return hit


def matching_criteria(
    facts: ClinicalFacts, criteria: tuple[Criterion, ...], direction: str | None = None
) -> list[Match]:
    """Which criteria this patient meets, each with the observation(s) that triggered it; most urgent first."""
    matches = []
    for criterion in criteria:
        if direction and criterion.direction != direction:
            continue
        if criterion.icd10 and not _has_condition(facts, criterion.icd10):
            continue
        evidence: list[str] = []
        used: list[Observation] = []
        if _evaluate(criterion.when, facts, evidence, used):
            matches.append(Match(criterion, tuple(evidence), tuple(used)))
    rank = {"emergency": 0, "urgent": 1, "routine": 2}
    return sorted(matches, key=lambda m: rank[m.criterion.urgency])
