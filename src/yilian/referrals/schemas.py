"""Referral requests and answers on the JSON API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ReferralIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: str = Field(description="Patient/<id> in the shared record (MPI)")
    direction: str = "up"
    urgency: str = "routine"
    green_channel: str | None = None
    reason: str = ""
    diagnosis_codes: list[str] = Field(default_factory=list, max_length=20)
    summary: str = Field("", max_length=20000)
    record_refs: list[str] = Field(default_factory=list, max_length=100)
    service: str | None = None
    target_facility_id: uuid.UUID | None = None
    target_department: str | None = None
    outside_reason: str | None = None
    consent: bool = False
    systolic: float | None = Field(None, ge=40, le=300)
    diastolic: float | None = Field(None, ge=20, le=200)
    flags: list[str] = Field(default_factory=list, max_length=30)
    times: dict[str, datetime] | None = None
    draft: bool = False
    service_request_id: str | None = None


class DischargeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str = ""
    flags: list[str] = Field(default_factory=list)
    systolic: float | None = Field(None, ge=40, le=300)
    diastolic: float | None = Field(None, ge=20, le=200)
    stable: bool = False


class DownReferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str = ""
    medications: list[str] = Field(default_factory=list)
    follow_up_days: int = Field(14, ge=1, le=365)
    facility_id: uuid.UUID | None = None


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    facility_id: uuid.UUID | None = None
    department: str | None = None
    outside_reason: str | None = None


class BookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot_id: uuid.UUID | None = None
    start: datetime | None = None
    kind: str = "outpatient"


class TimesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    times: dict[str, datetime]


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = None
    reason: str | None = None


class SlotsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: str
    start: datetime
    count: int = 1
    minutes: int = 30
    kind: str = "outpatient"
    facility_id: uuid.UUID | None = None


class SlotOut(BaseModel):
    id: uuid.UUID
    facility_id: uuid.UUID
    department: str
    kind: str
    start: datetime
    end: datetime
    referral_id: uuid.UUID | None


class EventOut(BaseModel):
    seq: int
    at: datetime
    action: str
    from_state: str | None
    to_state: str
    username: str
    role: str
    note: str | None
    detail: dict[str, Any]


class ReferralOut(BaseModel):
    id: uuid.UUID
    patient: str
    patient_name: str
    direction: str
    urgency: str
    green_channel: str | None
    state: str
    reason: str
    diagnosis_codes: list[str]
    criteria: list[dict[str, Any]]
    summary: str
    record_refs: list[str]
    service: str | None
    sender_facility_id: uuid.UUID
    sender: str
    receiver_facility_id: uuid.UUID | None
    receiver_department: str | None
    down_facility_id: uuid.UUID | None
    routing: list[dict[str, Any]]
    appointment: dict[str, Any] | None
    care_plan: dict[str, Any] | None
    follow_up: dict[str, Any] | None
    stable: bool
    times: dict[str, str]
    insurance: dict[str, Any] | None
    sla_due_at: datetime | None
    escalated_at: datetime | None
    decline_reason: str | None
    task: str
    service_request: str
    allowed_actions: list[str] = Field(default_factory=list)
    history: list[EventOut] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    total: int
    offset: int
    limit: int
