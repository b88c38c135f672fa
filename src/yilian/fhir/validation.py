"""Every write is checked here: size and shape first (cheap, protects the server), then the R4 structure with the
fhir.resources R4B models, then the rules R4 cannot express (resident ID card numbers)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from yilian.errors import BadRequest, Invalid, YilianError

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 40
MAX_STRING_CHARS = 1024 * 1024

RESIDENT_ID_SYSTEM = "urn:yilian:sid:cn-resident-id"
RESIDENT_ID_TYPE = "NNCHN"
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class TooLarge(YilianError):
    status, code = 413, "too_costly"


class Gone(YilianError):
    status, code = 410, "deleted"


class NotSupported(YilianError):
    status, code = 400, "not_supported"


def parse_body(raw: bytes) -> Any:
    """JSON from a request body, refusing what would hurt: too big, too deep, giant strings, broken JSON."""
    if len(raw) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES} (5 MB): send a smaller Bundle")
    if not raw.strip():
        raise BadRequest("the body is empty: send a FHIR resource as JSON")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    check_shape(data)
    return data


def check_shape(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str) and len(node) > MAX_STRING_CHARS:
            raise TooLarge(f"a string of {len(node)} characters exceeds the limit of {MAX_STRING_CHARS} (1 MB)")


@lru_cache(maxsize=256)
def model_class(res_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(res_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None


# Types R4 does not define that a kernel module stores here (SQL on FHIR ViewDefinition): name → structure check.
_extra_types: dict[str, Callable[[dict[str, Any]], None]] = {}


def register_type(res_type: str, check: Callable[[dict[str, Any]], None]) -> None:
    """Accept `res_type` on /fhir; `check` raises Invalid (with `field`) for a resource of that type that is wrong."""
    _extra_types[res_type] = check


def is_known_type(res_type: str) -> bool:
    if res_type in _extra_types:
        return True
    return bool(re.fullmatch(r"[A-Z][A-Za-z]{1,63}", res_type)) and model_class(res_type) is not None


def _path(res_type: str, loc: tuple[Any, ...]) -> str:
    out = res_type
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("__root__", "root"):  # pydantic root models add a step FHIR does not have
            out += f".{part}"
    return out


def validate(resource: Any, expected_type: str | None = None) -> dict[str, Any]:
    """The resource if it is valid R4 (R4B models), else Invalid naming the element (e.g. Patient.birthDate)."""
    if not isinstance(resource, dict):
        raise Invalid("a FHIR resource is a JSON object", field="resourceType")
    res_type = resource.get("resourceType")
    if not isinstance(res_type, str) or not res_type:
        raise Invalid("the resource has no resourceType", field="resourceType")
    if expected_type and res_type != expected_type:
        raise BadRequest(
            f"the body is a {res_type} but the URL is for {expected_type}", field=f"{expected_type}.resourceType"
        )
    cls = model_class(res_type)
    if cls is None and res_type not in _extra_types:
        raise Invalid(f"{res_type} is not a FHIR R4 resource type", field="resourceType")
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID_PATTERN.match(rid)):
        raise Invalid("id: 1-64 letters, digits, '-' or '.'", field=f"{res_type}.id")
    if res_type in _extra_types:
        _extra_types[res_type](resource)
        return resource
    try:
        cls.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        field = _path(res_type, tuple(first.get("loc", ())))
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise Invalid(f"{field}: {first.get('msg')}{more}", field=field) from None
    except (TypeError, ValueError) as exc:  # fhir.resources raises plain errors for some malformed primitives
        raise Invalid(f"{res_type}: {exc}", field=res_type) from None
    check_resident_ids(resource)
    check_required_codes(resource)
    if res_type == "Subscription":
        from yilian.fhir import subscriptions

        subscriptions.check(resource)
    return resource


# --- resident identity card (GB 11643-1999) --------------------------------------------------------------------------

_WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def resident_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def resident_id_problem(number: str) -> str | None:
    """Why a resident ID card number is wrong, or None when it is right."""
    if len(number) != 18:
        return f"a resident ID card number has 18 characters, this one has {len(number)}"
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] in "Xx"):
        return "a resident ID card number is 17 digits followed by a digit or X"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return f"the birth date in the number ({number[6:14]}) is not a real date"
    if born.year < 1880 or born > date.today():
        return f"the birth date in the number ({number[6:14]}) is not plausible"
    if resident_id_check_char(number[:17]) != number[17].upper():
        return "the check digit does not match (GB 11643): the number has a typo"
    return None


def _is_resident_id(identifier: dict[str, Any]) -> bool:
    if identifier.get("system") == RESIDENT_ID_SYSTEM:
        return True
    coding = (identifier.get("type") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == RESIDENT_ID_TYPE for c in coding)


def check_resident_ids(resource: dict[str, Any]) -> None:
    res_type = resource.get("resourceType")
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and _is_resident_id(identifier):
            problem = resident_id_problem(str(identifier.get("value") or ""))
            if problem:
                raise Invalid(f"resident ID card: {problem}", field=f"{res_type}.identifier")


# --- required bindings the R4B models do not check -----------------------------------------------------------------

_GENDER = frozenset({"male", "female", "other", "unknown"})
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Patient", "gender"): _GENDER,
    ("Practitioner", "gender"): _GENDER,
    ("Person", "gender"): _GENDER,
    ("RelatedPerson", "gender"): _GENDER,
    ("Observation", "status"): frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
    ),
    ("Encounter", "status"): frozenset(
        {
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    ),
}


def check_required_codes(resource: dict[str, Any]) -> None:
    """A few elements whose value set is required and small; the models check structure only."""
    res_type = resource.get("resourceType", "")
    for (t, element), allowed in REQUIRED_CODES.items():
        if t == res_type and element in resource and resource[element] not in allowed:
            raise Invalid(
                f"{t}.{element} must be one of {', '.join(sorted(allowed))}, not {str(resource[element])[:40]!r}",
                field=f"{t}.{element}",
            )
