"""The catalogue of recognised items (data/recognition.yaml), read once; a region replaces the file with its own list."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from yilian.diagnostics.rules import Modality, RecognisedItem, Scope
from yilian.errors import Invalid, NotFound

CATALOGUE = Path(__file__).parent / "data" / "recognition.yaml"


@lru_cache
def items() -> dict[str, RecognisedItem]:
    raw = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    out: dict[str, RecognisedItem] = {}
    for row in raw["items"]:
        item = RecognisedItem(
            code=str(row["code"]),
            name=str(row["name"]),
            name_en=str(row["name_en"]),
            modality=Modality(row["modality"]),
            validity_days=int(row["validity_days"]),
            scope=Scope(row["scope"]),
            price_fen=int(row["price_fen"]),
            loinc=row.get("loinc") or None,
        )
        if item.code in out:
            raise ValueError(f"{CATALOGUE.name}: item {item.code} is listed twice")
        out[item.code] = item
    return out


def get(code: str, *, field: str = "item_code") -> RecognisedItem:
    try:
        return items()[code]
    except KeyError:
        raise NotFound(f"{code!r} is not in the catalogue of recognised items", field=field) from None


def for_modality(modality: str) -> list[RecognisedItem]:
    try:
        wanted = Modality(modality)
    except ValueError:
        raise Invalid(f"modality must be one of {', '.join(m.value for m in Modality)}", field="modality") from None
    return [i for i in items().values() if i.modality == wanted]
