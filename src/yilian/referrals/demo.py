"""Demo activity: referrals in a built demo region (users village, township, county, coordinator from the twin's
demo), spread over the whole loop in both directions, each with its ServiceRequest + Task in the FHIR store."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from yilian.errors import Conflict, Invalid
from yilian.fhir import store
from yilian.referrals import service
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
# How far along the loop each demo referral goes (state → steps after submission).
PATHS: list[list[str]] = [
    [],
    ["triage"],
    ["triage", "offer"],
    ["triage", "offer", "accept"],
    ["triage", "offer", "accept", "book"],
    ["triage", "offer", "accept", "book", "arrive", "start_treatment"],
    ["triage", "offer", "accept", "book", "arrive", "start_treatment", "discharge"],
    ["triage", "offer", "accept", "book", "arrive", "start_treatment", "discharge", "down_refer"],
    ["triage", "offer", "accept", "book", "arrive", "start_treatment", "discharge", "down_refer", "follow_up", "close"],
    ["triage", "offer", "decline"],
    ["cancel"],
]


def _patient(session: Session, rng: random.Random, code: str, sys_: float | None, dia: float | None) -> str:
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
                "effectiveDateTime": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
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


def _walk(session: Session, actors: dict[str, Actor], rid: uuid.UUID, path: list[str], sender: str) -> None:
    receiver = actors["county"]
    family = actors["township"]
    for action in path:
        if action == "triage":
            service.triage(session, actors["coordinator"], rid)
        elif action == "offer":
            service.offer(session, actors["coordinator"], rid, receiver.facility_id)
        elif action == "accept":
            service.accept(session, receiver, rid)
        elif action == "decline":
            service.decline(session, receiver, rid, "本科室床位已满，建议改派")
        elif action == "book":
            start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=1)
            service.book(session, receiver, rid, start=start)
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


def seed_demo_referrals(session: Session, *, count: int = 60, seed: int = 1) -> dict[str, Any]:
    """Add `count` referrals (≥ 50 by default) to a built demo region: up-referrals from the village and township
    along the whole loop, and down-referrals from the county hospital to the township. Returns counts per state."""
    rng = random.Random(seed)
    actors = {name: security.actor_for(session, name) for name in ("village", "township", "county", "coordinator")}
    states: dict[str, int] = {}
    for i in range(count):
        code, sys_, dia, reason, flags = CASES[i % len(CASES)]
        if i % 6 == 5:
            # A down-referral written directly by the county hospital for a stable patient.
            patient = _patient(session, rng, "I10", 132, 84)
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
            path = [["triage"], ["triage", "offer"], []][i % 3]
            if "offer" in path:
                service.triage(session, actors["coordinator"], r.id)
                service.offer(session, actors["coordinator"], r.id, actors["township"].facility_id)
            elif path:
                service.triage(session, actors["coordinator"], r.id)
        else:
            sender = "village" if i % 2 == 0 else "township"
            patient = _patient(session, rng, code, sys_, dia)
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
                    _walk(session, actors, r.id, PATHS[i % len(PATHS)], sender)
            except (Invalid, Conflict):
                session.refresh(r)  # a step the demo network cannot take leaves the referral where it was
        states[r.state] = states.get(r.state, 0) + 1
    return states
