"""Bundles: searchset and history shaping, batch and transaction processing, the CapabilityStatement."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy.orm import Session

import yilian
from yilian.db import unit_of_work, utcnow
from yilian.errors import BadRequest, NotFound, PreconditionFailed, YilianError
from yilian.fhir import access, hooks, patch, store, subscriptions
from yilian.fhir import searchparams as sp
from yilian.fhir.outcome import outcome
from yilian.fhir.validation import ID_PATTERN, is_known_type, validate
from yilian.security import audit
from yilian.security.actor import Actor

# --- shaping -----------------------------------------------------------------------------------------------------------


def _link(base: str, path: str, params: list[tuple[str, str]], offset: int | None, cursor: str | None = None) -> str:
    kept = [(k, v) for k, v in params if k not in ("_offset", "_cursor") or (k == "_cursor" and cursor is None)]
    if cursor is not None:
        kept.append(("_cursor", cursor))
    elif offset:
        kept.append(("_offset", str(offset)))
    query = urlencode(kept)
    return f"{base}/{path}" + (f"?{query}" if query else "")


def searchset(base: str, path: str, params: list[tuple[str, str]], result: store.SearchResult) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    if result.summary_count:
        bundle["link"] = [{"relation": "self", "url": _link(base, path, params, None)}]
        _outcome_entry(bundle, result.warnings)
        return bundle
    links = [{"relation": "self", "url": _link(base, path, params, result.offset)}]
    if result.next_cursor is not None:
        links.append({"relation": "next", "url": _link(base, path, params, None, result.next_cursor)})
    elif result.next_offset is not None:
        links.append({"relation": "next", "url": _link(base, path, params, result.next_offset)})
    if result.offset > 0:
        links.append({"relation": "previous", "url": _link(base, path, params, max(0, result.offset - result.count))})
    bundle["link"] = links
    trim = bool(result.elements) or result.summary is not None
    entries = [
        {
            "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
            "resource": subset(r, result.elements, result.summary) if trim else r,
            "search": {"mode": "match"},
        }
        for r in result.resources
    ]
    entries += [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}}
        for r in result.includes
    ]
    bundle["entry"] = entries
    _outcome_entry(bundle, result.warnings)
    return bundle


SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}


@lru_cache(maxsize=256)
def _summary_elements(res_type: str) -> frozenset[str]:
    """The elements R4 marks isSummary for a type (read from the R4B models)."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model: Any = get_fhir_model_class(res_type)
    except (KeyError, ValueError):
        return frozenset()
    return frozenset(
        (f.alias or k)
        for k, f in model.model_fields.items()
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("summary_element_property")
    )


def _kept(key: str, wanted: set[str]) -> bool:
    name = key.removeprefix("_")  # the extension sibling of a primitive (_birthDate) goes with it
    if name in wanted:
        return True
    # A choice element is asked for by its name without the type: value keeps valueQuantity.
    return any(name.startswith(w) and name[len(w) : len(w) + 1].isupper() for w in wanted)


def subset(resource: dict[str, Any], elements: tuple[str, ...], summary: str | None) -> dict[str, Any]:
    """A copy of the resource with only the asked-for elements (`_elements`, `_summary=true|text|data`), tagged
    SUBSETTED as R4 requires, so that nobody takes it for the whole resource and writes it back."""
    res_type = str(resource.get("resourceType"))
    always = {"resourceType", "id", "meta"}
    if summary == "data":
        wanted = {k.removeprefix("_") for k in resource if k != "text"}
    elif summary == "text":
        wanted = always | {"text"}
    elif summary == "true":
        wanted = always | set(_summary_elements(res_type))
    else:
        wanted = set(always)
    if elements:
        wanted = (wanted if summary else set(always)) | set(elements)
    out = {k: v for k, v in resource.items() if _kept(k, wanted)}
    meta = dict(out.get("meta") or {})
    tags = [t for t in meta.get("tag") or [] if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    out["meta"] = meta
    return out


def _outcome_entry(bundle: dict[str, Any], warnings: list[str]) -> None:
    if warnings:
        oo = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": w} for w in warnings],
        }
        bundle.setdefault("entry", []).append({"resource": oo, "search": {"mode": "outcome"}})


def history_bundle(
    base: str,
    path: str,
    params: list[tuple[str, str]],
    entries: list[store.HistoryEntry],
    total: int,
    offset: int,
    count: int,
) -> dict[str, Any]:
    links = [{"relation": "self", "url": _link(base, path, params, offset)}]
    if offset + count < total:
        links.append({"relation": "next", "url": _link(base, path, params, offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": _link(base, path, params, max(0, offset - count))})
    out = []
    for e in entries:
        item: dict[str, Any] = {"fullUrl": f"{base}/{e.res_type}/{e.res_id}"}
        if e.resource is not None and not e.deleted:
            item["resource"] = e.resource
        method = "DELETE" if e.deleted else e.method
        url = f"{e.res_type}/{e.res_id}" if method != "POST" else e.res_type
        status = {"POST": "201 Created", "DELETE": "204 No Content"}.get(method, "200 OK")
        item["request"] = {"method": method, "url": url}
        item["response"] = {"status": status, "etag": f'W/"{e.version}"', "lastModified": store.instant(e.last_updated)}
        out.append(item)
    return {"resourceType": "Bundle", "type": "history", "total": total, "link": links, "entry": out}


# --- batch and transaction ---------------------------------------------------------------------------------------------

_METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


def _rewrite_refs(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v in mapping:
                out[k] = mapping[v]
            else:
                out[k] = _rewrite_refs(v, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, mapping) for v in node]
    return node


def _request_of(entry: Any, i: int) -> tuple[str, str]:
    if not isinstance(entry, dict):
        raise BadRequest(f"Bundle.entry[{i}] is not an object", field=f"Bundle.entry[{i}]")
    request = entry.get("request")
    if (
        not isinstance(request, dict)
        or not isinstance(request.get("method"), str)
        or not isinstance(request.get("url"), str)
    ):
        raise BadRequest(f"Bundle.entry[{i}].request needs a method and a url", field=f"Bundle.entry[{i}].request")
    method = request["method"].upper()
    if method not in _METHOD_ORDER:
        raise BadRequest(
            f"Bundle.entry[{i}].request.method {method} is not supported", field=f"Bundle.entry[{i}].request.method"
        )
    return method, request["url"].strip()


def _split_url(url: str) -> tuple[str, str | None, list[tuple[str, str]]]:
    """'Patient/1' → ('Patient', '1', []); 'Patient?name=x' → ('Patient', None, [('name','x')])."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if "/fhir/" in path:
        path = path.split("/fhir/", 1)[1]
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise BadRequest(f"{url!r} names no resource type")
    res_type = segments[0]
    if not is_known_type(res_type):
        raise NotFound(f"{res_type[:64]} is not a resource type this server knows", field="resourceType")
    res_id = segments[1] if len(segments) > 1 else None
    if res_id is not None and not ID_PATTERN.match(res_id):
        raise BadRequest(f"{res_id[:64]!r} is not a valid id", field=f"{res_type}.id")
    return res_type, res_id, parse_qsl(parts.query, keep_blank_values=True)


def _response(resource: dict[str, Any] | None, status: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"response": {"status": status}}
    if resource is not None:
        meta = resource.get("meta") or {}
        entry["response"].update(
            {
                "location": f"{resource['resourceType']}/{resource['id']}/_history/{meta.get('versionId')}",
                "etag": f'W/"{meta.get("versionId")}"',
                "lastModified": meta.get("lastUpdated"),
            }
        )
        entry["resource"] = resource
    return entry


def _patient_check(session: Session, actor: Actor, action: str, resource: dict[str, Any]) -> None:
    patient = store.patient_of(resource)
    access.check(session, actor, action, resource["resourceType"], patient)
    if patient:
        audit.record(
            session,
            actor,
            f"fhir.{action}",
            patient=patient[:128],
            resource=f"{resource['resourceType']}/{resource['id']}",
        )


def conditional_match(session: Session, res_type: str, condition: str, field: str) -> dict[str, Any] | None:
    """The one current resource a search condition names, None when none does; 412 when several do."""
    found = store.search(
        session, res_type, [*parse_qsl(condition.lstrip("?"), keep_blank_values=True), ("_count", "2")], strict=True
    )
    if found.total and found.total > 1:
        raise PreconditionFailed(
            f"{res_type}?{condition.lstrip('?')} matches {found.total} resources: make the condition more selective",
            field=field,
        )
    return found.resources[0] if found.resources else None


def conditional_target(
    session: Session, res_type: str, params: list[tuple[str, str]], resource: dict[str, Any], field: str
) -> str:
    """The id a conditional update (`PUT Type?search`) writes to, by the R4 rules: no match → a new resource (the
    body's id if it has one, else a new id); one match → that resource (a different id in the body is a 400);
    several → 412. A search without criteria would match everything: refused."""
    found = conditional_search(session, res_type, params, field)
    body_id = resource.get("id")
    if found is not None:
        if body_id and body_id != found["id"]:
            raise BadRequest(
                f"the body's id {str(body_id)[:64]!r} is not {found['id']}, the {res_type} the search found",
                field=f"{res_type}.id",
            )
        return str(found["id"])
    if body_id is not None and (not isinstance(body_id, str) or not ID_PATTERN.match(body_id)):
        raise BadRequest("ids are 1-64 letters, digits, '-' or '.'", field=f"{res_type}.id")
    return str(body_id) if body_id else store.new_resource_id()


def conditional_search(
    session: Session, res_type: str, params: list[tuple[str, str]], field: str
) -> dict[str, Any] | None:
    """Conditional update/delete: the one resource the criteria name (None: none; 412: several)."""
    criteria = [(k, v) for k, v in params if k.partition(":")[0] not in store.CONTROL]
    if not criteria:
        raise BadRequest(
            f"a conditional {field} needs search criteria (such as ?identifier=system|value): it would match every "
            f"{res_type}",
            field=field,
        )
    return conditional_match(session, res_type, urlencode(criteria), field)


def _resolve_conditional_refs(session: Session, node: Any, cache: dict[str, str]) -> Any:
    """'Patient?identifier=sys|value' → 'Patient/<id>' (exactly one match, else 412: the reference is ambiguous)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and "?" in v and not v.startswith("#"):
                if v not in cache:
                    res_type, _, query = v.partition("?")
                    if not is_known_type(res_type):
                        raise BadRequest(
                            f"the conditional reference {v[:100]!r} names no known type", field="reference"
                        )
                    found = conditional_match(session, res_type, query, "reference")
                    if found is None:
                        raise PreconditionFailed(
                            f"the conditional reference {v[:200]} matches nothing", field="reference"
                        )
                    cache[v] = f"{res_type}/{found['id']}"
                out[k] = cache[v]
            else:
                out[k] = _resolve_conditional_refs(session, v, cache)
        return out
    if isinstance(node, list):
        return [_resolve_conditional_refs(session, v, cache) for v in node]
    return node


def _has_conditional_ref(node: Any) -> bool:
    if isinstance(node, dict):
        return any(
            (k == "reference" and isinstance(v, str) and "?" in v and not v.startswith("#")) or _has_conditional_ref(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return any(_has_conditional_ref(v) for v in node)
    return False


def _uuid_candidates(prepared: list[tuple[int, str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """(type, id) for each POST entry whose urn:uuid fullUrl could become its id."""
    out = []
    for _, method, _, entry in prepared:
        full_url, resource = entry.get("fullUrl"), entry.get("resource")
        if method != "POST" or not isinstance(full_url, str) or not isinstance(resource, dict):
            continue
        candidate = full_url.removeprefix("urn:uuid:")
        if full_url.startswith("urn:uuid:") and ID_PATTERN.match(candidate):
            out.append((str(resource.get("resourceType")), candidate))
    return out


def _execute(session: Session, actor: Actor, method: str, url: str, entry: dict[str, Any], base: str) -> dict[str, Any]:
    """One entry of a batch or transaction (urn:uuid references already rewritten)."""
    res_type, res_id, query = _split_url(url)
    resource = entry.get("resource")
    if isinstance(resource, dict) and method in ("POST", "PUT"):
        resource = _resolve_conditional_refs(session, resource, {})
    if method == "POST":
        if res_id is not None:
            raise BadRequest("POST goes to a type, not an id", field="request.url")
        validate(resource, res_type)
        assert isinstance(resource, dict)
        access.check(session, actor, "write", res_type, store.patient_of(resource))
        condition = (entry.get("request") or {}).get("ifNoneExist")
        if condition:
            existing = conditional_match(session, res_type, str(condition), "request.ifNoneExist")
            if existing is not None:
                _patient_check(session, actor, "read", existing)
                return _response(existing, "200 OK")
        saved = hooks.create(session, actor, resource, keep_id=bool(resource.get("id")), validated=True)
        _patient_check(session, actor, "write", saved)
        return _response(saved, "201 Created")
    if method == "PATCH":
        if res_id is None:
            raise BadRequest("PATCH needs Type/id", field="request.url")
        kind, data = patch.from_bundle_entry(entry.get("resource"))
        current = store.read(session, res_type, res_id)
        access.check(session, actor, "write", res_type, store.patient_of(current))
        saved = hooks.patch_resource(
            session,
            actor,
            current,
            patch.JSON_PATCH if kind == "json" else "application/fhir+json",
            data,
            if_match=(entry.get("request") or {}).get("ifMatch"),
        )
        _patient_check(session, actor, "write", saved)
        return _response(saved, "200 OK")
    if method == "PUT":
        if not isinstance(resource, dict):
            raise BadRequest("PUT needs a resource", field="resource")
        if res_id is None:  # conditional update: Type?criteria
            res_id = conditional_target(session, res_type, query, resource, "request.url")
            resource = {**resource, "id": resource.get("id") or res_id}
            if store.exists(session, res_type, res_id):
                access.check(session, actor, "write", res_type, store.patient_of(store.read(session, res_type, res_id)))
        access.check(session, actor, "write", res_type, store.patient_of(resource))
        saved, existed = hooks.update(
            session, actor, res_type, res_id, resource, if_match=(entry.get("request") or {}).get("ifMatch")
        )
        _patient_check(session, actor, "write", saved)
        return _response(saved, "200 OK" if existed else "201 Created")
    if method == "DELETE":
        if res_id is None:  # conditional delete: Type?criteria (none: nothing to do; several: 412)
            target = conditional_search(session, res_type, query, "request.url")
            if target is None:
                return {"response": {"status": "204 No Content"}}
            res_id = str(target["id"])
        if store.exists(session, res_type, res_id):
            current = store.read(session, res_type, res_id)
            access.check(session, actor, "write", res_type, store.patient_of(current))
            hooks.delete(session, actor, res_type, res_id)
        return {"response": {"status": "204 No Content"}}
    # GET: read or search
    if res_id is not None:
        found_resource = store.read(session, res_type, res_id)
        subscriptions.redact_for(actor, found_resource)
        if access.is_registry(res_type):
            access.check(session, actor, "read", res_type, None)
        else:
            _patient_check(session, actor, "read", found_resource)  # a read inside a batch is audited like any read
        return _response(found_resource, "200 OK")
    access.check(session, actor, "search", res_type, None)
    result = store.search(session, res_type, query)
    for res in result.resources:
        subscriptions.redact_for(actor, res)
        if not access.is_registry(res_type):
            _patient_check(session, actor, "search", res)
    return {"resource": searchset(base, res_type, query, result), "response": {"status": "200 OK"}}


def _prepare(bundle: dict[str, Any]) -> list[tuple[int, str, str, dict[str, Any]]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be a list", field="Bundle.entry")
    if len(entries) > 10000:
        raise BadRequest("a Bundle may carry at most 10,000 entries", field="Bundle.entry")
    prepared = []
    for i, entry in enumerate(entries):
        method, url = _request_of(entry, i)
        prepared.append((i, method, url, entry))
    return prepared


def _entry_field(i: int, field: str | None) -> str:
    """Patient.birthDate in entry 1 → Bundle.entry[1].resource.birthDate."""
    if not field:
        return f"Bundle.entry[{i}]"
    m = re.match(r"^[A-Z][A-Za-z]+\.(.+)$", field)
    if m:
        return f"Bundle.entry[{i}].resource.{m.group(1)}"
    if field == "resourceType":
        return f"Bundle.entry[{i}].resource.resourceType"
    field = {"If-Match": "request.ifMatch", "If-None-Exist": "request.ifNoneExist"}.get(field, field)
    if field == "reference":
        return f"Bundle.entry[{i}].resource"
    return f"Bundle.entry[{i}].{field}"


def _intercepted(p: tuple[int, str, str, dict[str, Any]]) -> bool:
    resource = p[3].get("resource")
    return p[1] == "POST" and isinstance(resource, dict) and hooks.has_interceptor(str(resource.get("resourceType")))


def transaction(session: Session, actor: Actor, bundle: dict[str, Any], base: str) -> dict[str, Any]:
    """All or nothing: every entry runs in the caller's unit of work; the first error undoes them all."""
    prepared = _prepare(bundle)
    # Give every new resource its id first so that urn:uuid references anywhere in the Bundle can be rewritten.
    mapping: dict[str, str] = {}
    planned_ids: set[tuple[str, str]] = set()
    existing: dict[int, dict[str, Any]] = {}  # conditional creates that found their resource
    targets: set[str] = set()
    # Which urn:uuid ids are taken, asked once for the whole Bundle rather than once per entry.
    taken = store.find_existing(session, _uuid_candidates(prepared))
    for i, method, url, entry in prepared:
        resource = entry.get("resource")
        if method == "PUT" and "?" in url and isinstance(resource, dict):
            # A conditional update is decided before anything is written (like ifNoneExist), and becomes a plain PUT
            # of the id it found or planned, so that references to its fullUrl resolve and two entries cannot
            # both change that resource.
            try:
                t, _, query = _split_url(url)
                target_id = conditional_target(session, t, query, resource, "request.url")
            except YilianError as exc:
                raise type(exc)(
                    f"entry {i} (PUT {url}): {exc.message}; nothing was saved", field=_entry_field(i, exc.field)
                ) from None
            url = f"{t}/{target_id}"
            entry = {**entry, "resource": {**resource, "id": resource.get("id") or target_id},
                     "request": {**entry["request"], "url": url}}  # fmt: skip
            prepared[i] = (i, method, url, entry)
        if method in ("PUT", "PATCH", "DELETE") and "?" not in url:
            target = url.split("/fhir/", 1)[-1].strip("/")
            if target in targets:
                raise BadRequest(
                    f"entry {i}: {target} is the target of two entries; a transaction changes a resource once",
                    field=f"Bundle.entry[{i}].request.url",
                )
            targets.add(target)
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if not isinstance(full_url, str) or not isinstance(resource, dict):
            continue
        res_type = resource.get("resourceType")
        if not isinstance(res_type, str) or not is_known_type(res_type):
            continue
        condition = (entry.get("request") or {}).get("ifNoneExist")
        if method == "POST" and condition:
            # Decided before anything is written, so that references to this entry point at what already exists.
            try:
                found = conditional_match(session, res_type, str(condition), "request.ifNoneExist")
            except YilianError as exc:
                raise type(exc)(
                    f"entry {i} (POST {url}): {exc.message}; nothing was saved", field=_entry_field(i, exc.field)
                ) from None
            if found is not None:
                existing[i] = found
                mapping[full_url] = f"{res_type}/{found['id']}"
                continue
        if method == "POST":
            candidate = full_url.removeprefix("urn:uuid:") if full_url.startswith("urn:uuid:") else None
            if (
                candidate
                and ID_PATTERN.match(candidate)
                and (res_type, candidate) not in taken  # deleted ones too: their id cannot be created again
                and (res_type, candidate) not in planned_ids
            ):
                new_id = candidate
            else:
                new_id = store.new_resource_id()
            planned_ids.add((res_type, new_id))
            mapping[full_url] = f"{res_type}/{new_id}"
            entry = {**entry, "resource": {**resource, "id": new_id}}
            prepared[i] = (i, method, url, entry)
        elif method == "PUT" and full_url.startswith("urn:uuid:"):
            try:
                t, rid, _ = _split_url(url)
            except YilianError:
                continue
            if rid:
                mapping[full_url] = f"{t}/{rid}"
    responses: dict[int, dict[str, Any]] = {}
    # Plain creates (most of a Bundle) are validated and checked one by one, then written together: one set of bulk
    # statements for resources, versions and index rows, one subscription check and one call of the after-write
    # hooks, instead of a round of queries and an ORM flush per entry.
    pending: list[tuple[int, str, str, dict[str, Any]]] = []
    ref_cache: dict[str, str] = {}

    def write_pending() -> None:
        if not pending:
            return
        first, method, url, _ = pending[0]
        try:
            saved = store.write_new(session, [res for _, _, _, res in pending], actor=actor)
            hooks.after_write(session, actor, [hooks.written("create", res) for res in saved])
        except YilianError as exc:
            raise type(exc)(
                f"entry {first} ({method} {url}): {exc.message}; nothing was saved",
                field=_entry_field(first, exc.field),
            ) from None
        for (i, _, _, _), res in zip(pending, saved, strict=True):
            patient = store.patient_of(res)
            if patient:  # the access check ran before the write (same patient: the store changes no reference)
                audit.record(
                    session, actor, "fhir.write", patient=patient[:128], resource=f"{res['resourceType']}/{res['id']}"
                )
            responses[i] = _response(res, "201 Created")
        pending.clear()
        ref_cache.clear()  # what was just written may change what a condition matches

    # A type a domain takes over (a referral Task) is created after the other POSTs, so that what it builds on (the
    # ServiceRequest, the Patient) exists in this transaction whatever the entries' order.
    for i, method, url, entry in sorted(prepared, key=lambda p: (_METHOD_ORDER[p[1]], _intercepted(p), p[0])):
        if "resource" in entry and mapping:
            # _rewrite_refs builds new dicts and lists all the way down: the caller's Bundle stays untouched.
            entry = {**entry, "resource": _rewrite_refs(entry["resource"], mapping)}
        else:
            entry = copy.deepcopy(entry)
        try:
            if i in existing:
                write_pending()
                _patient_check(session, actor, "read", existing[i])
                responses[i] = _response(existing[i], "200 OK")
                continue
            resource = entry.get("resource")
            if (
                method == "POST"
                and isinstance(resource, dict)
                and (resource.get("resourceType"), resource.get("id")) in planned_ids
                and not hooks.has_interceptor(str(resource.get("resourceType")))
            ):
                res_type, res_id, _ = _split_url(url)
                if res_id is not None:
                    raise BadRequest("POST goes to a type, not an id", field="request.url")
                if _has_conditional_ref(resource):
                    write_pending()  # a condition may match what the earlier entries create
                    resource = _resolve_conditional_refs(session, resource, ref_cache)
                validate(resource, res_type)
                access.check(session, actor, "write", res_type, store.patient_of(resource))
                pending.append((i, method, url, resource))
                continue
            write_pending()
            responses[i] = _execute(session, actor, method, url, entry, base)
        except YilianError as exc:
            field = _entry_field(i, exc.field)
            raise type(exc)(f"entry {i} ({method} {url}): {exc.message}; nothing was saved", field=field) from None
    write_pending()
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "timestamp": store.instant(utcnow()),
        "entry": [responses[i] for i in sorted(responses)],
    }


def batch(actor: Actor, bundle: dict[str, Any], base: str) -> dict[str, Any]:
    """Each entry on its own: one unit of work per entry, failures reported in place."""
    prepared = _prepare(bundle)
    out = []
    for _i, method, url, entry in prepared:
        try:
            with unit_of_work() as session:
                out.append(_execute(session, actor, method, url, entry, base))
        except YilianError as exc:
            out.append(
                {
                    "response": {
                        "status": f"{exc.status}",
                        "outcome": outcome(exc.message, code=exc.code, expression=exc.field),
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "batch-response", "timestamp": store.instant(utcnow()), "entry": out}


# --- CapabilityStatement -----------------------------------------------------------------------------------------------


def capability_statement(base: str) -> dict[str, Any]:
    resources = []
    for res_type in sorted(t for t in sp.REGISTRY if t not in ("Parameters", "Bundle")):
        params = sp.params_for(res_type)
        ref_params = [p for p in params.values() if p.type == "reference"]
        entry: dict[str, Any] = {
            "type": res_type,
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "interaction": [
                {"code": c}
                for c in (
                    "read",
                    "vread",
                    "update",
                    "delete",
                    "history-instance",
                    "history-type",
                    "create",
                    "patch",
                    "search-type",
                )
            ],
            "searchParam": [
                {
                    "name": p.name,
                    "type": "date" if p.name == "_lastUpdated" else "token" if p.type == "special" else p.type,
                }
                for p in params.values()
            ],
            "searchInclude": [f"{res_type}:{p.name}" for p in ref_params],
        }
        if res_type == "Patient":
            entry["operation"] = [
                {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": store.instant(utcnow()),
        "kind": "instance",
        "software": {"name": "Yilian 医联", "version": yilian.__version__},
        "implementation": {"description": "Yilian FHIR R4 server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "description": "Bearer token (yilian token --user NAME); /metadata is public",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
                "operation": [
                    {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
                    {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"},
                ],
            }
        ],
    }
