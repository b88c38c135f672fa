"""Digital twin: population, demand, patient-flow simulation, scenarios, the scenario page, demo data."""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Register the twin's page in the navigation of officials and insurers."""
    from yilian.twin import pages
    from yilian.web.home import register_nav

    for order, item in pages.NAV:
        register_nav(order, item)


def mount(app: Any) -> None:
    """Install, then mount the scenario page (/twin)."""
    from yilian.twin import pages

    install()
    app.include_router(pages.router)
