"""Demo activity for a built region: a month of orders from townships and villages to their county reading centres,
read and signed (some with critical values), quality-control passes, recognition decisions and teleconsultations.

`seed_demo_activity(session)` is the one entry point; it goes through the same services as people do, so every row
has its FHIR face, audit trail and events. Re-running it adds nothing once its activity is there.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.db import utcnow
from yilian.diagnostics import notify, service
from yilian.diagnostics.models import DiagnosticOrder
from yilian.diagnostics.schemas import ChannelIn, ConsultIn, OpinionIn, OrderIn, QualificationIn, ReportIn, ScheduleIn
from yilian.errors import Conflict
from yilian.fhir import store
from yilian.network import service as network
from yilian.network.service import MAX_LIMIT
from yilian.security.actor import SYSTEM, Actor, enrich
from yilian.security.roles import Role

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
DICOM = b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\x00\x00\x00\x00"

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = ["建国", "秀英", "桂兰", "志强", "玉梅", "海燕", "德明", "春花", "文华", "淑珍", "国庆", "红梅", "永刚", "丽娟"]

# (modality, item code or None, item name, share)
PLAN = [
    ("ecg", "ECG-12", "常规十二导联心电图", 0.40),
    ("imaging", "XR-CHEST", "胸部X线摄影", 0.12),
    ("imaging", "CT-HEAD", "头颅CT平扫", 0.10),
    ("imaging", "CT-CHEST", "胸部CT平扫", 0.08),
    ("lab", "LAB-CBC", "血常规", 0.15),
    ("lab", "LAB-HBA1C", "糖化血红蛋白", 0.15),
]
CONCLUSIONS = {
    "ECG-12": ["窦性心律，正常心电图", "窦性心律，ST-T改变", "心房颤动", "窦性心动过缓"],
    "XR-CHEST": ["双肺纹理增多", "心肺膈未见明显异常"],
    "CT-HEAD": ["颅内未见明显异常", "腔隙性脑梗死"],
    "CT-CHEST": ["右肺上叶小结节，建议随访", "双肺未见明显异常"],
    "LAB-CBC": ["血常规未见异常", "轻度贫血"],
    "LAB-HBA1C": ["糖化血红蛋白升高，血糖控制欠佳", "糖化血红蛋白达标"],
}


@dataclass
class DemoActivity:
    orders: int = 0
    reports: int = 0
    imaging_studies: int = 0
    critical: int = 0
    reused: int = 0
    repeated: int = 0
    consultations: int = 0
    patients_created: int = 0

    def summary(self) -> str:
        return (
            f"{self.orders} diagnostic orders, {self.reports} signed reports ({self.critical} critical), "
            f"{self.imaging_studies} imaging studies, {self.reused} results reused, {self.repeated} repeated, "
            f"{self.consultations} teleconsultations"
        )


def _actor(session: Session, username: str, role: Role, facility_id: uuid.UUID, name: str) -> Actor:
    return enrich(
        session, Actor(user_id=None, username=username, role=role, display_name=name, facility_id=facility_id)
    )


def _patients(session: Session, rng: random.Random, facility: Any, n: int, out: DemoActivity) -> list[str]:
    """Patients registered at this facility in the shared record (the demo's own when it has them), else new ones."""
    found = store.search(
        session,
        "Patient",
        [("organization", f"Organization/{facility.id}"), ("_count", str(n)), ("_total", "none")],
        strict=True,
    ).resources
    refs = [f"Patient/{p['id']}" for p in found]
    if len(refs) >= n:
        return refs
    for _ in range(n - len(refs)):
        gender = rng.choice(["male", "female"])
        resource = {
            "resourceType": "Patient",
            "name": [{"text": rng.choice(SURNAMES) + rng.choice(GIVEN)}],
            "gender": gender,
            "birthDate": date(rng.randint(1940, 1990), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "managingOrganization": {"reference": f"Organization/{facility.id}", "display": facility.name},
        }
        refs.append("Patient/" + store.create(session, resource)["id"])
        out.patients_created += 1
    return refs


def seed_demo_activity(session: Session, *, seed: int = 1, communities: int = 3, orders: int = 66) -> DemoActivity:
    """Add diagnostics activity to the demo region in `session` (call inside the demo's unit of work)."""
    out = DemoActivity()
    seeded = select(func.count()).select_from(DiagnosticOrder).where(DiagnosticOrder.ordered_by.startswith("doctor-"))
    if session.scalar(seeded):
        return out
    rng = random.Random(seed)
    now = utcnow()
    groups = network.list_consortia(session, form="county_medical_community", limit=MAX_LIMIT).items
    sites: list[tuple[Actor, Actor, list[str]]] = []
    for group in groups[: max(1, communities)]:
        centre = network.get_facility(session, group.lead_facility_id)
        if "ecg_reading_centre" not in centre.capabilities:
            continue
        for code in ("*ecg", "*imaging", "*lab"):
            service.qualify(
                session,
                SYSTEM,
                QualificationIn(
                    facility=str(centre.id),
                    item_code=code,
                    passed_on=(now - timedelta(days=200)).date(),
                    valid_until=(now + timedelta(days=165)).date(),
                ),
            )
        reader = _actor(session, f"reader-{centre.code}", Role.COUNTY_DOCTOR, centre.id, "影像/心电诊断医生")
        members = [
            f
            for f in network.list_facilities(session, consortium_id=group.id, limit=200).items
            if f.level in ("township_centre", "village_clinic")
        ][:6]
        for f in members:
            role = Role.TOWNSHIP_DOCTOR if f.level == "township_centre" else Role.VILLAGE_DOCTOR
            site = _actor(session, f"doctor-{f.code}", role, f.id, "基层医生")
            sites.append((site, reader, _patients(session, rng, f, 3, out)))
    if not sites:
        return out
    # The first sites' duty phones get critical values by SMS (the console gateway prints them in the server log).
    for n, (site, _, _) in enumerate(sites[:2]):
        notify.add_channel(session, site, ChannelIn(kind="sms", target=f"1380000{n:04d}", critical_only=True))
    weights = [w for *_, w in PLAN]
    for i in range(orders):
        site, reader, patients = sites[i % len(sites)]
        modality, code, _name, _ = rng.choices(PLAN, weights)[0]
        ordered = now - timedelta(days=rng.uniform(0.2, 28), minutes=rng.randint(0, 600))
        priority = rng.choices(["routine", "urgent", "stat"], [0.7, 0.2, 0.1])[0]
        patient = rng.choice(patients)
        body = OrderIn(
            patient=patient,
            modality=modality,
            item_code=code,
            priority=priority,
            centre=str(reader.facility_id),
            clinical_question=rng.choice(["胸闷", "头晕", "咳嗽两周", "体检复查", "血糖控制评估"]),
        )
        try:
            order = service.place_order(session, site, body, at=ordered)
        except Conflict:  # a recognised result of the same patient: reuse it, as a doctor would
            service.reuse_result(session, site, patient, code)
            out.reused += 1
            continue
        out.orders += 1
        received = ordered + timedelta(minutes=rng.randint(3, 90))
        values: dict[str, object] = {}
        if modality == "ecg":
            values = {
                "heart_rate": rng.randint(52, 105),
                "pr": rng.randint(130, 200),
                "qrs": rng.randint(80, 110),
                "qtc": rng.choice([410, 425, 440, 455, 520 if rng.random() < 0.5 else 430]),
            }
        elif code == "LAB-CBC":
            values = {"hemoglobin": rng.randint(95, 160), "platelets": rng.randint(120, 320)}
        elif code == "LAB-HBA1C":
            values = {"hba1c": round(rng.uniform(5.4, 9.8), 1)}
        data = DICOM if modality == "imaging" else PDF
        service.receive_upload(
            session,
            site,
            order.id,
            filename=f"{code}.{'dcm' if data is DICOM else 'pdf'}",
            data=data,
            measurements=values,
            at=received,
        )
        if modality == "imaging":
            out.imaging_studies += 1
        if i % 9 == 8:  # a few stay on the worklist, some of them overdue
            continue
        signed = received + timedelta(minutes=rng.randint(5, 240))
        if signed > now:
            signed = now
        report = service.sign_report(
            session,
            reader,
            order.id,
            ReportIn(findings="见图像/波形。", conclusion=rng.choice(CONCLUSIONS[code])),
            at=signed,
        )
        out.reports += 1
        out.critical += int(report.critical)
    # A doctor repeats a recognised test before surgery, with the reason and the patient told.
    for site, _, patients in sites[:2]:
        body = OrderIn(
            patient=patients[0],
            modality="ecg",
            item_code="ECG-12",
            repeat_reason="major_intervention",
            repeat_note="术前复查",
            patient_informed=True,
        )
        check = service.check_recognition(session, site, patients[0], "ECG-12")
        if check.prior is not None:
            service.place_order(session, site, body)
            out.repeated += 1
            out.orders += 1
    # Teleconsultations: one answered, one scheduled, one waiting.
    for n, (site, reader, patients) in enumerate(sites[:3]):
        c = service.request_consultation(
            session,
            site,
            ConsultIn(
                patient=patients[-1],
                specialty=["心内科", "神经内科", "内分泌科"][n],
                urgency="routine",
                question=["反复胸闷，心电图ST-T改变，是否需要上转？", "头晕伴言语不清半天", "血糖控制不佳，请调整方案"][
                    n
                ],
            ),
        )
        out.consultations += 1
        if n < 2:
            expert = replace(reader, username=f"expert-{n}")
            host = _actor(session, f"coordinator-{n}", Role.REFERRAL_COORDINATOR, c.centre_facility_id, "会诊中心")
            service.schedule_consultation(
                session,
                host,
                c.id,
                ScheduleIn(
                    experts=[_ensure_expert(session, expert, c.centre_facility_id)],
                    scheduled_at=now + timedelta(days=1 - n, hours=2),
                ),
            )
            if n == 0:
                answering = replace(expert, username=c.experts[0])
                service.answer_consultation(
                    session,
                    answering,
                    c.id,
                    OpinionIn(
                        diagnosis="稳定型心绞痛",
                        advice="继续双联抗血小板治疗，择期上转行冠脉造影",
                        follow_up="两周后远程复诊",
                    ),
                )
    return out


def _ensure_expert(session: Session, actor: Actor, facility_id: uuid.UUID) -> str:
    """A specialist user at the centre for the demo's consultations (the demo's own 'expert' user when it exists)."""
    from yilian.errors import NotFound
    from yilian.security import service as users

    for username in ("expert", "county"):
        try:
            user = users.get_user(session, username)
        except NotFound:
            continue
        return user.username
    name = f"demo-expert-{str(facility_id)[:8]}"
    try:
        users.get_user(session, name)
    except NotFound:
        users.create_user(
            session,
            username=name,
            password=uuid.uuid4().hex,
            role="specialist",
            display_name="会诊专家",
            facility_id=facility_id,
        )
    return name
