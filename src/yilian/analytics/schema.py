"""FHIR R4 element cardinalities and types, read from the `fhir.resources` R4B models.

The compiler uses them to turn a path such as `Encounter.participant.individual.reference` into one JSONPath
(`$.participant[*].individual.reference`) instead of checking at run time, element by element, whether each step
is an array. Unknown types or names return None, and the compiler falls back to the run-time checks.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TYPE_RE = re.compile(r"abc\.(\w+)Type\b")


@lru_cache(maxsize=512)
def elements(type_name: str) -> dict[str, tuple[str | None, bool]]:
    """{json name: (element type or None for primitives, is a list)} of one FHIR type; {} if unknown."""
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", type_name or ""):
        return {}
    try:
        from fhir.resources.R4B import get_fhir_model_class

        cls = get_fhir_model_class(type_name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return {}
    out: dict[str, tuple[str | None, bool]] = {}
    for name, info in cls.model_fields.items():
        key = info.alias or name
        if key.startswith("_") or key in ("fhir_comments", "resource_type"):
            continue
        ann = str(info.annotation)
        m = _TYPE_RE.search(ann)
        child = m.group(1) if m else None
        if child in ("FHIRPrimitiveExtension", "Resource"):
            child = None if child == "FHIRPrimitiveExtension" else "Resource"
        out[key] = (child if m else "", "List[" in ann)  # "" = a primitive: nothing below it
    return out


def child(type_name: str | None, name: str) -> tuple[str | None, bool] | None:
    """(type, is_list) of element `name` of `type_name`, or None when the model does not say."""
    if not type_name or type_name == "Resource":
        return None
    return elements(type_name).get(name)


@lru_cache(maxsize=512)
def primitive_kinds(type_name: str) -> dict[str, str]:
    """{json name: SQL kind (str, int, num, bool)} of the primitive elements of one FHIR type; {} if unknown."""
    try:
        from fhir.resources.R4B import get_fhir_model_class

        cls = get_fhir_model_class(type_name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return {}
    out: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        ann = str(info.annotation)
        if _TYPE_RE.search(ann):
            continue
        # bool before int: the annotation of a boolean is plain `bool`, of an integer `Annotated[int, …]`
        base = ann.split("[")[-1].split(",")[0].split("|")[0].strip()
        kind = {"bool": "bool", "int": "int", "decimal.Decimal": "num"}.get(base, "str")
        out[info.alias or name] = kind
    return out
