"""`yilian demo`: build a demo region from real divisions and census, with users for every role.

The registry part (divisions, facilities, consortia, grids, practitioners) is the network domain's builder, the same
tool an operator uses for their own region. Activity (patients, referrals, clinics) is added here as the domains grow.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian import migrations, network, patients, referrals
from yilian.db import Base, get_engine, unit_of_work
from yilian.diagnostics import demo as diagnostics_demo
from yilian.indicators import definitions as indicator_definitions
from yilian.indicators import service as indicator_service
from yilian.network import demo as network_demo
from yilian.network import service as network_service
from yilian.outreach import demo as outreach_demo
from yilian.patients import demo as patients_demo
from yilian.referrals import demo as referrals_demo
from yilian.security import service as security_service
from yilian.security.models import User

DEMO_PASSWORD = "yilian2026"


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    display_name: str
    anchor: str | None = None  # key of DemoRegion.anchors for facility users
    division: str | None = None  # "city" or "province" for jurisdiction users


DEMO_USERS = (
    DemoUser("admin", "system_admin", "系统管理员"),
    DemoUser("village", "village_doctor", "王村医", anchor="village_clinic"),
    DemoUser("township", "township_doctor", "李医生（卫生院）", anchor="township_centre"),
    DemoUser("county", "county_doctor", "赵医生（县医院心内科）", anchor="county_hospital"),
    DemoUser("coordinator", "referral_coordinator", "陈协调员（转诊中心）", anchor="county_hospital"),
    DemoUser("consortium", "consortium_admin", "刘主任（医共体办公室）", anchor="county_hospital"),
    DemoUser("expert", "specialist", "周主任医师（区域医疗中心）", anchor="regional_centre"),
    DemoUser("official", "commission_official", "孙科长（市卫健委）", division="city"),
    DemoUser("province", "commission_official", "吴处长（省卫健委）", division="province"),
    DemoUser("insurer", "insurance_officer", "郑专员（市医保局）", division="city"),
)


def build(*, province: str, city: str, seed: int, console: Console, fresh: bool = False, scale: float = 1.0) -> None:
    engine = get_engine()
    started = time.perf_counter()
    # The activity drives the services as the server would: the same hooks (actor consortia, record access policy,
    # outbox handlers) must be in place, or a coordinator would not see their consortium's referrals.
    for domain in (network, patients, referrals):
        domain.install()
    if fresh:
        _drop_everything()
    migrations.upgrade(engine)
    with unit_of_work() as session:
        existing = session.scalar(select(User).where(User.username == "admin"))
    if existing is not None:
        console.print("[yellow]demo already built in this database; reusing it (use --fresh to rebuild)[/]")
    else:
        with unit_of_work() as session:
            region = network_demo.build_region(
                session,
                province=province,
                city=city,
                seed=seed,
                progress=lambda msg: console.print(f"  {msg}"),
            )
            for u in DEMO_USERS:
                facility_id: uuid.UUID | None = region.anchors[u.anchor] if u.anchor else None
                division = {"city": city, "province": province}.get(u.division or "")
                security_service.create_user(
                    session,
                    username=u.username,
                    password=DEMO_PASSWORD,
                    role=u.role,
                    display_name=u.display_name,
                    facility_id=facility_id,
                    division_code=division,
                )
            session.flush()
            _add_activity(session, region.anchors, seed, console, city=city, scale=scale)
        # The dashboards read a snapshot of what was just committed (views materialised, registry, domain tables):
        # take the first one now, so an official's first look at /indicators shows numbers.
        snap_started = time.perf_counter()
        with unit_of_work() as session:
            snap = indicator_service.refresh(session)
        console.print(f"  indicator snapshot: {snap.id} ({time.perf_counter() - snap_started:.1f} s)")
        console.print(f"[green]demo built[/] in {time.perf_counter() - started:.1f} s: {region.summary()}")
    _print_users(console)


def _add_activity(
    session: Session, anchors: dict[str, uuid.UUID], seed: int, console: Console, *, city: str, scale: float = 1.0
) -> None:
    """Fill the region with recent activity by driving each domain's own services (each domain's demo.py), so that
    every page and dashboard has something true to show. Order matters: referrals and clinics need patients."""
    steps: list[tuple[str, Callable[[], object]]] = [
        ("patients", lambda: patients_demo.add_demo_patients(session, seed=seed, records=max(20, round(200 * scale)))),
        ("referrals", lambda: referrals_demo.seed_demo_referrals(session, seed=seed)),
        ("outreach", lambda: outreach_demo.seed_demo(session, anchors=anchors, seed=seed).summary()),
        ("diagnostics", lambda: diagnostics_demo.seed_demo_activity(session, seed=seed).summary()),
        ("assessments", lambda: _record_assessments(session, city, seed)),
    ]
    for name, step in steps:
        started = time.perf_counter()
        result = step()
        summary = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
        console.print(f"  {name}: {summary} ({time.perf_counter() - started:.1f} s)")


def _record_assessments(session: Session, city: str, seed: int) -> dict[str, int]:
    """The yes/no governance items of the county-community set are judged by the city commission each year, not
    computed: the demo official records this year's judgement for every county (most pass, as in the seeds)."""
    rng = random.Random(seed)
    official = security_service.actor_for(session, "official")
    # the counties the county-community set is computed for: those whose county medical community leads there
    communities = network_service.list_consortia(
        session, form="county_medical_community", division_prefix=city, limit=200
    ).items
    counties = sorted({c.division_code[:6] for c in communities if c.division_code})
    items = [i.id for i in indicator_definitions.get_set("county-community").indicators if i.assessment]
    year = date.today().year
    passed = 0
    for county in counties:
        for item in items:
            value = rng.random() < 0.8
            indicator_service.record_assessment(session, official, item, county, year, value, evidence="演示：年度考核")
            passed += value
    return {"counties": len(counties), "items": len(items), "passed": passed}


def _print_users(console: Console) -> None:
    table = Table(title="Demo users (password for all: " + DEMO_PASSWORD + ")")
    for col in ("username", "role", "name"):
        table.add_column(col)
    # Names as stored: the outreach demo renames `expert` after the practitioner the account is linked to.
    with unit_of_work() as session:
        names = {u: name for u, name in session.execute(select(User.username, User.display_name))}
    for u in DEMO_USERS:
        table.add_row(u.username, u.role, names.get(u.username, u.display_name))
    console.print(table)


def _drop_everything() -> None:
    engine = get_engine()
    migrations.import_all_models()
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
