"""The top: builds the FastAPI app from every domain's routers. Nothing imports this module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

import yilian
from yilian import analytics, indicators, migrations, network, patients, referrals
from yilian.analytics import pages as analytics_pages
from yilian.config import get_settings
from yilian.db import get_engine
from yilian.fhir import api as fhir_api
from yilian.network import api as network_api
from yilian.network import pages as network_pages
from yilian.web import errors, pages
from yilian.web.auth import LANG_COOKIE
from yilian.web.i18n import negotiate


def create_app(*, check_migrations: bool = True) -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if check_migrations:
            migrations.require_current(get_engine())
        yield

    app = FastAPI(
        title="Yilian 医联",
        version=yilian.__version__,
        description="Tiered, integrated health network: registry, shared record, referrals, diagnostics, outreach, indicators.",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )

    app.add_middleware(LanguageMiddleware, default=settings.lang)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=Path(yilian.__file__).parent / "web" / "static"), name="static")

    @app.get("/healthz", tags=["platform"])
    def healthz() -> JSONResponse:
        engine = get_engine()
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            current, head = migrations.current_revision(engine), migrations.head_revision(engine)
            database = {"status": "ok", "dialect": engine.dialect.name, "migration": current, "expected": head}
            ok = current == head
        except Exception as exc:  # the point of a health check is to report, not to fail
            database = {"status": "error", "dialect": engine.dialect.name, "error": type(exc).__name__}
            ok = False
        return JSONResponse(
            {"status": "ok" if ok else "degraded", "version": yilian.__version__, "database": database},
            status_code=200 if ok else 503,
        )

    network.install()  # home panels, navigation, actor enrichment
    patients.install()  # FHIR access policy (consent, consortium, break-glass), home panel, navigation
    analytics.install()  # ViewDefinition on /fhir, the views page in the navigation
    # Every request is matched against the routes in order, at several microseconds a route (and an included router's
    # routes twice: once to find the router, again inside it), and /fhir carries most of the traffic. Behind the ≈ 230
    # other routes, matching cost a FHIR read more CPU than its SQL: the FHIR routes go first, flat in the app's own
    # list. No other route's path matches a /fhir path; POST /fhir/Patient/$match (patients) only partly matches
    # FHIR routes (same path shape, other methods), and a full match later wins over a partial one.
    app.router.routes[:0] = fhir_api.router.routes
    app.include_router(patients.router())
    app.include_router(pages.router)
    app.include_router(network_api.router)
    app.include_router(network_pages.router)
    app.include_router(analytics_pages.router)
    referrals.mount(app)  # a referral Task posted to /fhir reaches the domain through its hooks (referrals.install)
    indicators.mount(app)  # /indicators dashboards, /api/v1/indicators
    from yilian import diagnostics

    diagnostics.mount(app)  # home panel, navigation, /api/v1/diagnostics, /api/v1/recognition, pages
    from yilian import outreach

    outreach.mount(app)  # /api/v1/outreach, /outreach pages, the public booking page /book
    from yilian import twin

    twin.mount(app)  # /twin: build a scenario from the map, run it, compare with the baseline
    return app


class LanguageMiddleware:
    """Sets `request.state.lang`: pages follow the switch (cookie) or the platform default; API callers may also ask
    with Accept-Language. A plain ASGI middleware: FastAPI's `@app.middleware("http")` runs every request through a
    task and memory streams of its own, which cost more CPU than a FHIR read's SQL."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app, self.default = app, default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            api = path.startswith("/api") or path.startswith("/fhir")
            cookie, accept = None, None
            for name, value in scope["headers"]:
                if name == b"cookie":
                    cookie = cookie_parser(value.decode("latin-1")).get(LANG_COOKIE, cookie)
                elif name == b"accept-language" and api:
                    accept = value.decode("latin-1")
            scope.setdefault("state", {})["lang"] = negotiate(cookie, accept, self.default)
        await self.app(scope, receive, send)
