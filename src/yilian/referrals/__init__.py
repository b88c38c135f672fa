"""Two-way referral: the referral centre, routing, green channels, SLA, insurance continuity."""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Register the referrals' hooks with the kernel: home panels (work queues), navigation, outbox handlers."""
    from yilian.events.service import subscribe
    from yilian.referrals import pages, service
    from yilian.web.home import register_nav, register_panel

    subscribe("referral.", service.deliver_to_inboxes)

    register_panel(15, pages.queues_panel)
    for order, item in pages.NAV:
        register_nav(order, item)


def mount(app: Any) -> None:
    """Mount the JSON API, the pages and the referral-aware `POST /fhir/Task` (before the generic FHIR router)."""
    from yilian.referrals import api, pages

    install()
    app.include_router(api.fhir_router)
    app.include_router(api.router)
    app.include_router(pages.router)
