"""ViewDefinitions as FHIR resources: the structure check /fhir/ViewDefinition applies, and the views in effect.

A ViewDefinition is not an R4 resource (SQL on FHIR v2 defines it as a logical model), so `fhir.resources` cannot
check it; `check` below does, with the elements the specification allows at each level, and then compiles the view,
which refuses bad FHIRPath, bad column names and the rest with the element's path. The FHIR store keeps every version
of a stored view; the views in effect are the shipped ones (views/*.json) overridden by stored, non-retired views
with the same `name`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from yilian.analytics import catalogue
from yilian.analytics.compiler import NAME_RE, compile_view
from yilian.errors import Invalid, NotFound

RESOURCE_TYPE = "ViewDefinition"
STATUSES = ("draft", "active", "retired", "unknown")

# Elements of the ViewDefinition logical model (SQL on FHIR v2) beyond those of every resource.
_RESOURCE_ELEMENTS = {"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension"}
_VIEW_ELEMENTS = _RESOURCE_ELEMENTS | {
    "modifierExtension",
    "url",
    "identifier",
    "version",
    "name",
    "title",
    "status",
    "experimental",
    "publisher",
    "contact",
    "description",
    "useContext",
    "copyright",
    "resource",
    "resourceVersion",
    "fhirVersion",
    "profile",
    "constant",
    "select",
    "where",
}
_COLUMN_ELEMENTS = {"id", "extension", "name", "path", "description", "collection", "type", "tag"}
_WHERE_ELEMENTS = {"id", "extension", "path", "description"}
_SELECT_NESTED = ("select", "unionAll")


def _unknown(node: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in node:
        if key not in allowed and not key.startswith("_"):
            raise Invalid(f"{where}: {key!r} is not an element of a ViewDefinition here", field=f"{where}.{key}")


def _check_select(node: Any, where: str) -> None:
    if not isinstance(node, dict):
        raise Invalid(f"{where} must be an object", field=where)
    for j, col in enumerate(node.get("column") or []):
        if isinstance(col, dict):
            _unknown(col, _COLUMN_ELEMENTS, f"{where}.column[{j}]")
            tags = col.get("tag", [])
            if not isinstance(tags, list) or not all(isinstance(t, dict) and "name" in t for t in tags):
                raise Invalid(f"{where}.column[{j}].tag: a list of {{name, value}}", field=f"{where}.column[{j}].tag")
    for key in _SELECT_NESTED:
        for j, sub in enumerate(node.get(key) or []):
            _check_select(sub, f"{where}.{key}[{j}]")


def check(resource: dict[str, Any]) -> None:
    """Raise Invalid, naming the element (ViewDefinition.select[0].column[1].path), unless this is a usable view."""
    root = RESOURCE_TYPE
    _unknown(resource, _VIEW_ELEMENTS, root)
    status = resource.get("status")
    if status not in STATUSES:
        raise Invalid(f"status is required: one of {', '.join(STATUSES)}", field=f"{root}.status")
    name = resource.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 64:
        raise Invalid(
            "name is required: letters, digits and _ (at most 64), starting with a letter; indicators use it as the "
            "table name",
            field=f"{root}.name",
        )
    for j, sel in enumerate(resource.get("select") or []):
        _check_select(sel, f"{root}.select[{j}]")
    for j, w in enumerate(resource.get("where") or []):
        if isinstance(w, dict):
            _unknown(w, _WHERE_ELEMENTS, f"{root}.where[{j}]")
    try:
        compile_view(resource)
    except Invalid as exc:
        field = f"{root}.{exc.field}" if exc.field and not exc.field.startswith(root) else exc.field
        raise Invalid(exc.message, field=field) from None


# ---------------------------------------------------------------- the views in effect


# 2: the typed engine (typed.py); a column without a declared type holds its FHIR leaf's SQL type instead of JSON
ROWS_FORMAT = 2


@dataclass(frozen=True)
class ViewEntry:
    name: str
    definition: dict[str, Any]
    source: str  # "shipped" or "ViewDefinition/<id>/_history/<version>"
    status: str

    @property
    def fingerprint(self) -> str:
        """Changes when anything that shapes the rows changes (not the version number or lastUpdated)."""
        body = {k: v for k, v in self.definition.items() if k not in ("meta", "id", "text")}
        # how the engine writes rows is part of their shape: a file written before a change is rebuilt in full,
        # never appended to with rows of another form
        body["_rows_format"] = ROWS_FORMAT
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def stored_views(session: Session) -> list[dict[str, Any]]:
    """The current version of every ViewDefinition in the FHIR store (not deleted)."""
    from yilian.fhir.models import FhirResource, FhirResourceVersion

    rows = session.execute(
        select(FhirResourceVersion.resource)
        .join(
            FhirResource,
            and_(
                FhirResourceVersion.resource_pk == FhirResource.pk, FhirResourceVersion.version == FhirResource.version
            ),
        )
        .where(FhirResource.res_type == RESOURCE_TYPE, FhirResource.deleted == false())
        .order_by(FhirResource.res_id)
    ).scalars()
    return [r for r in rows if isinstance(r, dict)]


def views_in_effect(session: Session | None) -> dict[str, ViewEntry]:
    """Shipped views, overridden by stored ones of the same name; a retired stored view withdraws the name."""
    out = {name: ViewEntry(name, catalogue.get(name), "shipped", "active") for name in catalogue.names()}
    if session is None:
        return out
    for view in stored_views(session):
        name = view.get("name")
        if not isinstance(name, str):
            continue
        version = (view.get("meta") or {}).get("versionId", "1")
        entry = ViewEntry(name, view, f"ViewDefinition/{view.get('id')}/_history/{version}", str(view.get("status")))
        if entry.status == "retired":
            out.pop(name, None)
        else:
            out[name] = entry
    return dict(sorted(out.items()))


def view_named(session: Session | None, name: str) -> ViewEntry:
    views = views_in_effect(session)
    if name not in views:
        raise NotFound(f"no view named {name!r}; known: {', '.join(views)}", field="view")
    return views[name]
