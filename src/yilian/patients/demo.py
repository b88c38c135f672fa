"""Demo patients for the demo region: generated people registered at the real facilities of their county (village
clinic, township centre, county hospital, city hospital), with planted duplicates and hard negatives, a few visits and
results each, linked by the batch matcher. One function, a few seconds."""

from __future__ import annotations

import functools
import random
import uuid
import zlib
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.fhir import store
from yilian.patients import service
from yilian.patients.address import parse_address
from yilian.patients.generator import generate
from yilian.patients.models import MpiReview

DIVISION_EXT = "https://yilian.example.org/fhir/StructureDefinition/division-code"

# The generator's facility codes end in V…/T…/H01 (village, township, county hospital); 141000H01 is the city hospital.
_LEVEL_OF_KIND = {
    "village": "village_clinic",
    "township": "township_centre",
    "county": "county_hospital",
    "city": "tertiary",
}
# Where visits and admissions happen, by facility level (see _care).
_OUTPATIENT_LEVELS = ("village_clinic", "township_centre", "county_hospital", "tertiary")
_OUTPATIENT_WEIGHTS = (0.25, 0.25, 0.4, 0.1)
_INPATIENT_LEVELS = ("township_centre", "county_hospital", "tertiary")
_INPATIENT_WEIGHTS = (0.2, 0.7, 0.1)
_VISITS = (
    ("I10", "原发性高血压", "8480-6", "收缩压", 120, 185, "mmHg", "mm[Hg]"),
    ("E11.9", "2型糖尿病", "4548-4", "糖化血红蛋白", 5.5, 10.5, "%", "%"),
    ("J44.9", "慢性阻塞性肺疾病", "19926-5", "FEV1/FVC", 45, 80, "%", "%"),
)


def _kind(code: str) -> str:
    if code.startswith("141000"):
        return "city"
    letter = code[6:7]
    return {"V": "village", "T": "township"}.get(letter, "county")


def add_demo_patients(
    session: Session,
    *,
    records: int = 200,
    seed: int = 1,
    window_days: int = 90,
    today: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Register generated patients at real demo facilities and link them. Returns a summary for the console.

    Call after the network demo is built (facilities of Linfen, 1410xx). Safe to call once per database."""
    from yilian.network import service as network

    say = progress or (lambda _msg: None)
    today = today or date.today()
    generated = generate(records, seed=seed, hard_negative_rate=0.05)
    cache: dict[tuple[str, str], list[Any]] = {}

    def facilities(county: str, level: str) -> list[Any]:
        key = (county, level)
        if key not in cache:
            prefix = county if level != "tertiary" else county[:4]
            cache[key] = network.list_facilities(session, division_prefix=prefix, level=level, limit=50).items
            if not cache[key]:
                cache[key] = network.list_facilities(session, division_prefix=county[:4], level=level, limit=50).items
        return cache[key]

    resources: list[dict[str, Any]] = []
    placed = 0
    for patient in generated.patients:
        org = patient.get("managingOrganization") or {}
        code = (org.get("identifier") or {}).get("value") or ""
        county = code[:6] if code[:4] == "1410" else "141024"
        choices = facilities(county, _LEVEL_OF_KIND[_kind(code)])
        if choices:
            f = choices[zlib.crc32(code.encode()) % len(choices)]
            patient["managingOrganization"] = {
                "reference": f"Organization/{f.id}",
                "display": f.name,
                "identifier": {"system": "urn:yilian:facility-code", "value": f.code},
            }
            placed += 1
        county = _record_residence(patient, county if _kind(code) != "city" else None) or county
        resources.append(patient)
        resources.extend(
            _care(
                patient,
                zlib.crc32(patient["id"].encode()),
                functools.partial(_pick, facilities, county),
                today,
                window_days,
            )
        )
    say(f"writing {len(generated.patients)} patients ({placed} at demo facilities) and their visits")
    store.bulk_put(session, resources)
    if len(generated.patients) > 2000:
        service.link_all(session, generated.patients, progress=say)
    else:
        # One registration at a time, as the desks would: no Splink start-up (≈ 5 s), so the demo stays quick.
        for patient in generated.patients:
            service.match_one(session, patient)
    open_reviews = session.scalar(select(func.count()).select_from(MpiReview).where(MpiReview.status == "open"))
    return {
        "patients": len(generated.patients),
        "resources": len(resources),
        "clusters": len(service.clusters(session)),
        "review": int(open_reviews or 0),
    }


def _record_residence(patient: dict[str, Any], facility_county: str | None) -> str | None:
    """Put the county of residence on the home address, as a registration desk records it: parsed from the address
    text, or else the county of the registering facility (a village clinic knows its own county; the city hospital
    does not). Indicators of in-county treatment count by this code."""
    county = None
    for address in patient.get("address") or []:
        county = parse_address(address.get("text") or "")[0] or facility_county
        if county:
            address["extension"] = [{"url": DIVISION_EXT, "valueCode": county}]
    return county


def _pick(facilities: Callable[[str, str], list[Any]], county: str, level: str, k: int) -> Any:
    items = facilities(county, level)
    return items[k % len(items)] if items else None


def _ref(f: Any) -> dict[str, Any]:
    return {"reference": f"Organization/{f.id}", "display": f.name}


def _stamp(day: date, hour: int, minute: int = 0) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00+08:00"


def _care(
    patient: dict[str, Any], n: int, where: Callable[[str, int], Any], today: date, window_days: int
) -> list[dict[str, Any]]:
    """A person's care in the recent window: one to three outpatient visits (the first with a diagnosis and a
    result, so the person page has a timeline across facilities) and, for about one in four, an admission (these
    are the people who came to care, not the whole population).

    `where(level, k)` picks the k-th facility of that level in the person's county (None when there is none).
    The level mix follows the national picture the twin is calibrated to (DOMAIN.md): about half of visits in
    primary care, about nine in ten admissions inside the county."""
    rng = random.Random(n)
    icd, diagnosis, loinc, test, low, high, unit, ucum = _VISITS[n % len(_VISITS)]
    ref = {"reference": f"Patient/{patient['id']}"}
    home = patient.get("managingOrganization") or {}
    out: list[dict[str, Any]] = []

    def encounter(key: str, cls: str, label: str, facility: dict[str, Any] | None, start: str, end: str) -> str:
        encounter_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{patient['id']}/{key}"))
        display = {"AMB": "门诊", "IMP": "住院"}[cls]
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": encounter_id,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls, "display": display},
            "type": [{"text": label}],
            "subject": ref,
            "period": {"start": start, "end": end},
        }
        if facility:
            resource["serviceProvider"] = facility
        out.append(resource)
        return encounter_id

    visits = 1 + rng.choice((0, 0, 1, 1, 2))
    for k in range(visits):
        day = today - timedelta(days=rng.randrange(window_days))
        if k == 0 and home.get("reference"):
            facility: dict[str, Any] | None = {"reference": home["reference"], "display": home.get("display", "")}
        else:
            level = rng.choices(_OUTPATIENT_LEVELS, _OUTPATIENT_WEIGHTS)[0]
            f = where(level, rng.randrange(1 << 16))
            facility = _ref(f) if f else None
        encounter_id = encounter(f"amb{k}", "AMB", "门诊就诊", facility, _stamp(day, 9), _stamp(day, 9, 20))
        if k:
            continue
        value = round(low + (high - low) * rng.random(), 1)
        out += [
            {
                "resourceType": "Condition",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, encounter_id + "/c")),
                "clinicalStatus": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
                },
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd, "display": diagnosis}]},
                "subject": ref,
                "encounter": {"reference": f"Encounter/{encounter_id}"},
                "recordedDate": day.isoformat(),
            },
            {
                "resourceType": "Observation",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, encounter_id + "/o")),
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": test}]},
                "subject": ref,
                "encounter": {"reference": f"Encounter/{encounter_id}"},
                "effectiveDateTime": _stamp(day, 9, 10),
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum},
            },
        ]
    if rng.random() < 1 / 4:
        level = rng.choices(_INPATIENT_LEVELS, _INPATIENT_WEIGHTS)[0]
        f = where(level, rng.randrange(1 << 16))
        stay = rng.randint(3, 12)
        admitted = today - timedelta(days=rng.randrange(stay, window_days))
        encounter(
            "imp",
            "IMP",
            "住院",
            _ref(f) if f else None,
            _stamp(admitted, 10),
            _stamp(admitted + timedelta(days=stay), 9),
        )
    return out
