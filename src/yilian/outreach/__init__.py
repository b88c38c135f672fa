"""Expert outreach (专家下沉): programmes and postings, compliance, expert clinics and booking, rostering, training."""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Register outreach's hooks with the kernel: home panel, navigation, SMS delivery from the outbox."""
    from yilian.events.service import subscribe
    from yilian.outreach import clinics, pages
    from yilian.web.home import register_nav, register_panel

    register_panel(30, pages.home_panel)
    for order, item in pages.NAV:
        register_nav(order, item)
    subscribe("outreach.sms", clinics.deliver_sms)


def mount(app: Any) -> None:
    """Mount the JSON API (/api/v1/outreach), the staff pages (/outreach) and the public booking page (/book), and
    run the attendance-alert job for as long as the app runs."""
    from contextlib import asynccontextmanager

    from yilian.outreach import api, jobs, pages

    install()
    app.include_router(api.router)
    app.include_router(pages.router)

    # The app's own lifespan (migration check) stays as it is; the job is started inside it and stopped before it
    # ends, so outreach needs no change in app.py.
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi_app: Any) -> Any:
        async with inner(asgi_app) as state, jobs.alert_job():
            yield state

    app.router.lifespan_context = lifespan
