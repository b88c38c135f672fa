"""Demo patients for the demo region: generated people registered at the real facilities of their county (village
clinic, township centre, county hospital, city hospital), with planted duplicates and hard negatives, a few visits and
results each, linked by the batch matcher. One function, a few seconds."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yilian.fhir import store
from yilian.patients import service
from yilian.patients.generator import generate
from yilian.patients.models import MpiReview

# The generator's facility codes end in V…/T…/H01 (village, township, county hospital); 141000H01 is the city hospital.
_LEVEL_OF_KIND = {
    "village": "village_clinic",
    "township": "township_centre",
    "county": "county_hospital",
    "city": "tertiary",
}
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
    session: Session, *, records: int = 200, seed: int = 1, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Register generated patients at real demo facilities and link them. Returns a summary for the console.

    Call after the network demo is built (facilities of Linfen, 1410xx). Safe to call once per database."""
    from yilian.network import service as network

    say = progress or (lambda _msg: None)
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
        resources.append(patient)
        resources.extend(_care(patient, zlib.crc32(patient["id"].encode())))
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


def _care(patient: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """One visit with a diagnosis and a result, so that the person page has a timeline across facilities."""
    icd, diagnosis, loinc, test, low, high, unit, ucum = _VISITS[n % len(_VISITS)]
    ref = {"reference": f"Patient/{patient['id']}"}
    day = f"2026-{1 + n % 10:02d}-{1 + n % 27:02d}"
    encounter_id = str(uuid.UUID(int=n ^ uuid.UUID(patient["id"]).int))
    value = round(low + (high - low) * ((n >> 8) % 100) / 100, 1)
    return [
        {
            "resourceType": "Encounter",
            "id": encounter_id,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "门诊"},
            "type": [{"text": "门诊就诊"}],
            "subject": ref,
            "period": {"start": f"{day}T09:00:00+08:00", "end": f"{day}T09:20:00+08:00"},
        },
        {
            "resourceType": "Condition",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, encounter_id + "/c")),
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd, "display": diagnosis}]},
            "subject": ref,
            "encounter": {"reference": f"Encounter/{encounter_id}"},
            "recordedDate": day,
        },
        {
            "resourceType": "Observation",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, encounter_id + "/o")),
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": test}]},
            "subject": ref,
            "encounter": {"reference": f"Encounter/{encounter_id}"},
            "effectiveDateTime": f"{day}T09:10:00+08:00",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum},
        },
    ]
