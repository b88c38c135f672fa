"""Use cases of the master patient index. Services take a Session and never commit (the caller's unit of work does).

- `link_all`: batch linkage of many Patient resources (imports, re-runs), written to the index.
- `match_one`: one new registration matched against the index (incremental, no Splink session).
- `find_matches`: the same scoring without writing (Patient/$match, search pages).
- `merge` / `unmerge`: people correcting the grouping; history kept, nothing deleted, audited.
- `review_queue` / `decide_review`: pairs the machine routed to a person.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from yilian.config import get_settings
from yilian.db import utcnow
from yilian.errors import Conflict, Forbidden, Invalid, NotFound
from yilian.patients import linkage, rules
from yilian.patients.features import display_name, features, features_many
from yilian.patients.models import MpiLink, MpiPerson, MpiRecord, MpiReview
from yilian.patients.rules import Features, Outcome, PairScore
from yilian.security import audit
from yilian.security.actor import SYSTEM, Actor
from yilian.security.roles import Role

# Who may decide that two records are one person or two (merge, unmerge, review decisions).
REVIEWER_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN, Role.REFERRAL_COORDINATOR})


def require_reviewer(actor: Actor) -> None:
    if actor.role not in REVIEWER_ROLES:
        raise Forbidden(
            "Only a consortium administrator, a referral coordinator or a system administrator decides whether two "
            "records are one person.",
            field="role",
        )


@dataclass(frozen=True)
class Thresholds:
    auto_link: float
    review: float

    @classmethod
    def from_settings(cls) -> Thresholds:
        s = get_settings()
        if s.mpi_review > s.mpi_auto_link:
            raise Invalid("YILIAN_MPI_REVIEW must not exceed YILIAN_MPI_AUTO_LINK", field="mpi_review")
        return cls(auto_link=s.mpi_auto_link, review=s.mpi_review)


# --- the index ---------------------------------------------------------------------------------------------------


def _display(patient: dict[str, Any], f: Features) -> dict[str, Any]:
    """What a reviewer compares side by side (the raw values as registered, not the keys)."""
    org = patient.get("managingOrganization") or {}
    addresses = patient.get("address") or [{}]
    telecom = patient.get("telecom") or [{}]
    return {
        "name": display_name(patient),
        "birthDate": patient.get("birthDate"),
        "gender": patient.get("gender"),
        "phone": telecom[0].get("value"),
        "address": addresses[0].get("text"),
        "residentId": f.resident_id,
        "facility": org.get("display") or (org.get("identifier") or {}).get("value") or org.get("reference"),
    }


def _facility_code(patient: dict[str, Any]) -> str | None:
    org = patient.get("managingOrganization") or {}
    return (org.get("identifier") or {}).get("value") or org.get("reference")


def _columns(f: Features, patient: dict[str, Any]) -> dict[str, Any]:
    return {
        "resident_id": f.resident_id,
        "name": f.name or None,
        "name_pinyin": f.name_pinyin or None,
        "name_fuzzy": f.name_fuzzy or None,
        "surname_fuzzy": f.surname_fuzzy or None,
        "name_variants": list(f.name_variants),
        "dob": f.dob,
        "birth_year": f.birth_year,
        "month_day": f.dob[4:] if f.dob else None,
        "gender": f.gender,
        "phone": f.phone,
        "county": f.county,
        "town": f.town,
        "facility": _facility_code(patient),
        "display": _display(patient, f),
    }


def to_features(record: MpiRecord) -> Features:
    return Features(
        ref=record.patient_ref,
        resident_id=record.resident_id,
        name=record.name or "",
        name_pinyin=record.name_pinyin or "",
        name_fuzzy=record.name_fuzzy or "",
        surname_fuzzy=record.surname_fuzzy or "",
        name_variants=tuple(record.name_variants or ()),
        dob=record.dob,
        dob_swap=rules.dob_swapped(record.dob),
        birth_year=record.birth_year,
        gender=record.gender,
        phone=record.phone,
        county=record.county,
        town=record.town,
    )


def _history(
    session: Session,
    actor: Actor,
    *,
    person_id: uuid.UUID,
    ref: str,
    action: str,
    method: str,
    score: float | None = None,
    matched_ref: str | None = None,
    reason: str | None = None,
) -> None:
    session.add(
        MpiLink(
            person_id=person_id,
            patient_ref=ref,
            action=action,
            method=method,
            score=score,
            matched_ref=matched_ref,
            actor=actor.username,
            reason=reason,
        )
    )


def _move(
    session: Session,
    actor: Actor,
    record: MpiRecord,
    person_id: uuid.UUID,
    *,
    method: str,
    score: float | None = None,
    matched_ref: str | None = None,
    reason: str | None = None,
    pin: bool = False,
) -> None:
    """Put a record in another person, writing both halves of the history."""
    if record.person_id == person_id:
        if pin:
            record.pinned = True
        return
    _history(session, actor, person_id=record.person_id, ref=record.patient_ref, action="unlink", method=method,
             score=score, matched_ref=matched_ref, reason=reason)  # fmt: skip
    _history(session, actor, person_id=person_id, ref=record.patient_ref, action="link", method=method,
             score=score, matched_ref=matched_ref, reason=reason)  # fmt: skip
    record.person_id = person_id
    record.link_method = method
    record.pinned = record.pinned or pin


def _new_person(session: Session) -> MpiPerson:
    person = MpiPerson()
    session.add(person)
    session.flush()
    return person


# --- batch -------------------------------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    result: linkage.LinkResult
    persons_created: int = 0
    records_indexed: int = 0
    records_moved: int = 0
    review_opened: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records_indexed,
            "clusters": sum(1 for c in self.result.clusters if len(c) > 1),
            "review": len(self.result.review),
            "pairs_scored": self.result.pairs_scored,
            "persons_created": self.persons_created,
            "records_moved": self.records_moved,
        }


def _kept_apart(session: Session) -> set[frozenset[str]]:
    rows = session.execute(select(MpiReview.left_ref, MpiReview.right_ref).where(MpiReview.status == "separate"))
    return {frozenset((a, b)) for a, b in rows}


def link_all(
    session: Session,
    patients: Iterable[dict[str, Any]],
    *,
    actor: Actor = SYSTEM,
    thresholds: Thresholds | None = None,
    progress: Callable[[str], None] | None = None,
) -> BatchOutcome:
    """Batch-link Patient resources and write the grouping to the index; safe to re-run.

    Records a person has placed (merge, unmerge, review decision) stay where they are; pairs a person kept apart are
    never joined again; everything else follows the latest evidence.
    """
    thresholds = thresholds or Thresholds.from_settings()
    say = progress or (lambda _msg: None)
    patient_list = list(patients)
    feats = features_many(patient_list)
    say(f"features ready for {len(feats)} records")
    result = linkage.link_batch(
        feats,
        auto_link=thresholds.auto_link,
        review=thresholds.review,
        progress=progress,
        apart=_kept_apart(session),
    )
    outcome = BatchOutcome(result=result, records_indexed=len(feats))
    by_ref = dict(zip((f.ref for f in feats), zip(feats, patient_list, strict=True), strict=True))

    existing: dict[str, MpiRecord] = {}
    refs = list(by_ref)
    for start in range(0, len(refs), 500):
        for rec in session.scalars(select(MpiRecord).where(MpiRecord.patient_ref.in_(refs[start : start + 500]))):
            existing[rec.patient_ref] = rec
    for ref, rec in existing.items():
        f, patient = by_ref[ref]
        for key, value in _columns(f, patient).items():
            setattr(rec, key, value)
        rec.updated_at = utcnow()

    link_score: dict[str, PairScore] = {}
    for s in result.links:
        link_score.setdefault(s.left, s)
        link_score.setdefault(s.right, s)

    new_persons: list[dict[str, Any]] = []
    new_records: list[dict[str, Any]] = []
    new_history: list[dict[str, Any]] = []
    now = utcnow()
    for cluster in result.clusters:
        present = [existing[r] for r in cluster if r in existing]
        votes = Counter(r.person_id for r in present)
        target: uuid.UUID | None = votes.most_common(1)[0][0] if votes else None
        if target is None:
            target = uuid.uuid4()
            new_persons.append({"id": target, "status": "active", "created_at": now, "updated_at": now})
        for ref in cluster:
            score = link_score.get(ref)
            method = score.method if (score and len(cluster) > 1) else "initial"
            if ref in existing:
                rec = existing[ref]
                if rec.pinned or rec.person_id == target:
                    continue
                _move(session, actor, rec, target, method=method, score=score.probability if score else None,
                      matched_ref=_other(score, ref))  # fmt: skip
                outcome.records_moved += 1
                continue
            f, patient = by_ref[ref]
            new_records.append(
                {"id": uuid.uuid4(), "patient_ref": ref, "person_id": target, "link_method": method, "pinned": False,
                 "updated_at": now, **_columns(f, patient)}
            )  # fmt: skip
            new_history.append(
                {"id": uuid.uuid4(), "person_id": target, "patient_ref": ref, "action": "link", "method": method,
                 "score": score.probability if score and len(cluster) > 1 else None,
                 "matched_ref": _other(score, ref) if len(cluster) > 1 else None, "actor": actor.username,
                 "reason": None, "at": now}
            )  # fmt: skip
    say(f"writing {len(new_records)} new index rows, {len(new_persons)} persons")
    for table, rows in ((MpiPerson, new_persons), (MpiRecord, new_records), (MpiLink, new_history)):
        for start in range(0, len(rows), 5000):
            session.execute(insert(table), rows[start : start + 5000])
    outcome.persons_created = len(new_persons)
    outcome.review_opened = _open_reviews(session, result.review)
    audit.record(session, actor, "mpi.link_all", detail=outcome.summary())
    return outcome


def _other(score: PairScore | None, ref: str) -> str | None:
    if score is None:
        return None
    return score.right if score.left == ref else score.left


def _open_reviews(session: Session, pairs: Iterable[PairScore]) -> int:
    """Queue uncertain pairs once; a pair already decided is not asked again."""
    wanted = {}
    for s in pairs:
        left, right = sorted((s.left, s.right))
        wanted[(left, right)] = s
    if not wanted:
        return 0
    known: set[tuple[str, str]] = set()
    keys = list(wanted)
    for start in range(0, len(keys), 400):
        chunk = keys[start : start + 400]
        rows = session.execute(
            select(MpiReview.left_ref, MpiReview.right_ref).where(
                tuple_(MpiReview.left_ref, MpiReview.right_ref).in_(chunk)
            )
        )
        known.update((a, b) for a, b in rows)
    rows_out = [
        {"id": uuid.uuid4(), "left_ref": a, "right_ref": b, "score": s.probability, "vector": s.vector,
         "status": "open", "created_at": utcnow()}
        for (a, b), s in wanted.items()
        if (a, b) not in known
    ]  # fmt: skip
    for start in range(0, len(rows_out), 5000):
        session.execute(insert(MpiReview), rows_out[start : start + 5000])
    return len(rows_out)


# --- incremental -------------------------------------------------------------------------------------------------


def _candidates(session: Session, f: Features, limit: int = 500) -> list[MpiRecord]:
    conditions = []
    if f.resident_id:
        conditions.append(MpiRecord.resident_id == f.resident_id)
    if f.phone:
        conditions.append(MpiRecord.phone == f.phone)
    if f.dob:
        conditions.append(MpiRecord.dob == f.dob)
        if f.name_fuzzy:
            conditions.append((MpiRecord.name_fuzzy == f.name_fuzzy) & (MpiRecord.month_day == f.dob[4:]))
    if f.name_fuzzy and f.birth_year:
        conditions.append((MpiRecord.name_fuzzy == f.name_fuzzy) & (MpiRecord.birth_year == f.birth_year))
    if not conditions:
        return []
    stmt = select(MpiRecord).where(or_(*conditions), MpiRecord.patient_ref != f.ref).limit(limit)
    return list(session.scalars(stmt))


def _name_tf(session: Session) -> Callable[[str], float | None]:
    total = session.scalar(select(func.count()).select_from(MpiRecord).where(MpiRecord.name.is_not(None))) or 0

    def tf(name: str) -> float | None:
        if not name:
            return None
        n = session.scalar(select(func.count()).select_from(MpiRecord).where(MpiRecord.name == name)) or 0
        return (n + 1) / (total + 1)

    return tf


@dataclass
class Match:
    score: PairScore
    route: str  # link | review | separate
    person_id: uuid.UUID

    @property
    def grade(self) -> str:
        """The FHIR match-grade extension value."""
        if self.route == Outcome.LINK:
            return "certain"
        if self.route == Outcome.REVIEW:
            return "probable"
        return "possible" if self.score.probability >= 0.5 else "certainly-not"


def find_matches(session: Session, patient: dict[str, Any], *, thresholds: Thresholds | None = None) -> list[Match]:
    """Score one Patient (stored or not) against the index, best first. Writes nothing."""
    thresholds = thresholds or Thresholds.from_settings()
    f = features(patient) if patient.get("id") else features({**patient, "id": "_match"})
    records = {r.patient_ref: r for r in _candidates(session, f)}
    scores = linkage.score_candidates(f, (to_features(r) for r in records.values()), name_tf=_name_tf(session))
    return [
        Match(s, rules.route(s, auto_link=thresholds.auto_link, review=thresholds.review), records[s.right].person_id)
        for s in scores
    ]


@dataclass
class MatchResult:
    patient_ref: str
    person_id: uuid.UUID
    outcome: str  # linked | review | new | unchanged
    matches: list[Match] = field(default_factory=list)


def match_one(
    session: Session, patient: dict[str, Any], *, actor: Actor = SYSTEM, thresholds: Thresholds | None = None
) -> MatchResult:
    """Index one registration: link it to a person if the evidence is certain, queue a review if it is not."""
    thresholds = thresholds or Thresholds.from_settings()
    f = features(patient)
    record = session.scalar(select(MpiRecord).where(MpiRecord.patient_ref == f.ref))
    if record is not None:
        for key, value in _columns(f, patient).items():
            setattr(record, key, value)
        record.updated_at = utcnow()  # sync_index compares this with the store's lastUpdated
        if (
            record.pinned
            or session.scalar(
                select(func.count()).select_from(MpiRecord).where(MpiRecord.person_id == record.person_id)
            )
            != 1
        ):
            return MatchResult(f.ref, record.person_id, "unchanged")
    matches = find_matches(session, patient, thresholds=thresholds)
    if len({m.person_id for m in matches if m.route == Outcome.LINK}) > 1:
        # Certain about two different persons at once (a dropped character fits either twin): a person decides.
        for m in matches:
            if m.route == Outcome.LINK and m.score.method == "probabilistic":
                m.route = Outcome.REVIEW
    chosen: Match | None = None
    for m in matches:
        if m.route != Outcome.LINK:
            continue
        members = [to_features(r) for r in session.scalars(select(MpiRecord).where(MpiRecord.person_id == m.person_id))]
        if linkage.may_join([f], [x for x in members if x.ref != f.ref], name_tf=lambda _n: None,
                            review=thresholds.review):  # fmt: skip
            chosen = m
            break
        m.route = Outcome.REVIEW  # the guard said no: a person decides
    if record is None:
        person_id = chosen.person_id if chosen else _new_person(session).id
        record = MpiRecord(
            patient_ref=f.ref, person_id=person_id, link_method=chosen.score.method if chosen else "initial",
            **_columns(f, patient),
        )  # fmt: skip
        session.add(record)
        _history(session, actor, person_id=person_id, ref=f.ref, action="link",
                 method=chosen.score.method if chosen else "initial",
                 score=chosen.score.probability if chosen else None,
                 matched_ref=chosen.score.right if chosen else None)  # fmt: skip
    elif chosen is not None:
        old_person = record.person_id
        _move(session, actor, record, chosen.person_id, method=chosen.score.method,
              score=chosen.score.probability, matched_ref=chosen.score.right)  # fmt: skip
        session.get(MpiPerson, old_person).status = "merged"  # type: ignore[union-attr]
        session.get(MpiPerson, old_person).merged_into_id = chosen.person_id  # type: ignore[union-attr]
    review = [m.score for m in matches if m.route == Outcome.REVIEW and m.person_id != record.person_id]
    _open_reviews(session, review)
    audit.record(session, actor, "mpi.match", patient=f.ref,
                 detail={"outcome": "linked" if chosen else "review" if review else "new",
                         "candidates": len(matches)})  # fmt: skip
    outcome = "linked" if chosen else "review" if review else "new"
    return MatchResult(f.ref, record.person_id, outcome, matches)


# --- people deciding ---------------------------------------------------------------------------------------------


def _records_of(session: Session, person_id: uuid.UUID) -> list[MpiRecord]:
    return list(
        session.scalars(select(MpiRecord).where(MpiRecord.person_id == person_id).order_by(MpiRecord.patient_ref))
    )


def _active_person(session: Session, person_id: uuid.UUID, field_name: str) -> MpiPerson:
    person = session.get(MpiPerson, person_id)
    if person is None:
        raise NotFound(f"No person {person_id} in the patient index.", field=field_name)
    if person.status != "active":
        raise Conflict(f"Person {person_id} was merged into {person.merged_into_id}.", field=field_name)
    return person


def merge(
    session: Session,
    actor: Actor,
    keep: uuid.UUID,
    absorb: uuid.UUID,
    *,
    reason: str | None = None,
    method: str = "manual",
) -> MpiPerson:
    """Move every record of `absorb` into `keep`. `absorb` stays (status merged) so the merge can be undone."""
    require_reviewer(actor)
    if keep == absorb:
        raise Invalid("A person cannot be merged into itself.", field="absorb")
    kept = _active_person(session, keep, "keep")
    absorbed = _active_person(session, absorb, "absorb")
    kept_records, absorbed_records = _records_of(session, keep), _records_of(session, absorb)
    ids = {r.resident_id for r in kept_records if r.resident_id}
    other_ids = {r.resident_id for r in absorbed_records if r.resident_id}
    if ids and other_ids and ids != other_ids:
        raise Conflict(
            "These two persons carry different resident ID card numbers: they are two people and cannot be merged.",
            field="absorb",
        )
    for rec in absorbed_records:
        _move(session, actor, rec, keep, method=method, reason=reason, pin=True)
    for rec in kept_records:
        rec.pinned = True
    absorbed.status = "merged"
    absorbed.merged_into_id = kept.id
    kept.updated_at = utcnow()
    refs = [r.patient_ref for r in kept_records + absorbed_records]
    for ref in refs:
        audit.record(session, actor, "mpi.merge", patient=ref, reason=reason,
                     detail={"keep": str(keep), "absorb": str(absorb)})  # fmt: skip
    return kept


def unmerge(session: Session, actor: Actor, patient_refs: list[str], *, reason: str | None = None) -> MpiPerson:
    """Take records out of their person into a person of their own (or back into the person they were merged from)."""
    require_reviewer(actor)
    if not patient_refs:
        raise Invalid("Name at least one Patient record to separate.", field="patient_refs")
    records = list(session.scalars(select(MpiRecord).where(MpiRecord.patient_ref.in_(patient_refs))))
    missing = set(patient_refs) - {r.patient_ref for r in records}
    if missing:
        raise NotFound(f"Not in the patient index: {', '.join(sorted(missing))}.", field="patient_refs")
    persons = {r.person_id for r in records}
    if len(persons) != 1:
        raise Invalid("The records to separate must belong to the same person.", field="patient_refs")
    current = persons.pop()
    if len(_records_of(session, current)) == len(records):
        raise Conflict("These are all the records of this person: nothing to separate from.", field="patient_refs")
    # If these records came from a person that was merged away, bring that person back rather than a new one.
    previous = _previous_person(session, patient_refs, current)
    target = session.get(MpiPerson, previous) if previous else None
    if target is not None and target.status == "merged":
        target.status, target.merged_into_id = "active", None
    else:
        target = _new_person(session)
    for rec in records:
        _move(session, actor, rec, target.id, method="manual", reason=reason, pin=True)
        audit.record(session, actor, "mpi.unmerge", patient=rec.patient_ref, reason=reason,
                     detail={"from": str(current), "to": str(target.id)})  # fmt: skip
    # Remember the decision, so that no re-run puts them back together.
    for left in patient_refs:
        for right in (r.patient_ref for r in _records_of(session, current)):
            _decided_apart(session, actor, left, right, reason)
    return target


def _previous_person(session: Session, refs: list[str], current: uuid.UUID) -> uuid.UUID | None:
    previous: set[uuid.UUID] = set()
    for ref in refs:
        row = session.scalar(
            select(MpiLink.person_id)
            .where(MpiLink.patient_ref == ref, MpiLink.action == "unlink", MpiLink.person_id != current)
            .order_by(MpiLink.at.desc())
            .limit(1)
        )
        if row is None:
            return None
        previous.add(row)
    return previous.pop() if len(previous) == 1 else None


def _decided_apart(session: Session, actor: Actor, a: str, b: str, reason: str | None) -> None:
    left, right = sorted((a, b))
    review = session.scalar(select(MpiReview).where(MpiReview.left_ref == left, MpiReview.right_ref == right))
    if review is None:
        review = MpiReview(left_ref=left, right_ref=right, score=0.0, vector={})
        session.add(review)
    review.status, review.decided_by, review.decided_at, review.reason = "separate", actor.username, utcnow(), reason


@dataclass
class ReviewItem:
    id: uuid.UUID
    score: float
    vector: dict[str, int]
    status: str
    left: dict[str, Any]
    right: dict[str, Any]


def review_queue(session: Session, *, status: str = "open", limit: int = 50, offset: int = 0) -> list[ReviewItem]:
    """Uncertain pairs, most likely matches first, each side as registered."""
    rows = list(
        session.scalars(
            select(MpiReview)
            .where(MpiReview.status == status)
            .order_by(MpiReview.score.desc(), MpiReview.id)
            .offset(offset)
            .limit(limit)
        )
    )
    refs = {r for row in rows for r in (row.left_ref, row.right_ref)}
    records = {r.patient_ref: r for r in session.scalars(select(MpiRecord).where(MpiRecord.patient_ref.in_(refs)))}

    def side(ref: str) -> dict[str, Any]:
        rec = records.get(ref)
        return {"ref": ref, "person": str(rec.person_id) if rec else None, **(rec.display if rec else {})}

    return [ReviewItem(r.id, r.score, r.vector, r.status, side(r.left_ref), side(r.right_ref)) for r in rows]


def decide_review(
    session: Session, actor: Actor, review_id: uuid.UUID, decision: str, *, reason: str | None = None
) -> MpiReview:
    """A person's answer to one queued pair: 'link' merges the two persons, 'separate' keeps them apart for good."""
    require_reviewer(actor)
    if decision not in ("link", "separate"):
        raise Invalid("Decide 'link' or 'separate'.", field="decision")
    review = session.get(MpiReview, review_id)
    if review is None:
        raise NotFound("No such review item.", field="review_id")
    if review.status != "open":
        raise Conflict(f"This pair was already decided ({review.status}).", field="review_id")
    left = session.scalar(select(MpiRecord).where(MpiRecord.patient_ref == review.left_ref))
    right = session.scalar(select(MpiRecord).where(MpiRecord.patient_ref == review.right_ref))
    if left is None or right is None:
        raise NotFound("A record of this pair is no longer in the index.", field="review_id")
    if decision == "link":
        if left.person_id != right.person_id:
            merge(session, actor, left.person_id, right.person_id, reason=reason, method="review")
        review.status = "linked"
    else:
        if left.person_id == right.person_id:
            raise Conflict("These records are already one person: separate them with unmerge.", field="decision")
        left.pinned = right.pinned = True
        review.status = "separate"
    review.decided_by, review.decided_at, review.reason = actor.username, utcnow(), reason
    audit.record(session, actor, f"mpi.review.{decision}", patient=review.left_ref, reason=reason,
                 detail={"other": review.right_ref, "score": review.score})  # fmt: skip
    return review


# --- reading -----------------------------------------------------------------------------------------------------


@dataclass
class PersonView:
    id: uuid.UUID
    status: str
    merged_into: uuid.UUID | None
    records: list[MpiRecord]
    history: list[MpiLink]


def get_person(session: Session, person_id: uuid.UUID) -> PersonView:
    person = session.get(MpiPerson, person_id)
    if person is None:
        raise NotFound(f"No person {person_id} in the patient index.", field="person_id")
    history = list(
        session.scalars(select(MpiLink).where(MpiLink.person_id == person_id).order_by(MpiLink.at, MpiLink.id))
    )
    return PersonView(person.id, person.status, person.merged_into_id, _records_of(session, person_id), history)


def person_of(session: Session, patient_ref: str) -> PersonView:
    """The golden person a Patient record belongs to (following merges)."""
    record = session.scalar(select(MpiRecord).where(MpiRecord.patient_ref == patient_ref))
    if record is None:
        raise NotFound(f"{patient_ref} is not in the patient index.", field="patient")
    return get_person(session, record.person_id)


def history_of(session: Session, patient_ref: str) -> list[MpiLink]:
    return list(
        session.scalars(select(MpiLink).where(MpiLink.patient_ref == patient_ref).order_by(MpiLink.at, MpiLink.id))
    )


def clusters(session: Session) -> list[list[str]]:
    """Current persons with two or more records, as sorted lists of Patient references."""
    groups: dict[uuid.UUID, list[str]] = {}
    for person_id, ref in session.execute(select(MpiRecord.person_id, MpiRecord.patient_ref)):
        groups.setdefault(person_id, []).append(ref)
    return sorted((sorted(refs) for refs in groups.values() if len(refs) > 1), key=lambda c: c[0])


# How far back a routine sync looks before the index's newest row (writes that committed late, clocks).
SYNC_LOOKBACK = timedelta(hours=1)
# An import that brought more Patients than this is linked in one Splink batch rather than one by one.
CATCH_UP_ONE_BY_ONE = 200


def _stale_patients(session: Session, *, limit: int | None, full: bool) -> list[str]:
    """Ids of current Patients the index has not seen in their latest version (new or updated)."""
    from yilian.fhir.models import FhirResource

    ref = literal("Patient/") + FhirResource.res_id
    conditions = [
        FhirResource.res_type == "Patient",
        FhirResource.deleted.is_(False),
        or_(MpiRecord.id.is_(None), MpiRecord.updated_at < FhirResource.last_updated),
    ]
    newest = None if full else session.scalar(select(func.max(MpiRecord.updated_at)))
    if newest is not None:
        conditions.append(FhirResource.last_updated >= newest - SYNC_LOOKBACK)
    stmt = (
        select(FhirResource.res_id)
        .outerjoin(MpiRecord, MpiRecord.patient_ref == ref)
        .where(*conditions)
        .order_by(FhirResource.last_updated, FhirResource.res_id)
    )
    return list(session.scalars(stmt if limit is None else stmt.limit(limit)))


def sync_index(session: Session, *, actor: Actor = SYSTEM, limit: int = 500, full: bool = False) -> int:
    """Index the Patient resources written to the FHIR store since the index last saw them (new or updated).

    Patients written through /fhir are matched at write time (`on_patient_writes`, an after-write hook of the FHIR
    store) and `yilian fhir import` links its Patients when it finishes (`catch_up`). What remains are Patients a
    domain writes straight into the store (the demos of referrals, outreach and diagnostics) and restored backups:
    the readers of the index (search, person pages, $match, the review queue) call this first so that those are
    found too. A routine call looks only at Patients written since shortly before the index's newest row (an index
    range scan, usually empty); `full` compares the whole store (`yilian patients sync`). Returns how many were matched.
    """
    from yilian.fhir import store

    stale = _stale_patients(session, limit=limit, full=full)
    for res_id in stale:
        match_one(session, store.read(session, "Patient", res_id), actor=actor)
    return len(stale)


def on_patient_writes(session: Session, actor: Actor, writes: Sequence[Any]) -> None:
    """After-write hook of the FHIR store (registered by `install`): a Patient created or updated through /fhir is
    matched in the same transaction; a deleted one leaves the index."""
    for w in writes:
        if w.action == "delete":
            forget(session, f"Patient/{w.res_id}", actor=actor)
        elif w.resource is not None:
            match_one(session, w.resource, actor=actor)


def catch_up(session: Session, actor: Actor = SYSTEM) -> int:
    """After `yilian fhir import`: link the Patients the index has not seen. A few are matched one by one; many are
    linked in one Splink batch over the whole store (re-running it keeps what people decided). Returns how many."""
    from yilian.fhir import store

    stale = _stale_patients(session, limit=None, full=True)
    if len(stale) <= CATCH_UP_ONE_BY_ONE:
        for res_id in stale:
            match_one(session, store.read(session, "Patient", res_id), actor=actor)
    elif stale:
        link_all(session, iter_store_patients(session), actor=actor)
    return len(stale)


def forget(session: Session, patient_ref: str, *, actor: Actor = SYSTEM) -> bool:
    """A Patient deleted from the FHIR store leaves the index: its row goes, the history says when and who, and the
    open review pairs it was part of are withdrawn. Its person stays (with the other records, or empty)."""
    record = session.scalar(select(MpiRecord).where(MpiRecord.patient_ref == patient_ref))
    if record is None:
        return False
    _history(session, actor, person_id=record.person_id, ref=patient_ref, action="unlink", method="deleted",
             reason="the Patient was deleted from the FHIR store")  # fmt: skip
    for review in session.scalars(
        select(MpiReview).where(
            MpiReview.status == "open", or_(MpiReview.left_ref == patient_ref, MpiReview.right_ref == patient_ref)
        )
    ):
        review.status = "withdrawn"
        review.decided_by = actor.username
        review.decided_at = utcnow()
        review.reason = "a record of the pair was deleted"
    session.delete(record)
    session.flush()
    audit.record(session, actor, "mpi.forget", patient=patient_ref)
    return True


def iter_store_patients(session: Session, page: int = 1000) -> Iterator[dict[str, Any]]:
    """Every current, non-deleted Patient resource in the FHIR store, page by page (keyset on the id)."""
    from yilian.fhir.models import FhirResource, FhirResourceVersion

    after = ""
    while True:
        rows = session.execute(
            select(FhirResource.res_id, FhirResourceVersion.resource)
            .join(
                FhirResourceVersion,
                (FhirResourceVersion.resource_pk == FhirResource.pk)
                & (FhirResourceVersion.version == FhirResource.version),
            )
            .where(FhirResource.res_type == "Patient", FhirResource.deleted.is_(False), FhirResource.res_id > after)
            .order_by(FhirResource.res_id)
            .limit(page)
        ).all()
        for _res_id, resource in rows:
            yield resource
        if len(rows) < page:
            return
        after = rows[-1][0]


__all__ = [
    "CATCH_UP_ONE_BY_ONE",
    "REVIEWER_ROLES",
    "BatchOutcome",
    "Match",
    "MatchResult",
    "PersonView",
    "ReviewItem",
    "Thresholds",
    "catch_up",
    "clusters",
    "decide_review",
    "find_matches",
    "forget",
    "get_person",
    "history_of",
    "iter_store_patients",
    "link_all",
    "match_one",
    "merge",
    "on_patient_writes",
    "person_of",
    "require_reviewer",
    "review_queue",
    "sync_index",
    "unmerge",
]
