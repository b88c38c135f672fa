"""Demo activity: referrals in a built demo region (users village, township, county, coordinator from the twin's
demo), spread over the whole loop in both directions, each with its ServiceRequest + Task in the FHIR store.

The referrals are spread over the demo's 90 days of activity, each step at a plausible time after the one before
(`service.as_of`): most of the older ones have gone round the whole loop, the ones still open are recent, most were
accepted within their SLA and a few late — so that monthly counts, acceptance within SLA and time to down-referral
on the indicator pages have something real to show."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from yilian.errors import Conflict, Invalid
from yilian.fhir import store
from yilian.referrals import catalogue, rules, service
from yilian.referrals.schemas import DischargeIn, DownReferIn, ReferralIn
from yilian.security import service as security
from yilian.security.actor import Actor

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
# (diagnosis, systolic, diastolic, reason, flags)
CASES: list[tuple[str, float | None, float | None, str, list[str]]] = [
    ("I10", 186, 114, "首诊血压 186/114 mmHg", []),
    ("I10", 165, 102, "三种降压药治疗 3 个月血压仍未控制", ["drugs_failed"]),
    ("E11.9", None, None, "HbA1c 控制不佳，需调整方案", ["hba1c_uncontrolled"]),
    ("J44.1", None, None, "慢阻肺急性加重，门诊治疗无效", ["exacerbation_not_responding"]),
    ("I20.0", None, None, "新发不稳定型心绞痛", []),
]
FULL_LOOP = ["triage", "offer", "accept", "book", "arrive", "start_treatment", "discharge", "down_refer"]
# How far along the loop each demo up-referral goes (steps after submission), and how many of the demo's up-referrals
# end there: in a running region most referrals older than a few weeks are closed, so closed ones are the bulk and
# are spread over the 90 days; the open ones are recent.
PATHS: dict[str, tuple[list[str], int]] = {
    "closed": ([*FULL_LOOP, "follow_up", "close"], 28),
    "cancelled": (["cancel"], 4),
    "declined": (["triage", "offer", "decline"], 1),
    "submitted": ([], 3),
    "triaged": (["triage"], 2),
    "offered": (["triage", "offer"], 3),
    "accepted": (["triage", "offer", "accept"], 2),
    "booked": (["triage", "offer", "accept", "book"], 2),
    "in_treatment": (FULL_LOOP[:6], 2),
    "discharged": (FULL_LOOP[:7], 1),
    "down_referred": (FULL_LOOP, 2),
}
UP_PLAN = [name for name, (_, n) in PATHS.items() for _ in range(n)]  # 50 up-referrals, then round again
ACTIVITY_DAYS = 90
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _gaps(rng: random.Random, path: list[str], urgency: str, late: bool) -> list[timedelta]:
    """How long after the previous step each step of `path` happens (the first: after submission)."""
    window = service.accept_within(urgency)  # triage, offer and acceptance share it
    out = []
    for action in path:
        if action == "triage":
            gap = rng.uniform(0.02, 0.2) * window
        elif action == "offer":
            gap = rng.uniform(0.02, 0.15) * window
        elif action == "accept":
            # Within the SLA as a rule; a late one past it (but before the referral would have expired).
            gap = rng.uniform(1.1, 1.6) * window if late else rng.uniform(0.05, 0.4) * window
        elif action == "decline":
            gap = rng.uniform(0.5, 3) * HOUR
        elif action == "book":
            gap = rng.uniform(1, 30) * HOUR
        elif action == "arrive":
            gap = rng.uniform(1, 4) * DAY  # the appointment booked one step before
        elif action == "start_treatment":
            gap = rng.uniform(0.5, 3) * HOUR
        elif action == "discharge":
            gap = rng.uniform(3, 12) * DAY
        elif action == "down_refer":
            gap = rng.uniform(0, 3) * DAY
        elif action == "follow_up":
            gap = rng.uniform(11, 18) * DAY  # the care plan asks for a visit after 14 days
        elif action == "close":
            gap = rng.uniform(0, 2) * DAY
        else:  # cancel
            gap = rng.uniform(1, 24) * HOUR
        out.append(gap)
    return out


def _urgency(code: str, sys_: float | None, dia: float | None, flags: list[str]) -> str:
    """The urgency the criteria will give this case (as `service.create` decides it), to time its SLA."""
    observations = [
        rules.Observation(loinc, value, "mm[Hg]")
        for loinc, value in ((service.LOINC_SYSTOLIC, sys_), (service.LOINC_DIASTOLIC, dia))
        if value is not None
    ]
    facts = service.clinical_facts([], conditions=[code], observations=observations, flags=flags)
    matches = rules.matching_criteria(facts, catalogue.load_criteria(), "up")
    if any(m.criterion.green_channel for m in matches):
        return "emergency"
    return matches[0].criterion.urgency if matches else "routine"


def _ends_ago(rng: random.Random, state: str, urgency: str, overdue: bool) -> timedelta:
    """How long before now the last step of a referral that ends in `state` happened."""
    if state in ("submitted", "triaged", "offered", "declined"):
        # Waiting for a receiver since submission: inside the acceptance SLA as a rule; an overdue one past it but
        # not yet expired (the SLA sweep escalates it to the referral centre when the server starts).
        accept, expire = service.accept_within(urgency), service.expire_after(urgency)
        return accept + rng.uniform(0.2, 0.6) * (expire - accept) if overdue else rng.uniform(0.05, 0.4) * accept
    if state in ("accepted", "booked"):
        return rng.uniform(1, 20) * HOUR  # a booked appointment is still ahead (1-4 days after booking)
    if state in ("in_treatment", "discharged"):
        return rng.uniform(0.5, 2) * DAY
    if state == "down_referred":
        return rng.uniform(1, 10) * DAY
    return timedelta(0)  # closed, cancelled: anywhere in the 90 days (chosen by the caller)


def _patient(
    session: Session, rng: random.Random, code: str, sys_: float | None, dia: float | None, measured: datetime
) -> str:
    pid = str(uuid.UUID(int=rng.getrandbits(128)))
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    store.upsert(
        session,
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"text": name}],
            "gender": rng.choice(("male", "female")),
            "birthDate": f"{rng.randint(1940, 1975)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        },
    )
    ref = f"Patient/{pid}"
    store.upsert(
        session,
        {
            "resourceType": "Condition",
            "id": str(uuid.uuid5(uuid.UUID(pid), "condition")),
            "subject": {"reference": ref},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]},
        },
    )
    if sys_ is not None and dia is not None:
        store.upsert(
            session,
            {
                "resourceType": "Observation",
                "id": str(uuid.uuid5(uuid.UUID(pid), "bp")),
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "subject": {"reference": ref},
                "effectiveDateTime": measured.isoformat(),
                "component": [
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "valueQuantity": {"value": sys_, "unit": "mmHg"},
                    },
                    {
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                        "valueQuantity": {"value": dia, "unit": "mmHg"},
                    },
                ],
            },
        )
    return ref


def _walk(
    session: Session,
    actors: dict[str, Actor],
    rid: uuid.UUID,
    steps: list[tuple[str, datetime]],
    sender: str,
) -> None:
    receiver = actors["county"]
    family = actors["township"]
    for n, (action, when) in enumerate(steps):
        with service.as_of(when):
            if action == "triage":
                service.triage(session, actors["coordinator"], rid)
            elif action == "offer":
                service.offer(session, actors["coordinator"], rid, receiver.facility_id)
            elif action == "accept":
                service.accept(session, receiver, rid)
            elif action == "decline":
                service.decline(session, receiver, rid, "本科室床位已满，建议改派")
            elif action == "book":
                # The appointment is when the patient arrives (the next step), or 1-4 days ahead when not yet.
                start = steps[n + 1][1] if n + 1 < len(steps) else when + timedelta(days=1 + n % 4)
                service.book(session, receiver, rid, start=start.replace(second=0, microsecond=0))
            elif action == "arrive":
                service.arrive(session, receiver, rid)
            elif action == "start_treatment":
                service.start_treatment(session, receiver, rid)
            elif action == "discharge":
                service.discharge(
                    session,
                    receiver,
                    rid,
                    DischargeIn(
                        flags=["regimen_set", "controlled_2_weeks"], systolic=128, diastolic=82, summary="病情稳定"
                    ),
                )
            elif action == "down_refer":
                service.down_refer(
                    session, receiver, rid, DownReferIn(plan="维持当前用药，每两周随访血压/血糖", follow_up_days=14)
                )
            elif action == "follow_up":
                service.follow_up(session, family, rid, "随访：病情稳定，按时服药")
            elif action == "close":
                service.close(session, family, rid)
            elif action == "cancel":
                service.cancel(session, actors[sender], rid, "患者选择暂不转诊")


def _timeline(
    rng: random.Random, now: datetime, state: str, path: list[str], urgency: str, *, late: bool, overdue: bool
) -> tuple[datetime, list[tuple[str, datetime]]]:
    """When the referral is sent and when each step of its path happens, ending `_ends_ago` before now."""
    gaps = _gaps(rng, path, urgency, late)
    span = sum(gaps, timedelta(0))
    end = now - _ends_ago(rng, state, urgency, overdue)
    if state in ("closed", "cancelled"):
        earliest = now - timedelta(days=ACTIVITY_DAYS) + span
        end = earliest + rng.random() * max(now - HOUR - earliest, timedelta(0))
    sent = end - span
    steps, at = [], sent
    for action, gap in zip(path, gaps, strict=True):
        at += gap
        steps.append((action, at))
    return sent, steps


def seed_demo_referrals(session: Session, *, count: int = 60, seed: int = 1) -> dict[str, Any]:
    """Add `count` referrals (≥ 50 by default) to a built demo region, spread over the last 90 days: up-referrals from
    the village and township along the whole loop, and down-referrals from the county hospital to the township.
    Returns counts per state."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    actors = {name: security.actor_for(session, name) for name in ("village", "township", "county", "coordinator")}
    states: dict[str, int] = {}
    ups = 0
    for i in range(count):
        code, sys_, dia, reason, flags = CASES[i % len(CASES)]
        if i % 6 == 5:
            # A down-referral written directly by the county hospital for a stable patient: recent, waiting for the
            # township to take the patient back.
            path = [["triage"], ["triage", "offer"], []][(i // 6) % 3]
            sent, steps = _timeline(
                rng, now, "offered" if path else "submitted", path, "routine", late=False, overdue=False
            )
            patient = _patient(session, rng, "I10", 132, 84, sent - rng.uniform(1, 5) * DAY)
            with service.as_of(sent):
                r = service.create(
                    session,
                    actors["county"],
                    ReferralIn(
                        patient=patient,
                        direction="down",
                        diagnosis_codes=["I10"],
                        reason="高血压诊断明确、方案确定，血压控制 ≥ 2 周，转回社区管理",
                        consent=True,
                        target_facility_id=actors["township"].facility_id,
                        flags=["regimen_set", "controlled_2_weeks"],
                    ),
                )
                service.submit(session, actors["county"], r.id)
            for action, when in steps:
                with service.as_of(when):
                    if action == "triage":
                        service.triage(session, actors["coordinator"], r.id)
                    else:
                        service.offer(session, actors["coordinator"], r.id, actors["township"].facility_id)
        else:
            sender = "village" if i % 2 == 0 else "township"
            state = UP_PLAN[ups % len(UP_PLAN)]
            path = PATHS[state][0]
            # One in seven accepted late (past the SLA); the first of the waiting ones of a kind is overdue.
            late = "accept" in path and ups % 7 == 3
            overdue = state in ("submitted", "offered") and UP_PLAN.index(state) == ups % len(UP_PLAN)
            ups += 1
            urgency = _urgency(code, sys_, dia, flags)
            sent, steps = _timeline(rng, now, state, path, urgency, late=late, overdue=overdue)
            patient = _patient(session, rng, code, sys_, dia, sent - rng.uniform(0.1, 3) * DAY)
            with service.as_of(sent):
                r = service.create(
                    session,
                    actors[sender],
                    ReferralIn(
                        patient=patient,
                        diagnosis_codes=[code],
                        systolic=sys_,
                        diastolic=dia,
                        reason=reason,
                        flags=flags,
                        consent=True,
                    ),
                )
                service.submit(session, actors[sender], r.id)
            try:
                with session.begin_nested():
                    _walk(session, actors, r.id, steps, sender)
            except (Invalid, Conflict):
                session.refresh(r)  # a step the demo network cannot take leaves the referral where it was
        states[r.state] = states.get(r.state, 0) + 1
    return states
