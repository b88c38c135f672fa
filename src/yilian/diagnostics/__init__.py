"""Shared diagnostics: reading centres (imaging, ECG, lab, pathology), mutual recognition of results, teleconsultation."""


def install() -> None:
    """Register the home panel and navigation with the kernel. Called by app.py."""
    from yilian.diagnostics import pages
    from yilian.web.home import register_nav, register_panel

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
