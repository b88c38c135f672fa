"""What goes in and out of shared diagnostics: pydantic models for the API (also what pages render)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from yilian.diagnostics.rules import ConsultKind, Modality, Priority, Urgency, check_uid

UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrderIn(_In):
    """An order to a reading centre. `patient` is "Patient/<id>" (or the bare id) of a Patient in the shared record."""

    patient: str = Field(min_length=1, max_length=80)
    modality: Modality
    item_code: str | None = Field(default=None, max_length=32, description="A recognised item (see the catalogue)")
    item_name: str | None = Field(default=None, max_length=128, description="Free description when not catalogued")
    centre: str | None = Field(default=None, max_length=64, description="Centre facility id or code; default: nearest")
    priority: Priority = Priority.ROUTINE
    clinical_question: str = Field(default="", max_length=2000)
    repeat_reason: str | None = Field(default=None, max_length=32, description="One of the six reasons to repeat")
    repeat_note: str | None = Field(default=None, max_length=1000)
    patient_informed: bool = False


class RecognitionIn(_In):
    patient: str = Field(min_length=1, max_length=80)
    item_code: str = Field(min_length=1, max_length=32)


class StudyIn(_In):
    """A study in the PACS (by Study Instance UID) and/or measured values (ECG intervals, lab results)."""

    study_uid: str | None = Field(default=None, max_length=64, pattern=UID_PATTERN)
    description: str | None = Field(default=None, max_length=200)
    measurements: dict[str, float | str] = Field(default_factory=dict)

    @field_validator("study_uid")
    @classmethod
    def _dicom_uid(cls, value: str | None) -> str | None:
        # The pattern catches letters and length; DICOM also forbids leading zeros in a component.
        return None if value is None else check_uid(value, field="study_uid")


class ReportIn(_In):
    findings: str = Field(default="", max_length=8000)
    conclusion: str = Field(min_length=1, max_length=4000)
    critical: bool = False


class AmendIn(_In):
    """A correction of a signed report: the new text, and why (kept with the earlier version)."""

    findings: str = Field(default="", max_length=8000)
    conclusion: str = Field(min_length=1, max_length=4000)
    critical: bool = False
    reason: str = Field(min_length=1, max_length=1000)


class ChannelIn(_In):
    """Where the facility wants report and critical-value notices besides the in-app inbox."""

    kind: Literal["webhook", "sms"]
    target: str = Field(min_length=1, max_length=500, description="The webhook URL, or the phone number for SMS")
    critical_only: bool = Field(default=False, description="Only critical values (e.g. the duty phone)")


class ChannelOut(BaseModel):
    id: uuid.UUID
    kind: str
    target: str
    critical_only: bool
    created_by: str
    created_at: datetime


class CancelIn(_In):
    reason: str = Field(min_length=1, max_length=500)


class QualificationIn(_In):
    facility: str = Field(min_length=1, max_length=64)
    item_code: str = Field(min_length=1, max_length=32, description="An item code, or *ecg / *imaging / ... for all")
    passed_on: date
    valid_until: date


class ConsultIn(_In):
    patient: str = Field(min_length=1, max_length=80)
    kind: ConsultKind = ConsultKind.CONSULTATION
    specialty: str = Field(min_length=1, max_length=64)
    question: str = Field(min_length=1, max_length=4000)
    urgency: Urgency = Urgency.ROUTINE
    record_items: list[str] = Field(
        default_factory=list, max_length=50, description='Links into the shared record, e.g. "Observation/<id>"'
    )
    centre: str | None = Field(default=None, max_length=64, description="Consultation centre facility id or code")
    round_patients: list[str] = Field(
        default_factory=list, max_length=40, description="Remote ward round: the other patients to see, in order"
    )


class ScheduleIn(_In):
    experts: list[str] = Field(min_length=1, max_length=12)
    scheduled_at: AwareDatetime


class OpinionIn(_In):
    diagnosis: str = Field(min_length=1, max_length=500)
    advice: str = Field(default="", max_length=4000)
    follow_up: str = Field(default="", max_length=1000)
    text: str = Field(default="", max_length=8000)


class StudyOut(BaseModel):
    id: uuid.UUID
    source: str
    filename: str | None
    content_type: str | None
    size: int
    study_uid: str | None
    wado_url: str | None
    description: str | None
    measurements: dict[str, float]
    uploaded_by: str
    received_at: datetime


class ReportVersionOut(BaseModel):
    version: int
    findings: str
    conclusion: str
    critical: bool
    signed_by: str
    signed_by_name: str
    signed_at: datetime
    replaced_at: datetime


class ReportOut(BaseModel):
    id: uuid.UUID
    findings: str
    conclusion: str
    critical: bool
    recognised: bool
    signed_by: str
    signed_by_name: str
    signed_at: datetime
    version: int = 1
    status: str = "final"  # final | amended
    amend_reason: str | None = None
    amended_at: datetime | None = None
    earlier: list[ReportVersionOut] = Field(default_factory=list)  # the versions it replaced, newest first


class OrderOut(BaseModel):
    id: uuid.UUID
    patient_ref: str
    patient_name: str | None = None
    ordering_facility_id: uuid.UUID
    ordering_facility: str
    centre_facility_id: uuid.UUID
    centre: str
    ordered_by: str
    modality: str
    item_code: str | None
    item_name: str
    priority: str
    clinical_question: str
    state: str
    ordered_at: datetime
    received_at: datetime | None
    reported_at: datetime | None
    due_at: datetime | None
    overdue: bool
    repeat_reason: str | None
    patient_informed: bool
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    studies: list[StudyOut] = Field(default_factory=list)
    report: ReportOut | None = None
    actions: list[str] = Field(default_factory=list)


class CentreOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    level: str
    modalities: list[str]


class PriorOut(BaseModel):
    ref: str  # the earlier result in the shared record: "DiagnosticReport/<id>" or "Observation/<id>"
    report_id: uuid.UUID | None  # when it was signed through Yilian
    order_id: uuid.UUID | None  # the order it answered, when it was ordered through Yilian
    item_code: str
    item_name: str
    conclusion: str
    performed_by: str
    reported_at: datetime
    valid_until: datetime


class RecognitionCheckOut(BaseModel):
    recognised_item: bool
    prior: PriorOut | None
    reasons: dict[str, str]


class AlertOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    patient_ref: str
    message: str
    raised_by: str
    raised_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: str
    subject_id: uuid.UUID
    message: str
    created_at: datetime
    read_at: datetime | None
    printed_at: datetime | None


class RecordItemOut(BaseModel):
    ref: str
    type: str
    when: str
    text: str


class ConsultOut(BaseModel):
    id: uuid.UUID
    kind: str
    patient_ref: str
    patient_name: str | None = None
    requesting_facility_id: uuid.UUID
    requesting_facility: str
    centre_facility_id: uuid.UUID
    centre: str
    requested_by: str
    specialty: str
    urgency: str
    question: str
    record_items: list[str]
    record_details: list[RecordItemOut] = Field(default_factory=list)  # on a single consultation: what each link is
    round_patients: list[dict[str, str]] = Field(default_factory=list)  # ward round: {"ref", "name"} in order
    state: str
    experts: list[str]
    scheduled_at: datetime | None
    meeting_url: str | None
    opinion: dict[str, str]
    answered_by: str | None
    requested_at: datetime
    answered_at: datetime | None
    actions: list[str] = Field(default_factory=list)


class CatalogueItemOut(BaseModel):
    code: str
    name: str
    name_en: str
    modality: str
    loinc: str | None
    validity_days: int
    scope: str
    price_fen: int
    qualified_facilities: list[dict[str, str]] = Field(default_factory=list)
