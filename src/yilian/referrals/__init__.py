"""Two-way referral: the referral centre, routing, green channels, SLA, insurance continuity."""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Register the referrals' hooks with the kernel: home panels (work queues), navigation, outbox handlers, and the
    FHIR create interceptor that turns a referral Task (POST /fhir/Task or a Bundle entry) into a referral."""
    from yilian.events.service import subscribe
    from yilian.fhir.hooks import register_create
    from yilian.referrals import api, pages, service
    from yilian.web.home import register_nav, register_panel

    subscribe("referral.", service.deliver_to_inboxes)
    register_create("Task", api.intercept_task)

    register_panel(15, pages.queues_panel)
    for order, item in pages.NAV:
        register_nav(order, item)


def mount(app: Any) -> None:
    """Mount the JSON API and the pages (a referral Task posted to /fhir reaches the domain through `install`)."""
    from yilian.referrals import api, pages

    install()
    app.include_router(api.router)
    app.include_router(pages.router)
