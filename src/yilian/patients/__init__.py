"""patients domain: the master patient index (linkage, golden person, review) and the shared record across facilities."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter


def install() -> None:
    """Register the domain's hooks with the kernel: who may read a patient's compartment through /fhir, the master
    patient index's write hook (a Patient written through /fhir or imported is matched in the same transaction; an
    import links its Patients once at the end), home panel, navigation. Called by app.py and the CLI."""
    from yilian.fhir.access import register_policy
    from yilian.fhir.hooks import register_after_write
    from yilian.patients import pages, record, service
    from yilian.web.home import register_nav, register_panel

    register_policy(record.fhir_policy)
    register_after_write("Patient", service.on_patient_writes, after_import=service.catch_up)
    register_panel(30, pages.index_panel)
    for order, item in pages.NAV:
        register_nav(order, item)


def router() -> APIRouter:
    """Every route of the domain: JSON API (/api/v1/patients), Patient/$match (/fhir) and the pages (/patients)."""
    from fastapi import APIRouter

    from yilian.patients import api, fhir, pages

    combined = APIRouter()
    combined.include_router(api.router)
    combined.include_router(fhir.router)
    combined.include_router(pages.router)
    return combined
