"""Use cases behind the views page: the catalogue of views in effect, and a preview of a view's first rows over the
resources the user may read (the same access policy as /fhir), each patient shown leaving an audit row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from yilian.analytics import definitions
from yilian.analytics.compiler import KEY_COLUMN, Column, compile_view
from yilian.analytics.materialize import registered
from yilian.analytics.runner import run_view
from yilian.errors import Forbidden
from yilian.security import audit
from yilian.security.actor import Actor

PREVIEW_ROWS = 20
# Resources examined for a preview: enough to find PREVIEW_ROWS rows in scope without reading a province.
PREVIEW_SCAN = 500


@dataclass(frozen=True)
class ViewSummary:
    name: str
    title: str
    resource: str
    status: str
    source: str
    columns: list[Column]
    fallbacks: list[str]
    materialized_rows: int | None
    materialized_at: str | None


def catalogue(session: Session) -> list[ViewSummary]:
    done = {r.name: r for r in registered(session)}
    out = []
    for name, entry in definitions.views_in_effect(session).items():
        compiled = compile_view(entry.definition)
        reg = done.get(name)
        out.append(
            ViewSummary(
                name=name,
                title=str(entry.definition.get("title") or entry.definition.get("description") or ""),
                resource=compiled.resource,
                status=entry.status,
                source=entry.source,
                columns=compiled.columns,
                fallbacks=[f"{f.field}: {f.expression}" for f in compiled.fallbacks],
                materialized_rows=reg.rows if reg else None,
                materialized_at=f"{reg.materialized_at:%Y-%m-%d %H:%M}" if reg else None,
            )
        )
    return out


def summary(session: Session, name: str) -> ViewSummary:
    definitions.view_named(session, name)  # NotFound with the known names
    return next(v for v in catalogue(session) if v.name == name)


@dataclass
class Preview:
    rows: list[dict[str, Any]]
    scanned: int  # resources of the view's type looked at
    in_scope: int  # of those, readable by the user
    patients: list[str] = field(default_factory=list)


def preview(session: Session, actor: Actor, name: str, limit: int = PREVIEW_ROWS) -> Preview:
    """The first rows of a view over the resources this user may read; audits every patient whose rows are shown."""
    from yilian.fhir import access, store
    from yilian.fhir.models import FhirResource, FhirResourceVersion

    entry = definitions.view_named(session, name)
    compiled = compile_view(entry.definition)
    resources = list(
        session.execute(
            select(FhirResourceVersion.resource)
            .join(
                FhirResource,
                and_(
                    FhirResourceVersion.resource_pk == FhirResource.pk,
                    FhirResourceVersion.version == FhirResource.version,
                ),
            )
            .where(FhirResource.res_type == compiled.resource, FhirResource.deleted == false())
            .order_by(FhirResource.last_updated.desc(), FhirResource.res_id)
            .limit(PREVIEW_SCAN)
        ).scalars()
    )
    allowed: list[dict[str, Any]] = []
    for res in resources:
        if not isinstance(res, dict):
            continue
        try:
            access.check(session, actor, "read", compiled.resource, store.patient_of(res))
        except Forbidden:
            continue
        allowed.append(res)
    # one query over the readable resources, keyed by resource id so that each row shown is tied to its patient
    patient_of = {str(r.get("id")): store.patient_of(r) for r in allowed}
    keyed = run_view(compiled, allowed, keyed=True) if allowed else []
    shown: list[dict[str, Any]] = []
    patients: list[str] = []
    for row in keyed[:limit]:
        patient = patient_of.get(str(row.pop(KEY_COLUMN)))
        shown.append(row)
        if patient and patient not in patients:
            patients.append(patient)
    for patient in patients:
        audit.record(session, actor, "analytics.view_preview", patient=patient[:128], resource=f"view/{name}"[:256])
    return Preview(shown, len(resources), len(allowed), patients)
