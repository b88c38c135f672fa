"""Realistic roster instances: a province's top hospitals sending experts to county hospitals and township centres.

Shaped on the seeds (docs/DOMAIN.md): Laixi's resident experts on site ≥ 4 days a week, Zhuzhou→Yanling's visits on the
first weekend of every month, contracted specialists holding a weekly clinic, honorary department chiefs, and
short-term postings of a few weeks (Guizhou). Deterministic for a seed; pure (no database, no solver).
"""

from __future__ import annotations

import calendar
import math
import random
from datetime import date, timedelta

from yilian.outreach.schemas import (
    Demand,
    Expert,
    Hospital,
    PostingKind,
    Problem,
    Recurrence,
    RosterRules,
)

SPECIALTIES = {
    "cardiology": "心血管内科",
    "neurology": "神经内科",
    "general_surgery": "普通外科",
    "orthopaedics": "骨科",
    "paediatrics": "儿科",
    "obstetrics": "产科",
    "imaging": "医学影像科",
    "respiratory": "呼吸内科",
    "endocrinology": "内分泌科",
    "oncology": "肿瘤科",
    "emergency": "急诊科",
    "tcm": "中医科",
}

SENDING = [
    "省人民医院",
    "北京大学第一医院太原医院",
    "市中心医院",
    "市立医院",
    "医科大学附属第一医院",
    "省妇幼保健院",
]
COUNTIES = [
    "莱西",
    "炎陵",
    "解州",
    "平陆",
    "芮城",
    "永济",
    "临猗",
    "万荣",
    "闻喜",
    "稷山",
    "新绛",
    "绛县",
    "垣曲",
    "夏县",
    "盘山",
    "大洼",
    "彰武",
    "阜新",
    "清河",
    "细河",
    "茶陵",
    "攸县",
    "醴陵",
    "渌口",
    "遵义",
    "桐梓",
    "绥阳",
    "正安",
    "道真",
    "务川",
    "凤冈",
    "湄潭",
    "余庆",
    "习水",
    "赤水",
    "仁怀",
    "平度",
    "胶州",
    "即墨",
    "莱阳",
]
RECEIVING_KINDS = [("县人民医院", "county"), ("县中医院", "county"), ("镇中心卫生院", "township")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志宏海波晓东春梅云飞峰宇浩然思远文斌立新德胜丹凤慧琳振华嘉怡子轩"


def travel_minutes_km(km: float) -> int:
    """Road time: 15 minutes to get out of town plus ≈ 65 km/h over a road 1.2 times the straight line."""
    return round(15 + km * 1.2 / 65 * 60)


def generate(
    experts: int = 200,
    hospitals: int = 40,
    year: int = 2026,
    month: int = 12,
    seed: int = 7,
    rules: RosterRules | None = None,
) -> Problem:
    """`hospitals` receiving hospitals plus a few sending (home) hospitals; a month's horizon."""
    rng = random.Random(seed)
    rules = rules or RosterRules()
    start = date(year, month, 1)
    days = calendar.monthrange(year, month)[1]
    dates = [start + timedelta(days=i) for i in range(days)]

    senders = [Hospital(f"S{i + 1:02d}", name, "tertiary") for i, name in enumerate(SENDING[: max(2, hospitals // 8)])]
    receivers = []
    for i in range(hospitals):
        suffix, level = RECEIVING_KINDS[i % len(RECEIVING_KINDS)] if i >= 3 else RECEIVING_KINDS[0]
        county = COUNTIES[i % len(COUNTIES)] + ("" if i < len(COUNTIES) else str(i // len(COUNTIES) + 1))
        receivers.append(Hospital(f"H{i + 1:03d}", county + suffix, level))
    # Senders in the city (within 15 km), receivers across a region of radius ≈ 220 km.
    where: dict[str, tuple[float, float]] = {}
    for h in senders:
        where[h.id] = _polar(rng, 0, 15)
    for h in receivers:
        where[h.id] = _polar(rng, 25, 220)
    everyone = senders + receivers
    travel = {}
    for a in everyone:
        for b in everyone:
            if a.id < b.id:
                travel[(a.id, b.id)] = travel_minutes_km(math.dist(where[a.id], where[b.id]))

    specs = list(SPECIALTIES)
    demand: list[Demand] = []
    asked: dict[str, list[str]] = {}
    for h in receivers:
        chosen = rng.sample(specs, rng.randint(3, 6))
        asked[h.id] = chosen
        for s in chosen:
            if s == "imaging" and h.level == "county" and rng.random() < 0.5:
                # A shared-imaging centre wants a reader every weekday.
                demand.append(Demand(h.id, s, 1, per="day", weekdays=(0, 1, 2, 3, 4), weight=2))
            else:
                demand.append(Demand(h.id, s, rng.randint(1, 4), weight=2 if s in ("obstetrics", "paediatrics") else 1))

    def weekly_home_duty(count: int, avoid: set[date]) -> frozenset[date]:
        duty: set[date] = set()
        for monday_offset in range(-6, days, 7):
            week = [d for d in (start + timedelta(days=monday_offset + k) for k in range(7)) if d in dates]
            week = [d for d in week if d.weekday() < 5 and d not in avoid]
            duty.update(rng.sample(week, min(count, len(week))))
        return frozenset(duty)

    def leave(n: int, avoid: set[date]) -> frozenset[date]:
        free = [d for d in dates if d not in avoid]
        return frozenset(rng.sample(free, min(n, len(free))))

    out: list[Expert] = []
    n_res, n_rec, n_hon = round(experts * 0.4), round(experts * 0.25), round(experts * 0.1)
    first_weekend = Recurrence.parse("FREQ=MONTHLY;BYDAY=1SA,1SU")
    for i in range(experts):
        eid = f"E{i + 1:03d}"
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2))))
        home = rng.choice(senders).id
        host = rng.choice(receivers).id
        primary = rng.choice(asked[host])
        others = [s for s in specs if s != primary]
        specialties = (primary, rng.choice(others)) if rng.random() < 0.2 else (primary,)
        if i < n_res:
            near = travel[(min(home, host), max(home, host))] <= rules.travel_limit_minutes
            duty = weekly_home_duty(1, set()) if near and rng.random() < 0.5 else frozenset()
            if near and duty:
                # A resident who goes home for a day keeps it in the same weeks' count; one day of leave at most.
                away = leave(1, set(duty)) if rng.random() < 0.15 else frozenset()
            else:
                away = leave(1, set()) if rng.random() < 0.1 else frozenset()
            out.append(Expert.resident(eid, name, home, specialties, host, home_duty=duty, unavailable=away))
        elif i < n_res + n_rec:
            weekly = rng.random() < 0.35
            rule = Recurrence.parse(f"FREQ=WEEKLY;BYDAY={rng.choice(('TU', 'WE', 'TH'))}") if weekly else first_weekend
            visit_days = set(rule.dates(dates[0], dates[-1]))
            duty = weekly_home_duty(2 if weekly else 3, visit_days)
            away = leave(rng.choice((0, 0, 1, 2)), visit_days | duty)
            out.append(
                Expert(
                    eid,
                    name,
                    home,
                    specialties,
                    PostingKind.RECURRING,
                    posted_to=host,
                    recurrence=rule,
                    max_outreach_days=len(visit_days) + (2 if weekly else 4),
                    home_duty=duty,
                    unavailable=away,
                )
            )
        elif i < n_res + n_rec + n_hon:
            duty = weekly_home_duty(3, set())
            out.append(
                Expert(
                    eid,
                    name,
                    home,
                    specialties,
                    PostingKind.HONORARY_CHIEF,
                    posted_to=host,
                    min_days_per_month=2,
                    max_outreach_days=5,
                    home_duty=duty,
                    unavailable=leave(rng.choice((0, 1)), set(duty)),
                )
            )
        else:
            first = rng.randint(0, max(0, days - 14))
            length = rng.choice((14, 14, 21))
            out.append(
                Expert(
                    eid,
                    name,
                    home,
                    specialties,
                    PostingKind.SHORT_TERM,
                    posted_to=host,
                    posting_start=dates[first],
                    posting_end=dates[min(days - 1, first + length - 1)],
                    day_trips=False,
                )
            )
    return Problem(start, days, everyone, out, demand, travel, rules=rules)


def _polar(rng: random.Random, r_min: float, r_max: float) -> tuple[float, float]:
    r = rng.uniform(r_min, r_max)
    angle = rng.uniform(0, 2 * math.pi)
    return (r * math.cos(angle), r * math.sin(angle))
