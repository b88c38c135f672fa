"""JSON API: /api/v1/diagnostics (orders, worklists, reports, alerts, consultations) and /api/v1/recognition."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from yilian.db import read_session, unit_of_work
from yilian.diagnostics import dicomweb, notify, service
from yilian.diagnostics.schemas import (
    AlertOut,
    AmendIn,
    CancelIn,
    CatalogueItemOut,
    CentreOut,
    ChannelIn,
    ChannelOut,
    ConsultIn,
    ConsultOut,
    NotificationOut,
    OpinionIn,
    OrderIn,
    OrderOut,
    PriorOut,
    QualificationIn,
    RecognitionCheckOut,
    RecognitionIn,
    RecordItemOut,
    ReportIn,
    ScheduleIn,
    StudyIn,
    StudyOut,
)
from yilian.errors import Forbidden, Invalid, YilianError
from yilian.security.actor import Actor
from yilian.web.auth import current_actor

CurrentActor = Annotated[Actor, Depends(current_actor)]
Days = Annotated[int, Query(ge=1, le=3660, description="Look back this many days")]

diagnostics = APIRouter(prefix="/api/v1/diagnostics", tags=["diagnostics"])
recognition = APIRouter(prefix="/api/v1/recognition", tags=["recognition"])


# -- orders --------------------------------------------------------------------------------------------------------


@diagnostics.get("/centres", response_model=list[CentreOut])
def get_centres(actor: CurrentActor, modality: str | None = None) -> list[CentreOut]:
    """Reading centres your facility may order from (sharing a consortium, with the reading capability)."""
    if actor.facility_id is None:
        raise Forbidden("centres are listed for a facility's users")
    with read_session() as session:
        return service.centres_for(session, actor.facility_id, modality)


@diagnostics.post("/orders", response_model=OrderOut, status_code=201)
def post_order(body: OrderIn, actor: CurrentActor) -> OrderOut:
    """Order a study from a centre. 409 (field repeat_reason) when a valid recognised result exists: reuse it
    (POST /api/v1/recognition/reuse) or repeat with one of the six reasons and patient_informed."""
    with unit_of_work() as session:
        order = service.place_order(session, actor, body)
        return service.order_out(session, actor, order)


@diagnostics.post("/orders/$from-service-request", response_model=OrderOut, status_code=201)
def post_order_from_fhir(body: dict[str, Any], actor: CurrentActor) -> OrderOut:
    """The same order as a FHIR ServiceRequest (what a hospital system sends): category names the modality, code the
    recognised item (urn:yilian:recognition-item), performer the centre, subject the Patient."""
    from yilian.diagnostics import fhir

    draft = fhir.from_service_request(body)
    try:
        with unit_of_work() as session:
            order = service.place_order(session, actor, draft)
            return service.order_out(session, actor, order)
    except YilianError as exc:
        # Name the field as the caller wrote it: the ServiceRequest's element, not the JSON order's.
        exc.field = FROM_SERVICE_REQUEST.get(exc.field or "", exc.field)
        raise


FROM_SERVICE_REQUEST = {
    "patient": "ServiceRequest.subject",
    "item_code": "ServiceRequest.code",
    "centre": "ServiceRequest.performer",
    "modality": "ServiceRequest.category",
}


@diagnostics.get("/orders", response_model=list[OrderOut])
def get_orders(actor: CurrentActor) -> list[OrderOut]:
    """Orders your facility sent, newest first."""
    with unit_of_work() as session:  # reads of patient data are audited: a write
        return service.sent_orders(session, actor)


@diagnostics.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: str, actor: CurrentActor) -> OrderOut:
    with unit_of_work() as session:
        return service.get_order(session, actor, order_id)


@diagnostics.post("/orders/{order_id}/upload", response_model=StudyOut, status_code=201)
def post_upload(
    order_id: str,
    actor: CurrentActor,
    file: Annotated[UploadFile, File(description="ECG PDF/image/aECG XML, DICOM or image, lab/pathology PDF")],
    measurements: Annotated[str, Form(description='JSON object, e.g. {"heart_rate": 72, "qtc": 430}')] = "",
) -> StudyOut:
    values = _measurements(measurements)
    max_bytes = service.settings().diagnostics_max_upload_mb * 1_048_576
    data = file.file.read(max_bytes + 1)
    with unit_of_work() as session:
        study = service.receive_upload(
            session, actor, order_id, filename=file.filename or "upload", data=data, measurements=values
        )
        return StudyOut.model_validate(study, from_attributes=True)


def _measurements(raw: str) -> dict[str, object]:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise Invalid("measurements must be a JSON object", field="measurements") from None
    if not isinstance(parsed, dict):
        raise Invalid("measurements must be a JSON object", field="measurements")
    return parsed


@diagnostics.post("/orders/{order_id}/study", response_model=StudyOut, status_code=201)
def post_study(order_id: str, body: StudyIn, actor: CurrentActor) -> StudyOut:
    """A study in the PACS (Study Instance UID; checked by QIDO-RS when YILIAN_DICOMWEB_URL is set) or values."""
    with unit_of_work() as session:
        return StudyOut.model_validate(service.attach_study(session, actor, order_id, body), from_attributes=True)


@diagnostics.get("/orders/{order_id}/pacs-studies")
def get_pacs_studies(order_id: str, actor: CurrentActor) -> list[dict[str, Any]]:
    """Studies of this order's patient in the PACS (QIDO-RS by PatientID = the Patient's id)."""
    with unit_of_work() as session:
        order = service.get_order(session, actor, order_id)
    found = dicomweb.search_studies(patient_id=order.patient_ref.removeprefix("Patient/"))
    return [dataclasses.asdict(s) for s in found]


@diagnostics.get("/studies/{study_id}/file")
def get_study_file(study_id: uuid.UUID, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        study = service.study_file(session, actor, study_id)
        content, kind, name = study.content or b"", study.content_type, study.filename
    return Response(
        content,
        media_type=kind or "application/octet-stream",
        headers={"Content-Disposition": f'inline; filename="{(name or "study").encode("ascii", "replace").decode()}"'},
    )


@diagnostics.post("/orders/{order_id}/report", response_model=OrderOut, status_code=201)
def post_report(order_id: str, body: ReportIn, actor: CurrentActor) -> OrderOut:
    """The centre signs the report; the ordering site is notified; critical values open an alert."""
    with unit_of_work() as session:
        service.sign_report(session, actor, order_id, body)
        return service.get_order(session, actor, order_id)


@diagnostics.post("/orders/{order_id}/amend", response_model=OrderOut)
def post_amend(order_id: str, body: AmendIn, actor: CurrentActor) -> OrderOut:
    """Correct a signed report: a new version (status amended) with the reason; the earlier one is kept and listed
    under `report.earlier`; the ordering site is notified again."""
    with unit_of_work() as session:
        service.amend_report(session, actor, order_id, body)
        return service.get_order(session, actor, order_id)


@diagnostics.post("/orders/{order_id}/claim", response_model=OrderOut)
def post_claim(order_id: str, actor: CurrentActor) -> OrderOut:
    """Take a study from your centre's worklist; 409 (`claimed_by`) when another reader has it."""
    with unit_of_work() as session:
        order = service.claim_order(session, actor, order_id)
        return service.order_out(session, actor, order, detail=False)


@diagnostics.post("/orders/{order_id}/release", response_model=OrderOut)
def post_release(order_id: str, actor: CurrentActor) -> OrderOut:
    """Give a claimed study back to the worklist."""
    with unit_of_work() as session:
        order = service.release_order(session, actor, order_id)
        return service.order_out(session, actor, order, detail=False)


@diagnostics.post("/orders/{order_id}/cancel", response_model=OrderOut)
def post_cancel(order_id: str, body: CancelIn, actor: CurrentActor) -> OrderOut:
    with unit_of_work() as session:
        order = service.cancel_order(session, actor, order_id, body.reason)
        return service.order_out(session, actor, order)


# -- the centre --------------------------------------------------------------------------------------------------------


@diagnostics.get("/worklist", response_model=list[OrderOut])
def get_worklist(actor: CurrentActor) -> list[OrderOut]:
    """Your centre's open orders: arrived studies by priority (stat, urgent, routine), oldest first; then awaited."""
    with unit_of_work() as session:
        return service.worklist(session, actor)


@diagnostics.get("/overdue", response_model=list[OrderOut])
def get_overdue(actor: CurrentActor) -> list[OrderOut]:
    with unit_of_work() as session:
        return service.overdue(session, actor)


@diagnostics.get("/workload")
def get_workload(actor: CurrentActor, days: Days = 30) -> list[dict[str, Any]]:
    """Reports signed per reader at your centre."""
    if actor.facility_id is None:
        raise Forbidden("workload is shown for a centre's users")
    with read_session() as session:
        rows = service.workload(session, actor.facility_id, since=service.since_days(days))
    return [dataclasses.asdict(r) for r in rows]


@diagnostics.get("/turnaround")
def get_turnaround(
    actor: CurrentActor, days: Days = 30, centre: Annotated[str | None, Query(description="Centre id or code")] = None
) -> list[dict[str, Any]]:
    """Turnaround per centre and modality: ordered → received → reported (median and 90th percentile, minutes)."""
    with read_session() as session:
        from yilian.network import service as network

        centre_id = network.resolve_facility_id(session, centre, field="centre") if centre else None
        rows = service.turnaround(session, since=service.since_days(days), centre_id=centre_id)
    return [dataclasses.asdict(r) for r in rows]


# -- the ordering site ------------------------------------------------------------------------------------------------


@diagnostics.get("/alerts", response_model=list[AlertOut])
def get_alerts(actor: CurrentActor, open_only: bool = True) -> list[AlertOut]:
    with unit_of_work() as session:
        return service.alerts(session, actor, open_only=open_only)


@diagnostics.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut)
def post_acknowledge(alert_id: uuid.UUID, actor: CurrentActor) -> AlertOut:
    with unit_of_work() as session:
        return AlertOut.model_validate(service.acknowledge_alert(session, actor, alert_id), from_attributes=True)


@diagnostics.get("/notifications", response_model=list[NotificationOut])
def get_notifications(actor: CurrentActor, unread: bool = False) -> list[NotificationOut]:
    with read_session() as session:
        return service.notifications(session, actor, unread_only=unread)


@diagnostics.post("/notifications/{notification_id}/read", status_code=204)
def post_read(notification_id: uuid.UUID, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        service.mark_read(session, actor, notification_id)
    return Response(status_code=204)


# -- notification channels of the ordering site ------------------------------------------------------------------------


@diagnostics.get("/channels", response_model=list[ChannelOut])
def get_channels(actor: CurrentActor) -> list[ChannelOut]:
    """Your facility's webhook and SMS channels for report and critical-value notices."""
    with read_session() as session:
        return notify.list_channels(session, actor)


@diagnostics.post("/channels", response_model=ChannelOut, status_code=201)
def post_channel(body: ChannelIn, actor: CurrentActor) -> ChannelOut:
    """Add a webhook (`target` = URL) or SMS phone (`critical_only` for a duty phone); deliveries are retried."""
    with unit_of_work() as session:
        return ChannelOut.model_validate(notify.add_channel(session, actor, body), from_attributes=True)


@diagnostics.post("/channels/{channel_id}/remove", status_code=204)
def post_remove_channel(channel_id: uuid.UUID, actor: CurrentActor) -> Response:
    with unit_of_work() as session:
        notify.remove_channel(session, actor, channel_id)
    return Response(status_code=204)


# -- teleconsultation --------------------------------------------------------------------------------------------------


@diagnostics.post("/consultations", response_model=ConsultOut, status_code=201)
def post_consultation(body: ConsultIn, actor: CurrentActor) -> ConsultOut:
    with unit_of_work() as session:
        c = service.request_consultation(session, actor, body)
        return service.consult_out(
            session, actor, c, service.patient_names(session, c.round_patients or [c.patient_ref])
        )


@diagnostics.get("/record-items", response_model=list[RecordItemOut])
def get_record_items(
    actor: CurrentActor,
    patient: Annotated[str, Query(min_length=1, max_length=80)],
    q: Annotated[str, Query(max_length=100, description="Text to look for")] = "",
) -> list[RecordItemOut]:
    """Items of the patient's shared record (all records of the same person) to link to a consultation, newest first."""
    with unit_of_work() as session:
        return [RecordItemOut(**dataclasses.asdict(i)) for i in service.search_record(session, actor, patient, text=q)]


@diagnostics.get("/consultations", response_model=list[ConsultOut])
def get_consultations(actor: CurrentActor) -> list[ConsultOut]:
    with unit_of_work() as session:
        return service.list_consultations(session, actor)


@diagnostics.get("/consultations/{consult_id}", response_model=ConsultOut)
def get_consultation(consult_id: str, actor: CurrentActor) -> ConsultOut:
    with unit_of_work() as session:
        return service.get_consultation(session, actor, consult_id)


@diagnostics.post("/consultations/{consult_id}/schedule", response_model=ConsultOut)
def post_schedule(consult_id: str, body: ScheduleIn, actor: CurrentActor) -> ConsultOut:
    with unit_of_work() as session:
        return service.consult_out(session, actor, service.schedule_consultation(session, actor, consult_id, body))


@diagnostics.post("/consultations/{consult_id}/opinion", response_model=ConsultOut)
def post_opinion(consult_id: str, body: OpinionIn, actor: CurrentActor) -> ConsultOut:
    with unit_of_work() as session:
        return service.consult_out(session, actor, service.answer_consultation(session, actor, consult_id, body))


@diagnostics.post("/consultations/{consult_id}/cancel", response_model=ConsultOut)
def post_cancel_consultation(consult_id: str, actor: CurrentActor) -> ConsultOut:
    with unit_of_work() as session:
        return service.consult_out(session, actor, service.cancel_consultation(session, actor, consult_id))


# -- mutual recognition ------------------------------------------------------------------------------------------------


@recognition.get("/catalogue", response_model=list[CatalogueItemOut])
def get_catalogue(actor: CurrentActor) -> list[CatalogueItemOut]:
    """The recognised items: code (LOINC where known), scope, validity window (your region's, data/limits.yaml),
    price, qualified facilities today."""
    with read_session() as session:
        return service.catalogue_out(session, facility_id=actor.facility_id)


@recognition.post("/check", response_model=RecognitionCheckOut)
def post_check(body: RecognitionIn, actor: CurrentActor) -> RecognitionCheckOut:
    with unit_of_work() as session:
        return service.check_recognition(session, actor, body.patient, body.item_code)


@recognition.post("/reuse", response_model=PriorOut)
def post_reuse(body: RecognitionIn, actor: CurrentActor) -> PriorOut:
    """Recognise the earlier result instead of repeating the test (counted as a test avoided)."""
    with unit_of_work() as session:
        return service.reuse_result(session, actor, body.patient, body.item_code)


@recognition.post("/qualifications", status_code=201)
def post_qualification(body: QualificationIn, actor: CurrentActor) -> dict[str, Any]:
    with unit_of_work() as session:
        q = service.qualify(session, actor, body)
        return {
            "id": str(q.id),
            "facility_id": str(q.facility_id),
            "item_code": q.item_code,
            "passed_on": q.passed_on.isoformat(),
            "valid_until": q.valid_until.isoformat(),
        }


@recognition.get("/report")
def get_report(actor: CurrentActor, days: Days = 365) -> dict[str, Any]:
    """Tests avoided, money saved (fen), repeat rate by facility and by reason."""
    with read_session() as session:
        return dataclasses.asdict(service.recognition_report(session, since=service.since_days(days)))


router = APIRouter()
router.include_router(diagnostics)
router.include_router(recognition)
