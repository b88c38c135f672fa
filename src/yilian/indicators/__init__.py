"""Indicators: the official monitoring sets as data (sets/*.yaml), computed from a columnar snapshot with DuckDB
through Ibis, served as JSON, CSV, Excel, FHIR MeasureReport and dashboards."""

from __future__ import annotations

from typing import Any


def install() -> None:
    """Check every indicator definition (a wrong one stops the start-up, naming its file) and register the pages."""
    from yilian.indicators import definitions, pages
    from yilian.web.home import register_nav, register_panel

    definitions.load_all()
    register_panel(40, pages.home_panel)
    for order, item in pages.NAV:
        register_nav(order, item)


def mount(app: Any) -> None:
    """Install, then mount the JSON API and the dashboard pages."""
    from yilian.indicators import api, pages

    install()
    app.include_router(api.router)
    app.include_router(pages.router)
