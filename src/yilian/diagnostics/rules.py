"""Pure decisions of shared diagnostics: turnaround targets, worklist order, uploads, critical values, recognition.

No database, no clock, no files: services gather the facts (and the time) and ask.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from yilian.errors import Invalid


class Modality(StrEnum):
    ECG = "ecg"
    IMAGING = "imaging"
    LAB = "lab"
    PATHOLOGY = "pathology"


class Priority(StrEnum):
    STAT = "stat"
    URGENT = "urgent"
    ROUTINE = "routine"


# The registry capability a facility needs to read each modality for others (network.rules.CAPABILITIES).
CENTRE_CAPABILITY: dict[Modality, str] = {
    Modality.ECG: "ecg_reading_centre",
    Modality.IMAGING: "imaging_reading_centre",
    Modality.LAB: "lab_centre",
    Modality.PATHOLOGY: "pathology_centre",
}

# Reading turnaround targets (received → signed) and critical limits are data: data/limits.yaml, per region, read by
# `limits.py`; these functions take them as arguments.
Targets = Mapping[tuple[Modality, Priority], timedelta]

PRIORITY_RANK = {Priority.STAT: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}


def due_at(received_at: datetime, modality: Modality | str, priority: Priority | str, targets: Targets) -> datetime:
    return received_at + targets[(Modality(modality), Priority(priority))]


def is_overdue(
    received_at: datetime | None,
    reported_at: datetime | None,
    modality: str,
    priority: str,
    now: datetime,
    targets: Targets,
) -> bool:
    """Received, not yet reported, and past its target."""
    return received_at is not None and reported_at is None and now > due_at(received_at, modality, priority, targets)


@dataclass(frozen=True)
class WorkItem:
    """What the worklist order needs to know about an order."""

    priority: str
    received_at: datetime | None
    ordered_at: datetime


def worklist_key(item: WorkItem) -> tuple[int, int, datetime]:
    """Studies that have arrived first (they can be read now), then by priority, then oldest first."""
    waiting = 0 if item.received_at is not None else 1
    return (waiting, PRIORITY_RANK[Priority(item.priority)], item.received_at or item.ordered_at)


# -- uploads -----------------------------------------------------------------------------------------------------------

# What a file really is, from its first bytes (the declared content type is only a claim).
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (128, b"DICM", "application/dicom"),
)

ACCEPTED: dict[Modality, frozenset[str]] = {
    # An ECG arrives as the machine's PDF/image print-out, a HL7 aECG XML file, or a DICOM waveform.
    Modality.ECG: frozenset({"application/pdf", "image/png", "image/jpeg", "application/xml", "application/dicom"}),
    Modality.IMAGING: frozenset({"application/dicom", "image/jpeg", "image/png"}),
    Modality.LAB: frozenset({"application/pdf"}),
    Modality.PATHOLOGY: frozenset({"application/pdf", "image/jpeg", "image/png"}),
}


def sniff(head: bytes) -> str | None:
    for offset, magic, kind in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<?xml") or text.startswith(b"<AnnotatedECG"):
        return "application/xml"
    return None


def check_upload(modality: str, head: bytes, size: int, max_bytes: int) -> str:
    """The real content type of an upload for this modality, or Invalid naming the field `file`."""
    if size == 0:
        raise Invalid("the file is empty", field="file")
    if size > max_bytes:
        raise Invalid(f"the file is larger than the {max_bytes / 1_048_576:.0f} MB accepted", field="file")
    kind = sniff(head)
    accepted = ACCEPTED[Modality(modality)]
    names = ", ".join(sorted(a.split("/")[1].upper() for a in accepted))
    if kind is None or kind not in accepted:
        what = kind.split("/")[1].upper() if kind else "not a recognised file"
        raise Invalid(f"a {modality} study must be one of {names}; this file is {what}", field="file")
    return kind


# -- DICOM UIDs ---------------------------------------------------------------------------------------------------------


def check_uid(uid: str, *, field: str, what: str = "StudyInstanceUID") -> str:
    """A DICOM UID (PS3.5 §9.1): digits and dots, at most 64 characters, no empty component, no leading zero in a
    component (except "0" itself). Invalid naming `field` otherwise."""
    text = uid.strip().rstrip("\x00").strip()
    problem = None
    if not text:
        problem = "is empty"
    elif len(text) > 64:
        problem = f"is {len(text)} characters long; at most 64"
    elif any(c not in "0123456789." for c in text):
        problem = "may hold only digits and dots"
    elif any(part == "" for part in text.split(".")):
        problem = "has an empty component (two dots in a row, or a dot at either end)"
    elif any(len(part) > 1 and part[0] == "0" for part in text.split(".")):
        problem = "has a component with a leading zero"
    if problem:
        raise Invalid(f"{what} {text[:80]!r} {problem} (DICOM UID: digits and dots, ≤ 64 characters)", field=field)
    return text


_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"OV", b"SV", b"UV"}
_IMPLICIT_LE = "1.2.840.10008.1.2"


def dicom_study_uid(data: bytes) -> str | None:
    """The StudyInstanceUID (0020,000D) of a DICOM Part 10 file, read from its header without a DICOM library; None
    when the file does not carry one before its first sequence of undefined length (then a UID is generated)."""
    if data[128:132] != b"DICM":
        return None
    pos, implicit = 132, False
    while pos + 8 <= len(data):
        group, element = (
            int.from_bytes(data[pos : pos + 2], "little"),
            int.from_bytes(data[pos + 2 : pos + 4], "little"),
        )
        in_meta = group == 0x0002
        if implicit and not in_meta:
            length, header = int.from_bytes(data[pos + 4 : pos + 8], "little"), 8
        else:
            vr = data[pos + 4 : pos + 6]
            if vr in _LONG_LENGTH_VRS:
                length, header = int.from_bytes(data[pos + 8 : pos + 12], "little"), 12
            else:
                length, header = int.from_bytes(data[pos + 6 : pos + 8], "little"), 8
        if length == 0xFFFFFFFF:
            return None  # a sequence of undefined length: give up rather than parse nested items
        value = data[pos + header : pos + header + length]
        if (group, element) == (0x0002, 0x0010):
            implicit = value.rstrip(b"\x00 ").decode("ascii", "replace") == _IMPLICIT_LE
        if (group, element) == (0x0020, 0x000D):
            return value.decode("ascii", "replace").rstrip("\x00 ")
        if (group, element) > (0x0020, 0x000D):
            return None
        pos += header + length
    return None


# -- measured values and critical values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    code: str
    display: str
    unit: str
    loinc: str | None
    low: float | None = None  # critical when below
    high: float | None = None  # critical when above


# ECG measurements and common lab values (LOINC where the code is well known). Their critical limits are set by each
# laboratory and region: data/limits.yaml (`limits.for_division(...).measures` carries them).
MEASURES: dict[str, Measure] = {
    m.code: m
    for m in (
        Measure("heart_rate", "Heart rate", "/min", "8867-4"),
        Measure("pr", "PR interval", "ms", "8625-6"),
        Measure("qrs", "QRS duration", "ms", "8633-0"),
        Measure("qtc", "QTc interval", "ms", "8636-3"),
        Measure("potassium", "Potassium", "mmol/L", "2823-3"),
        Measure("sodium", "Sodium", "mmol/L", "2951-2"),
        Measure("glucose", "Glucose", "mmol/L", "2345-7"),
        Measure("hemoglobin", "Hemoglobin", "g/L", "718-7"),
        Measure("platelets", "Platelets", "10*9/L", "777-3"),
        Measure("troponin_i", "Troponin I", "ng/mL", "10839-9"),
        Measure("hba1c", "Hemoglobin A1c", "%", "4548-4"),
        Measure("creatinine", "Creatinine", "umol/L", "2160-0"),
    )
}


def parse_measurements(values: Mapping[str, object]) -> dict[str, float]:
    """Known measures with numeric values; anything else is refused naming the measure."""
    out: dict[str, float] = {}
    for code, raw in values.items():
        if code not in MEASURES:
            raise Invalid(f"unknown measure {code!r}; known: {', '.join(MEASURES)}", field=f"measurements.{code}")
        try:
            value = float(str(raw))
        except ValueError:
            raise Invalid(f"{code} must be a number, not {raw!r}", field=f"measurements.{code}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise Invalid(f"{code} must be a finite number", field=f"measurements.{code}")
        out[code] = value
    return out


def critical_values(values: Mapping[str, float], measures: Mapping[str, Measure]) -> list[str]:
    """The measures that are beyond their critical limit (the region's `measures`), as readable phrases
    ("QTc interval 530 ms > 500")."""
    found = []
    for code, value in values.items():
        m = measures[code]
        if m.low is not None and value < m.low:
            found.append(f"{m.display} {value:g} {m.unit} < {m.low:g}")
        if m.high is not None and value > m.high:
            found.append(f"{m.display} {value:g} {m.unit} > {m.high:g}")
    return found


# -- turnaround --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turnaround:
    count: int
    median_minutes: float | None
    p90_minutes: float | None


def turnaround(durations: Iterable[timedelta]) -> Turnaround:
    minutes = sorted(d.total_seconds() / 60 for d in durations)
    if not minutes:
        return Turnaround(0, None, None)
    p90 = minutes[min(len(minutes) - 1, round(0.9 * (len(minutes) - 1)))]
    return Turnaround(len(minutes), round(statistics.median(minutes), 1), round(p90, 1))


# -- mutual recognition (检查检验结果互认) -------------------------------------------------------------------------------


class RepeatReason(StrEnum):
    """The six situations in which a recognised result may be repeated (国卫医发〔2022〕6号, art. 19)."""

    DISEASE_CHANGED = "disease_changed"
    FAST_CHANGING = "fast_changing"
    MAJOR_INTERVENTION = "major_intervention"
    EMERGENCY = "emergency"
    FORENSIC = "forensic"
    OTHER = "other"


REASON_LABELS: dict[RepeatReason, str] = {
    RepeatReason.DISEASE_CHANGED: "The disease has changed and the result no longer fits the clinical picture",
    RepeatReason.FAST_CHANGING: "The value changes fast in the course of the disease",
    RepeatReason.MAJOR_INTERVENTION: "The result is decisive before a major intervention (surgery, transfusion)",
    RepeatReason.EMERGENCY: "Emergency or resuscitation",
    RepeatReason.FORENSIC: "Forensic, disability or retirement assessment",
    RepeatReason.OTHER: "Another situation where re-testing is truly needed",
}


class Scope(StrEnum):
    CONSORTIUM = "consortium"
    CITY = "city"
    PROVINCE = "province"


@dataclass(frozen=True)
class RecognisedItem:
    code: str
    name: str
    name_en: str
    modality: Modality
    validity_days: int
    scope: Scope
    price_fen: int
    loinc: str | None = None


@dataclass(frozen=True)
class PlaceFacts:
    """Where a facility stands, for the scope of recognition."""

    facility_id: object
    division_code: str
    consortium_ids: frozenset[object]


@dataclass(frozen=True)
class PriorResult:
    report_id: object
    item_code: str
    reported_at: datetime
    performed_by: PlaceFacts  # the facility that produced the result (the reading centre)
    qualified_until: date | None  # quality control of that facility for this item, None when not qualified


def in_scope(scope: Scope | str, ordering: PlaceFacts, performer: PlaceFacts) -> bool:
    match Scope(scope):
        case Scope.CONSORTIUM:
            return ordering.facility_id == performer.facility_id or bool(
                ordering.consortium_ids & performer.consortium_ids
            )
        case Scope.CITY:
            return ordering.division_code[:4] == performer.division_code[:4]
        case Scope.PROVINCE:
            return ordering.division_code[:2] == performer.division_code[:2]


def valid_until(item: RecognisedItem, reported_at: datetime) -> datetime:
    return reported_at + timedelta(days=item.validity_days)


def recognised_result(
    item: RecognisedItem, ordering: PlaceFacts, priors: Sequence[PriorResult], now: datetime
) -> PriorResult | None:
    """The newest earlier result this order should recognise: the same item, inside its validity window, inside the
    item's scope, from a facility that passed quality control for it on the day of the result. None: order freely."""
    candidates = [
        p
        for p in priors
        if p.item_code == item.code
        and p.reported_at <= now < valid_until(item, p.reported_at)
        and p.qualified_until is not None
        and p.reported_at.date() <= p.qualified_until
        and in_scope(item.scope, ordering, p.performed_by)
    ]
    return max(candidates, key=lambda p: p.reported_at, default=None)


def check_repeat(reason: str | None, patient_informed: bool) -> RepeatReason:
    """A repeat of a recognised result needs one of the six reasons and the patient told why."""
    if not reason:
        raise Invalid(
            "a valid recognised result exists: reuse it, or give one of the six reasons to repeat the test",
            field="repeat_reason",
        )
    try:
        parsed = RepeatReason(reason)
    except ValueError:
        raise Invalid(
            f"repeat_reason must be one of {', '.join(r.value for r in RepeatReason)}", field="repeat_reason"
        ) from None
    if not patient_informed:
        raise Invalid("explain the repeat to the patient first, then tick 'patient informed'", field="patient_informed")
    return parsed


def repeat_rate(repeats: int, reused: int) -> float | None:
    total = repeats + reused
    return None if total == 0 else round(repeats / total, 3)


# -- teleconsultation --------------------------------------------------------------------------------------------------


class ConsultKind(StrEnum):
    CONSULTATION = "consultation"  # 远程会诊: one expert
    MDT = "mdt"  # 多学科会诊: several experts, one opinion
    WARD_ROUND = "ward_round"  # 远程查房


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


def check_experts(kind: ConsultKind | str, experts: Sequence[str]) -> None:
    if not experts:
        raise Invalid("assign at least one expert", field="experts")
    if len(set(experts)) != len(experts):
        raise Invalid("an expert is listed twice", field="experts")
    if ConsultKind(kind) == ConsultKind.MDT and len(experts) < 2:
        raise Invalid("a multi-disciplinary consultation needs at least two experts", field="experts")


def meeting_url(template: str, consultation_id: str) -> str | None:
    """The video link from the configured template (`{id}` is the consultation's id); None when none is set."""
    if not template:
        return None
    return template.replace("{id}", consultation_id)
