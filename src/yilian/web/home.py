"""The home page is made of panels that domains contribute (the network shows the user's world, referrals their
work queues, ...). The kernel only orders and renders them; it never imports a domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from yilian.security.actor import Actor


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any]


PanelFn = Callable[[Session, Actor], Panel | None]
_panels: list[tuple[int, PanelFn]] = []


def register_panel(order: int, fn: PanelFn) -> None:
    if all(f is not fn for _, f in _panels):
        _panels.append((order, fn))
        _panels.sort(key=lambda p: p[0])


def panels_for(session: Session, actor: Actor) -> list[Panel]:
    return [p for _, fn in _panels if (p := fn(session, actor)) is not None]


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str  # English msgid, translated in the template
    roles: frozenset[str] | None = None  # None: everyone signed in


_nav: list[tuple[int, NavItem]] = []


def register_nav(order: int, item: NavItem) -> None:
    if all(i.href != item.href for _, i in _nav):
        _nav.append((order, item))
        _nav.sort(key=lambda p: p[0])


def nav_for(actor: Actor | None) -> list[NavItem]:
    if actor is None:
        return []
    return [i for _, i in _nav if i.roles is None or str(actor.role) in i.roles]
