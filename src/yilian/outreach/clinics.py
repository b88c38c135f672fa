"""Expert clinics (专家门诊): a Schedule per expert and facility, clinic days with a daily quota of numbered Slots
released on a booking horizon, Appointments booked by staff or by the patient, a waitlist that fills cancellations,
and extra numbers (加号) when demand exceeds the quota.

A slot is taken with a conditional update (`... SET status='busy' WHERE id=? AND status='free'`), so that however many
people press "book" for the last numbers at once, each number goes to exactly one of them; the others get the next
free number or, when none is left, the waitlist or a 409. Services take a session and never commit.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yilian.db import unit_of_work, utcnow
from yilian.errors import Conflict, Forbidden, Invalid, NotFound, YilianError
from yilian.events import service as outbox
from yilian.fhir import store
from yilian.network import service as network
from yilian.outreach import fhir as outreach_fhir
from yilian.outreach import rules, sms
from yilian.outreach.models import (
    Appointment,
    Clinic,
    ClinicDay,
    Posting,
    Programme,
    Slot,
    Verification,
    WaitlistEntry,
)
from yilian.outreach.schemas import (
    AppointmentOut,
    BookingOut,
    ClinicDayOut,
    ClinicIn,
    ClinicOut,
    PatientIn,
    Recurrence,
    WaitlistOut,
)
from yilian.outreach.service import parse_id as _uuid
from yilian.outreach.service import plans_for, programme_hospitals
from yilian.outreach.settings import outreach_settings
from yilian.security import audit
from yilian.security.actor import SYSTEM, Actor
from yilian.security.roles import CLINICAL_ROLES, Role

LOCAL = ZoneInfo("Asia/Shanghai")
RESIDENT_ID_SYSTEM = "urn:yilian:sid:cn-resident-id"
# Who may book for a patient: clinicians and coordinators anywhere in the network (a township doctor books the county
# hospital's expert clinic for a patient), consortium administrators and the system administrator.
BOOKING_ROLES = frozenset(CLINICAL_ROLES | {Role.CONSORTIUM_ADMIN, Role.SYSTEM_ADMIN})
# The patient on the public page: no account and no role with any permission; audited as "public".
PUBLIC = Actor(user_id=None, username="public", role=cast(Role, "patient"), display_name="patient (public page)")


class TooManyRequests(YilianError):
    """429: the caller asked too often; `retry_after` (seconds) goes out as the Retry-After header. The message is
    an English msgid with a {minutes} placeholder, translated for the caller at the edge."""

    status, code = 429, "too_many_requests"

    def __init__(self, message: str, *, field: str, retry_after: float):
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, field=field, details={"retry_after": seconds, "minutes": math.ceil(seconds / 60)})
        self.retry_after = seconds


def local_now(now: datetime | None = None) -> datetime:
    return (now or utcnow()).astimezone(LOCAL)


def opens_at(clinic: Clinic, day: date) -> datetime:
    """The moment a clinic day's numbers are released (aware, local time)."""
    release_day, hour, minute = rules.release_moment(day, clinic.horizon_days, clinic.release_time)
    return datetime.combine(release_day, time(hour, minute), LOCAL)


def bookable(clinic: Clinic, clinic_day: ClinicDay, now: datetime | None = None) -> bool:
    if clinic_day.status != "open" or not clinic.active:
        return False
    moment = local_now(now)
    return opens_at(clinic, clinic_day.day) <= moment and moment.date() <= clinic_day.day


# ----------------------------------------------------------------------------------------------------------------------
# Clinics and their days


def get_clinic(session: Session, clinic_id: uuid.UUID | str) -> Clinic:
    clinic = session.get(Clinic, _uuid(clinic_id, "clinic", "clinic"))
    if clinic is None:
        raise NotFound(f"no clinic with id {clinic_id}", field="clinic")
    return clinic


def create_clinic(session: Session, data: ClinicIn, *, actor: Actor = SYSTEM) -> Clinic:
    expert = network.get_practitioner(session, data.practitioner_id)
    facility_id = network.resolve_facility_id(session, data.facility, field="facility")
    programme_id = None
    if data.programme_id:
        programme_id = _uuid(data.programme_id, "programme_id", "programme")
        posted = session.scalar(
            select(Posting.id).where(Posting.programme_id == programme_id, Posting.practitioner_id == expert.id)
        )
        if posted is None:
            raise Invalid("this expert has no posting in that programme", field="programme_id")
    specialty = (data.specialty or expert.specialty or "").strip()
    if not specialty:
        raise Invalid("name the clinic's specialty: the registry has none for this expert", field="specialty")
    if data.end_time <= data.start_time:
        raise Invalid("the clinic ends before it starts", field="end_time")
    if actor.role not in (Role.SYSTEM_ADMIN, Role.CONSORTIUM_ADMIN, Role.REFERRAL_COORDINATOR):
        raise Forbidden("clinics are set up by coordinators and consortium administrators")
    facility = network.get_facility(session, facility_id)
    clinic = Clinic(
        programme_id=programme_id,
        practitioner_id=expert.id,
        facility_id=facility_id,
        specialty=specialty,
        name=data.name or f"{expert.name} · {specialty}",
        daily_quota=data.daily_quota,
        horizon_days=data.horizon_days,
        release_time=data.release_time,
        start_time=data.start_time,
        end_time=data.end_time,
    )
    session.add(clinic)
    session.flush()
    days = list(data.days)
    if data.recurrence:
        try:
            rule = Recurrence.parse(data.recurrence)
        except ValueError as exc:
            raise Invalid(str(exc), field="recurrence") from None
        first = local_now().date()
        days += rule.dates(first, data.until or first + timedelta(days=92))
    store.upsert(session, outreach_fhir.to_schedule(clinic, expert.name, facility.name))
    if days:
        open_days(session, clinic.id, days, actor=actor)
    audit.record(session, actor, "outreach.clinic.create", resource=f"Schedule/{clinic.id}")
    return clinic


def open_days(
    session: Session, clinic_id: uuid.UUID | str, days: Iterable[date], *, actor: Actor = SYSTEM
) -> list[ClinicDay]:
    """Open clinic days (each with the clinic's quota of numbered slots); days already open are left as they are.
    An extra session when demand exceeds the quota is one more day opened (the clinic's hospital or a coordinator)."""
    clinic = get_clinic(session, clinic_id)
    _require_clinic_staff(session, actor, clinic)
    existing = set(session.scalars(select(ClinicDay.day).where(ClinicDay.clinic_id == clinic.id)))
    opened = []
    for day in sorted(set(days) - existing):
        clinic_day = ClinicDay(clinic_id=clinic.id, day=day, quota=clinic.daily_quota, extra=0, status="open")
        session.add(clinic_day)
        session.flush()
        _add_slots(session, clinic, clinic_day, 1, clinic.daily_quota, extra=False)
        opened.append(clinic_day)
    if opened:
        audit.record(session, actor, "outreach.clinic.open_days", resource=f"Schedule/{clinic.id}")
    return opened


def _add_slots(session: Session, clinic: Clinic, clinic_day: ClinicDay, first: int, count: int, *, extra: bool) -> None:
    times = rules.slot_times(clinic.start_time, clinic.end_time, clinic.daily_quota)
    slots = []
    for number in range(first, first + count):
        # Extra numbers come after the last regular one (a 加号 is seen at the end of the session).
        hour, minute, length = times[min(number, len(times)) - 1]
        start = datetime.combine(clinic_day.day, time(hour, minute), LOCAL).astimezone(UTC)
        slots.append(
            Slot(
                clinic_day_id=clinic_day.id,
                clinic_id=clinic.id,
                number=number,
                start=start,
                minutes=length,
                status="free",
                extra=extra,
            )
        )
    session.add_all(slots)
    session.flush()
    store.upsert_many(session, [outreach_fhir.to_slot(s) for s in slots])


def _clinic_day(session: Session, clinic: Clinic, day: date, *, lock: bool = False) -> ClinicDay:
    stmt = select(ClinicDay).where(ClinicDay.clinic_id == clinic.id, ClinicDay.day == day)
    if lock:
        stmt = stmt.with_for_update()
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"{clinic.name} holds no clinic on {day}", field="day")
    return found


def add_extra(session: Session, clinic_id: uuid.UUID | str, day: date, count: int, *, actor: Actor = SYSTEM) -> int:
    """Add extra numbers (加号) to a day; patients waiting for that day take them at once. Returns how many of the
    extra numbers went to waiting patients."""
    clinic = get_clinic(session, clinic_id)
    _require_clinic_staff(session, actor, clinic)
    clinic_day = _clinic_day(session, clinic, day, lock=True)
    last = session.scalar(select(func.max(Slot.number)).where(Slot.clinic_day_id == clinic_day.id)) or 0
    _add_slots(session, clinic, clinic_day, last + 1, count, extra=True)
    clinic_day.extra += count
    audit.record(
        session,
        actor,
        "outreach.clinic.extra",
        resource=f"Schedule/{clinic.id}",
        detail={"day": str(day), "count": count},
    )
    promoted = 0
    for _ in range(count):
        if _promote_next(session, clinic, clinic_day, actor) is None:
            break
        promoted += 1
    return promoted


def is_the_expert(actor: Actor, practitioner_id: uuid.UUID) -> bool:
    """Whether the caller is the expert: their account is linked to the expert's practitioner record
    (`yilian users link`). A display name proves nothing: a colleague may share it."""
    return actor.practitioner_id is not None and actor.practitioner_id == practitioner_id


def in_clinic_scope(session: Session, actor: Actor, clinic: Clinic) -> bool:
    """Who sees a clinic's patients and runs its desk: staff of the clinic's hospital, the expert, and the
    coordinators of its programme (`service.plans_for` the programme's hospitals: coordinators and consortium
    administrators working at one of them, administrators of a consortium one of them belongs to; for a clinic
    outside any programme, its own hospital); the system administrator. Everyone else in the network sees the
    clinic's free numbers only."""
    if actor.role == Role.SYSTEM_ADMIN:
        return True
    if actor.facility_id is not None and actor.facility_id == clinic.facility_id:
        return True
    if is_the_expert(actor, clinic.practitioner_id):
        return True
    programme = session.get(Programme, clinic.programme_id) if clinic.programme_id else None
    hospitals = programme_hospitals(programme) if programme is not None else [str(clinic.facility_id)]
    return plans_for(session, actor, hospitals)


def _require_clinic_staff(session: Session, actor: Actor, clinic: Clinic) -> None:
    if not in_clinic_scope(session, actor, clinic):
        raise Forbidden(
            "only the clinic's hospital, the expert and the programme's coordinators may see or change this clinic's "
            "patients",
            field="clinic",
        )


# ----------------------------------------------------------------------------------------------------------------------
# Booking


@dataclass(frozen=True)
class Identity:
    name: str
    id_card: str | None
    phone: str | None
    patient_ref: str | None

    @property
    def key(self) -> str:
        """One number (and one waitlist place) per patient per day is keyed on this: the record, else the ID card,
        else the phone. A card that matched a record is keyed on the record, so both ways of booking meet."""
        if self.patient_ref:
            return f"ref:{self.patient_ref}"
        if self.id_card:
            return f"id:{self.id_card}"
        return f"tel:{self.phone}"

    @property
    def audit_ref(self) -> str | None:
        return f"Patient/{self.patient_ref}" if self.patient_ref else None

    def columns(self) -> dict[str, str | None]:
        """The patient's columns of an Appointment or a WaitlistEntry."""
        return {
            "patient_name": self.name,
            "patient_ref": self.patient_ref,
            "id_card": self.id_card,
            "phone": self.phone,
            "patient_key": self.key,
        }


def _identity(session: Session, patient: PatientIn) -> Identity:
    id_card = patient.id_card.upper() if patient.id_card else None
    if id_card and not rules.valid_resident_id(id_card):
        raise Invalid("the resident ID card number's check digit does not match: check the number", field="id_card")
    ref = patient.patient_ref
    if ref:
        ref = ref.removeprefix("Patient/")
        if not store.exists(session, "Patient", ref):
            raise NotFound(f"no patient with id {ref}", field="patient_ref")
    elif id_card:
        found = store.search(session, "Patient", [("identifier", f"{RESIDENT_ID_SYSTEM}|{id_card}"), ("_count", "2")])
        if len(found.resources) == 1:
            ref = str(found.resources[0]["id"])
    if not (ref or id_card or patient.phone):
        raise Invalid("give the patient's resident ID card or mobile phone", field="id_card")
    return Identity(patient.name.strip(), id_card, patient.phone, ref)


def _already(
    session: Session, model: type[Appointment] | type[WaitlistEntry], clinic_day: ClinicDay, who: Identity
) -> bool:
    """Whether the patient already holds a live row (a booked number, a waiting place) for the day: by key, or by
    the ID card or record alone (the same person booked once with the card and once from the record)."""
    live = "booked" if model is Appointment else "waiting"
    keys = [model.patient_key == who.key]
    if who.id_card:
        keys.append(model.id_card == who.id_card)
    if who.patient_ref:
        keys.append(model.patient_ref == who.patient_ref)
    found = session.scalar(
        select(model.id).where(model.clinic_day_id == clinic_day.id, model.status == live, or_(*keys)).limit(1)
    )
    return found is not None


def _insert_once(session: Session, row: Appointment | WaitlistEntry, who: Identity, day: date) -> None:
    """Insert a booking or waitlist place; a second one for the same patient and day — two requests racing past
    the check in `book` — is stopped by the partial unique index and answered with a 409, the other one stands."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        what = "a number" if isinstance(row, Appointment) else "a place on the waitlist"
        raise Conflict(f"{who.name} already has {what} for this clinic on {day}", field="patient") from None


def _take_slot(session: Session, clinic_day: ClinicDay) -> Slot | None:
    """The lowest free number of the day, taken atomically; None when every number is gone."""
    while True:
        candidates = list(
            session.scalars(
                select(Slot.id)
                .where(Slot.clinic_day_id == clinic_day.id, Slot.status == "free")
                .order_by(Slot.number)
                .limit(8)
            )
        )
        if not candidates:
            return None
        for slot_id in candidates:
            result = session.execute(
                update(Slot).where(Slot.id == slot_id, Slot.status == "free").values(status="busy")
            )
            taken = cast(CursorResult[Any], result).rowcount
            if taken == 1:
                slot = session.get(Slot, slot_id)
                assert slot is not None
                session.refresh(slot)
                return slot
        # every candidate went to someone else meanwhile: look again


def _reference() -> str:
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
    return "".join(secrets.choice(alphabet) for _ in range(8))


def book(
    session: Session,
    clinic_id: uuid.UUID | str,
    day: date,
    patient: PatientIn,
    *,
    channel: str = "staff",
    waitlist: bool = True,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> BookingOut:
    """Book the lowest free number of a clinic day; when none is left, the waitlist (or a 409 without it)."""
    if channel == "staff" and actor.role not in BOOKING_ROLES:
        raise Forbidden("booking for a patient is for clinicians, coordinators and consortium administrators")
    clinic = get_clinic(session, clinic_id)
    clinic_day = _clinic_day(session, clinic, day)
    if clinic_day.status != "open" or not clinic.active:
        raise Conflict(f"the clinic on {day} is cancelled", field="day")
    if not bookable(clinic, clinic_day, now):
        if local_now(now).date() > day:
            raise Conflict(f"the clinic on {day} is over", field="day")
        raise Conflict(
            f"numbers for {day} are released at {opens_at(clinic, day):%Y-%m-%d %H:%M} ({clinic.horizon_days} days ahead)",
            field="day",
        )
    who = _identity(session, patient)
    if _already(session, Appointment, clinic_day, who):
        raise Conflict(f"{who.name} already has a number for this clinic on {day}", field="patient")
    if _already(session, WaitlistEntry, clinic_day, who):
        raise Conflict(f"{who.name} is already on the waitlist for this clinic on {day}", field="patient")
    slot = _take_slot(session, clinic_day)
    if slot is None:
        if not waitlist:
            raise Conflict(f"every number for {day} is taken", field="day")
        entry = _add_to_waitlist(session, clinic, clinic_day, who, channel, actor)
        return BookingOut(status="waitlisted", waitlist=_waitlist_out(session, entry, clinic_day))
    appointment = _appoint(session, clinic, clinic_day, slot, who, channel, actor)
    return BookingOut(status="booked", appointment=appointment_out(appointment, slot, clinic_day))


def _appoint(
    session: Session, clinic: Clinic, clinic_day: ClinicDay, slot: Slot, who: Identity, channel: str, actor: Actor
) -> Appointment:
    appointment = Appointment(
        reference=_reference(),
        clinic_id=clinic.id,
        clinic_day_id=clinic_day.id,
        slot_id=slot.id,
        status="booked",
        channel=channel,
        booked_by=actor.username,
        **who.columns(),
    )
    _insert_once(session, appointment, who, clinic_day.day)
    audit.record(
        session,
        actor,
        "outreach.appointment.book",
        patient=who.audit_ref,
        resource=f"Appointment/{appointment.id}",
        detail={"channel": channel},
    )
    store.upsert_many(session, [outreach_fhir.to_slot(slot), outreach_fhir.to_appointment(appointment, slot, clinic)])
    return appointment


def _add_to_waitlist(
    session: Session, clinic: Clinic, clinic_day: ClinicDay, who: Identity, channel: str, actor: Actor
) -> WaitlistEntry:
    entry = WaitlistEntry(
        clinic_id=clinic.id,
        clinic_day_id=clinic_day.id,
        status="waiting",
        channel=channel,
        added_by=actor.username,
        created_at=utcnow(),
        **who.columns(),
    )
    _insert_once(session, entry, who, clinic_day.day)
    audit.record(
        session,
        actor,
        "outreach.waitlist.add",
        patient=who.audit_ref,
        resource=f"outreach/waitlist/{entry.id}",
    )
    return entry


def _waitlist_out(session: Session, entry: WaitlistEntry, clinic_day: ClinicDay) -> WaitlistOut:
    ahead = session.scalar(
        select(func.count(WaitlistEntry.id)).where(
            WaitlistEntry.clinic_day_id == entry.clinic_day_id,
            WaitlistEntry.status == "waiting",
            WaitlistEntry.created_at < entry.created_at,
        )
    )
    return WaitlistOut(
        id=entry.id,
        clinic_id=entry.clinic_id,
        day=clinic_day.day,
        position=(ahead or 0) + 1 if entry.status == "waiting" else 0,
        status=entry.status,
        patient_name=entry.patient_name,
    )


def _promote_next(
    session: Session, clinic: Clinic, clinic_day: ClinicDay, actor: Actor, *, into: ClinicDay | None = None
) -> Appointment | None:
    """Give the first patient waiting for `clinic_day` the lowest free number of that day — or of `into`, an extra
    session opened for them — and tell them by SMS (through the outbox). A waiting patient who meanwhile got a
    number that day some other way is skipped: their place is withdrawn (or, when moving to an extra session, kept)."""
    target = into or clinic_day
    passed_over: list[uuid.UUID] = []
    while True:
        entry = session.scalar(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.clinic_day_id == clinic_day.id,
                WaitlistEntry.status == "waiting",
                WaitlistEntry.id.not_in(passed_over),
            )
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if entry is None:
            return None
        who = Identity(entry.patient_name, entry.id_card, entry.phone, entry.patient_ref)
        try:
            with session.begin_nested():
                slot = _take_slot(session, target)
                if slot is None:
                    return None
                appointment = _appoint(session, clinic, target, slot, who, "waitlist", actor)
            break
        except Conflict:
            passed_over.append(entry.id)
            if into is None:
                entry.status = "withdrawn"
                session.flush()
    entry.status = "promoted"
    entry.appointment_id = appointment.id
    entry.promoted_at = utcnow()
    if entry.phone:
        outbox.emit(
            session,
            "outreach.sms",
            subject=str(appointment.id),
            payload={
                "phone": entry.phone,
                "text": f"【医联】{entry.patient_name}，您已从候补转为正式预约：{clinic.name} "
                f"{target.day:%Y-%m-%d} 第{slot.number}号，预约号 {appointment.reference}。",
            },
        )
    return appointment


def open_extra_session(
    session: Session, clinic_id: uuid.UUID | str, day: date, *, waitlist_of: date, actor: Actor = SYSTEM
) -> int:
    """An extra session (加诊) for a day whose demand exceeded the quota: open `day` with the clinic's quota and give
    its numbers, in waitlist order, to the patients waiting for `waitlist_of`; each is told by SMS (and may cancel on
    "my bookings"). Returns how many moved; the numbers left over are open to anyone."""
    clinic = get_clinic(session, clinic_id)
    source = _clinic_day(session, clinic, waitlist_of, lock=True)
    if day < local_now().date():
        raise Invalid("an extra session cannot be in the past", field="days")
    if session.scalar(select(ClinicDay.id).where(ClinicDay.clinic_id == clinic.id, ClinicDay.day == day)):
        raise Conflict(f"{clinic.name} already holds a clinic on {day}: add extra numbers to it instead", field="days")
    (target,) = open_days(session, clinic.id, [day], actor=actor)
    moved = 0
    while moved < target.quota and _promote_next(session, clinic, source, actor, into=target) is not None:
        moved += 1
    audit.record(
        session,
        actor,
        "outreach.clinic.extra_session",
        resource=f"Schedule/{clinic.id}",
        detail={"day": str(day), "waitlist_of": str(waitlist_of), "moved": moved},
    )
    return moved


def _appointment(session: Session, appointment_id: uuid.UUID | str) -> Appointment:
    text = str(appointment_id).strip()
    found = None
    try:
        found = session.get(Appointment, uuid.UUID(text))
    except ValueError:
        found = session.scalar(select(Appointment).where(Appointment.reference == text.upper()))
    if found is None:
        raise NotFound(f"no appointment {appointment_id}", field="appointment")
    return found


def cancel(
    session: Session,
    appointment_id: uuid.UUID | str,
    *,
    actor: Actor = SYSTEM,
    phone: str | None = None,
    reason: str | None = None,
) -> AppointmentOut:
    """Cancel an appointment (by clinic staff, or by the patient proving the phone it was booked with); the number
    goes at once to the first patient on the day's waitlist."""
    appointment = _appointment(session, appointment_id)
    clinic = get_clinic(session, appointment.clinic_id)
    if phone is not None:
        if not appointment.phone or not secrets.compare_digest(appointment.phone, phone):
            raise Forbidden("this booking was made with another phone number", field="phone")
    else:
        _require_clinic_staff(session, actor, clinic)
    if appointment.status != "booked":
        raise Conflict(f"the appointment is {appointment.status}, not booked", field="appointment")
    appointment.status = "cancelled"
    appointment.cancelled_at = utcnow()
    slot = session.get(Slot, appointment.slot_id)
    clinic_day = session.get(ClinicDay, appointment.clinic_day_id)
    assert slot is not None and clinic_day is not None
    slot.status = "free"
    session.flush()
    audit.record(
        session,
        actor,
        "outreach.appointment.cancel",
        patient=f"Patient/{appointment.patient_ref}" if appointment.patient_ref else None,
        resource=f"Appointment/{appointment.id}",
        reason=reason,
    )
    store.upsert_many(session, [outreach_fhir.to_slot(slot), outreach_fhir.to_appointment(appointment, slot, clinic)])
    _promote_next(session, clinic, clinic_day, actor)
    return appointment_out(appointment, slot, clinic_day)


def withdraw(session: Session, entry_id: uuid.UUID | str, *, phone: str, actor: Actor = SYSTEM) -> WaitlistOut:
    """A patient leaves a waitlist (proving the phone it was joined with)."""
    entry = session.get(WaitlistEntry, _uuid(entry_id, "waitlist", "waitlist entry"))
    if entry is None or not entry.phone or not secrets.compare_digest(entry.phone, phone):
        raise NotFound(f"no waitlist place {entry_id} for this phone", field="waitlist")
    if entry.status != "waiting":
        raise Conflict(f"the waitlist place is {entry.status}", field="waitlist")
    entry.status = "withdrawn"
    session.flush()
    audit.record(session, actor, "outreach.waitlist.withdraw", resource=f"outreach/waitlist/{entry.id}")
    clinic_day = session.get(ClinicDay, entry.clinic_day_id)
    assert clinic_day is not None
    return _waitlist_out(session, entry, clinic_day)


def appointment_out(appointment: Appointment, slot: Slot, clinic_day: ClinicDay) -> AppointmentOut:
    return AppointmentOut(
        id=appointment.id,
        reference=appointment.reference,
        clinic_id=appointment.clinic_id,
        day=clinic_day.day,
        number=slot.number,
        start=f"{slot.start.astimezone(LOCAL):%H:%M}",
        status=appointment.status,
        channel=appointment.channel,
        patient_name=appointment.patient_name,
        patient_ref=appointment.patient_ref,
    )


def find_appointment(session: Session, reference: str, phone: str) -> AppointmentOut:
    """A patient looks up their own booking with its number and the phone it was booked with."""
    appointment = _appointment(session, reference)
    if not appointment.phone or not secrets.compare_digest(appointment.phone, phone):
        raise NotFound(f"no appointment {reference} for this phone", field="reference")
    slot = session.get(Slot, appointment.slot_id)
    clinic_day = session.get(ClinicDay, appointment.clinic_day_id)
    assert slot is not None and clinic_day is not None
    return appointment_out(appointment, slot, clinic_day)


# ----------------------------------------------------------------------------------------------------------------------
# Reading clinics


def clinic_days(
    session: Session,
    clinic: Clinic,
    *,
    first: date | None = None,
    last: date | None = None,
    now: datetime | None = None,
) -> list[ClinicDayOut]:
    stmt = select(ClinicDay).where(ClinicDay.clinic_id == clinic.id).order_by(ClinicDay.day)
    if first:
        stmt = stmt.where(ClinicDay.day >= first)
    if last:
        stmt = stmt.where(ClinicDay.day <= last)
    days = list(session.scalars(stmt))
    ids = [d.id for d in days]
    booked: dict[uuid.UUID, int] = {}
    free: dict[uuid.UUID, int] = {}
    waiting: dict[uuid.UUID, int] = {}
    if ids:
        for day_id, status, n in session.execute(
            select(Slot.clinic_day_id, Slot.status, func.count())
            .where(Slot.clinic_day_id.in_(ids))
            .group_by(Slot.clinic_day_id, Slot.status)
        ):
            (booked if status == "busy" else free)[day_id] = n
        for day_id, n in session.execute(
            select(WaitlistEntry.clinic_day_id, func.count())
            .where(WaitlistEntry.clinic_day_id.in_(ids), WaitlistEntry.status == "waiting")
            .group_by(WaitlistEntry.clinic_day_id)
        ):
            waiting[day_id] = n
    return [
        ClinicDayOut(
            day=d.day,
            quota=d.quota,
            extra=d.extra,
            booked=booked.get(d.id, 0),
            free=free.get(d.id, 0),
            waiting=waiting.get(d.id, 0),
            opens_at=f"{opens_at(clinic, d.day):%Y-%m-%d %H:%M}",
            open_for_booking=bookable(clinic, d, now),
            status=d.status,
        )
        for d in days
    ]


def clinic_out(session: Session, clinic: Clinic, *, days: bool = True, upcoming_only: bool = False) -> ClinicOut:
    expert = network.get_practitioner(session, clinic.practitioner_id)
    facility = network.get_facility(session, clinic.facility_id)
    first = local_now().date() if upcoming_only else None
    return ClinicOut(
        id=clinic.id,
        name=clinic.name,
        programme_id=clinic.programme_id,
        practitioner_id=clinic.practitioner_id,
        practitioner_name=expert.name,
        facility_id=clinic.facility_id,
        facility_name=facility.name,
        specialty=clinic.specialty,
        daily_quota=clinic.daily_quota,
        horizon_days=clinic.horizon_days,
        release_time=clinic.release_time,
        start_time=clinic.start_time,
        end_time=clinic.end_time,
        days=clinic_days(session, clinic, first=first) if days else [],
    )


def list_clinics(
    session: Session,
    *,
    facility: str | None = None,
    programme_id: str | None = None,
    upcoming_only: bool = False,
) -> list[ClinicOut]:
    stmt = select(Clinic).where(Clinic.active.is_(True)).order_by(Clinic.created_at)
    if facility:
        stmt = stmt.where(Clinic.facility_id == network.resolve_facility_id(session, facility, field="facility"))
    if programme_id:
        stmt = stmt.where(Clinic.programme_id == _uuid(programme_id, "programme", "programme"))
    return [clinic_out(session, c, upcoming_only=upcoming_only) for c in session.scalars(stmt)]


def day_list(
    session: Session, clinic_id: uuid.UUID | str, day: date, *, actor: Actor
) -> tuple[list[AppointmentOut], list[WaitlistOut]]:
    """The day's appointments and waitlist, with patients' names: for the clinic's staff only, audited."""
    clinic = get_clinic(session, clinic_id)
    _require_clinic_staff(session, actor, clinic)
    clinic_day = _clinic_day(session, clinic, day)
    rows = session.execute(
        select(Appointment, Slot)
        .join(Slot, Slot.id == Appointment.slot_id)
        .where(Appointment.clinic_day_id == clinic_day.id)
        .order_by(Slot.number, Appointment.created_at)
    ).all()
    appointments = [appointment_out(a, s, clinic_day) for a, s in rows]
    entries = session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.clinic_day_id == clinic_day.id)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    waiting = [_waitlist_out(session, e, clinic_day) for e in entries]
    detail = {"day": str(day), "appointments": len(appointments), "waiting": len(waiting)}
    audit.record(session, actor, "outreach.clinic.day_list", resource=f"Schedule/{clinic.id}", detail=detail)
    # Also one row per patient with a record, so that the patient's own access log shows who saw them on a list.
    linked = {a.patient_ref for a, _ in rows if a.patient_ref} | {e.patient_ref for e in entries if e.patient_ref}
    for ref in sorted(linked):
        audit.record(
            session,
            actor,
            "outreach.clinic.day_list",
            patient=f"Patient/{ref}",
            resource=f"Schedule/{clinic.id}",
            detail={"day": str(day)},
        )
    return appointments, waiting


# ----------------------------------------------------------------------------------------------------------------------
# Verification codes for the public page


def _hash(phone: str, code: str) -> str:
    return hashlib.sha256(f"{phone}:{code}".encode()).hexdigest()


def _hourly_limit(session: Session, who: Any, limit: int, moment: datetime, message: str) -> None:
    """At most `limit` codes in the last hour for `who` (a condition on the stored codes); when reached, a 429 saying
    how long until the oldest of them leaves the hour."""
    times = list(
        session.scalars(
            select(Verification.created_at)
            .where(who, Verification.created_at > moment - timedelta(hours=1))
            .order_by(Verification.created_at)
        )
    )
    if len(times) >= limit:
        wait = times[len(times) - limit] + timedelta(hours=1) - moment
        raise TooManyRequests(message, field="phone", retry_after=wait.total_seconds())


def _phone_locked(session: Session, phone: str, moment: datetime) -> None:
    """Too many wrong codes for a phone in the last hour lock it (no new codes, no tries) until the hour has passed."""
    limit = outreach_settings().wrong_codes_per_phone_per_hour
    rows = session.execute(
        select(Verification.created_at, Verification.attempts)
        .where(
            Verification.phone == phone,
            Verification.created_at > moment - timedelta(hours=1),
            Verification.attempts > 0,
        )
        .order_by(Verification.created_at)
    ).all()
    wrong = sum(attempts for _, attempts in rows)
    if wrong < limit:
        return
    # Unlocked once enough of the oldest wrong tries have left the hour to bring the count under the limit.
    for created, attempts in rows:
        wrong -= attempts
        if wrong < limit:
            raise TooManyRequests(
                "too many wrong codes for this phone: it is locked, try again in {minutes} minutes",
                field="code",
                retry_after=(created + timedelta(hours=1) - moment).total_seconds(),
            )


def send_code(session: Session, phone: str, *, client_ip: str | None = None, now: datetime | None = None) -> str | None:
    """Send a 6-digit code to a phone through the SMS gateway. Returns the code only when the gateway is the demo's
    console gateway (so that the demo page can show it); None otherwise.

    Limits (429 with the seconds to wait): codes asked for from one address and sent to one phone per hour, and a
    phone locked after too many wrong codes. Counted from the stored codes, so they hold across server processes."""
    if not phone or not phone.isdigit() or len(phone) != 11 or not phone.startswith("1"):
        raise Invalid("enter an 11-digit mainland mobile number", field="phone")
    settings = outreach_settings()
    moment = now or utcnow()
    if client_ip:
        _hourly_limit(
            session,
            Verification.client_ip == client_ip,
            settings.codes_per_ip_per_hour,
            moment,
            "too many verification codes asked for from your network: try again in {minutes} minutes",
        )
    _phone_locked(session, phone, moment)
    _hourly_limit(
        session,
        Verification.phone == phone,
        settings.codes_per_phone_per_hour,
        moment,
        "too many codes for this phone in the last hour: try again in {minutes} minutes",
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        Verification(
            phone=phone,
            client_ip=client_ip,
            code_hash=_hash(phone, code),
            expires_at=moment + timedelta(minutes=settings.code_minutes),
            created_at=moment,
        )
    )
    session.flush()
    gateway = sms.gateway()
    gateway.send(phone, f"【医联】您的预约验证码是 {code}，{settings.code_minutes} 分钟内有效。")
    return code if gateway.shows_codes else None


def check_code(session: Session, phone: str, code: str, *, now: datetime | None = None) -> YilianError | None:
    """Accept the latest unused code for the phone (once); otherwise return why not (field `code`).

    A wrong code is counted here and must stay counted although the request fails: so this returns the refusal
    instead of raising it, and the caller commits before raising (see `verify_code`). The count is a conditional
    update, so simultaneous guesses cannot get past the limit either."""
    moment = now or utcnow()
    try:
        _phone_locked(session, phone, moment)
    except TooManyRequests as exc:
        return exc
    row = session.scalar(
        select(Verification)
        .where(Verification.phone == phone, Verification.used.is_(False))
        .order_by(Verification.created_at.desc())
        .limit(1)
    )
    if row is None:
        return Invalid("ask for a verification code first", field="code")
    if row.expires_at < moment:
        return Invalid("the verification code has expired: ask for a new one", field="code")
    attempts = outreach_settings().attempts_per_code
    if secrets.compare_digest(row.code_hash, _hash(phone, code.strip())) and row.attempts < attempts:
        used = session.execute(
            update(Verification).where(Verification.id == row.id, Verification.used.is_(False)).values(used=True)
        )
        if cast(CursorResult[Any], used).rowcount == 1:
            return None
        return Invalid("the verification code was already used: ask for a new one", field="code")
    counted = session.execute(
        update(Verification)
        .where(Verification.id == row.id, Verification.attempts < attempts)
        .values(attempts=Verification.attempts + 1)
    )
    if cast(CursorResult[Any], counted).rowcount == 0:
        return Invalid("too many wrong codes: ask for a new one", field="code")
    return Invalid("the verification code is wrong", field="code")


def verify_code(phone: str, code: str, *, now: datetime | None = None) -> None:
    """Check a patient's code in a transaction of its own, committed even when the code is refused, so that a
    wrong guess always counts towards the limits; raises the refusal after the commit."""
    with unit_of_work() as session:
        refusal = check_code(session, phone, code, now=now)
    if refusal is not None:
        raise refusal


def deliver_sms(session: Session, event: object) -> None:
    """Outbox handler: send a queued text message (waitlist promotions) through the gateway."""
    payload = getattr(event, "payload", None) or {}
    sms.gateway().send(str(payload["phone"]), str(payload["text"]))
