"""The one place where errors become responses: JSON for /api, OperationOutcome for /fhir, a page for people."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from yilian.errors import YilianError
from yilian.web.i18n import translator
from yilian.web.templating import render

log = logging.getLogger("yilian")

# Edges with their own error format register a shaper for their path prefix (the FHIR API: OperationOutcome).
Shaper = Callable[[int, str, str, str | None], Response]
_shapers: dict[str, Shaper] = {}


def register_shaper(prefix: str, shaper: Shaper) -> None:
    _shapers[prefix] = shaper


def _kind(request: Request) -> str:
    path = request.url.path
    for prefix in _shapers:
        if path.startswith(prefix):
            return prefix
    if path.startswith("/api") or path in ("/healthz", "/openapi.json"):
        return "api"
    if request.headers.get("hx-request"):
        return "fragment"
    return "page"


def respond(request: Request, status: int, code: str, message: str, field: str | None = None) -> Response:
    kind = _kind(request)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if kind in _shapers:
        response = _shapers[kind](status, code, message, field)
        if headers:
            response.headers.update(headers)
        return response
    if kind == "api":
        return JSONResponse({"error": code, "message": message, "field": field}, status_code=status, headers=headers)
    if status == 401 and kind == "page":
        return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)
    _ = translator(getattr(request.state, "lang", "zh"))
    return render(request, "error.html", {"status": status, "message": _(message), "field": field}, status=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(YilianError)
    async def _yilian(request: Request, exc: YilianError) -> Response:
        return respond(request, exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid input"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header", "form")]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return respond(request, 422, "invalid", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "not_supported", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, "invalid"
        )
        message = str(exc.detail) if exc.detail else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        return respond(request, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return respond(request, 500, "exception", "internal error: it has been logged; please report it")
