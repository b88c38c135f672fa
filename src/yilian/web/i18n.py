"""Interface language. Messages are written in English in code and templates; `<domain>/i18n/zh*.po` give Chinese.

Every domain may ship its own catalogue; they are merged at first use. Chinese is the default language.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

import yilian

LANGS = ("zh", "en")


@lru_cache
def catalogue_zh() -> dict[str, str]:
    messages: dict[str, str] = {}
    root = Path(yilian.__file__).parent
    for po in sorted(root.glob("*/i18n/zh*.po")):
        with po.open("rb") as fh:
            for msg in read_po(fh, locale="zh_Hans_CN"):
                if msg.id and msg.string and isinstance(msg.id, str) and isinstance(msg.string, str):
                    messages[msg.id] = msg.string
    return messages


def translator(lang: str) -> Callable[..., str]:
    table = catalogue_zh() if lang == "zh" else {}

    def _(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text.format(**values) if values else text

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
