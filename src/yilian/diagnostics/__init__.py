"""Shared diagnostics: reading centres (imaging, ECG, lab, pathology), mutual recognition of results, teleconsultation."""


def install() -> None:
    """Register the home panel, navigation and outbox handlers with the kernel. Called by app.py."""
    from yilian.diagnostics import notify, pages
    from yilian.events.service import subscribe
    from yilian.web.home import register_nav, register_panel

    # Reports and critical values reach the ordering site's webhook or duty phone through the outbox.
    subscribe("diagnostics.report.", notify.fan_out)
    subscribe("diagnostics.deliver", notify.deliver)

    register_panel(30, pages.home_panel)
    for order, item in pages.NAV:
        register_nav(order, item)


def mount(app: object) -> None:
    """Install the hooks and mount the JSON API (/api/v1/diagnostics, /api/v1/recognition) and the pages."""
    from fastapi import FastAPI

    from yilian.diagnostics import api, pages

    assert isinstance(app, FastAPI)
    install()
    app.include_router(api.router)
    app.include_router(pages.router)
