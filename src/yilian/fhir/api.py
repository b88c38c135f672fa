"""The FHIR R4 REST API at /fhir: interactions, search, history, Bundles, operations.

Routes are thin: parse the wire, check access, call the store inside one unit of work, shape a Bundle. Every error is
a YilianError shaped once into an OperationOutcome (see `_shape`).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from yilian.db import unit_of_work
from yilian.errors import BadRequest, NotFound, PreconditionFailed, YilianError
from yilian.fhir import access, bundles, export, hooks, store, subscriptions
from yilian.fhir import searchparams as sp
from yilian.fhir.outcome import outcome
from yilian.fhir.validation import ID_PATTERN, MAX_BODY_BYTES, TooLarge, is_known_type, parse_body, validate
from yilian.security import audit
from yilian.security.actor import Actor
from yilian.web.auth import current_actor
from yilian.web.errors import register_shaper

FHIR_JSON = "application/fhir+json"

router = APIRouter(prefix="/fhir", tags=["fhir"])


def _shape(status: int, code: str, message: str, field: str | None) -> Response:
    return JSONResponse(outcome(message, code=code, expression=field), status_code=status, media_type=FHIR_JSON)


register_shaper("/fhir", _shape)


def fhir_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, media_type=FHIR_JSON, headers=headers)


async def raw_body(request: Request) -> bytes:
    """The request body, read at most up to the limit (a 100 MB upload is refused without being read)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {declared} bytes; the limit is {MAX_BODY_BYTES} (5 MB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge(f"the body is more than {MAX_BODY_BYTES} bytes (5 MB)")
        chunks.append(chunk)
    return b"".join(chunks)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _check_type(res_type: str) -> None:
    if not is_known_type(res_type):
        raise NotFound(f"{res_type[:64]} is not a resource type this server knows", field="resourceType")


def _check_id(res_type: str, res_id: str) -> None:
    if not ID_PATTERN.match(res_id):
        raise NotFound(
            f"there is no {res_type}/{res_id[:64]} (ids are 1-64 letters, digits, '-' or '.')", field=f"{res_type}.id"
        )


def _etag(resource: dict[str, Any]) -> str:
    return f'W/"{resource["meta"]["versionId"]}"'


def _resource_headers(request: Request, resource: dict[str, Any]) -> dict[str, str]:
    meta = resource["meta"]
    return {
        "ETag": _etag(resource),
        "Last-Modified": meta["lastUpdated"],
        "Location": f"{base_url(request)}/{resource['resourceType']}/{resource['id']}/_history/{meta['versionId']}",
    }


def _clean_params(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    for key, value in items:
        if "\x00" in key or "\x00" in value:
            raise BadRequest("search parameters may not contain NUL characters", field=key.replace("\x00", ""))
        if len(value) > 2048:
            raise BadRequest(f"the value of {key} is longer than 2048 characters", field=key)
    return items


def _strict(request: Request) -> bool:
    return "handling=strict" in request.headers.get("prefer", "").replace(" ", "")


# --- access and audit --------------------------------------------------------------------------------------------------


def _guard_results(session: Session, actor: Actor, action: str, resources: list[dict[str, Any]], what: str) -> None:
    """Check the policy for, and audit, every patient whose data is about to leave the server."""
    seen: set[str] = set()
    for res in resources:
        subscriptions.redact_for(actor, res)
        patient = store.patient_of(res)
        res_type = res.get("resourceType", "")
        if access.is_registry(res_type):
            continue
        access.check(session, actor, action, res_type, patient)
        if patient and patient not in seen:
            seen.add(patient)
            audit.record(session, actor, f"fhir.{action}", patient=patient[:128], resource=what[:256])


def _audit_write(session: Session, actor: Actor, action: str, resource: dict[str, Any]) -> None:
    patient = store.patient_of(resource)
    if patient:
        ref = f"{resource['resourceType']}/{resource['id']}"
        audit.record(session, actor, f"fhir.{action}", patient=patient[:128], resource=ref[:256])


# --- metadata ----------------------------------------------------------------------------------------------------------


@router.get("/metadata")
def metadata(request: Request) -> Response:
    """The CapabilityStatement: public, so that clients can discover the server before signing in."""
    return fhir_response(bundles.capability_statement(base_url(request)))


# --- whole-system interactions -----------------------------------------------------------------------------------------


@router.post("")
@router.post("/")
def batch_or_transaction(
    request: Request, body: bytes = Depends(raw_body), actor: Actor = Depends(current_actor)
) -> Response:
    bundle = parse_body(body)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST /fhir takes a Bundle of type batch or transaction", field="Bundle.resourceType")
    kind = bundle.get("type")
    if kind == "transaction":
        with unit_of_work() as session:
            result = bundles.transaction(session, actor, bundle, base_url(request))
        return fhir_response(result)
    if kind == "batch":
        result = bundles.batch(actor, bundle, base_url(request))
        return fhir_response(result)
    raise BadRequest("Bundle.type must be batch or transaction", field="Bundle.type")


@router.get("/_history")
def system_history(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """Every version of every resource, newest first (history-system)."""
    return _history(request, actor, None, None)


# --- bulk export ($export, asynchronous) --------------------------------------------------------------------------------


def _start_export(
    request: Request, background: BackgroundTasks, actor: Actor, level: str, group: str | None
) -> Response:
    params = _clean_params(list(request.query_params.multi_items()))
    with unit_of_work() as session:
        job = export.start(session, actor, level=level, group_id=group, params=params, request_url=str(request.url))
        job_id = job.id
    background.add_task(export.run, job_id)
    location = f"{base_url(request)}/$export-status/{job_id}"
    body = outcome(f"export accepted: poll {location}", code="informational", severity="information")
    return fhir_response(body, 202, {"Content-Location": location})


@router.get("/$export")
def export_system(request: Request, background: BackgroundTasks, actor: Actor = Depends(current_actor)) -> Response:
    return _start_export(request, background, actor, "system", None)


@router.get("/Patient/$export")
def export_patients(request: Request, background: BackgroundTasks, actor: Actor = Depends(current_actor)) -> Response:
    return _start_export(request, background, actor, "Patient", None)


@router.get("/Group/{group_id}/$export")
def export_group(
    request: Request, group_id: str, background: BackgroundTasks, actor: Actor = Depends(current_actor)
) -> Response:
    _check_id("Group", group_id)
    return _start_export(request, background, actor, "Group", group_id)


@router.get("/$export-status/{job_id}")
def export_status(request: Request, job_id: str, actor: Actor = Depends(current_actor)) -> Response:
    with unit_of_work() as session:
        job = export.status(session, actor, job_id)
        state, error, key = job.status, job.error, job.id
        body = export.manifest(job, base_url(request)) if state == "done" else None
    if state == "done":
        return JSONResponse(body, headers={"Expires": "never"})
    if state == "failed":
        return fhir_response(outcome(f"the export failed: {error}", code="exception"), 500)
    if not export.is_running(key):  # accepted before a restart: pick it up again
        threading.Thread(target=export.run, args=(key,), daemon=True).start()
    return Response(status_code=202, headers={"X-Progress": state, "Retry-After": "2"})


@router.delete("/$export-status/{job_id}")
def export_cancel(job_id: str, actor: Actor = Depends(current_actor)) -> Response:
    with unit_of_work() as session:
        export.cancel(session, export.status(session, actor, job_id))
    return Response(status_code=202)


@router.get("/$export-file/{job_id}/{name}")
def export_file(job_id: str, name: str, actor: Actor = Depends(current_actor)) -> Response:
    if not re.fullmatch(r"[A-Z][A-Za-z]{1,63}\.ndjson", name):
        raise NotFound(f"there is no export file {name[:80]}", field="$export")
    with unit_of_work() as session:
        job = export.status(session, actor, job_id)
        path = export.export_dir(job.id) / name
    if not path.is_file():
        raise NotFound(f"there is no export file {name}", field="$export")
    return FileResponse(path, media_type="application/fhir+ndjson")


# --- operations ----------------------------------------------------------------------------------------------------------


@router.get("/Patient/{res_id}/$everything")
def patient_everything(request: Request, res_id: str, actor: Actor = Depends(current_actor)) -> Response:
    _check_id("Patient", res_id)
    params = _clean_params(list(request.query_params.multi_items()))
    count, offset = store.MAX_COUNT, 0
    for key, value in params:
        if key == "_count":
            count = store._int_param("_count", value, 1, store.MAX_COUNT)
        elif key == "_offset":
            offset = store._int_param("_offset", value, 0)
    with unit_of_work() as session:
        access.check(session, actor, "read", "Patient", f"Patient/{res_id}")
        result = store.everything(session, res_id, count=count, offset=offset)
        _guard_results(session, actor, "read", result.resources, f"Patient/{res_id}/$everything")
    return fhir_response(bundles.searchset(base_url(request), f"Patient/{res_id}/$everything", params, result))


@router.post("/{res_type}/$validate")
def validate_operation(
    res_type: str, body: bytes = Depends(raw_body), actor: Actor = Depends(current_actor)
) -> Response:
    _check_type(res_type)
    data = parse_body(body)
    if isinstance(data, dict) and data.get("resourceType") == "Parameters" and res_type != "Parameters":
        found = [
            p.get("resource")
            for p in data.get("parameter") or []
            if isinstance(p, dict) and p.get("name") == "resource"
        ]
        if not found:
            raise BadRequest("Parameters for $validate need a 'resource' parameter", field="Parameters.parameter")
        data = found[0]
    try:
        validate(data, res_type)
    except YilianError as exc:
        return fhir_response(outcome(exc.message, code=exc.code, expression=exc.field), status=exc.status)
    return fhir_response(outcome("the resource is valid R4", code="informational", severity="information"))


# --- type-level interactions ---------------------------------------------------------------------------------------------


@router.get("/{res_type}/_history")
def type_history(request: Request, res_type: str, actor: Actor = Depends(current_actor)) -> Response:
    _check_type(res_type)
    return _history(request, actor, res_type, None)


def _history(request: Request, actor: Actor, res_type: str | None, res_id: str | None) -> Response:
    params = _clean_params(list(request.query_params.multi_items()))
    count, offset, since = store.DEFAULT_COUNT, 0, None
    for key, value in params:
        if key == "_count":
            count = store._int_param("_count", value, 0, store.MAX_COUNT)
        elif key == "_offset":
            offset = store._int_param("_offset", value, 0)
        elif key == "_since":
            since = sp.parse_date_param("_since", value)[1]
    with unit_of_work() as session:
        if res_type is not None:
            access.check(
                session, actor, "read", res_type, f"Patient/{res_id}" if res_type == "Patient" and res_id else None
            )
        entries, total = store.history(session, res_type, res_id, count=count, offset=offset, since=since)
        what = f"{res_type}/_history" if res_type else "_history"
        _guard_results(session, actor, "read", [e.resource for e in entries if e.resource], what)
    path = f"{res_type}/{res_id}/_history" if res_id else f"{res_type}/_history" if res_type else "_history"
    return fhir_response(bundles.history_bundle(base_url(request), path, params, entries, total, offset, count))


async def _search_params(request: Request) -> list[tuple[str, str]]:
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        body = await raw_body(request)
        ctype = request.headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" not in ctype:
            raise BadRequest("POST _search takes a form body (application/x-www-form-urlencoded)")
        try:
            items += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise BadRequest("the form body is not UTF-8") from None
    return _clean_params(items)


@router.get("/{res_type}/_search")
@router.post("/{res_type}/_search")
def search_post(
    request: Request,
    res_type: str,
    params: list[tuple[str, str]] = Depends(_search_params),
    actor: Actor = Depends(current_actor),
) -> Response:
    return _search(request, res_type, params, actor)


@router.get("/{res_type}")
def search_get(
    request: Request,
    res_type: str,
    params: list[tuple[str, str]] = Depends(_search_params),
    actor: Actor = Depends(current_actor),
) -> Response:
    return _search(request, res_type, params, actor)


def _search(request: Request, res_type: str, params: list[tuple[str, str]], actor: Actor) -> Response:
    _check_type(res_type)
    with unit_of_work() as session:
        access.check(session, actor, "search", res_type, None)
        result = store.search(session, res_type, params, strict=_strict(request))
        what = f"{res_type}?{urlencode([p for p in params if not p[0].startswith('_')])}"
        _guard_results(session, actor, "search", result.resources + result.includes, what)
    return fhir_response(bundles.searchset(base_url(request), res_type, params, result))


@router.post("/{res_type}")
def create(
    request: Request, res_type: str, body: bytes = Depends(raw_body), actor: Actor = Depends(current_actor)
) -> Response:
    _check_type(res_type)
    resource = parse_body(body)
    validate(resource, res_type)
    condition = request.headers.get("if-none-exist")
    with unit_of_work() as session:
        access.check(session, actor, "write", res_type, store.patient_of(resource))
        if condition:
            found = store.search(
                session, res_type, [*_clean_params(parse_qsl(condition.lstrip("?"))), ("_count", "2")], strict=True
            )
            if found.total and found.total > 1:
                raise PreconditionFailed(
                    f"If-None-Exist matches {found.total} {res_type} resources: make the condition more selective",
                    field="If-None-Exist",
                )
            if found.resources:
                existing = found.resources[0]
                _guard_results(session, actor, "read", [existing], f"{res_type}/{existing['id']}")
                return fhir_response(existing, 200, _resource_headers(request, existing))
        saved = hooks.create(session, actor, resource, validated=True)
        _audit_write(session, actor, "create", saved)
    return fhir_response(saved, 201, _resource_headers(request, saved))


@router.put("/{res_type}")
def conditional_update(
    request: Request, res_type: str, body: bytes = Depends(raw_body), actor: Actor = Depends(current_actor)
) -> Response:
    """`PUT Type?criteria`: no match creates, one match updates it, several are a 412 (R4 conditional update)."""
    _check_type(res_type)
    params = _clean_params(list(request.query_params.multi_items()))
    resource = parse_body(body)
    validate(resource, res_type)
    with unit_of_work() as session:
        access.check(session, actor, "write", res_type, store.patient_of(resource))
        res_id = bundles.conditional_target(session, res_type, params, resource, "url")
        if store.exists(session, res_type, res_id):  # the one it found: its patient must be writable too
            access.check(session, actor, "write", res_type, store.patient_of(store.read(session, res_type, res_id)))
        saved, existed = hooks.update(
            session, actor, res_type, res_id, {**resource, "id": res_id}, if_match=request.headers.get("if-match")
        )
        _audit_write(session, actor, "update" if existed else "create", saved)
    return fhir_response(saved, 200 if existed else 201, _resource_headers(request, saved))


@router.delete("/{res_type}")
def conditional_delete(request: Request, res_type: str, actor: Actor = Depends(current_actor)) -> Response:
    """`DELETE Type?criteria`: deletes the one match (none: nothing to do, 204; several: 412)."""
    _check_type(res_type)
    params = _clean_params(list(request.query_params.multi_items()))
    with unit_of_work() as session:
        found = bundles.conditional_search(session, res_type, params, "url")
        if found is not None:
            access.check(session, actor, "write", res_type, store.patient_of(found))
            hooks.delete(session, actor, res_type, found["id"])
            _audit_write(session, actor, "delete", found)
    return Response(status_code=204)


# --- instance-level interactions -------------------------------------------------------------------------------------------


@router.get("/{res_type}/{res_id}")
def read(request: Request, res_type: str, res_id: str, actor: Actor = Depends(current_actor)) -> Response:
    _check_type(res_type)
    _check_id(res_type, res_id)
    with unit_of_work() as session:
        resource = store.read(session, res_type, res_id)
        _guard_results(session, actor, "read", [resource], f"{res_type}/{res_id}")
        if access.is_registry(res_type):
            access.check(session, actor, "read", res_type, None)
    headers = _resource_headers(request, resource)
    headers.pop("Location")
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    elements, summary = store.subsetting(res_type, _clean_params(list(request.query_params.multi_items())))
    if elements or summary:
        resource = bundles.subset(resource, elements, summary)
    return fhir_response(resource, 200, headers)


@router.put("/{res_type}/{res_id}")
def update(
    request: Request,
    res_type: str,
    res_id: str,
    body: bytes = Depends(raw_body),
    actor: Actor = Depends(current_actor),
) -> Response:
    _check_type(res_type)
    if not ID_PATTERN.match(res_id):
        raise BadRequest("ids are 1-64 letters, digits, '-' or '.'", field=f"{res_type}.id")
    resource = parse_body(body)
    validate(resource, res_type)
    with unit_of_work() as session:
        access.check(session, actor, "write", res_type, store.patient_of(resource))
        saved, existed = hooks.update(
            session, actor, res_type, res_id, resource, if_match=request.headers.get("if-match"), validated=True
        )
        _audit_write(session, actor, "update", saved)
    return fhir_response(saved, 200 if existed else 201, _resource_headers(request, saved))


@router.patch("/{res_type}/{res_id}")
def patch_resource(
    request: Request,
    res_type: str,
    res_id: str,
    body: bytes = Depends(raw_body),
    actor: Actor = Depends(current_actor),
) -> Response:
    """JSON Patch or FHIRPath Patch; the result is validated as a whole resource and stored as a new version."""
    _check_type(res_type)
    _check_id(res_type, res_id)
    data = parse_body(body)
    if_match = request.headers.get("if-match")
    with unit_of_work() as session:
        current = store.read(session, res_type, res_id)  # 404, or 410 for a deleted one
        access.check(session, actor, "write", res_type, store.patient_of(current))
        saved = hooks.patch_resource(
            session, actor, current, request.headers.get("content-type", ""), data, if_match=if_match
        )
        _audit_write(session, actor, "update", saved)
    return fhir_response(saved, 200, _resource_headers(request, saved))


@router.delete("/{res_type}/{res_id}")
def delete(res_type: str, res_id: str, actor: Actor = Depends(current_actor)) -> Response:
    _check_type(res_type)
    _check_id(res_type, res_id)
    with unit_of_work() as session:
        current = store.read(session, res_type, res_id) if store.exists(session, res_type, res_id) else None
        access.check(session, actor, "write", res_type, store.patient_of(current) if current else None)
        hooks.delete(session, actor, res_type, res_id)
        if current:
            _audit_write(session, actor, "delete", current)
    return Response(status_code=204)


@router.get("/{res_type}/{res_id}/_history")
def instance_history(request: Request, res_type: str, res_id: str, actor: Actor = Depends(current_actor)) -> Response:
    _check_type(res_type)
    _check_id(res_type, res_id)
    return _history(request, actor, res_type, res_id)


@router.get("/{res_type}/{res_id}/_history/{version}")
def vread(
    request: Request, res_type: str, res_id: str, version: str, actor: Actor = Depends(current_actor)
) -> Response:
    _check_type(res_type)
    _check_id(res_type, res_id)
    with unit_of_work() as session:
        resource = store.vread(session, res_type, res_id, version)
        _guard_results(session, actor, "read", [resource], f"{res_type}/{res_id}/_history/{version}")
    headers = _resource_headers(request, resource)
    headers.pop("Location")
    return fhir_response(resource, 200, headers)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)
