"""Use cases of shared diagnostics. Each `do`-style function loads, decides with rules/states, writes the rows, their
FHIR face and the audit trail, and emits outbox events; none commits (the caller's unit of work does).

- orders to reading centres: `place_order`, `receive_upload`, `attach_study`, `sign_report`, `cancel_order`
- the centre's view: `worklist`, `overdue`, `workload`; everyone's: `turnaround`
- the ordering site's view: `sent_orders`, `notifications`, `alerts`, `acknowledge_alert`, `print_view`
- mutual recognition: `check_recognition`, `reuse_result`, `qualify`, `catalogue_out`, `recognition_report`
- teleconsultation: `request_consultation`, `schedule_consultation`, `answer_consultation`, `cancel_consultation`
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from yilian.db import utcnow
from yilian.diagnostics import catalogue, dicomweb, limits, rules
from yilian.diagnostics import fhir as dfhir
from yilian.diagnostics.models import (
    CriticalAlert,
    DiagnosticNotification,
    DiagnosticOrder,
    DiagnosticReportRow,
    DiagnosticReportVersion,
    DiagnosticStudy,
    RecognitionDecision,
    RecognitionQualification,
    Teleconsultation,
)
from yilian.diagnostics.rules import ConsultKind, Modality, PlaceFacts, PriorResult
from yilian.diagnostics.schemas import (
    AlertOut,
    AmendIn,
    CatalogueItemOut,
    CentreOut,
    ConsultIn,
    ConsultOut,
    NotificationOut,
    OpinionIn,
    OrderIn,
    OrderOut,
    PriorOut,
    QualificationIn,
    RecognitionCheckOut,
    RecordItemOut,
    ReportIn,
    ReportOut,
    ReportVersionOut,
    ScheduleIn,
    StudyIn,
    StudyOut,
)
from yilian.diagnostics.settings import settings
from yilian.diagnostics.states import Party, consult_actions, next_consult_state, next_order_state, order_actions
from yilian.errors import Conflict, Forbidden, Invalid, NotFound, YilianError
from yilian.events import service as events
from yilian.fhir import access, store
from yilian.network import service as network
from yilian.network.fhir import FACILITY_CODE
from yilian.network.service import MAX_LIMIT
from yilian.security import audit, scope
from yilian.security import service as users
from yilian.security.actor import Actor
from yilian.security.roles import CLINICAL_ROLES, Role

ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.COMMISSION_OFFICIAL, Role.CONSORTIUM_ADMIN})

# ----------------------------------------------------------------------------------------------------------------------
# Facts from other domains


def _clinician(actor: Actor, doing: str) -> uuid.UUID:
    if actor.role not in CLINICAL_ROLES or actor.facility_id is None:
        raise Forbidden(f"only a clinician at a facility may {doing}")
    return actor.facility_id


def patient_ref(session: Session, raw: str, *, field: str = "patient") -> str:
    """ "Patient/<id>" of a Patient in the shared record, from that or the bare id; NotFound naming `field`."""
    text = raw.strip()
    pid = text.removeprefix("Patient/")
    if not pid or "/" in pid or not store.exists(session, "Patient", pid):
        raise NotFound(f"no patient {text!r} in the shared record", field=field)
    return f"Patient/{pid}"


def _patient_access(session: Session, actor: Actor, ref: str, action: str, res_type: str, what: str) -> None:
    """The patients domain's policy decides (consent, consortium, break-glass); the read or write is audited."""
    access.check(session, actor, action, res_type, ref)
    audit.record(session, actor, what, patient=ref)


def person_refs(session: Session, ref: str) -> list[str]:
    """Every Patient record of the same person (the MPI groups records written at different facilities)."""
    from yilian.patients import service as patients

    try:
        return sorted({r.patient_ref for r in patients.person_of(session, ref).records} | {ref})
    except NotFound:
        return [ref]


def patient_names(session: Session, refs: Iterable[str]) -> dict[str, str]:
    ids = sorted({r.removeprefix("Patient/") for r in refs})
    out: dict[str, str] = {}
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        found = store.search(session, "Patient", [("_id", ",".join(chunk)), ("_count", "200"), ("_total", "none")])
        for p in found.resources:
            out[f"Patient/{p['id']}"] = display_name(p)
    return out


def display_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        family, given = name.get("family", ""), "".join(name.get("given") or [])
        if family or given:
            return f"{family}{given}"
    return str(patient.get("id", ""))


def _names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    out = {}
    for fid in set(ids):
        out[fid] = network.get_facility(session, fid).name
    return out


def _place(session: Session, facility_id: uuid.UUID) -> PlaceFacts:
    f = network.get_facility(session, facility_id)
    consortia = frozenset(c.id for c in network.consortia_of_facility(session, facility_id))
    return PlaceFacts(f.id, f.division_code, consortia)


def _limits(session: Session, facility_id: uuid.UUID) -> limits.Limits:
    """The turnaround targets, critical limits and validity windows that hold where this facility is."""
    return limits.for_division(network.get_facility(session, facility_id).division_code)


def _regional(session: Session, facility_id: uuid.UUID, item: rules.RecognisedItem) -> rules.RecognisedItem:
    """A catalogue item with the validity window of the ordering facility's region."""
    return _limits(session, facility_id).item(item)


def centres_for(session: Session, facility_id: uuid.UUID, modality: str | None = None) -> list[CentreOut]:
    """Reading centres this facility may order from: facilities with the reading capability that share a consortium
    with it (or itself, when it reads for others). Lower levels first: the county centre before the city's."""
    wanted = [Modality(modality)] if modality else list(Modality)
    found: dict[uuid.UUID, CentreOut] = {}
    consortia = [c.id for c in network.consortia_of_facility(session, facility_id)]
    own = network.get_facility(session, facility_id)
    for m in wanted:
        capability = rules.CENTRE_CAPABILITY[m]
        candidates = [own] if capability in own.capabilities else []
        for cid in consortia:
            candidates += network.list_facilities(
                session, consortium_id=cid, capability=capability, limit=MAX_LIMIT
            ).items
        for f in candidates:
            entry = found.setdefault(f.id, CentreOut(id=f.id, code=f.code, name=f.name, level=f.level, modalities=[]))
            if m.value not in entry.modalities:
                entry.modalities.append(m.value)
    rank = {"village_clinic": 0, "township_centre": 1, "county_hospital": 2, "tertiary": 3}
    county = own.division_code[:6]
    divisions = {f.id: f.division_code for f in _facilities(session, found)}
    return sorted(found.values(), key=lambda c: (divisions[c.id][:6] != county, rank.get(c.level, 4), c.code))


def _facilities(session: Session, ids: Iterable[uuid.UUID]) -> list[Any]:
    return [network.get_facility(session, fid) for fid in ids]


# ----------------------------------------------------------------------------------------------------------------------
# Orders


M = TypeVar("M", DiagnosticOrder, Teleconsultation)


def _load(session: Session, model: type[M], row_id: uuid.UUID | str, what: str, field: str, lock: bool) -> M:
    """A row by its id from a URL; a malformed id is as unknown as a missing one (404 naming the field)."""
    try:
        rid = row_id if isinstance(row_id, uuid.UUID) else uuid.UUID(str(row_id))
    except ValueError:
        raise NotFound(f"no {what} {row_id}", field=field) from None
    row = session.get(model, rid, with_for_update=lock)
    if row is None:
        raise NotFound(f"no {what} {row_id}", field=field)
    return row


def _order(session: Session, order_id: uuid.UUID | str, *, lock: bool = False) -> DiagnosticOrder:
    return _load(session, DiagnosticOrder, order_id, "diagnostic order", "order_id", lock)


def parties(actor: Actor, order: DiagnosticOrder) -> frozenset[Party]:
    out = set()
    if actor.facility_id is not None and actor.role in CLINICAL_ROLES:
        if actor.facility_id == order.ordering_facility_id:
            out.add(Party.ORDERING_SITE)
        if actor.facility_id == order.centre_facility_id:
            out.add(Party.CENTRE)
    return frozenset(out)


def _see_order(session: Session, actor: Actor, order: DiagnosticOrder) -> frozenset[Party]:
    """The two sides of an order see it; others need the patient policy (and leave an audit row either way)."""
    sides = parties(actor, order)
    if not sides:
        access.check(session, actor, "read", "ServiceRequest", order.patient_ref)
    audit.record(
        session, actor, "diagnostics.order.read", patient=order.patient_ref, resource=f"ServiceRequest/{order.id}"
    )
    return sides


def _project_order(
    session: Session, actor: Actor, order: DiagnosticOrder, extra: Sequence[dict[str, Any]] = ()
) -> None:
    names = _names(session, [order.ordering_facility_id, order.centre_facility_id])
    resources = [dfhir.to_service_request(order, names), dfhir.to_task(order, names), *extra]
    store.upsert_many(session, resources, actor=actor)


def _item_for(body: OrderIn) -> tuple[str | None, str, rules.RecognisedItem | None]:
    if body.item_code:
        item = catalogue.get(body.item_code)
        if item.modality != body.modality:
            raise Invalid(f"{item.name} is a {item.modality} item, not {body.modality}", field="item_code")
        return item.code, item.name, item
    if not body.item_name:
        raise Invalid("name the test: a catalogue item_code or an item_name", field="item_code")
    return None, body.item_name, None


def _centre_for(session: Session, facility_id: uuid.UUID, body: OrderIn) -> uuid.UUID:
    centres = centres_for(session, facility_id, body.modality)
    if body.centre:
        wanted = network.resolve_facility_id(session, body.centre, field="centre")
        if all(c.id != wanted for c in centres):
            raise Invalid(
                f"that facility does not read {body.modality} for your facility (no shared consortium, or no "
                "reading capability)",
                field="centre",
            )
        return wanted
    if not centres:
        raise Invalid(f"no {body.modality} reading centre serves your facility", field="centre")
    return centres[0].id


def place_order(session: Session, actor: Actor, body: OrderIn, *, at: datetime | None = None) -> DiagnosticOrder:
    """Send an order to a reading centre. A recognised item with a valid earlier result needs a repeat reason."""
    facility_id = _clinician(actor, "order a test")
    ref = patient_ref(session, body.patient)
    _patient_access(session, actor, ref, "write", "ServiceRequest", "diagnostics.order.place")
    code, name, item = _item_for(body)
    item = _regional(session, facility_id, item) if item else None
    centre_id = _centre_for(session, facility_id, body)
    now = at or utcnow()
    prior = _recognised_prior(session, item, facility_id, ref, now) if item else None
    reason = None
    if prior is not None:
        assert item is not None
        if not body.repeat_reason:
            raise Conflict(
                f"a valid recognised result of {item.name} exists ({_prior_text(session, prior, item)}): reuse it, "
                "or give one of the six reasons to repeat it (repeat_reason) and tell the patient (patient_informed)",
                field="repeat_reason",
            )
        reason = rules.check_repeat(body.repeat_reason, body.patient_informed)
    order = DiagnosticOrder(
        id=uuid.uuid4(),
        patient_ref=ref,
        ordering_facility_id=facility_id,
        centre_facility_id=centre_id,
        ordered_by=actor.username,
        modality=body.modality.value,
        item_code=code,
        item_name=name,
        priority=body.priority.value,
        clinical_question=body.clinical_question,
        state="ordered",
        repeat_reason=reason.value if reason else None,
        repeat_note=body.repeat_note if reason else None,
        patient_informed=body.patient_informed if reason else False,
        prior_report_id=_report_row_id(session, str(prior.report_id)) if prior else None,
        prior_ref=str(prior.report_id) if prior else None,
        ordered_at=now,
    )
    session.add(order)
    if prior is not None and item is not None and reason is not None:
        _decide(
            session,
            actor,
            ref,
            item,
            facility_id,
            prior,
            "repeated",
            reason=reason.value,
            note=body.repeat_note,
            patient_informed=True,
            order_id=order.id,
            decided_at=now,
        )
    session.flush()
    _project_order(session, actor, order)
    events.emit(
        session,
        "diagnostics.order.placed",
        subject=f"ServiceRequest/{order.id}",
        payload={"centre": str(centre_id), "modality": order.modality, "priority": order.priority},
    )
    return order


def _add_study(session: Session, actor: Actor, order: DiagnosticOrder, study: DiagnosticStudy, now: datetime) -> None:
    order.state = next_order_state(order.state, "receive", parties(actor, order)).value
    if order.received_at is None:
        order.received_at = now
    session.add(study)
    session.flush()
    extra = dfhir.to_observations(order, study)
    if order.modality == Modality.IMAGING:
        extra.append(dfhir.to_imaging_study(order, study))
    _project_order(session, actor, order, extra)
    audit.record(
        session,
        actor,
        "diagnostics.study.receive",
        patient=order.patient_ref,
        resource=f"ServiceRequest/{order.id}",
        detail={"source": study.source},
    )
    events.emit(
        session,
        "diagnostics.study.received",
        subject=f"ServiceRequest/{order.id}",
        payload={"centre": str(order.centre_facility_id)},
    )


def receive_upload(
    session: Session,
    actor: Actor,
    order_id: uuid.UUID | str,
    *,
    filename: str,
    data: bytes,
    measurements: Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> DiagnosticStudy:
    """An uploaded tracing, image or PDF for an order. Wrong type, empty or oversized files are refused whole."""
    order = _order(session, order_id, lock=True)
    next_order_state(order.state, "receive", parties(actor, order))  # refuse before reading the file
    max_bytes = settings().diagnostics_max_upload_mb * 1_048_576
    kind = rules.check_upload(order.modality, data[:512], len(data), max_bytes)
    values = rules.parse_measurements(measurements or {})
    uid = None
    if kind == "application/dicom":
        # The file's own Study Instance UID, so the study is the same one the modality and any PACS know.
        found = rules.dicom_study_uid(data)
        uid = rules.check_uid(found, field="file") if found is not None else None
    now = at or utcnow()
    study = DiagnosticStudy(
        id=uuid.uuid4(),
        order_id=order.id,
        study_uid=uid,
        source="upload",
        filename=(filename or "upload")[-200:],
        content_type=kind,
        size=len(data),
        content=data,
        measurements=values,
        uploaded_by=actor.username,
        received_at=now,
    )
    _add_study(session, actor, order, study, now)
    return study


def attach_study(
    session: Session, actor: Actor, order_id: uuid.UUID | str, body: StudyIn, *, at: datetime | None = None
) -> DiagnosticStudy:
    """A study already in the PACS (checked there by QIDO-RS when one is configured) and/or measured values."""
    order = _order(session, order_id, lock=True)
    next_order_state(order.state, "receive", parties(actor, order))
    values = rules.parse_measurements(body.measurements)
    if not body.study_uid and not values:
        raise Invalid("give a study_uid from the PACS or measured values", field="study_uid")
    wado = description = None
    if body.study_uid and dicomweb.configured():
        found = dicomweb.find_study(body.study_uid)
        wado, description = found.wado_url, found.description
    now = at or utcnow()
    study = DiagnosticStudy(
        id=uuid.uuid4(),
        order_id=order.id,
        source="dicomweb" if body.study_uid else "values",
        study_uid=body.study_uid,
        wado_url=wado,
        description=body.description or description,
        measurements=values,
        uploaded_by=actor.username,
        received_at=now,
    )
    _add_study(session, actor, order, study, now)
    return study


def _qualified_until(session: Session, facility_id: uuid.UUID, item: rules.RecognisedItem, on: date) -> date | None:
    """The end of the quality-control pass that covers this item at this facility on that day, if any."""
    until = session.scalar(
        select(func.max(RecognitionQualification.valid_until)).where(
            RecognitionQualification.facility_id == facility_id,
            RecognitionQualification.item_code.in_([item.code, f"*{item.modality.value}"]),
            RecognitionQualification.passed_on <= on,
            RecognitionQualification.valid_until >= on,
        )
    )
    return until


def sign_report(
    session: Session, actor: Actor, order_id: uuid.UUID | str, body: ReportIn, *, at: datetime | None = None
) -> DiagnosticReportRow:
    """The centre's reader signs the report: the ordering site is notified; a critical value opens an alert."""
    order = _order(session, order_id, lock=True)
    order.state = next_order_state(order.state, "sign", parties(actor, order)).value
    if order.claimed_by not in (None, actor.username):
        raise Conflict(f"{order.claimed_by} is reading this study: only they sign it", field="claimed_by")
    now = at or utcnow()
    studies = list(session.scalars(select(DiagnosticStudy).where(DiagnosticStudy.order_id == order.id)))
    measured: dict[str, float] = {}
    for s in studies:
        measured.update(s.measurements)
    critical_found = rules.critical_values(measured, _limits(session, order.centre_facility_id).measures)
    critical = body.critical or bool(critical_found)
    item = catalogue.items().get(order.item_code or "")
    recognised = bool(item) and _qualified_until(session, order.centre_facility_id, item, now.date()) is not None  # type: ignore[arg-type]
    report = DiagnosticReportRow(
        id=uuid.uuid4(),
        order_id=order.id,
        patient_ref=order.patient_ref,
        item_code=order.item_code,
        performer_facility_id=order.centre_facility_id,
        findings=body.findings,
        conclusion=body.conclusion,
        critical=critical,
        recognised=recognised,
        signed_by=actor.username,
        signed_by_name=actor.display_name or actor.username,
        signed_at=now,
    )
    order.reported_at = now
    session.add(report)
    _notify_site(session, order, "report_ready", f"{order.item_name}: {body.conclusion}", now)
    if critical:
        _raise_alert(session, actor, order, "; ".join(critical_found) or body.conclusion, now)
    _publish_report(session, actor, order, report, studies, "signed", {"critical": critical})
    return report


def claim_order(session: Session, actor: Actor, order_id: uuid.UUID | str) -> DiagnosticOrder:
    """A reader takes a study from the centre's worklist. Atomic: of two readers claiming at once, one gets it and the
    other a 409 naming who has it (a conditional update, not read-then-write)."""
    order = _order(session, order_id)
    next_order_state(order.state, "claim", parties(actor, order))
    if order.claimed_by == actor.username:
        return order
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(DiagnosticOrder)
        .where(
            DiagnosticOrder.id == order.id,
            DiagnosticOrder.claimed_by.is_(None),
            DiagnosticOrder.state.in_(["ordered", "received"]),
        )
        .values(claimed_by=actor.username, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(order)
    if not result.rowcount:
        raise Conflict(f"{order.claimed_by or 'another reader'} is already reading this study", field="claimed_by")
    audit.record(
        session, actor, "diagnostics.order.claim", patient=order.patient_ref, resource=f"ServiceRequest/{order.id}"
    )
    return order


def release_order(session: Session, actor: Actor, order_id: uuid.UUID | str) -> DiagnosticOrder:
    """Give a claimed study back to the worklist. A colleague at the centre may release it too (the reader went off
    shift); the audit row says whose claim it was."""
    order = _order(session, order_id, lock=True)
    next_order_state(order.state, "release", parties(actor, order))
    held_by = order.claimed_by
    order.claimed_by = order.claimed_at = None
    audit.record(
        session,
        actor,
        "diagnostics.order.release",
        patient=order.patient_ref,
        resource=f"ServiceRequest/{order.id}",
        detail={"claimed_by": held_by},
    )
    return order


def amend_report(
    session: Session, actor: Actor, order_id: uuid.UUID | str, body: AmendIn, *, at: datetime | None = None
) -> DiagnosticReportRow:
    """Correct a signed report: a new version with status amended and the reason; the earlier version is kept and
    shown, and the ordering site is notified again (it may have printed or acted on the earlier one)."""
    order = _order(session, order_id, lock=True)
    next_order_state(order.state, "amend", parties(actor, order))
    report = session.scalar(
        select(DiagnosticReportRow).where(DiagnosticReportRow.order_id == order.id).with_for_update()
    )
    if report is None:  # a reported order always has its report; guard against a hand-edited database
        raise NotFound(f"no signed report for order {order.id}", field="order_id")
    now = at or utcnow()
    session.add(
        DiagnosticReportVersion(
            report_id=report.id,
            version=report.version,
            findings=report.findings,
            conclusion=report.conclusion,
            critical=report.critical,
            signed_by=report.signed_by,
            signed_by_name=report.signed_by_name,
            signed_at=report.signed_at,
            replaced_at=now,
        )
    )
    studies = list(session.scalars(select(DiagnosticStudy).where(DiagnosticStudy.order_id == order.id)))
    measured = {k: v for s in studies for k, v in s.measurements.items()}
    critical_found = rules.critical_values(measured, _limits(session, order.centre_facility_id).measures)
    newly_critical = (body.critical or bool(critical_found)) and not report.critical
    report.version += 1
    report.status = "amended"
    report.amend_reason = body.reason
    report.amended_at = now
    report.findings, report.conclusion = body.findings, body.conclusion
    report.critical = body.critical or bool(critical_found)
    report.signed_by, report.signed_by_name, report.signed_at = (
        actor.username,
        actor.display_name or actor.username,
        now,
    )
    _notify_site(session, order, "report_amended", f"{order.item_name}: {body.conclusion} ({body.reason})", now)
    if newly_critical:
        _raise_alert(session, actor, order, "; ".join(critical_found) or body.conclusion, now)
    _publish_report(
        session, actor, order, report, studies, "amended", {"version": report.version, "reason": body.reason[:200]}
    )
    return report


def _publish_report(
    session: Session,
    actor: Actor,
    order: DiagnosticOrder,
    report: DiagnosticReportRow,
    studies: Sequence[DiagnosticStudy],
    what: str,
    detail: dict[str, Any],
) -> None:
    """The report's FHIR face (a new version of the DiagnosticReport), its audit row, and the outbox event that
    carries it to the ordering site's channels."""
    session.flush()
    names = _names(session, [order.centre_facility_id])
    _project_order(session, actor, order, [dfhir.to_diagnostic_report(order, report, studies, names)])
    audit.record(
        session,
        actor,
        "diagnostics.report." + {"signed": "sign", "amended": "amend"}[what],
        patient=order.patient_ref,
        resource=f"DiagnosticReport/{report.id}",
        detail=detail,
    )
    events.emit(
        session,
        f"diagnostics.report.{what}",
        subject=f"DiagnosticReport/{report.id}",
        payload={
            "facility": str(order.ordering_facility_id),
            "critical": report.critical,
            "order": str(order.id),
            "item": order.item_name,
        },
    )


def _notify_site(session: Session, order: DiagnosticOrder, kind: str, message: str, now: datetime) -> None:
    session.add(
        DiagnosticNotification(
            facility_id=order.ordering_facility_id,
            kind=kind,
            subject_id=order.id,
            message=message[:255],
            created_at=now,
        )
    )


def _raise_alert(session: Session, actor: Actor, order: DiagnosticOrder, message: str, now: datetime) -> None:
    session.add(
        CriticalAlert(
            order_id=order.id,
            facility_id=order.ordering_facility_id,
            patient_ref=order.patient_ref,
            message=f"{order.item_name}: {message}"[:2000],
            raised_by=actor.username,
            raised_at=now,
        )
    )


def cancel_order(session: Session, actor: Actor, order_id: uuid.UUID | str, reason: str) -> DiagnosticOrder:
    order = _order(session, order_id, lock=True)
    order.state = next_order_state(order.state, "cancel", parties(actor, order)).value
    order.cancelled_at, order.cancel_reason = utcnow(), reason
    _project_order(session, actor, order)
    audit.record(
        session,
        actor,
        "diagnostics.order.cancel",
        patient=order.patient_ref,
        reason=reason,
        resource=f"ServiceRequest/{order.id}",
    )
    return order


def study_file(session: Session, actor: Actor, study_id: uuid.UUID) -> DiagnosticStudy:
    study = session.get(DiagnosticStudy, study_id)
    if study is None or study.content is None:
        raise NotFound(f"no uploaded file {study_id}", field="study_id")
    _see_order(session, actor, _order(session, study.order_id))
    return study


# -- reading the orders ------------------------------------------------------------------------------------------------


def order_out(
    session: Session,
    actor: Actor,
    order: DiagnosticOrder,
    *,
    names: dict[uuid.UUID, str] | None = None,
    patients: dict[str, str] | None = None,
    detail: bool = True,
    now: datetime | None = None,
) -> OrderOut:
    names = names if names is not None else _names(session, [order.ordering_facility_id, order.centre_facility_id])
    now = now or utcnow()
    targets = _limits(session, order.centre_facility_id).targets
    due = rules.due_at(order.received_at, order.modality, order.priority, targets) if order.received_at else None
    studies: list[StudyOut] = []
    report = None
    if detail:
        rows = session.scalars(
            select(DiagnosticStudy).where(DiagnosticStudy.order_id == order.id).order_by(DiagnosticStudy.received_at)
        )
        studies = [StudyOut.model_validate(s, from_attributes=True) for s in rows]
        rep = session.scalar(select(DiagnosticReportRow).where(DiagnosticReportRow.order_id == order.id))
        if rep is not None:
            report = ReportOut.model_validate(rep, from_attributes=True)
            report.earlier = [
                ReportVersionOut.model_validate(v, from_attributes=True)
                for v in session.scalars(
                    select(DiagnosticReportVersion)
                    .where(DiagnosticReportVersion.report_id == rep.id)
                    .order_by(DiagnosticReportVersion.version.desc())
                )
            ]
    return OrderOut(
        id=order.id,
        patient_ref=order.patient_ref,
        patient_name=(patients or {}).get(order.patient_ref),
        ordering_facility_id=order.ordering_facility_id,
        ordering_facility=names.get(order.ordering_facility_id, ""),
        centre_facility_id=order.centre_facility_id,
        centre=names.get(order.centre_facility_id, ""),
        ordered_by=order.ordered_by,
        modality=order.modality,
        item_code=order.item_code,
        item_name=order.item_name,
        priority=order.priority,
        clinical_question=order.clinical_question,
        state=order.state,
        ordered_at=order.ordered_at,
        received_at=order.received_at,
        reported_at=order.reported_at,
        due_at=due,
        overdue=rules.is_overdue(order.received_at, order.reported_at, order.modality, order.priority, now, targets)
        and order.state == "received",
        repeat_reason=order.repeat_reason,
        patient_informed=order.patient_informed,
        claimed_by=order.claimed_by,
        claimed_at=order.claimed_at,
        studies=studies,
        report=report,
        actions=_order_actions(actor, order),
    )


def _order_actions(actor: Actor, order: DiagnosticOrder) -> list[str]:
    """What this person may do now: the state table, narrowed by who holds the study."""
    if order.claimed_by is None:
        hidden = {"release"}
    elif order.claimed_by == actor.username:
        hidden = {"claim"}
    else:
        hidden = {"claim", "sign"}
    return [a for a in order_actions(order.state, parties(actor, order)) if a not in hidden]


def get_order(session: Session, actor: Actor, order_id: uuid.UUID | str) -> OrderOut:
    order = _order(session, order_id)
    _see_order(session, actor, order)
    return order_out(session, actor, order, patients=patient_names(session, [order.patient_ref]))


def _outs(session: Session, actor: Actor, orders: Sequence[DiagnosticOrder], action: str) -> list[OrderOut]:
    names = _names(session, [o.ordering_facility_id for o in orders] + [o.centre_facility_id for o in orders])
    patients = patient_names(session, [o.patient_ref for o in orders])
    for ref in sorted({o.patient_ref for o in orders}):
        audit.record(session, actor, action, patient=ref)
    now = utcnow()
    return [order_out(session, actor, o, names=names, patients=patients, detail=False, now=now) for o in orders]


def worklist(session: Session, actor: Actor, *, limit: int = 200) -> list[OrderOut]:
    """The centre's open orders: studies that arrived first (stat, urgent, routine; oldest first), then those awaited."""
    facility_id = _clinician(actor, "read a centre's worklist")
    orders = list(
        session.scalars(
            select(DiagnosticOrder)
            .where(
                DiagnosticOrder.centre_facility_id == facility_id, DiagnosticOrder.state.in_(["ordered", "received"])
            )
            .limit(limit * 2)
        )
    )
    orders.sort(key=lambda o: rules.worklist_key(rules.WorkItem(o.priority, o.received_at, o.ordered_at)))
    return _outs(session, actor, orders[:limit], "diagnostics.worklist.read")


def sent_orders(session: Session, actor: Actor, *, limit: int = 100) -> list[OrderOut]:
    facility_id = _clinician(actor, "see the orders of a facility")
    orders = list(
        session.scalars(
            select(DiagnosticOrder)
            .where(DiagnosticOrder.ordering_facility_id == facility_id)
            .order_by(DiagnosticOrder.ordered_at.desc())
            .limit(limit)
        )
    )
    return _outs(session, actor, orders, "diagnostics.orders.read")


def overdue(session: Session, actor: Actor, *, now: datetime | None = None) -> list[OrderOut]:
    facility_id = _clinician(actor, "read a centre's overdue list")
    now = now or utcnow()
    targets = _limits(session, facility_id).targets
    orders = [
        o
        for o in session.scalars(
            select(DiagnosticOrder).where(
                DiagnosticOrder.centre_facility_id == facility_id, DiagnosticOrder.state == "received"
            )
        )
        if rules.is_overdue(o.received_at, o.reported_at, o.modality, o.priority, now, targets)
    ]
    orders.sort(key=lambda o: rules.due_at(o.received_at, o.modality, o.priority, targets))  # type: ignore[arg-type]
    return _outs(session, actor, orders, "diagnostics.overdue.read")


@dataclass
class ReaderLoad:
    reader: str
    name: str
    reports: int
    critical: int
    median_read_minutes: float | None


def workload(session: Session, facility_id: uuid.UUID, *, since: datetime) -> list[ReaderLoad]:
    """Reports signed per reader at a centre since a moment, with their median reading time (received → signed)."""
    rows = session.execute(
        select(DiagnosticReportRow, DiagnosticOrder.received_at)
        .join(DiagnosticOrder, DiagnosticOrder.id == DiagnosticReportRow.order_id)
        .where(DiagnosticReportRow.performer_facility_id == facility_id, DiagnosticReportRow.signed_at >= since)
    ).all()
    per: dict[str, list[tuple[DiagnosticReportRow, datetime | None]]] = defaultdict(list)
    for report, received in rows:
        per[report.signed_by].append((report, received))
    out = []
    for reader, items in per.items():
        t = rules.turnaround(r.signed_at - rec for r, rec in items if rec is not None)
        out.append(
            ReaderLoad(
                reader, items[0][0].signed_by_name, len(items), sum(r.critical for r, _ in items), t.median_minutes
            )
        )
    return sorted(out, key=lambda r: (-r.reports, r.reader))


@dataclass
class TurnaroundRow:
    centre_id: uuid.UUID
    centre: str
    modality: str
    reports: int
    open: int
    overdue: int
    to_receive: rules.Turnaround
    to_read: rules.Turnaround
    total: rules.Turnaround


def turnaround(
    session: Session, *, since: datetime, centre_id: uuid.UUID | None = None, now: datetime | None = None
) -> list[TurnaroundRow]:
    """Per centre and modality: ordered → received, received → reported and ordered → reported (median, p90)."""
    now = now or utcnow()
    stmt = select(DiagnosticOrder).where(DiagnosticOrder.ordered_at >= since, DiagnosticOrder.state != "cancelled")
    if centre_id:
        stmt = stmt.where(DiagnosticOrder.centre_facility_id == centre_id)
    groups: dict[tuple[uuid.UUID, str], list[DiagnosticOrder]] = defaultdict(list)
    for o in session.scalars(stmt):
        groups[(o.centre_facility_id, o.modality)].append(o)
    names = _names(session, [c for c, _ in groups])
    out = []
    for (cid, modality), orders in groups.items():
        targets = _limits(session, cid).targets
        done = [o for o in orders if o.reported_at]
        out.append(
            TurnaroundRow(
                centre_id=cid,
                centre=names.get(cid, ""),
                modality=modality,
                reports=len(done),
                open=len(orders) - len(done),
                overdue=sum(
                    rules.is_overdue(o.received_at, o.reported_at, modality, o.priority, now, targets) for o in orders
                ),
                to_receive=rules.turnaround(o.received_at - o.ordered_at for o in orders if o.received_at),
                to_read=rules.turnaround(o.reported_at - o.received_at for o in done if o.received_at),  # type: ignore[operator]
                total=rules.turnaround(o.reported_at - o.ordered_at for o in done),  # type: ignore[operator]
            )
        )
    return sorted(out, key=lambda r: (r.centre, r.modality))


# -- the ordering site's inbox -----------------------------------------------------------------------------------------


def notifications(
    session: Session, actor: Actor, *, unread_only: bool = False, limit: int = 50
) -> list[NotificationOut]:
    if actor.facility_id is None:
        return []
    stmt = select(DiagnosticNotification).where(DiagnosticNotification.facility_id == actor.facility_id)
    if unread_only:
        stmt = stmt.where(DiagnosticNotification.read_at.is_(None))
    rows = session.scalars(stmt.order_by(DiagnosticNotification.created_at.desc()).limit(limit))
    return [NotificationOut.model_validate(n, from_attributes=True) for n in rows]


def alerts(session: Session, actor: Actor, *, open_only: bool = True) -> list[AlertOut]:
    if actor.facility_id is None:
        return []
    stmt = select(CriticalAlert).where(CriticalAlert.facility_id == actor.facility_id)
    if open_only:
        stmt = stmt.where(CriticalAlert.acknowledged_at.is_(None))
    rows = list(session.scalars(stmt.order_by(CriticalAlert.raised_at.desc()).limit(100)))
    for ref in sorted({a.patient_ref for a in rows}):
        audit.record(session, actor, "diagnostics.alerts.read", patient=ref)
    return [AlertOut.model_validate(a, from_attributes=True) for a in rows]


def acknowledge_alert(session: Session, actor: Actor, alert_id: uuid.UUID) -> CriticalAlert:
    """Someone at the ordering site confirms they received the critical value (and will act on it)."""
    alert = session.get(CriticalAlert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"no critical-value alert {alert_id}", field="alert_id")
    if actor.facility_id != alert.facility_id or actor.role not in CLINICAL_ROLES:
        raise Forbidden("only a clinician at the ordering site acknowledges its critical values")
    if alert.acknowledged_at is not None:
        raise Conflict(f"already acknowledged by {alert.acknowledged_by}", field="alert_id")
    alert.acknowledged_at, alert.acknowledged_by = utcnow(), actor.username
    audit.record(
        session,
        actor,
        "diagnostics.alert.acknowledge",
        patient=alert.patient_ref,
        resource=f"ServiceRequest/{alert.order_id}",
    )
    return alert


def mark_read(session: Session, actor: Actor, notification_id: uuid.UUID) -> None:
    n = session.get(DiagnosticNotification, notification_id)
    if n is None or n.facility_id != actor.facility_id:
        raise NotFound(f"no notification {notification_id} for your facility", field="notification_id")
    n.read_at = n.read_at or utcnow()


@dataclass
class PrintView:
    order: OrderOut
    patient: dict[str, Any]
    ordering: Any
    centre: Any
    printed_at: datetime
    hr: bool
    measurements: list[tuple[str, float, str, bool]] = field(default_factory=list)


def print_view(session: Session, actor: Actor, order_id: uuid.UUID | str) -> PrintView:
    """The signed report as the ordering site prints it for the patient (no trip to the centre to fetch it)."""
    order = _order(session, order_id)
    _see_order(session, actor, order)
    if order.state != "reported":
        raise Conflict("the report is not signed yet: nothing to print", field="state")
    now = utcnow()
    for n in session.scalars(
        select(DiagnosticNotification).where(
            DiagnosticNotification.subject_id == order.id, DiagnosticNotification.facility_id == actor.facility_id
        )
    ):
        n.read_at = n.read_at or now
        n.printed_at = n.printed_at or now
    audit.record(
        session, actor, "diagnostics.report.print", patient=order.patient_ref, resource=f"ServiceRequest/{order.id}"
    )
    out = order_out(session, actor, order, patients=patient_names(session, [order.patient_ref]))
    patient = store.read(session, "Patient", order.patient_ref.removeprefix("Patient/"))
    measured: dict[str, float] = {}
    for s in out.studies:
        measured.update(s.measurements)
    rows = []
    for code, value in sorted(measured.items()):
        m = rules.MEASURES[code]
        critical = rules.critical_values({code: value}, _limits(session, order.centre_facility_id).measures)
        rows.append((m.display, value, m.unit, bool(critical)))
    return PrintView(
        order=out,
        patient={
            "name": display_name(patient),
            "gender": patient.get("gender", ""),
            "birthDate": patient.get("birthDate", ""),
        },
        ordering=network.get_facility(session, order.ordering_facility_id),
        centre=network.get_facility(session, order.centre_facility_id),
        printed_at=now,
        hr=bool(out.report and out.report.recognised),
        measurements=rows,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Mutual recognition


# Statuses of a result one may rely on (a preliminary or cancelled one is not a result to recognise).
USABLE_STATUSES = ("final", "amended", "corrected")


@dataclass(frozen=True)
class SharedResult:
    """A result of the shared record that may be recognised: a report signed here, or a DiagnosticReport or
    Observation that a hospital system sent through /fhir or `yilian fhir import`."""

    ref: str  # "DiagnosticReport/<id>" or "Observation/<id>"
    resource: dict[str, Any]
    at: datetime
    facility_id: uuid.UUID


def _result_time(res: dict[str, Any]) -> datetime | None:
    """When the test was done: effective time first (the validity window counts from the test), else issued."""
    period = res.get("effectivePeriod") or {}
    for raw in (res.get("effectiveDateTime"), res.get("effectiveInstant"), period.get("start"), res.get("issued")):
        if raw:
            try:
                dt = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                continue
            if dt.tzinfo is None:  # a date without a zone: read it in the region's time, as the hospital wrote it
                from zoneinfo import ZoneInfo

                from yilian.config import get_settings

                dt = dt.replace(tzinfo=ZoneInfo(get_settings().timezone))
            return dt
    return None


def _performing_facility(session: Session, res: dict[str, Any], cache: dict[str, uuid.UUID | None]) -> uuid.UUID | None:
    """The registry facility that produced a result: performer Organization/<facility id>, an Organization carrying
    the registry's facility code, or a logical reference by that code. None when it is not a facility we know (its
    quality control cannot be checked, so the result is not recognised)."""
    for performer in res.get("performer") or []:
        ident = performer.get("identifier") or {}
        ref = str(performer.get("reference") or "")
        key = ref or f"{ident.get('system')}|{ident.get('value')}"
        if key not in cache:
            cache[key] = _facility_of_performer(session, ref, ident)
        if cache[key] is not None:
            return cache[key]
    return None


def _facility_of_performer(session: Session, ref: str, ident: dict[str, Any]) -> uuid.UUID | None:
    code = ident.get("value") if ident.get("system") == FACILITY_CODE else None
    if ref.startswith("Organization/"):
        org_id = ref.removeprefix("Organization/")
        try:
            return network.resolve_facility_id(session, uuid.UUID(org_id))
        except (ValueError, NotFound):
            pass
        try:
            org = store.read(session, "Organization", org_id)
        except YilianError:
            return None
        code = next((i.get("value") for i in org.get("identifier") or [] if i.get("system") == FACILITY_CODE), None)
    if not code:
        return None
    try:
        return network.resolve_facility_id(session, str(code))
    except NotFound:
        return None


def shared_results(session: Session, refs: Sequence[str], item: rules.RecognisedItem) -> list[SharedResult]:
    """Final results of this item for these Patient records in the shared record (FHIR store), newest first: matched
    by the catalogue's LOINC code or its local code, whoever wrote them."""
    codes = [f"{dfhir.ITEM_SYSTEM}|{item.code}"] + ([f"{dfhir.LOINC}|{item.loinc}"] if item.loinc else [])
    params = [
        ("subject", ",".join(refs)),
        ("code", ",".join(codes)),
        ("status", ",".join(USABLE_STATUSES)),
        ("_sort", "-date"),
        ("_count", "50"),
        ("_total", "none"),
    ]
    cache: dict[str, uuid.UUID | None] = {}
    out = []
    # Reports before observations: a report and its own observations have the same time, and the report is what a
    # doctor wants to see (max() keeps the first of equals).
    for res_type in ("DiagnosticReport", "Observation"):
        for res in store.search(session, res_type, params).resources:
            at = _result_time(res)
            fid = _performing_facility(session, res, cache)
            if at is not None and fid is not None:
                out.append(SharedResult(f"{res_type}/{res['id']}", res, at, fid))
    return out


def _recognised_prior(
    session: Session, item: rules.RecognisedItem, facility_id: uuid.UUID, ref: str, now: datetime
) -> PriorResult | None:
    found = shared_results(session, person_refs(session, ref), item)
    if not found:
        return None
    places: dict[uuid.UUID, PlaceFacts] = {}
    priors = []
    for r in found:
        if r.facility_id not in places:
            places[r.facility_id] = _place(session, r.facility_id)
        priors.append(
            PriorResult(
                report_id=r.ref,
                item_code=item.code,
                reported_at=r.at,
                performed_by=places[r.facility_id],
                qualified_until=_qualified_until(session, r.facility_id, item, r.at.date()),
            )
        )
    return rules.recognised_result(item, _place(session, facility_id), priors, now)


def _prior_text(session: Session, prior: PriorResult, item: rules.RecognisedItem) -> str:
    name = network.get_facility(session, prior.performed_by.facility_id).name  # type: ignore[arg-type]
    until = rules.valid_until(item, prior.reported_at)
    return f"{name}, {prior.reported_at.date().isoformat()}, valid until {until.date().isoformat()}"


def _result_summary(res: dict[str, Any]) -> str:
    """What the earlier result said, in one line: a report's conclusion, or an observation's value."""
    if res.get("conclusion"):
        return str(res["conclusion"])
    if "valueQuantity" in res:
        q = res["valueQuantity"]
        value = q.get("value")
        shown = f"{value:g}" if isinstance(value, int | float) else str(value)
        return f"{shown} {q.get('unit') or q.get('code') or ''}".strip()
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in res:
            return str(res[key])
    if "valueCodeableConcept" in res:
        concept = res["valueCodeableConcept"]
        return str(concept.get("text") or next((c.get("display") for c in concept.get("coding") or []), ""))
    return ""


def _prior_out(session: Session, prior: PriorResult, item: rules.RecognisedItem) -> PriorOut:
    ref = str(prior.report_id)
    res_type, _, res_id = ref.partition("/")
    res = store.read(session, res_type, res_id)
    order_id = None
    for based in res.get("basedOn") or []:
        target = str(based.get("reference", ""))
        if target.startswith("ServiceRequest/"):
            try:
                candidate = uuid.UUID(target.removeprefix("ServiceRequest/"))
            except ValueError:
                continue
            if session.get(DiagnosticOrder, candidate) is not None:
                order_id = candidate
    return PriorOut(
        ref=ref,
        report_id=_report_row_id(session, ref),
        order_id=order_id,
        item_code=item.code,
        item_name=item.name,
        conclusion=_result_summary(res),
        performed_by=network.get_facility(session, prior.performed_by.facility_id).name,  # type: ignore[arg-type]
        reported_at=prior.reported_at,
        valid_until=rules.valid_until(item, prior.reported_at),
    )


def _report_row_id(session: Session, ref: str) -> uuid.UUID | None:
    """The diagnostic_report row behind a reference, when the result was signed here (kept for the foreign key)."""
    res_type, _, res_id = ref.partition("/")
    if res_type != "DiagnosticReport":
        return None
    try:
        rid = uuid.UUID(res_id)
    except ValueError:
        return None
    return rid if session.get(DiagnosticReportRow, rid) is not None else None


def check_recognition(session: Session, actor: Actor, patient: str, item_code: str) -> RecognitionCheckOut:
    """What an order of this item for this patient would meet: a valid recognised result to reuse, or nothing."""
    facility_id = _clinician(actor, "check for recognised results")
    ref = patient_ref(session, patient)
    _patient_access(session, actor, ref, "read", "DiagnosticReport", "diagnostics.recognition.check")
    item = catalogue.items().get(item_code)
    item = _regional(session, facility_id, item) if item else None
    reasons = {r.value: label for r, label in rules.REASON_LABELS.items()}
    if item is None:
        return RecognitionCheckOut(recognised_item=False, prior=None, reasons=reasons)
    prior = _recognised_prior(session, item, facility_id, ref, utcnow())
    return RecognitionCheckOut(
        recognised_item=True, prior=_prior_out(session, prior, item) if prior else None, reasons=reasons
    )


def reuse_result(session: Session, actor: Actor, patient: str, item_code: str) -> PriorOut:
    """Recognise the earlier result instead of ordering the test again: one test avoided, its price saved."""
    facility_id = _clinician(actor, "reuse a recognised result")
    ref = patient_ref(session, patient)
    _patient_access(session, actor, ref, "read", "DiagnosticReport", "diagnostics.recognition.reuse")
    item = _regional(session, facility_id, catalogue.get(item_code))
    prior = _recognised_prior(session, item, facility_id, ref, utcnow())
    if prior is None:
        raise NotFound(f"no valid recognised result of {item.name} for this patient", field="item_code")
    _decide(session, actor, ref, item, facility_id, prior, "reused", decided_at=utcnow())
    return _prior_out(session, prior, item)


def _decide(
    session: Session,
    actor: Actor,
    ref: str,
    item: rules.RecognisedItem,
    facility_id: uuid.UUID,
    prior: PriorResult,
    outcome: str,
    **extra: Any,
) -> None:
    """Record what a doctor did with a valid recognised result (reused: a test avoided; repeated: with its reason)."""
    session.add(
        RecognitionDecision(
            patient_ref=ref,
            item_code=item.code,
            facility_id=facility_id,
            prior_report_id=_report_row_id(session, str(prior.report_id)),
            prior_ref=str(prior.report_id),
            outcome=outcome,
            price_fen=item.price_fen,
            decided_by=actor.username,
            **extra,
        )
    )


def qualify(session: Session, actor: Actor, body: QualificationIn) -> RecognitionQualification:
    """Record a facility's quality-control pass for an item (or '*<modality>' for all its items)."""
    facility_id = network.resolve_facility_id(session, body.facility, field="facility")
    f = network.get_facility(session, facility_id)
    consortia = frozenset(c.id for c in network.consortia_of_facility(session, facility_id))
    if not scope.can_change_facility(actor, scope.FacilityFacts(f.id, f.division_code, consortia)):
        raise Forbidden("quality-control passes are recorded by the health commission or the consortium office")
    if body.item_code.startswith("*"):
        try:
            Modality(body.item_code[1:])
        except ValueError:
            raise Invalid("use an item code or *ecg, *imaging, *lab, *pathology", field="item_code") from None
    else:
        catalogue.get(body.item_code)
    if body.valid_until < body.passed_on:
        raise Invalid("valid_until is before passed_on", field="valid_until")
    row = RecognitionQualification(
        facility_id=facility_id,
        item_code=body.item_code,
        passed_on=body.passed_on,
        valid_until=body.valid_until,
        recorded_by=actor.username,
    )
    session.add(row)
    return row


def catalogue_out(
    session: Session, *, on: date | None = None, facility_id: uuid.UUID | None = None
) -> list[CatalogueItemOut]:
    """The catalogue with the facilities qualified on a day; with a facility, validity windows are its region's."""
    on = on or utcnow().date()
    region = _limits(session, facility_id) if facility_id else limits.defaults()
    quals = session.execute(
        select(
            RecognitionQualification.item_code,
            RecognitionQualification.facility_id,
            RecognitionQualification.valid_until,
        ).where(RecognitionQualification.passed_on <= on, RecognitionQualification.valid_until >= on)
    ).all()
    by_code: dict[str, dict[uuid.UUID, date]] = defaultdict(dict)
    for code, fid, until in quals:
        by_code[code][fid] = max(until, by_code[code].get(fid, until))
    names = _names(session, {fid for d in by_code.values() for fid in d})
    out = []
    for item in map(region.item, catalogue.items().values()):
        qualified = {**by_code.get(f"*{item.modality.value}", {}), **by_code.get(item.code, {})}
        out.append(
            CatalogueItemOut(
                code=item.code,
                name=item.name,
                name_en=item.name_en,
                modality=item.modality.value,
                loinc=item.loinc,
                validity_days=item.validity_days,
                scope=item.scope.value,
                price_fen=item.price_fen,
                qualified_facilities=[
                    {"id": str(fid), "name": names[fid], "valid_until": until.isoformat()}
                    for fid, until in sorted(qualified.items(), key=lambda kv: names[kv[0]])
                ],
            )
        )
    return out


@dataclass
class RecognitionReport:
    tests_avoided: int
    money_saved_fen: int
    repeats: int
    repeat_rate: float | None
    by_reason: dict[str, int]
    by_facility: list[dict[str, Any]]
    recent_repeats: list[dict[str, Any]]


def recognition_report(session: Session, *, since: datetime) -> RecognitionReport:
    """Tests avoided, money saved, and repeats by facility and by reason (aggregates: no person-level data)."""
    rows = list(session.scalars(select(RecognitionDecision).where(RecognitionDecision.decided_at >= since)))
    reused = [r for r in rows if r.outcome == "reused"]
    repeated = [r for r in rows if r.outcome == "repeated"]
    names = _names(session, {r.facility_id for r in rows})
    per: dict[uuid.UUID, Counter[str]] = defaultdict(Counter)
    for r in rows:
        per[r.facility_id][r.outcome] += 1
    by_facility = [
        {
            "facility": names[fid],
            "facility_id": str(fid),
            "reused": c["reused"],
            "repeated": c["repeated"],
            "repeat_rate": rules.repeat_rate(c["repeated"], c["reused"]),
        }
        for fid, c in sorted(per.items(), key=lambda kv: names[kv[0]])
    ]
    recent = [
        {
            "facility": names[r.facility_id],
            "item_code": r.item_code,
            "reason": r.reason,
            "note": r.note,
            "decided_at": r.decided_at,
            "patient_informed": r.patient_informed,
            "prior_ref": r.prior_ref or (f"DiagnosticReport/{r.prior_report_id}" if r.prior_report_id else None),
        }
        for r in sorted(repeated, key=lambda r: r.decided_at, reverse=True)[:20]
    ]
    return RecognitionReport(
        tests_avoided=len(reused),
        money_saved_fen=sum(r.price_fen for r in reused),
        repeats=len(repeated),
        repeat_rate=rules.repeat_rate(len(repeated), len(reused)),
        by_reason=dict(Counter(r.reason or "" for r in repeated)),
        by_facility=by_facility,
        recent_repeats=recent,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Teleconsultation


def _consult(session: Session, consult_id: uuid.UUID | str, *, lock: bool = False) -> Teleconsultation:
    return _load(session, Teleconsultation, consult_id, "teleconsultation", "consultation_id", lock)


def consult_parties(actor: Actor, c: Teleconsultation) -> frozenset[Party]:
    out = set()
    if actor.role in CLINICAL_ROLES:
        if actor.facility_id == c.requesting_facility_id:
            out.add(Party.ORDERING_SITE)
        if actor.facility_id == c.centre_facility_id:
            out.add(Party.CENTRE)
        if actor.username in (c.experts or []):
            out.add(Party.EXPERT)
    return frozenset(out)


def _project_consult(session: Session, actor: Actor, c: Teleconsultation) -> None:
    names = _names(session, [c.requesting_facility_id, c.centre_facility_id])
    resources = [dfhir.to_consult_request(c, names), dfhir.to_consult_task(c, names)]
    if c.state == "answered":
        resources.append(dfhir.to_consult_report(c, names))
    store.upsert_many(session, resources, actor=actor)


# What a consultation may link from the shared record (links, not copies: the expert reads the current resource).
RECORD_TYPES = (
    "DiagnosticReport",
    "Observation",
    "ImagingStudy",
    "Condition",
    "Procedure",
    "MedicationRequest",
    "AllergyIntolerance",
    "DocumentReference",
    "Encounter",
)
_WHEN = (
    "effectiveDateTime",
    "issued",
    "started",
    "onsetDateTime",
    "recordedDate",
    "performedDateTime",
    "authoredOn",
    "date",
)


@dataclass
class RecordItem:
    ref: str
    type: str
    when: str
    text: str


def _concept_text(concept: dict[str, Any] | None) -> str:
    if not concept:
        return ""
    return str(
        concept.get("text") or next((c.get("display") or c.get("code") for c in concept.get("coding") or []), "")
    )


def record_item(res: dict[str, Any]) -> RecordItem:
    """One line that tells a doctor what a record item is: kind, date, what, and a value or conclusion."""
    res_type = str(res["resourceType"])
    what = _concept_text(res.get("code") or res.get("medicationCodeableConcept") or res.get("type"))
    if res_type == "ImagingStudy":
        what = str(res.get("description") or "") or ", ".join(m.get("code", "") for m in res.get("modality") or [])
    if res_type == "Encounter":
        what = _concept_text((res.get("type") or [None])[0]) or str((res.get("class") or {}).get("code", ""))
    if res_type == "DocumentReference":
        what = str(res.get("description") or "") or _concept_text(res.get("type"))
    detail = _result_summary(res) if res_type in ("Observation", "DiagnosticReport") else ""
    when = next((str(res[k]) for k in _WHEN if res.get(k)), "")
    if not when and isinstance(res.get("period"), dict):
        when = str(res["period"].get("start", ""))
    text = f"{what}: {detail}" if detail else what
    return RecordItem(f"{res_type}/{res['id']}", res_type, when[:10], text or res_type)


def search_record(session: Session, actor: Actor, patient: str, *, text: str = "", limit: int = 40) -> list[RecordItem]:
    """Items of a patient's shared record (every record of the same person) to attach to a consultation, newest first,
    narrowed by a search text (matched in what the item is, its value or its kind)."""
    ref = patient_ref(session, patient)
    _patient_access(session, actor, ref, "read", "Patient", "diagnostics.record.search")
    refs = ",".join(person_refs(session, ref))
    needle = text.strip().lower()
    found: list[RecordItem] = []
    for res_type in RECORD_TYPES:
        params = [("patient", refs), ("_sort", "-date"), ("_count", "50"), ("_total", "none")]
        for res in store.search(session, res_type, params, strict=True).resources:
            item = record_item(res)
            if not needle or needle in item.text.lower() or needle in res_type.lower():
                found.append(item)
    found.sort(key=lambda i: i.when, reverse=True)
    return found[:limit]


def search_patients(session: Session, actor: Actor, text: str, *, limit: int = 20) -> list[tuple[str, str]]:
    """Patients whose name matches, among those the actor may read (for a ward-round list): ("Patient/<id>", name)."""
    if not text.strip():
        return []
    out = []
    for p in store.search(session, "Patient", [("name", text.strip()), ("_count", "50"), ("_total", "none")]).resources:
        ref = f"Patient/{p['id']}"
        try:
            access.check(session, actor, "read", "Patient", ref)
        except (Forbidden, NotFound):
            continue
        label = f"{display_name(p)} · {p.get('birthDate', '')}"
        out.append((ref, label))
        if len(out) >= limit:
            break
    return out


def request_consultation(session: Session, actor: Actor, body: ConsultIn) -> Teleconsultation:
    facility_id = _clinician(actor, "request a teleconsultation")
    ref = patient_ref(session, body.patient)
    _patient_access(session, actor, ref, "write", "ServiceRequest", "diagnostics.consultation.request")
    if body.centre:
        centre_id = network.resolve_facility_id(session, body.centre, field="centre")
    else:
        leads = [
            c.lead_facility_id
            for c in network.consortia_of_facility(session, facility_id)
            if c.lead_facility_id != facility_id
        ]
        if not leads:
            raise Invalid(
                "name the consultation centre: your facility leads or belongs to no consortium", field="centre"
            )
        centre_id = leads[0]
    if centre_id == facility_id:
        raise Invalid("a consultation goes to another facility's experts", field="centre")
    people = person_refs(session, ref)
    for i, item in enumerate(body.record_items):
        res_type, _, res_id = item.partition("/")
        if res_type not in RECORD_TYPES or not res_id or not store.exists(session, res_type, res_id):
            raise NotFound(f"no {item} in the shared record", field=f"record_items.{i}")
        # A link to someone else's record would show the expert another patient's data.
        owner = store.patient_of(store.read(session, res_type, res_id))
        if owner is not None and owner not in people:
            raise Invalid(f"{item} belongs to another patient", field=f"record_items.{i}")
    if body.round_patients and body.kind != ConsultKind.WARD_ROUND:
        raise Invalid("a list of patients is for a remote ward round (kind ward_round)", field="round_patients")
    round_list = [ref]
    for i, other in enumerate(body.round_patients):
        other_ref = patient_ref(session, other, field=f"round_patients.{i}")
        _patient_access(session, actor, other_ref, "write", "ServiceRequest", "diagnostics.consultation.request")
        if other_ref not in round_list:
            round_list.append(other_ref)
    c = Teleconsultation(
        id=uuid.uuid4(),
        kind=body.kind.value,
        patient_ref=ref,
        requesting_facility_id=facility_id,
        centre_facility_id=centre_id,
        requested_by=actor.username,
        specialty=body.specialty,
        urgency=body.urgency.value,
        question=body.question,
        record_items=list(body.record_items),
        round_patients=round_list if body.kind == ConsultKind.WARD_ROUND else [],
        state="requested",
        experts=[],
        opinion={},
        requested_at=utcnow(),
    )
    session.add(c)
    session.flush()
    _project_consult(session, actor, c)
    events.emit(
        session,
        "diagnostics.consultation.requested",
        subject=f"ServiceRequest/{c.id}",
        payload={"centre": str(centre_id), "kind": c.kind},
    )
    return c


def schedule_consultation(
    session: Session, actor: Actor, consult_id: uuid.UUID | str, body: ScheduleIn
) -> Teleconsultation:
    c = _consult(session, consult_id, lock=True)
    c.state = next_consult_state(c.state, "schedule", consult_parties(actor, c)).value
    rules.check_experts(c.kind, body.experts)
    for i, username in enumerate(body.experts):
        try:
            user = users.get_user(session, username)
        except NotFound:
            raise NotFound(f"no user {username!r}", field=f"experts.{i}") from None
        if user.role not in CLINICAL_ROLES:
            raise Invalid(f"{username} is not a clinician", field=f"experts.{i}")
    c.experts = list(body.experts)
    c.scheduled_at = body.scheduled_at
    c.meeting_url = rules.meeting_url(settings().meeting_url_template, str(c.id))
    session.add(
        DiagnosticNotification(
            facility_id=c.requesting_facility_id,
            kind="consultation_scheduled",
            subject_id=c.id,
            message=f"{c.specialty}: {body.scheduled_at.isoformat(timespec='minutes')}",
        )
    )
    _project_consult(session, actor, c)
    audit.record(
        session, actor, "diagnostics.consultation.schedule", patient=c.patient_ref, resource=f"ServiceRequest/{c.id}"
    )
    return c


def answer_consultation(
    session: Session, actor: Actor, consult_id: uuid.UUID | str, body: OpinionIn
) -> Teleconsultation:
    c = _consult(session, consult_id, lock=True)
    c.state = next_consult_state(c.state, "answer", consult_parties(actor, c)).value
    c.opinion = body.model_dump()
    c.answered_by, c.answered_at = actor.username, utcnow()
    session.add(
        DiagnosticNotification(
            facility_id=c.requesting_facility_id,
            kind="consultation_answered",
            subject_id=c.id,
            message=f"{c.specialty}: {body.diagnosis}"[:255],
        )
    )
    _project_consult(session, actor, c)
    audit.record(
        session, actor, "diagnostics.consultation.answer", patient=c.patient_ref, resource=f"ServiceRequest/{c.id}"
    )
    events.emit(
        session,
        "diagnostics.consultation.answered",
        subject=f"ServiceRequest/{c.id}",
        payload={"facility": str(c.requesting_facility_id)},
    )
    return c


def cancel_consultation(session: Session, actor: Actor, consult_id: uuid.UUID | str) -> Teleconsultation:
    c = _consult(session, consult_id, lock=True)
    c.state = next_consult_state(c.state, "cancel", consult_parties(actor, c)).value
    _project_consult(session, actor, c)
    audit.record(
        session, actor, "diagnostics.consultation.cancel", patient=c.patient_ref, resource=f"ServiceRequest/{c.id}"
    )
    return c


def consult_out(
    session: Session, actor: Actor, c: Teleconsultation, patients: dict[str, str] | None = None
) -> ConsultOut:
    names = _names(session, [c.requesting_facility_id, c.centre_facility_id])
    return ConsultOut(
        id=c.id,
        kind=c.kind,
        patient_ref=c.patient_ref,
        patient_name=(patients or {}).get(c.patient_ref),
        requesting_facility_id=c.requesting_facility_id,
        requesting_facility=names[c.requesting_facility_id],
        centre_facility_id=c.centre_facility_id,
        centre=names[c.centre_facility_id],
        requested_by=c.requested_by,
        specialty=c.specialty,
        urgency=c.urgency,
        question=c.question,
        record_items=list(c.record_items or []),
        round_patients=[{"ref": r, "name": (patients or {}).get(r, r)} for r in c.round_patients or []],
        state=c.state,
        experts=list(c.experts or []),
        scheduled_at=c.scheduled_at,
        meeting_url=c.meeting_url,
        opinion={k: str(v) for k, v in (c.opinion or {}).items()},
        answered_by=c.answered_by,
        requested_at=c.requested_at,
        answered_at=c.answered_at,
        actions=consult_actions(c.state, consult_parties(actor, c)),
    )


def get_consultation(session: Session, actor: Actor, consult_id: uuid.UUID | str) -> ConsultOut:
    c = _consult(session, consult_id)
    if not consult_parties(actor, c):
        access.check(session, actor, "read", "ServiceRequest", c.patient_ref)
    audit.record(
        session, actor, "diagnostics.consultation.read", patient=c.patient_ref, resource=f"ServiceRequest/{c.id}"
    )
    out = consult_out(session, actor, c, patient_names(session, [c.patient_ref, *(c.round_patients or [])]))
    details = []
    for item in c.record_items or []:
        res_type, _, res_id = item.partition("/")
        try:
            details.append(RecordItemOut(**dataclasses.asdict(record_item(store.read(session, res_type, res_id)))))
        except YilianError:  # deleted since it was linked: say so rather than fail the page
            details.append(RecordItemOut(ref=item, type=res_type, when="", text="(no longer in the record)"))
    out.record_details = details
    return out


def list_consultations(session: Session, actor: Actor, *, limit: int = 100) -> list[ConsultOut]:
    """Consultations the actor's facility asked for or hosts, and those the actor is an expert in."""
    if actor.facility_id is None:
        return []
    rows = list(
        session.scalars(
            select(Teleconsultation)
            .where(
                (Teleconsultation.requesting_facility_id == actor.facility_id)
                | (Teleconsultation.centre_facility_id == actor.facility_id)
            )
            .order_by(Teleconsultation.requested_at.desc())
            .limit(limit)
        )
    )
    mine = [
        c
        for c in session.scalars(
            select(Teleconsultation)
            .where(Teleconsultation.state == "scheduled")
            .order_by(Teleconsultation.scheduled_at)
        )
        if actor.username in (c.experts or []) and c not in rows
    ]
    rows = mine + rows
    patients = patient_names(session, [r for c in rows for r in [c.patient_ref, *(c.round_patients or [])]])
    for ref in sorted({c.patient_ref for c in rows}):
        audit.record(session, actor, "diagnostics.consultations.read", patient=ref)
    return [consult_out(session, actor, c, patients) for c in rows]


def since_days(days: int) -> datetime:
    return utcnow() - timedelta(days=days)
