"""A Synthea-like FHIR R4 data set for the FHIR benchmarks: patients with valid resident ID cards and Chinese names,
their encounters, vital signs and labs, conditions, procedures, prescriptions, immunizations and reports.

Deterministic for a seed. About `per_patient` resources per patient (Synthea's own output averages a few hundred).
Used by fhir_ingest.py (NDJSON files, Bulk Data format) and fhir_query.py (loaded straight into the store).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

FAMILY = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
DIVISIONS = ["141002", "141021", "141022", "141023", "411024", "411025", "211002", "211103"]
VITALS = [
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 185),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55, 115),
    ("8867-4", "Heart rate", "/min", 50, 120),
    ("29463-7", "Body weight", "kg", 40, 110),
    ("8302-2", "Body height", "cm", 145, 190),
    ("39156-5", "Body mass index", "kg/m2", 16, 38),
    ("9279-1", "Respiratory rate", "/min", 12, 24),
    ("8310-5", "Body temperature", "Cel", 36, 39.5),
]
LABS = [
    ("2345-7", "Glucose", "mmol/L", 3.5, 15.0),
    ("4548-4", "Hemoglobin A1c", "%", 4.5, 11.0),
    ("2093-3", "Cholesterol", "mmol/L", 3.0, 8.0),
    ("718-7", "Hemoglobin", "g/L", 90, 170),
    ("2160-0", "Creatinine", "umol/L", 40, 180),
    ("6690-2", "Leukocytes", "10*9/L", 3, 15),
    ("777-3", "Platelets", "10*9/L", 100, 400),
    ("1742-6", "ALT", "U/L", 5, 80),
]
CONDITIONS = [("I10", "高血压"), ("E11.9", "2型糖尿病"), ("J44.1", "慢阻肺"), ("I25.1", "冠心病"), ("J18.9", "肺炎")]
DRUGS = [("C09AA02", "依那普利"), ("A10BA02", "二甲双胍"), ("C10AA05", "阿托伐他汀"), ("B01AC06", "阿司匹林")]
VACCINES = [("140", "流感疫苗"), ("133", "肺炎球菌疫苗"), ("08", "乙肝疫苗")]
WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]
ICD = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def resident_id(rng: random.Random, born: date) -> str:
    first17 = f"{rng.choice(DIVISIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return first17 + ("X" if check == 10 else str(check))


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _instant(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def patient_bundle(rng: random.Random, per_patient: int) -> Iterator[dict[str, Any]]:
    """One patient's resources, Patient first."""
    pid = _uid(rng)
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(90 * 365))
    gender = rng.choice(["male", "female"])
    family, given = rng.choice(FAMILY), "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
    yield {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]},
                "system": "urn:yilian:sid:cn-resident-id",
                "value": resident_id(rng, born),
            },
            {"system": "urn:yilian:facility:141002001:mrn", "value": f"MRN{rng.randrange(10**8):08d}"},
        ],
        "name": [{"use": "official", "family": family, "given": [given], "text": family + given}],
        "telecom": [{"system": "phone", "value": f"13{rng.randrange(10**9):09d}"}],
        "gender": gender,
        "birthDate": born.isoformat(),
        "address": [{"city": "临汾市", "district": "尧都区", "line": [f"解放路{rng.randrange(1, 300)}号"]}],
    }
    subject = {"reference": f"Patient/{pid}"}
    made = 1
    for code, display in rng.sample(VACCINES, k=rng.randint(1, 3)):
        yield {
            "resourceType": "Immunization",
            "id": _uid(rng),
            "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": code, "display": display}]},
            "patient": subject,
            "occurrenceDateTime": _instant(datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(2000))),
        }
        made += 1
    chronic = rng.sample(CONDITIONS, k=rng.randint(0, 2))
    start = datetime(2019, 1, 1, 8, tzinfo=UTC)
    while made < per_patient:
        start += timedelta(days=rng.randint(10, 60), minutes=rng.randrange(600))
        eid = _uid(rng)
        encounter_ref = {"reference": f"Encounter/{eid}"}
        yield {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "门诊"}]}],
            "subject": subject,
            "period": {"start": _instant(start), "end": _instant(start + timedelta(minutes=30))},
            "serviceProvider": {"reference": "Organization/county-hospital"},
        }
        made += 1
        when = _instant(start + timedelta(minutes=10))
        results = []
        for code, display, unit, lo, hi in VITALS + rng.sample(LABS, k=rng.randint(2, len(LABS))):
            oid = _uid(rng)
            results.append({"reference": f"Observation/{oid}"})
            yield {
                "resourceType": "Observation",
                "id": oid,
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs" if (code, display, unit, lo, hi) in VITALS else "laboratory",
                            }
                        ]
                    }
                ],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": subject,
                "encounter": encounter_ref,
                "effectiveDateTime": when,
                "issued": _instant(start + timedelta(minutes=40)),
                "valueQuantity": {"value": round(rng.uniform(lo, hi), 1), "unit": unit, "system": UCUM, "code": unit},
            }
            made += 1
        yield {
            "resourceType": "DiagnosticReport",
            "id": _uid(rng),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "24323-8", "display": "综合代谢检查"}]},
            "subject": subject,
            "encounter": encounter_ref,
            "effectiveDateTime": when,
            "result": results[len(VITALS) :],
        }
        made += 1
        for code, display in chronic:
            yield {
                "resourceType": "Condition",
                "id": _uid(rng),
                "clinicalStatus": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
                },
                "code": {"coding": [{"system": ICD, "code": code, "display": display}]},
                "subject": subject,
                "encounter": encounter_ref,
                "recordedDate": when,
            }
            made += 1
        for code, display in rng.sample(DRUGS, k=rng.randint(0, 2)):
            yield {
                "resourceType": "MedicationRequest",
                "id": _uid(rng),
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [{"system": "http://www.whocc.no/atc", "code": code, "display": display}]
                },
                "subject": subject,
                "encounter": encounter_ref,
                "authoredOn": when,
            }
            made += 1
        if rng.random() < 0.1:
            yield {
                "resourceType": "Procedure",
                "id": _uid(rng),
                "status": "completed",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "29303009", "display": "心电图"}]},
                "subject": subject,
                "encounter": encounter_ref,
                "performedDateTime": when,
            }
            made += 1


def resources(patients: int, per_patient: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(patients):
        yield from patient_bundle(rng, per_patient)


def write_ndjson(folder: Path, patients: int, per_patient: int, seed: int = 7) -> dict[str, int]:
    """One NDJSON file per type (Bulk Data layout); returns how many resources of each type were written."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    counts: dict[str, int] = {}
    try:
        for res in resources(patients, per_patient, seed):
            t = res["resourceType"]
            if t not in files:
                files[t] = (folder / f"{t}.ndjson").open("w", encoding="utf-8")
                counts[t] = 0
            files[t].write(json.dumps(res, ensure_ascii=False, separators=(",", ":")) + "\n")
            counts[t] += 1
    finally:
        for fh in files.values():
            fh.close()
    return counts
