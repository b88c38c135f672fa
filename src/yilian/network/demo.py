"""The demo-region builder: a plausible, deterministic network on real divisions and census figures.

The same tool an operator uses for their own region (`yilian demo --province 21 --city 2109`). One prefecture city is
built in full detail (every county and township, villages sized from the census rural population); the province gets
its national regional medical centres, provincial tertiary hospitals and one tertiary hospital per other city.
Everything is drawn from a seeded random generator: the same seed builds the same region. The allocation of beds and
staff is documented in docs/demo-region.md.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from yilian.db import utcnow
from yilian.errors import Invalid
from yilian.network import rules, service
from yilian.network.models import (
    Consortium,
    ConsortiumMember,
    Division,
    Facility,
    Grid,
    GridTownship,
    Practitioner,
    PractitionerRole,
)
from yilian.network.rules import CAPABILITIES, ConsortiumForm, Kind, Level, Title

DEMO_NS = uuid.UUID("0b6f7c52-3f7e-4a53-9d7c-1f0e2d3c4b5a")

# Share of the detailed city's beds (7.23 per 1,000 residents) held by each tier. Village clinics have no beds.
TIER_SHARE = {"city": 0.30, "county": 0.50, "township": 0.20}
# Inside a county: general hospital, TCM hospital, maternal & child hospital.
COUNTY_SPLIT = {Kind.GENERAL: 0.62, Kind.TCM: 0.23, Kind.MATERNAL_CHILD: 0.15}
CITY_WEIGHT = {Kind.GENERAL: 1.0, Kind.TCM: 0.5, Kind.MATERNAL_CHILD: 0.4}
RESIDENTS_PER_VILLAGE = (800, 1000)
RESIDENTS_PER_STATION = 15000
# Named practitioners registered per facility (staff counts hold the full figures).
PRACTITIONERS = {
    Level.NATIONAL_REGIONAL_CENTRE: 30,
    Level.TERTIARY: 30,
    ("county", Kind.GENERAL): 20,
    ("county", "other"): 10,
}
TOWNSHIP_PRACTITIONERS = (2, 4)

NATIONAL_CENTRES: dict[str, list[tuple[str, str, Kind, list[str]]]] = {
    "14": [
        (
            "北京大学第一医院太原医院",
            "Peking University First Hospital Taiyuan Hospital",
            Kind.GENERAL,
            [
                "fourth_level_surgery",
                "chest_pain_centre",
                "stroke_centre",
                "trauma_centre",
                "imaging_reading_centre",
                "ecg_reading_centre",
                "lab_centre",
                "pathology_centre",
                "sterile_supply",
            ],
        ),
        (
            "中国医学科学院肿瘤医院山西医院",
            "Cancer Hospital, Chinese Academy of Medical Sciences, Shanxi Hospital",
            Kind.SPECIALIST,
            ["fourth_level_surgery", "imaging_reading_centre", "lab_centre", "pathology_centre"],
        ),
    ]
}
PROVINCIAL: dict[str, list[tuple[str, Kind]]] = {
    "14": [
        ("山西省人民医院", Kind.GENERAL),
        ("山西医科大学第一医院", Kind.GENERAL),
        ("山西医科大学第二医院", Kind.GENERAL),
        ("山西省中医院", Kind.TCM),
        ("山西省儿童医院", Kind.MATERNAL_CHILD),
    ]
}

DEPARTMENTS = {
    "tertiary_general": [
        "急诊科",
        "心血管内科",
        "神经内科",
        "呼吸与危重症医学科",
        "消化内科",
        "内分泌科",
        "肾内科",
        "普通外科",
        "骨科",
        "神经外科",
        "心胸外科",
        "泌尿外科",
        "妇产科",
        "儿科",
        "肿瘤科",
        "重症医学科",
        "麻醉科",
        "医学影像科",
        "心电诊断科",
        "检验科",
        "病理科",
        "康复医学科",
        "中医科",
    ],
    "county_general": [
        "急诊科",
        "心血管内科",
        "神经内科",
        "呼吸内科",
        "消化内科",
        "内分泌科",
        "普通外科",
        "骨科",
        "妇产科",
        "儿科",
        "重症医学科",
        "麻醉科",
        "医学影像科",
        "心电诊断科",
        "检验科",
        "病理科",
        "康复医学科",
    ],
    "tcm": ["中医内科", "针灸科", "推拿科", "中医骨伤科", "治未病科", "康复医学科", "医学影像科", "检验科"],
    "maternal_child": ["产科", "妇科", "儿科", "新生儿科", "儿童保健科", "妇女保健科", "医学影像科", "检验科"],
    "specialist": ["肿瘤内科", "肿瘤外科", "放射治疗科", "病理科", "医学影像科", "检验科"],
    "township": ["全科医学科", "中医科", "预防保健科", "公共卫生科", "检验科", "医学影像科", "心电图室"],
    "village": ["全科诊疗"],
}

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜"
    "戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟万段雷钱汤尹黎易常武乔贺赖龚文"
)
GIVEN_MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳建国志文斌海峰亮晨"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀玲桂英燕红梅琳雪莉倩婷慧颖洁佳萍晶欣璐瑶怡琴蕾丹悦彤"
VILLAGE_HEADS = [
    "张家",
    "王家",
    "李家",
    "赵家",
    "刘家",
    "杨家",
    "郭家",
    "梁家",
    "贾家",
    "薛家",
    "东",
    "西",
    "南",
    "北",
    "上",
    "下",
    "前",
    "后",
    "大",
    "小",
    "高",
    "新",
    "古",
    "石",
    "柳",
    "槐",
    "杏",
    "桃",
    "枣",
    "梨",
    "榆",
    "马",
    "牛",
    "龙",
    "凤",
    "白",
    "黄",
    "红",
    "青",
    "河",
    "泉",
    "双",
    "三",
    "五",
    "十里",
    "官",
    "庙",
    "城",
    "窑",
    "韩",
    "常",
    "冯",
    "吉",
    "乔",
    "段",
    "卫",
    "贺",
]
VILLAGE_TAILS = [
    "庄",
    "村",
    "沟",
    "坡",
    "峪",
    "堡",
    "营",
    "屯",
    "河",
    "寨",
    "岭",
    "洼",
    "头",
    "店",
    "湾",
    "原",
    "坪",
    "塬",
]
COMMUNITIES = [
    "幸福",
    "和平",
    "建设",
    "光明",
    "东关",
    "西关",
    "南街",
    "北街",
    "新华",
    "解放",
    "人民",
    "文化",
    "育才",
    "春晖",
    "滨河",
    "锦绣",
    "鼓楼",
    "华苑",
    "阳光",
    "康乐",
    "向阳",
    "胜利",
    "团结",
    "友谊",
    "迎春",
    "花园",
    "园丁",
    "书香",
    "翠苑",
    "金桥",
]


@dataclass
class DemoRegion:
    province: str
    city: str
    city_name: str
    seed: int
    anchors: dict[str, uuid.UUID]
    counts_per_level: dict[str, int]
    city_population: int
    city_beds: int
    consortia: int
    grids: int
    practitioners: int
    fhir_resources: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def facilities(self) -> int:
        return sum(self.counts_per_level.values())

    @property
    def beds_per_1000(self) -> float:
        return round(rules.beds_per_1000(self.city_beds, self.city_population), 2)

    def summary(self) -> str:
        levels = ", ".join(f"{n} {lv}" for lv, n in self.counts_per_level.items())
        return (
            f"{self.city_name} ({self.city}, seed {self.seed}): {self.facilities} facilities ({levels}); "
            f"{self.city_beds} beds for {self.city_population} residents = {self.beds_per_1000}/1,000; "
            f"{self.consortia} consortia, {self.grids} grids, {self.practitioners} practitioners"
        )


class _Builder:
    def __init__(
        self,
        session: Session,
        province: str,
        city: str,
        seed: int,
        progress: Callable[[str], None],
        project_fhir: bool = True,
    ):
        self.session, self.province, self.city, self.seed, self.progress = session, province, city, seed, progress
        self.project_fhir = project_fhir
        self.rng = random.Random(seed)
        self.facilities: list[dict[str, Any]] = []
        self.members: list[dict[str, Any]] = []
        self.consortia: list[dict[str, Any]] = []
        self.grids: list[dict[str, Any]] = []
        self.grid_townships: list[dict[str, Any]] = []
        self.practitioners: list[dict[str, Any]] = []
        self.roles: list[dict[str, Any]] = []
        self.start = date(2019, 1, 1)

    # -- helpers -------------------------------------------------------------------------------------------------
    def uid(self, key: str) -> uuid.UUID:
        return uuid.uuid5(DEMO_NS, f"{self.seed}:{key}")

    def jitter(self, lon: float, lat: float, spread: float = 0.02) -> tuple[float, float]:
        return round(lon + self.rng.uniform(-spread, spread), 6), round(lat + self.rng.uniform(-spread, spread), 6)

    def add_facility(
        self,
        *,
        code: str,
        name: str,
        level: Level,
        kind: Kind,
        division: str,
        lon: float | None,
        lat: float | None,
        beds: int,
        departments: list[str],
        capabilities: list[str] | None = None,
        name_en: str | None = None,
        parent_id: uuid.UUID | None = None,
        ownership: str = "public",
        doctors: int | None = None,
        nurses: int | None = None,
    ) -> dict[str, Any]:
        if doctors is None:
            doctors = max(2, round(beds * self.rng.uniform(0.32, 0.40)))
        if nurses is None:
            nurses = max(1, round(beds * self.rng.uniform(0.45, 0.55)))
        row = {
            "id": self.uid(code),
            "code": code,
            "name": name,
            "name_en": name_en,
            "level": level.value,
            "kind": kind.value,
            "ownership": ownership,
            "division_code": division,
            "parent_id": parent_id,
            "address": None,
            "lon": lon,
            "lat": lat,
            "position_approximate": True,
            "beds": beds,
            "doctors": doctors,
            "nurses": nurses,
            "staff_total": round((doctors + nurses) * 1.3) if beds else doctors + nurses,
            "departments": departments,
            "active": True,
            **{c: c in (capabilities or []) for c in CAPABILITIES},
        }
        self.facilities.append(row)
        return row

    def person_name(self, gender: str) -> str:
        given = GIVEN_MALE if gender == "male" else GIVEN_FEMALE
        n = 1 if self.rng.random() < 0.35 else 2
        return self.rng.choice(SURNAMES) + "".join(self.rng.choice(given) for _ in range(n))

    def add_practitioners(self, facility: dict[str, Any], count: int, *, village: bool = False) -> list[dict[str, Any]]:
        out = []
        depts = [d for d in facility["departments"] if d not in ("检验科", "医学影像科", "病理科")] or facility[
            "departments"
        ]
        for i in range(count):
            gender = "male" if self.rng.random() < (0.7 if village else 0.48) else "female"
            if village:
                title = Title.VILLAGE_DOCTOR
            else:
                r = self.rng.random()
                top = facility["level"] in (Level.TERTIARY.value, Level.NATIONAL_REGIONAL_CENTRE.value)
                cuts = (0.12, 0.32, 0.67) if top else (0.05, 0.20, 0.60)
                title = (
                    Title.CHIEF
                    if r < cuts[0]
                    else Title.ASSOCIATE_CHIEF
                    if r < cuts[1]
                    else Title.ATTENDING
                    if r < cuts[2]
                    else Title.RESIDENT
                )
            p = {
                "id": self.uid(f"{facility['code']}/p{i}"),
                "name": self.person_name(gender),
                "gender": gender,
                "title": title.value,
                "specialty": depts[i % len(depts)] if not village else "全科",
                "home_facility_id": facility["id"],
                "active": True,
            }
            self.practitioners.append(p)
            self.roles.append(
                {
                    "id": self.uid(f"{facility['code']}/p{i}/home"),
                    "practitioner_id": p["id"],
                    "facility_id": facility["id"],
                    "kind": "home",
                    "specialty": p["specialty"],
                    "start": None,
                    "end": None,
                }
            )
            out.append(p)
        return out

    def add_consortium(
        self,
        *,
        name: str,
        form: ConsortiumForm,
        lead: dict[str, Any],
        division: str | None,
        members: list[tuple[dict[str, Any], str, str]],
        specialty: str | None = None,
        started: date | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        c = {
            "id": self.uid(f"consortium/{name}"),
            "name": name,
            "form": form.value,
            "lead_facility_id": lead["id"],
            "division_code": division,
            "start_date": started or self.start,
            "specialty": specialty,
            "description": description,
        }
        ids = [f["id"] for f, _, _ in members]
        rules.require_lead_is_member(lead["id"], ids)
        self.consortia.append(c)
        for f, membership, role in members:
            self.members.append(
                {
                    "id": self.uid(f"member/{name}/{f['code']}"),
                    "consortium_id": c["id"],
                    "facility_id": f["id"],
                    "membership": membership,
                    "role": role,
                    "joined_on": c["start_date"],
                }
            )
        return c

    def village_name(self, used: set[str]) -> str:
        for _ in range(200):
            head, tail = self.rng.choice(VILLAGE_HEADS), self.rng.choice(VILLAGE_TAILS)
            name = head + tail if head.endswith("家") or tail == "村" else head + tail + "村"
            if not name.endswith("村"):
                name += "村"
            if name not in used:
                used.add(name)
                return name
        name = f"第{len(used) + 1}村"
        used.add(name)
        return name

    # -- the build -------------------------------------------------------------------------------------------------
    def run(self) -> DemoRegion:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        report = service.load_divisions(self.session, self.province)
        self.progress(
            f"divisions loaded: {report.divisions_by_level} ({report.inserted} new; "
            f"{len(report.counties_without_census)} counties without census, "
            f"{len(report.counties_without_centroid)} without centroid)"
        )
        timings["divisions"] = time.perf_counter() - started
        divisions = {
            d.code: d for d in self.session.scalars(select(Division).where(Division.code.startswith(self.province)))
        }
        city = divisions.get(self.city)
        if city is None or city.level != "city":
            raise Invalid(f"{self.city} is not a prefecture city of province {self.province}", field="city")
        province = divisions[self.province]
        self.province_name, self.city_name = province.name, city.name

        t = time.perf_counter()
        national = self.build_province(divisions)
        city_hospitals = self.build_city_hospitals(divisions, city)
        anchors = self.build_counties(divisions, city, city_hospitals, national)
        self.progress(f"facilities generated: {len(self.facilities)}")
        self.build_city_consortia(divisions, city, city_hospitals, national)
        self.build_postings(city_hospitals, national)
        self.build_rotations_down()
        timings["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        self.write()
        timings["write"] = time.perf_counter() - t
        self.progress(
            f"written: {len(self.facilities)} facilities, {len(self.consortia)} consortia, {len(self.grids)} grids, "
            f"{len(self.practitioners)} practitioners ({timings['write']:.1f} s)"
        )
        t = time.perf_counter()
        projected = 0
        if self.project_fhir:
            projected = service.project_everything(self.session, fresh=True, batch=5000, progress=self.progress)
        timings["fhir"] = time.perf_counter() - t
        if projected:
            self.progress(f"FHIR store: {projected} resources ({timings['fhir']:.1f} s)")

        counts: dict[str, int] = {lv.value: 0 for lv in reversed(rules.LEVEL_ORDER)}
        for f in self.facilities:
            counts[f["level"]] += 1
        city_beds = sum(f["beds"] for f in self.facilities if f["division_code"].startswith(self.city))
        population = sum(
            d.population or 0 for d in divisions.values() if d.level == "county" and d.code.startswith(self.city)
        )
        return DemoRegion(
            province=self.province,
            city=self.city,
            city_name=city.name,
            seed=self.seed,
            anchors=anchors,
            counts_per_level=counts,
            city_population=population,
            city_beds=city_beds,
            consortia=len(self.consortia),
            grids=len(self.grids),
            practitioners=len(self.practitioners),
            fhir_resources=projected,
            seconds=round(time.perf_counter() - started, 2),
            timings={k: round(v, 2) for k, v in timings.items()},
        )

    def seat_of(self, divisions: dict[str, Division], city_code: str) -> Division:
        """The city's seat: its first urban district by code (else its first county)."""
        counties = sorted(
            (d for d in divisions.values() if d.level == "county" and d.parent_code == city_code), key=lambda d: d.code
        )
        districts = [d for d in counties if d.name.endswith("区") and d.name != "市辖区"]
        if not (districts or counties):
            raise Invalid(f"city {city_code} has no counties in the division list", field="city")
        return (districts or counties)[0]

    def build_province(self, divisions: dict[str, Division]) -> list[dict[str, Any]]:
        cities = sorted((d for d in divisions.values() if d.level == "city"), key=lambda d: d.code)
        capital = cities[0]
        seat = self.seat_of(divisions, capital.code)
        lon, lat = seat.lon or capital.lon or 0.0, seat.lat or capital.lat or 0.0
        short = self.province_name.removesuffix("省").removesuffix("市").removesuffix("自治区")
        centres = NATIONAL_CENTRES.get(
            self.province,
            [
                (
                    f"{short}国家区域医疗中心",
                    f"National Regional Medical Centre ({self.province})",
                    Kind.GENERAL,
                    [
                        "fourth_level_surgery",
                        "chest_pain_centre",
                        "stroke_centre",
                        "trauma_centre",
                        "imaging_reading_centre",
                        "lab_centre",
                        "pathology_centre",
                    ],
                )
            ],
        )
        national = []
        for i, (name, name_en, kind, caps) in enumerate(centres, 1):
            beds = self.rng.randrange(1800, 3200, 10)
            dept = "specialist" if kind == Kind.SPECIALIST else "tertiary_general"
            national.append(
                self.add_facility(
                    code=f"{seat.code}-N{i:02d}",
                    name=name,
                    name_en=name_en,
                    level=Level.NATIONAL_REGIONAL_CENTRE,
                    kind=kind,
                    division=seat.code,
                    lon=self.jitter(lon, lat)[0],
                    lat=self.jitter(lon, lat)[1],
                    beds=beds,
                    departments=DEPARTMENTS[dept],
                    capabilities=caps,
                )
            )
        provincial = PROVINCIAL.get(
            self.province,
            [
                (f"{self.province_name}人民医院", Kind.GENERAL),
                (f"{self.province_name}中医院", Kind.TCM),
                (f"{self.province_name}妇幼保健院", Kind.MATERNAL_CHILD),
            ],
        )
        for i, (name, kind) in enumerate(provincial, 1):
            caps = {
                Kind.GENERAL: [
                    "fourth_level_surgery",
                    "chest_pain_centre",
                    "stroke_centre",
                    "trauma_centre",
                    "imaging_reading_centre",
                    "lab_centre",
                    "pathology_centre",
                ],
                Kind.TCM: ["stroke_centre"],
                Kind.MATERNAL_CHILD: ["critical_maternal_centre", "critical_neonatal_centre"],
            }.get(kind, [])
            x, y = self.jitter(lon, lat, 0.05)
            self.add_facility(
                code=f"{seat.code}-P{i:02d}",
                name=name,
                level=Level.TERTIARY,
                kind=kind,
                division=seat.code,
                lon=x,
                lat=y,
                beds=self.rng.randrange(1200, 2600, 10),
                capabilities=caps,
                departments=DEPARTMENTS["tertiary_general" if kind == Kind.GENERAL else kind.value],
            )
        for c in cities:
            if c.code == self.city or c.name in ("市辖区", "省直辖县级行政区划"):
                continue
            s = self.seat_of(divisions, c.code)
            x, y = self.jitter(s.lon or c.lon or lon, s.lat or c.lat or lat, 0.02)
            self.add_facility(
                code=f"{s.code}-C01",
                name=f"{c.name}人民医院",
                level=Level.TERTIARY,
                kind=Kind.GENERAL,
                division=s.code,
                lon=x,
                lat=y,
                beds=self.rng.randrange(1000, 2000, 10),
                departments=DEPARTMENTS["tertiary_general"],
                capabilities=["fourth_level_surgery", "chest_pain_centre", "stroke_centre", "imaging_reading_centre"],
            )
        return national

    def build_city_hospitals(self, divisions: dict[str, Division], city: Division) -> list[dict[str, Any]]:
        seat = self.seat_of(divisions, city.code)
        n = self.rng.choice((3, 4))
        plan = [
            (
                "人民医院",
                Kind.GENERAL,
                [
                    "fourth_level_surgery",
                    "chest_pain_centre",
                    "stroke_centre",
                    "trauma_centre",
                    "imaging_reading_centre",
                    "ecg_reading_centre",
                    "lab_centre",
                    "pathology_centre",
                    "sterile_supply",
                ],
            ),
            ("中医医院", Kind.TCM, ["stroke_centre"]),
            ("中心医院", Kind.GENERAL, ["fourth_level_surgery", "chest_pain_centre", "stroke_centre", "trauma_centre"]),
            ("妇幼保健院", Kind.MATERNAL_CHILD, ["critical_maternal_centre", "critical_neonatal_centre"]),
        ][:n]
        self.city_plan = plan
        out = []
        for i, (suffix, kind, caps) in enumerate(plan, 1):
            x, y = self.jitter(seat.lon or city.lon or 0.0, seat.lat or city.lat or 0.0, 0.03)
            out.append(
                self.add_facility(
                    code=f"{seat.code}-C{i:02d}",
                    name=f"{city.name}{suffix}",
                    level=Level.TERTIARY,
                    kind=kind,
                    division=seat.code,
                    lon=x,
                    lat=y,
                    beds=0,
                    capabilities=caps,
                    departments=DEPARTMENTS["tertiary_general" if kind == Kind.GENERAL else kind.value],
                )
            )
        return out

    def build_counties(
        self,
        divisions: dict[str, Division],
        city: Division,
        city_hospitals: list[dict[str, Any]],
        national: list[dict[str, Any]],
    ) -> dict[str, uuid.UUID]:
        counties = sorted(
            (d for d in divisions.values() if d.level == "county" and d.parent_code == city.code), key=lambda d: d.code
        )
        townships: dict[str, list[Division]] = {c.code: [] for c in counties}
        for d in sorted(divisions.values(), key=lambda d: d.code):
            if d.level == "township" and d.parent_code in townships:
                townships[d.parent_code].append(d)
        population = sum(c.population or 0 for c in counties)
        total_beds = rules.beds_target(population)
        tiers = dict(zip(TIER_SHARE, rules.allocate(total_beds, list(TIER_SHARE.values())), strict=True))
        for f, beds in zip(
            city_hospitals,
            rules.allocate(
                tiers["city"],
                [CITY_WEIGHT[Kind(f["kind"])] * (1.2 if i == 0 else 1.0) for i, f in enumerate(city_hospitals)],
            ),
            strict=True,
        ):
            self._set_beds(f, beds)
        county_beds = rules.allocate(tiers["county"], [c.population or 0 for c in counties])

        # Township populations: each county's rural residents spread over its towns (乡/镇), urban ones over its
        # streets (街道) — or over everything when a county has only one kind — with seeded uneven weights.
        township_pop: dict[str, int] = {}
        township_rural: dict[str, int] = {}
        for c in counties:
            ts = townships[c.code]
            if not ts:
                continue
            streets = [t for t in ts if rules.is_street(t.name)]
            towns = [t for t in ts if not rules.is_street(t.name)]
            for group, residents, rural in (
                (towns or ts, c.rural or 0, True),
                (streets or towns or ts, c.urban or 0, False),
            ):
                weights = [self.rng.lognormvariate(0, 0.35) for _ in group]
                for t, share in zip(group, rules.allocate(residents, weights), strict=True):
                    township_pop[t.code] = township_pop.get(t.code, 0) + share
                    if rural:
                        township_rural[t.code] = township_rural.get(t.code, 0) + share
        self.township_rural = township_rural
        all_townships = [t for c in counties for t in townships[c.code]]
        township_beds = dict(
            zip(
                [t.code for t in all_townships],
                rules.allocate(tiers["township"], [township_pop.get(t.code, 0) for t in all_townships]),
                strict=True,
            )
        )
        self.township_pop = township_pop
        self.county_hospitals: dict[str, list[dict[str, Any]]] = {}
        self.township_centres: dict[str, dict[str, Any]] = {}
        self.villages: dict[str, list[dict[str, Any]]] = {}
        self.counties, self.townships_of = counties, townships

        for c, beds in zip(counties, county_beds, strict=True):
            lon, lat = c.lon or city.lon or 0.0, c.lat or city.lat or 0.0
            is_district = c.name.endswith("区")
            hospitals = []
            if is_district:
                plan = [(f"{c.name}人民医院", Kind.GENERAL, 1.0)]
            else:
                plan = [
                    (f"{c.name}{s}", k, w)
                    for (s, k), w in zip(
                        (("人民医院", Kind.GENERAL), ("中医医院", Kind.TCM), ("妇幼保健院", Kind.MATERNAL_CHILD)),
                        COUNTY_SPLIT.values(),
                        strict=True,
                    )
                ]
            for i, ((name, kind, _), b) in enumerate(
                zip(plan, rules.allocate(beds, [w for *_, w in plan]), strict=True), 1
            ):
                caps: list[str] = []
                if kind == Kind.GENERAL and not is_district:
                    caps = [
                        "chest_pain_centre",
                        "stroke_centre",
                        "imaging_reading_centre",
                        "ecg_reading_centre",
                        "lab_centre",
                        "sterile_supply",
                    ]
                    if (c.population or 0) > 200_000:
                        caps.append("pathology_centre")
                    if self.rng.random() < 0.4:
                        caps.append("trauma_centre")
                elif kind == Kind.GENERAL:
                    caps = ["chest_pain_centre"]
                elif kind == Kind.MATERNAL_CHILD:
                    caps = ["critical_maternal_centre", "critical_neonatal_centre"]
                x, y = self.jitter(lon, lat, 0.01)
                f = self.add_facility(
                    code=f"{c.code}-H{i:02d}",
                    name=name,
                    level=Level.COUNTY_HOSPITAL,
                    kind=kind,
                    division=c.code,
                    lon=x,
                    lat=y,
                    beds=b,
                    capabilities=caps,
                    departments=DEPARTMENTS["county_general" if kind == Kind.GENERAL else kind.value],
                )
                hospitals.append(f)
                self.add_practitioners(f, PRACTITIONERS[("county", Kind.GENERAL if i == 1 else "other")])
            self.county_hospitals[c.code] = hospitals
            for t in townships[c.code]:
                street = rules.is_street(t.name)
                name = f"{t.name}社区卫生服务中心" if street else f"{t.name}卫生院"
                tb = township_beds[t.code]
                centre = self.add_facility(
                    code=f"{t.code}-T",
                    name=name,
                    level=Level.TOWNSHIP_CENTRE,
                    kind=Kind.GENERAL,
                    division=t.code,
                    lon=t.lon,
                    lat=t.lat,
                    beds=tb,
                    departments=DEPARTMENTS["township"],
                    doctors=max(3, round(tb * 0.3) + self.rng.randint(3, 8)),
                    nurses=max(2, round(tb * 0.4) + self.rng.randint(1, 5)),
                )
                self.township_centres[t.code] = centre
                self.add_practitioners(centre, self.rng.randint(*TOWNSHIP_PRACTITIONERS))
                self.villages[t.code] = self._build_villages(t, street, centre)
        return self._anchors(national, city_hospitals)

    def _build_villages(self, t: Division, street: bool, centre: dict[str, Any]) -> list[dict[str, Any]]:
        # Streets get community stations for their residents; towns a village (and its clinic) per ~900 rural residents.
        residents = self.township_pop.get(t.code, 0) if street else self.township_rural.get(t.code, 0)
        used: set[str] = set()
        out = []
        lon, lat = t.lon or 0.0, t.lat or 0.0
        if street:
            n = max(1, min(8, round(residents / RESIDENTS_PER_STATION)))
            names = self.rng.sample(COMMUNITIES, n)
            for i, cn in enumerate(names, 1):
                x, y = rules.place_around(lon, lat, i, n + 1, 0.015)
                f = self.add_facility(
                    code=f"{t.code}{i:03d}",
                    name=f"{cn}社区卫生服务站",
                    level=Level.VILLAGE_CLINIC,
                    kind=Kind.GENERAL,
                    division=t.code,
                    lon=x,
                    lat=y,
                    beds=0,
                    departments=DEPARTMENTS["village"],
                    parent_id=centre["id"],
                    doctors=self.rng.randint(2, 3),
                    nurses=self.rng.randint(1, 2),
                )
                self.add_practitioners(f, 2)
                out.append(f)
            return out
        per_village = self.rng.randint(*RESIDENTS_PER_VILLAGE)
        n = max(1, round(residents / per_village))
        for i in range(n):
            vname = self.village_name(used)
            x, y = rules.place_around(lon, lat, i + 1, n + 1, 0.05)
            doctors = 1 if self.rng.random() < 0.55 else 2
            f = self.add_facility(
                code=f"{t.code}{200 + i:03d}",
                name=f"{vname}卫生室",
                level=Level.VILLAGE_CLINIC,
                kind=Kind.GENERAL,
                division=t.code,
                lon=x,
                lat=y,
                beds=0,
                departments=DEPARTMENTS["village"],
                parent_id=centre["id"],
                ownership="collective",
                doctors=doctors,
                nurses=0,
            )
            self.add_practitioners(f, doctors, village=True)
            out.append(f)
        return out

    def _set_beds(self, f: dict[str, Any], beds: int) -> None:
        f["beds"] = beds
        f["doctors"] = max(2, round(beds * self.rng.uniform(0.32, 0.40)))
        f["nurses"] = max(1, round(beds * self.rng.uniform(0.45, 0.55)))
        f["staff_total"] = round((f["doctors"] + f["nurses"]) * 1.3)

    def _anchors(self, national: list[dict[str, Any]], city_hospitals: list[dict[str, Any]]) -> dict[str, uuid.UUID]:
        """Facilities for the demo users: one county (the most populous 县, else any county) and its first town."""
        rural = [c for c in self.counties if not c.name.endswith("区") and self.townships_of[c.code]]
        pool = rural or [c for c in self.counties if self.townships_of[c.code]]
        county = max(pool, key=lambda c: (c.population or 0, c.code))
        self.anchor_county = county
        towns = [t for t in self.townships_of[county.code] if not rules.is_street(t.name)] or self.townships_of[
            county.code
        ]
        township = towns[0]
        return {
            "regional_centre": national[0]["id"],
            "city_hospital": city_hospitals[0]["id"],
            "county_hospital": self.county_hospitals[county.code][0]["id"],
            "township_centre": self.township_centres[township.code]["id"],
            "village_clinic": self.villages[township.code][0]["id"],
        }

    def build_city_consortia(
        self,
        divisions: dict[str, Division],
        city: Division,
        city_hospitals: list[dict[str, Any]],
        national: list[dict[str, Any]],
    ) -> None:
        # County medical communities: every county (县, 县级市) — tight, led by the county general hospital.
        districts = []
        for c in self.counties:
            if c.name.endswith("区"):
                districts.append(c)
                continue
            hospitals = self.county_hospitals[c.code]
            members: list[tuple[dict[str, Any], str, str]] = [(hospitals[0], "tight", "lead")]
            members += [(h, "tight", "member") for h in hospitals[1:]]
            for t in self.townships_of[c.code]:
                members.append((self.township_centres[t.code], "tight", "member"))
                members += [(v, "tight", "member") for v in self.villages[t.code]]
            self.add_consortium(
                name=f"{c.name}医疗集团",
                form=ConsortiumForm.COUNTY_MEDICAL_COMMUNITY,
                lead=hospitals[0],
                division=c.code,
                members=members,
                started=date(2019, self.rng.randint(1, 12), 1),
                description="县乡村一体化紧密型县域医共体（六统一）",
            )

        # Urban medical groups over grids that partition the urban districts' townships/streets.
        leads = [h for h in city_hospitals if h["kind"] in (Kind.GENERAL.value, Kind.TCM.value)][:3]
        area = [t for d in districts for t in self.townships_of[d.code]]
        if len(leads) >= 2 and len(area) >= 2:
            k = min(len(leads), len(area))
            parts = _contiguous_parts(area, [self.township_pop.get(t.code, 1) for t in area], k)
            district_hospitals = [self.county_hospitals[d.code][0] for d in districts]
            for gi, (lead, part) in enumerate(zip(leads, parts, strict=False)):
                members = [(lead, "tight", "lead")]
                members += [(h, "tight", "member") for j, h in enumerate(district_hospitals) if j % k == gi]
                for t in part:
                    members.append((self.township_centres[t.code], "tight", "member"))
                    members += [(v, "tight", "member") for v in self.villages[t.code]]
                group = self.add_consortium(
                    name=f"{lead['name']}城市医疗集团",
                    form=ConsortiumForm.URBAN_MEDICAL_GROUP,
                    lead=lead,
                    division=city.code,
                    members=members,
                    started=date(2021, 6, 1),
                    description="网格化布局的紧密型城市医疗集团",
                )
                grid = {
                    "id": self.uid(f"grid/{gi}"),
                    "city_code": city.code,
                    "name": f"{city.name}第{gi + 1}网格",
                    "consortium_id": group["id"],
                }
                self.grids.append(grid)
                self.grid_townships += [
                    {
                        "id": self.uid(f"grid/{gi}/{t.code}"),
                        "grid_id": grid["id"],
                        "city_code": city.code,
                        "township_code": t.code,
                    }
                    for t in part
                ]

        # Telemedicine network centred on the city's lead hospital: imaging and ECG partners (loose).
        lead = city_hospitals[0]
        county_generals = [self.county_hospitals[c.code][0] for c in self.counties]
        centres = [self.township_centres[t.code] for c in self.counties for t in self.townships_of[c.code]]
        shuffled = centres[:]
        self.rng.shuffle(shuffled)
        n_imaging, n_ecg = round(0.16 * len(centres)), round(0.13 * len(centres))
        tele: list[tuple[dict[str, Any], str, str]] = [(lead, "loose", "lead")]
        tele += [(n, "loose", "member") for n in national]
        tele += [(h, "loose", "member") for h in city_hospitals[1:]]
        tele += [(h, "loose", "imaging_partner") for h in county_generals]
        tele += [(f, "loose", "imaging_partner") for f in shuffled[:n_imaging]]
        tele += [(f, "loose", "ecg_partner") for f in shuffled[n_imaging : n_imaging + n_ecg]]
        self.add_consortium(
            name=f"{city.name}远程医疗协作网",
            form=ConsortiumForm.TELEMEDICINE_NETWORK,
            lead=lead,
            division=city.code,
            members=tele,
            started=date(2020, 3, 1),
            description="远程会诊、远程影像、远程心电",
        )
        # A cardiology alliance: the lead hospital's strong department and the same specialty across the city.
        alliance: list[tuple[dict[str, Any], str, str]] = [(lead, "loose", "lead")]
        alliance += [(h, "loose", "member") for h in city_hospitals[1:] if h["kind"] == Kind.GENERAL.value]
        alliance += [(h, "loose", "member") for h in county_generals]
        self.add_consortium(
            name=f"{city.name}心血管专科联盟",
            form=ConsortiumForm.SPECIALIST_ALLIANCE,
            lead=lead,
            division=city.code,
            members=alliance,
            specialty="心血管内科",
            started=date(2021, 9, 1),
        )

    def build_postings(self, city_hospitals: list[dict[str, Any]], national: list[dict[str, Any]]) -> None:
        """Practitioners for the province and city hospitals, and expert postings down to every county hospital."""
        experts: list[dict[str, Any]] = []
        for f in self.facilities:
            if f["level"] in (Level.NATIONAL_REGIONAL_CENTRE.value, Level.TERTIARY.value):
                ps = self.add_practitioners(f, PRACTITIONERS[Level(f["level"])])
                if f in city_hospitals or f in national:
                    experts += [p for p in ps if p["title"] in (Title.CHIEF.value, Title.ASSOCIATE_CHIEF.value)]
        if not experts:
            return
        for c in self.counties:
            target = self.county_hospitals[c.code][0]
            for j, p in enumerate(self.rng.sample(experts, min(2, len(experts)))):
                self.roles.append(
                    {
                        "id": self.uid(f"posting/{c.code}/{j}"),
                        "practitioner_id": p["id"],
                        "facility_id": target["id"],
                        "kind": "posting",
                        "specialty": p["specialty"],
                        "start": date(2023, 1 + j * 6, 1),
                        "end": None,
                    }
                )

    def build_rotations_down(self) -> None:
        """County-hospital doctors of attending title or above rotating to township centres (下沉), half a year each:
        the tight county community's first resource indicator counts them. A few per county, some rotations over,
        some running, dated around the demo's activity (the last 90 days)."""
        today = utcnow().date()
        eligible_titles = {Title.ATTENDING.value, Title.ASSOCIATE_CHIEF.value, Title.CHIEF.value}
        for c in self.counties:
            lead = next((h for h in self.county_hospitals[c.code] if h["kind"] == Kind.GENERAL.value), None)
            centres = [f for code, f in self.township_centres.items() if code.startswith(c.code)]
            if lead is None or not centres:
                continue
            doctors = [
                p for p in self.practitioners if p["home_facility_id"] == lead["id"] and p["title"] in eligible_titles
            ]
            for j, p in enumerate(self.rng.sample(doctors, min(len(doctors), self.rng.randint(2, 8)))):
                start = today - timedelta(days=self.rng.randint(20, 300))
                self.roles.append(
                    {
                        "id": self.uid(f"rotation/{c.code}/{j}"),
                        "practitioner_id": p["id"],
                        "facility_id": self.rng.choice(centres)["id"],
                        "kind": "posting",
                        "specialty": p["specialty"],
                        "start": start,
                        "end": start + timedelta(days=182),
                    }
                )

    def write(self) -> None:
        s = self.session
        for model, rows in (
            (Facility, self.facilities),
            (Consortium, self.consortia),
            (ConsortiumMember, self.members),
            (Grid, self.grids),
            (GridTownship, self.grid_townships),
            (Practitioner, self.practitioners),
            (PractitionerRole, self.roles),
        ):
            # Parents before children: facility rows refer to their township centre.
            if model is Facility:
                rows = sorted(rows, key=lambda r: r["parent_id"] is not None)
            for chunk in service._chunks(rows, 5000):
                s.execute(insert(model), chunk)
        s.flush()


def _contiguous_parts(items: list[Division], weights: list[int], k: int) -> list[list[Division]]:
    """Cut a list ordered by code (neighbouring codes are neighbouring streets) into k runs of similar weight."""
    total = sum(weights) or 1
    parts: list[list[Division]] = [[] for _ in range(k)]
    acc, idx = 0, 0
    for i, (item, w) in enumerate(zip(items, weights, strict=True)):
        remaining_items, remaining_parts = len(items) - i, k - idx
        if parts[idx] and (acc >= total * (idx + 1) / k or remaining_items <= remaining_parts - 1) and idx < k - 1:
            idx += 1
        parts[idx].append(item)
        acc += w
    return [p for p in parts if p]


def build_region(
    session: Session,
    *,
    province: str,
    city: str,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _msg: None,
    project_fhir: bool = True,
) -> DemoRegion:
    """Build the demo region into the session (the caller's unit of work commits).

    project_fhir=False leaves the FHIR store empty (tests of the registry itself; the projection is most of the time).
    """
    prov = rules.normalise_division_code(province)
    city_code = rules.normalise_division_code(city)
    if len(prov) != 2:
        raise Invalid("province: a 2-digit code such as 14", field="province")
    if len(city_code) != 4 or not city_code.startswith(prov):
        raise Invalid(f"city: a 4-digit code of a city in province {prov}, such as {prov}10", field="city")
    region = _Builder(session, prov, city_code, seed, progress, project_fhir).run()
    progress(f"region built in {region.seconds:.1f} s: {region.summary()}")
    return region
