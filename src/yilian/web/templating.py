"""Jinja2 templates: `web/templates` plus every domain's `templates/` (a domain keeps its pages in templates/<domain>/)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

import yilian
from yilian.security.roles import role_label
from yilian.web.home import nav_for
from yilian.web.i18n import pick, translate


@pass_context
def _translate(context: Context, message: str, **values: object) -> str:
    """`_()` in templates: the catalogue of the domain whose template is rendering (templates/<domain>/…; an included
    panel counts as its own domain's), then all catalogues."""
    name = context.name or ""
    domain = name.split("/", 1)[0] if "/" in name else "web"
    return translate(context.get("lang", "zh"), domain, message, **values)


@lru_cache
def environment() -> Environment:
    root = Path(yilian.__file__).parent
    paths = [str(root / "web" / "templates")] + [
        str(p) for p in sorted(root.glob("*/templates")) if p.parent.name != "web"
    ]
    env = Environment(
        loader=FileSystemLoader(paths), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True
    )
    env.globals["_"] = _translate
    env.globals["role_label"] = role_label
    env.globals["pick"] = pick
    env.filters["thousands"] = lambda n: "" if n is None else f"{n:,}"
    return env


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    lang = getattr(request.state, "lang", "zh")
    ctx = {
        "request": request,
        "lang": lang,
        "actor": getattr(request.state, "actor", None),
        "nav": nav_for(getattr(request.state, "actor", None)),
        "path": request.url.path,
        # Where the language switch returns to: the same page with its filters (scope, period, indicator …).
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    ctx.update(context or {})
    html = environment().get_template(name).render(ctx)
    return HTMLResponse(html, status_code=status)
