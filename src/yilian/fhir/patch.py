"""PATCH: JSON Patch (RFC 6902) and FHIRPath Patch (a Parameters resource) applied to a stored resource.

Pure functions over plain JSON: the API reads the current version, applies the patch here, validates the result as
a whole resource and stores it as an update (so If-Match, the search index, subscriptions and hooks behave exactly as
for PUT). Errors name the operation and the element it touched: `expression` is the element as a FHIRPath-like
path (`Patient.name[0].family`), the message says which operation failed and why.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from typing import Any

from yilian.errors import BadRequest, Conflict, Invalid, YilianError

JSON_PATCH = "application/json-patch+json"
MAX_OPERATIONS = 1000
_OPS = ("add", "remove", "replace", "move", "copy", "test")
_MISSING = object()


def _element(res_type: str, tokens: list[str]) -> str:
    """['name', '0', 'family'] → 'Patient.name[0].family' (what OperationOutcome.issue.expression wants)."""
    out = res_type
    for t in tokens:
        out += f"[{t}]" if t.isdigit() or t == "-" else f".{t}"
    return out


def _pointer(path: Any, where: str) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise BadRequest(
            f"{where}: a path is a JSON Pointer such as /name/0/family, not {str(path)[:80]!r}", field=where
        )
    if path == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


class _OpError(Exception):
    def __init__(self, message: str, tokens: list[str], kind: type[YilianError] = Invalid):
        super().__init__(message)
        self.message, self.tokens, self.kind = message, tokens, kind


def _walk(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for n, t in enumerate(tokens):
        if isinstance(node, dict):
            if t not in node:
                raise _OpError(f"there is no {t!r} here", tokens[: n + 1])
            node = node[t]
        elif isinstance(node, list):
            if not t.isdigit() or int(t) >= len(node):
                raise _OpError(f"{t!r} is not an index of this list of {len(node)}", tokens[: n + 1])
            node = node[int(t)]
        else:
            raise _OpError("a primitive value has no children", tokens[:n])
    return node


def _parent(doc: Any, tokens: list[str]) -> tuple[Any, str]:
    if not tokens:
        raise _OpError("the whole resource cannot be the target: patch its elements", tokens)
    return _walk(doc, tokens[:-1]), tokens[-1]


def _add(doc: Any, tokens: list[str], value: Any) -> None:
    parent, key = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            parent.insert(int(key), value)
        else:
            raise _OpError(f"{key!r} is not a position in this list of {len(parent)}", tokens)
    else:
        raise _OpError("a primitive value has no children", tokens[:-1])


def _remove(doc: Any, tokens: list[str]) -> Any:
    parent, key = _parent(doc, tokens)
    value = _walk(doc, tokens)  # raises when missing
    if isinstance(parent, dict):
        del parent[key]
    else:
        del parent[int(key)]
    return value


def apply_json_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    """A new resource with the operations applied in order (all or nothing: the input is never changed)."""
    res_type = str(resource.get("resourceType"))
    if not isinstance(operations, list):
        raise BadRequest("a JSON Patch is a list of operations", field="PATCH")
    if not operations:
        raise BadRequest("the JSON Patch has no operations", field="PATCH")
    if len(operations) > MAX_OPERATIONS:
        raise BadRequest(f"a JSON Patch may hold at most {MAX_OPERATIONS} operations", field="PATCH")
    doc = copy.deepcopy(resource)
    for i, op in enumerate(operations):
        where = f"PATCH[{i}]"
        if not isinstance(op, dict) or op.get("op") not in _OPS:
            raise BadRequest(f"operation {i}: op must be one of {', '.join(_OPS)}", field=f"{where}.op")
        kind = op["op"]
        tokens = _pointer(op.get("path"), f"{where}.path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f"operation {i} ({kind} {op['path']}): needs a value", field=f"{where}.value")
        try:
            if tokens and tokens[0] in ("resourceType", "id") and kind != "test":
                raise _OpError(f"{tokens[0]} cannot be patched", tokens[:1], BadRequest)
            if kind == "add":
                _add(doc, tokens, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(doc, tokens)
            elif kind == "replace":
                _walk(doc, tokens)
                parent, key = _parent(doc, tokens)
                parent[key if isinstance(parent, dict) else int(key)] = copy.deepcopy(op["value"])
            elif kind == "test":
                if _walk(doc, tokens) != op["value"]:
                    raise _OpError("the test failed: the resource has another value here", tokens, Conflict)
            else:  # move, copy
                source = _pointer(op.get("from"), f"{where}.from")
                if kind == "move" and tokens[: len(source)] == source and tokens != source:
                    raise _OpError("a value cannot move into itself", tokens)
                value = _remove(doc, source) if kind == "move" else copy.deepcopy(_walk(doc, source))
                _add(doc, tokens, value)
        except _OpError as exc:
            raise exc.kind(
                f"operation {i} ({kind} {op.get('path')}): {exc.message}", field=_element(res_type, exc.tokens)
            ) from None
    if not isinstance(doc, dict):
        raise BadRequest("the patch must leave a resource", field="PATCH")
    return _prune(doc)


def _prune(node: Any) -> Any:
    """FHIR has no empty objects or lists: a patch that removed the last item leaves no empty container behind."""
    if isinstance(node, dict):
        out = {k: _prune(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v not in ({}, [])}
    if isinstance(node, list):
        return [v for v in (_prune(x) for x in node) if v not in ({}, [])]
    return node


# --- FHIRPath Patch (Parameters) ------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\[(\d+)\])?$")


def _fhirpath_tokens(res_type: str, path: Any, where: str) -> list[str]:
    """'Patient.name[0].given' → ['name', '0', 'given']. Only simple paths (names and [n] indexes): functions,
    filters and `where()` are refused with a message, not guessed at."""
    if not isinstance(path, str) or not path:
        raise BadRequest(f"{where}: needs a path such as {res_type}.name[0]", field=where)
    parts = path.split(".")
    if parts[0] != res_type:
        raise BadRequest(f"{where}: the path must start with {res_type}, not {path[:80]!r}", field=where)
    tokens: list[str] = []
    for part in parts[1:]:
        m = _SEGMENT.match(part)
        if not m:
            raise BadRequest(
                f"{where}: {path[:120]!r} is not a path this server can patch (use names and [n] indexes only)",
                field=where,
            )
        tokens.append(m.group(1))
        if m.group(2) is not None:
            tokens.append(m.group(2))
    return tokens


def _is_list_element(res_type: str, tokens: list[str], name: str) -> bool:
    """Whether `name` under the element at `tokens` repeats (0..*), read from the R4B models: FHIRPath add appends to
    a list element and sets a single one, and the resource alone cannot say which when the element is absent."""
    import typing

    from fhir.resources.R4B import get_fhir_model_class

    try:
        model: Any = get_fhir_model_class(res_type)
        for t in [*(t for t in tokens if not t.isdigit()), name]:
            field = next((f for k, f in model.model_fields.items() if (f.alias or k) == t), None)
            if field is None:
                return False
            annotation = field.annotation
            args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
            repeated = typing.get_origin(args[0]) is list
            inner = typing.get_args(args[0])[0] if repeated else args[0]
            if t == name:
                return repeated
            model = get_fhir_model_class(getattr(inner, "__name__", "").removesuffix("Type"))
    except (KeyError, ValueError, IndexError, AttributeError):
        return False
    return False


def _part(parts: list[Any], name: str) -> Any:
    for p in parts:
        if isinstance(p, dict) and p.get("name") == name:
            return p
    return None


def _part_value(p: dict[str, Any]) -> Any:
    for key, value in p.items():
        if key.startswith("value") and len(key) > 5:
            return value
    if "part" in p:  # a complex value given as parts: {name: "system", valueUri: ...}
        return {sub.get("name"): _part_value(sub) for sub in p["part"] if isinstance(sub, dict)}
    return _MISSING


def fhirpath_patch_to_json_patch(res_type: str, resource: dict[str, Any], parameters: Any) -> list[dict[str, Any]]:
    """Translate a FHIRPath Patch Parameters resource into JSON Patch operations over `resource`."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise BadRequest("a FHIRPath Patch is a Parameters resource", field="Parameters")
    ops: list[dict[str, Any]] = []
    params = parameters.get("parameter") or []
    if not isinstance(params, list) or not params:
        raise BadRequest("the FHIRPath Patch has no operation", field="Parameters.parameter")
    for i, param in enumerate(params):
        where = f"Parameters.parameter[{i}]"
        if not isinstance(param, dict) or param.get("name") != "operation" or not isinstance(param.get("part"), list):
            raise BadRequest(f"{where}: each parameter is an operation with parts", field=where)
        parts = param["part"]
        kind = (_part(parts, "type") or {}).get("valueCode")
        path = (_part(parts, "path") or {}).get("valueString")
        tokens = _fhirpath_tokens(res_type, path, f"{where}.path")
        pointer = "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens) if tokens else ""
        value_part = _part(parts, "value")
        value = _part_value(value_part) if isinstance(value_part, dict) else _MISSING
        if kind in ("add", "insert", "replace") and value is _MISSING:
            raise BadRequest(f"{where}: {kind} needs a value", field=f"{where}.value")
        if kind == "add":
            name = (_part(parts, "name") or {}).get("valueString")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
                raise BadRequest(f"{where}: add needs the name of the element to add", field=f"{where}.name")
            try:
                target = _walk(resource, tokens)
            except _OpError:
                target = None
            existing = target.get(name) if isinstance(target, dict) else None
            if isinstance(existing, list):
                ops.append({"op": "add", "path": f"{pointer}/{name}/-", "value": value})
            elif existing is None and _is_list_element(res_type, tokens, name):
                ops.append({"op": "add", "path": f"{pointer}/{name}", "value": [value]})
            else:
                ops.append({"op": "add", "path": f"{pointer}/{name}", "value": value})
        elif kind == "insert":
            index = (_part(parts, "index") or {}).get("valueInteger")
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise BadRequest(f"{where}: insert needs index (valueInteger ≥ 0)", field=f"{where}.index")
            ops.append({"op": "add", "path": f"{pointer}/{index}", "value": value})
        elif kind == "delete":
            ops.append({"op": "remove", "path": pointer})
        elif kind == "replace":
            ops.append({"op": "replace", "path": pointer, "value": value})
        elif kind == "move":
            source = (_part(parts, "source") or {}).get("valueInteger")
            dest = (_part(parts, "destination") or {}).get("valueInteger")
            if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (source, dest)):
                raise BadRequest(f"{where}: move needs source and destination indexes", field=f"{where}.source")
            ops.append({"op": "move", "from": f"{pointer}/{source}", "path": f"{pointer}/{dest}"})
        else:
            raise BadRequest(
                f"{where}: type must be add, insert, delete, replace or move, not {str(kind)[:40]!r}",
                field=f"{where}.type",
            )
    return ops


def from_bundle_entry(resource: Any) -> tuple[str, Any]:
    """A PATCH entry of a Bundle carries its patch as a Binary (JSON Patch) or a Parameters (FHIRPath Patch)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        return "fhirpath", resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        if resource.get("contentType") != JSON_PATCH:
            raise BadRequest(f"a PATCH Binary has contentType {JSON_PATCH}", field="resource.contentType")
        try:
            return "json", json.loads(base64.b64decode(str(resource.get("data", "")), validate=True))
        except (binascii.Error, ValueError):
            raise BadRequest("the PATCH Binary's data is not base64 JSON", field="resource.data") from None
    raise BadRequest("a PATCH entry carries a Binary (JSON Patch) or a Parameters (FHIRPath Patch)", field="resource")


def apply(res_type: str, current: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
    """The patched resource (not yet validated) for a PATCH body of either kind."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == JSON_PATCH:
        return apply_json_patch(current, body)
    if kind in ("application/fhir+json", "application/json") and isinstance(body, dict):
        return apply_json_patch(current, fhirpath_patch_to_json_patch(res_type, current, body))
    raise BadRequest(
        f"PATCH takes {JSON_PATCH} (JSON Patch) or application/fhir+json (a FHIRPath Patch Parameters), "
        f"not {kind[:60] or 'no Content-Type'}",
        field="Content-Type",
    )
