"""A small QIDO-RS client: find studies in a PACS (Orthanc, dcm4chee, ...) when YILIAN_DICOMWEB_URL is set.

Only searches (QIDO-RS) and the WADO-RS address of a study; images stay in the PACS and viewers open them there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from yilian.diagnostics.settings import settings
from yilian.errors import Invalid, NotFound, Unavailable

# DICOM tags used (group+element, as DICOM JSON keys them).
STUDY_UID = "0020000D"
STUDY_DATE = "00080020"
STUDY_TIME = "00080030"
ACCESSION = "00080050"
MODALITIES = "00080061"
DESCRIPTION = "00081030"
PATIENT_ID = "00100020"
PATIENT_NAME = "00100010"
SERIES_COUNT = "00201206"
INSTANCE_COUNT = "00201208"


@dataclass(frozen=True)
class PacsStudy:
    study_uid: str
    study_date: str | None
    accession: str | None
    modalities: list[str]
    description: str | None
    patient_id: str | None
    patient_name: str | None
    series: int | None
    instances: int | None
    wado_url: str


def configured() -> bool:
    return bool(settings().dicomweb_url)


def _base() -> str:
    base = settings().dicomweb_url.rstrip("/")
    if not base:
        raise Unavailable("no PACS is configured: set YILIAN_DICOMWEB_URL (see docs/diagnostics.md)", field="study_uid")
    return base


def _value(item: dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return None
    first = values[0]
    if isinstance(first, dict) and "Alphabetic" in first:  # PN
        return first["Alphabetic"]
    return first


def _values(item: dict[str, Any], tag: str) -> list[str]:
    return [str(v) for v in (item.get(tag) or {}).get("Value") or []]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def search_studies(
    *, patient_id: str | None = None, study_uid: str | None = None, accession: str | None = None, limit: int = 50
) -> list[PacsStudy]:
    """QIDO-RS GET {base}/studies with the given matching keys. Unavailable when the PACS cannot be reached."""
    base = _base()
    params: dict[str, str] = {
        "limit": str(limit),
        "includefield": f"{MODALITIES},{DESCRIPTION},{SERIES_COUNT},{INSTANCE_COUNT}",
    }
    if patient_id:
        params["PatientID"] = patient_id
    if study_uid:
        params["StudyInstanceUID"] = study_uid
    if accession:
        params["AccessionNumber"] = accession
    try:
        response = httpx.get(
            f"{base}/studies",
            params=params,
            headers={"Accept": "application/dicom+json"},
            timeout=settings().dicomweb_timeout,
        )
    except httpx.HTTPError as exc:
        raise Unavailable(f"the PACS at {base} did not answer ({type(exc).__name__})", field="study_uid") from None
    if response.status_code == 204:
        return []
    if response.status_code >= 400:
        raise Unavailable(f"the PACS at {base} answered {response.status_code}", field="study_uid")
    try:
        payload = response.json() if response.content else []
    except ValueError:
        raise Unavailable(f"the PACS at {base} did not answer with DICOM JSON", field="study_uid") from None
    if not isinstance(payload, list):
        raise Unavailable(f"the PACS at {base} did not answer with a list of studies", field="study_uid")
    out = []
    for item in payload:
        uid = _value(item, STUDY_UID)
        if not uid:
            continue
        out.append(
            PacsStudy(
                study_uid=str(uid),
                study_date=_value(item, STUDY_DATE),
                accession=_value(item, ACCESSION),
                modalities=_values(item, MODALITIES),
                description=_value(item, DESCRIPTION),
                patient_id=_value(item, PATIENT_ID),
                patient_name=_value(item, PATIENT_NAME),
                series=_int(_value(item, SERIES_COUNT)),
                instances=_int(_value(item, INSTANCE_COUNT)),
                wado_url=f"{base}/studies/{uid}",
            )
        )
    return out


def find_study(study_uid: str) -> PacsStudy:
    if not study_uid:
        raise Invalid("give the Study Instance UID", field="study_uid")
    for study in search_studies(study_uid=study_uid, limit=2):
        if study.study_uid == study_uid:
            return study
    raise NotFound(f"the PACS has no study {study_uid}", field="study_uid")
