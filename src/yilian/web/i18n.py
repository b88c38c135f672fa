"""Interface language. Messages are written in English in code and templates; `<domain>/i18n/zh*.po` give Chinese.

Every domain ships its own catalogue. A domain's pages look a message up in their own catalogue first, then in all of
them merged: the same short English word may need different Chinese in different domains ("open" is 可预约 for a
clinic day and 待处理 for a worklist). Chinese is the default language.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

import yilian

LANGS = ("zh", "en")


@lru_cache
def catalogues_zh() -> dict[str, dict[str, str]]:
    """Chinese messages per domain (the package directory the catalogue sits in)."""
    out: dict[str, dict[str, str]] = {}
    root = Path(yilian.__file__).parent
    for po in sorted(root.glob("*/i18n/zh*.po")):
        messages = out.setdefault(po.parent.parent.name, {})
        with po.open("rb") as fh:
            for msg in read_po(fh, locale="zh_Hans_CN"):
                if msg.id and msg.string and isinstance(msg.id, str) and isinstance(msg.string, str):
                    messages[msg.id] = msg.string
    return out


@lru_cache
def catalogue_zh() -> dict[str, str]:
    """All domains' messages merged (the web kernel's own win), for text that belongs to no one domain."""
    merged: dict[str, str] = {}
    catalogues = catalogues_zh()
    for domain in sorted(catalogues, key=lambda d: d == "web"):
        merged.update(catalogues[domain])
    return merged


def translate(lang: str, domain: str | None, message: str, **values: object) -> str:
    text = message
    if lang == "zh":
        own = catalogues_zh().get(domain or "", {})
        text = own.get(message) or catalogue_zh().get(message, message)
    return text.format(**values) if values else text


def translator(lang: str, domain: str | None = None) -> Callable[..., str]:
    def _(message: str, **values: object) -> str:
        return translate(lang, domain, message, **values)

    return _


def pick(lang: str, zh: str, en: str) -> str:
    """For data that carries both names (a facility's Chinese name and its English gloss)."""
    return en if lang == "en" and en else zh


def negotiate(cookie: str | None, accept_language: str | None, default: str) -> str:
    if cookie in LANGS:
        return cookie
    if accept_language:
        first = accept_language.split(",")[0].strip().lower()
        if first.startswith("en"):
            return "en"
        if first.startswith("zh"):
            return "zh"
    return default if default in LANGS else "zh"
