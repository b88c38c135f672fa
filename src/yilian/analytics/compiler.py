"""Compile a SQL on FHIR v2 ViewDefinition to one DuckDB SQL query over the resources' JSON.

Model: every FHIRPath expression becomes a SQL expression of one of these kinds
  coll  a JSON[] list (FHIRPath collection; [] is empty),
  one   a single JSON value or NULL (empty) — `$this`, the result of first() or [n],
  str / num / int / bool   a typed SQL scalar, NULL meaning empty.
A `select` tree becomes either a single row (named scalar expressions) or a list of STRUCT rows built with list
lambdas (forEach, forEachOrNull, repeat, unionAll, cross products); the outer query unnests it. The whole view is
therefore one SELECT that DuckDB runs vectorised over all resources, instead of a Python walk per resource.

Expressions the compiler cannot express become calls to `fp_eval`, a Python UDF that evaluates the expression with
fhirpathpy for that one column; `CompiledView.fallbacks` lists them and `explain()` prints them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from yilian.analytics import fhirpath as fp
from yilian.analytics import schema
from yilian.analytics.dialect import DUCKDB, Dialect
from yilian.errors import Invalid

# How deep `repeat` follows its paths. SQL expressions cannot recurse, so the traversal is unrolled; a resource that
# nests deeper stops the query with an explicit error instead of silently dropping rows.
REPEAT_DEPTH = 8

KEY_COLUMN = "_resource_key"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESOURCE_RE = re.compile(r"^[A-Z][A-Za-z]+$")

STRING_TYPES = {
    "string",
    "code",
    "id",
    "uri",
    "url",
    "canonical",
    "oid",
    "uuid",
    "markdown",
    "base64Binary",
    "date",
    "dateTime",
    "instant",
    "time",
    "xhtml",
}
INTEGER_TYPES = {"integer", "positiveInt", "unsignedInt", "integer64"}

# Helper macros installed on every connection (runner.connect); kept as macros so that --explain stays readable.
MACROS = {
    # a JSON value (or NULL) as a FHIRPath collection: arrays spread, JSON null and missing are empty
    "fp_wrap": (
        "(e) AS CASE WHEN e IS NULL THEN []::JSON[] "
        "WHEN json_type(e) = 'ARRAY' THEN list_filter(CAST(json_extract(e, '$[*]') AS JSON[]), lambda z: json_type(z) <> 'NULL') "
        "WHEN json_type(e) = 'NULL' THEN []::JSON[] ELSE [e] END"
    ),
    "fp_kids": "(x, p) AS fp_wrap(json_extract(x, p))",
    # a choice element named without its type (Observation.value): whichever value[x] key the JSON has
    "fp_choice": (
        "(x, n) AS flatten(list_transform(list_filter(json_keys(x), lambda k: regexp_matches(k, '^' || n || '[A-Z]')), "
        "lambda k: fp_wrap(json_extract(x, '$.' || k))))"
    ),
    "fp_kids_c": "(x, p, n) AS CASE WHEN json_extract(x, p) IS NOT NULL THEN fp_kids(x, p) ELSE fp_choice(x, n) END",
    "fp_one": "(x) AS CASE WHEN x IS NULL THEN []::JSON[] ELSE [x] END",
    "fp_single": "(c, msg) AS CASE WHEN len(c) > 1 THEN error(msg) ELSE c[1] END",
    "fp_str": "(x) AS json_extract_string(x, '$')",
    "fp_num": "(x) AS TRY_CAST(json_extract_string(x, '$') AS DOUBLE)",
    "fp_boolv": "(x) AS TRY_CAST(json_extract_string(x, '$') AS BOOLEAN)",
    # singleton evaluation of a collection in a boolean context (FHIRPath §4.5)
    "fp_truth": (
        "(x) AS CASE WHEN x IS NULL THEN NULL WHEN json_type(x) = 'BOOLEAN' THEN x::VARCHAR = 'true' ELSE true END"
    ),
    "fp_isnum": "(x) AS json_type(x) IN ('UBIGINT', 'BIGINT', 'DOUBLE')",
    "fp_eq": (
        "(a, b) AS CASE WHEN a IS NULL OR b IS NULL THEN NULL "
        "WHEN fp_isnum(a) AND fp_isnum(b) THEN a::DOUBLE = b::DOUBLE ELSE fp_str(a) = fp_str(b) END"
    ),
    "fp_lt": (
        "(a, b) AS CASE WHEN a IS NULL OR b IS NULL THEN NULL "
        "WHEN fp_isnum(a) AND fp_isnum(b) THEN a::DOUBLE < b::DOUBLE ELSE fp_str(a) < fp_str(b) END"
    ),
    # the key of a Reference: the id after the resource type, if the type matches (NULL type = any)
    "fp_refkey": (
        "(r, t) AS CASE WHEN r IS NULL THEN NULL "
        # the usual "Patient/123" without regular expressions (the regexes below cost ~3x more per value)
        "WHEN t IS NOT NULL AND starts_with(r, t || '/') AND length(r) > length(t) + 1 "
        "AND NOT contains(substr(r, length(t) + 2), '/') THEN substr(r, length(t) + 2) "
        r"WHEN regexp_matches(r, '(^|/)[A-Za-z]+/[^/]+(/_history/[^/]+)?$') THEN "
        r"CASE WHEN t IS NULL OR regexp_extract(r, '([A-Za-z]+)/([^/]+)(/_history/[^/]+)?$', 1) = t "
        r"THEN regexp_extract(r, '([A-Za-z]+)/([^/]+)(/_history/[^/]+)?$', 2) END "
        "WHEN t IS NULL AND starts_with(r, 'urn:uuid:') THEN substr(r, 10) END"
    ),
}


class Unsupported(Exception):
    """The compiler cannot express this FHIRPath in SQL; the column falls back to the Python evaluator."""


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def qi(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def json_path(names: list[str]) -> str:
    parts = ["$"]
    for n in names:
        parts.append("." + n if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", n) else '."' + n.replace('"', '\\"') + '"')
    return "".join(parts)


@dataclass(frozen=True)
class Val:
    sql: str
    kind: str  # coll | one | str | num | int | bool
    ftype: str | None = None  # FHIR type of the items (coll/one) when the model knows it; "" for primitives


@dataclass
class Ctx:
    this: str  # SQL for $this, kind one
    resource: str  # SQL for the resource, kind one
    row_index: str  # SQL for %rowIndex
    constants: dict[str, Val]
    fresh: Callable[[], str]
    field: str  # where in the view this expression sits, for messages
    resource_type: str
    types: dict[str, str | None]  # FHIR type of lambda variables and of the resource, by SQL name
    top: list[str]  # top-level members of the resource read once per row (see _navigate)

    def with_this(self, this: str, ftype: str | None = None) -> Ctx:
        self.types[this] = ftype
        return Ctx(
            this,
            self.resource,
            self.row_index,
            self.constants,
            self.fresh,
            self.field,
            self.resource_type,
            self.types,
            self.top,
        )

    def this_val(self) -> Val:
        return Val(self.this, "one", self.types.get(self.this))


# ---------------------------------------------------------------- conversions between kinds


def to_coll(v: Val) -> str:
    if v.kind == "coll":
        return v.sql
    if v.kind == "one":
        return f"fp_one({v.sql})"
    return f"fp_one(to_json({v.sql}))"


def to_one(v: Val, msg: str) -> str:
    if v.kind == "coll":
        return f"fp_single({v.sql}, {q(msg)})"
    if v.kind == "one":
        return v.sql
    return f"to_json({v.sql})"


def to_bool(v: Val, msg: str) -> str:
    if v.kind == "bool":
        return v.sql
    if v.kind in ("str", "num", "int"):
        return f"({v.sql} IS NOT NULL OR NULL)"
    return f"fp_truth({to_one(v, msg)})"


def typed(v: Val, kind: str, msg: str) -> str:
    """v as a SQL scalar of `kind` (str, num, bool), for comparisons and arithmetic."""
    if v.kind == kind or (kind == "num" and v.kind == "int"):
        return v.sql
    if v.kind in ("str", "num", "int", "bool"):
        target = {"str": "VARCHAR", "num": "DOUBLE", "bool": "BOOLEAN"}[kind]
        return f"TRY_CAST({v.sql} AS {target})"
    one = to_one(v, msg)
    return {"str": f"fp_str({one})", "num": f"fp_num({one})", "bool": f"fp_boolv({one})"}[kind]


# ---------------------------------------------------------------- expressions


def _type_name(node: fp.Node) -> str:
    if isinstance(node, fp.Member) and node.base is None:
        name = node.name
    elif isinstance(node, fp.Member) and isinstance(node.base, fp.Member) and node.base.base is None:
        name = node.name  # FHIR.Quantity / System.String
    elif isinstance(node, fp.Literal) and node.kind == "string":
        name = str(node.value)
    else:
        raise Unsupported("type specifier")
    return name


def _is_choice_of_type(node: fp.Node | None) -> bool:
    if not (isinstance(node, fp.Call) and node.name == "ofType" and len(node.args) == 1):
        return False
    if not isinstance(node.base, fp.Member):
        return False
    try:
        _type_name(node.args[0])
    except Unsupported:
        return False
    return True


def _member_chain(node: fp.Node) -> tuple[fp.Node | None, list[str]] | None:
    """`a.b.c` (plain members down from $this or another base) as (base, [a, b, c])."""
    names: list[str] = []
    cur: fp.Node | None = node
    while True:
        if isinstance(cur, fp.Member):
            names.append(cur.name)
            cur = cur.base
        elif names and _is_choice_of_type(cur):
            # value.ofType(Quantity).unit is valueQuantity.unit: keep one chain, so one JSONPath reaches the leaf
            assert isinstance(cur, fp.Call) and isinstance(cur.base, fp.Member)
            type_name = _type_name(cur.args[0]).split(".")[-1]
            names.append(cur.base.name + type_name[:1].upper() + type_name[1:])
            cur = cur.base.base
        else:
            break
    if not names:
        return None
    names.reverse()
    return cur, names


def compile_expr(node: fp.Node, ctx: Ctx) -> Val:
    if isinstance(node, fp.Literal):
        if node.kind == "string" or node.kind in ("date", "datetime", "time"):
            return Val(q(str(node.value)), "str")
        if node.kind == "integer":
            return Val(str(node.value), "int")
        if node.kind == "number":
            return Val(f"CAST({node.value!r} AS DOUBLE)", "num")
        if node.kind == "boolean":
            return Val("true" if node.value else "false", "bool")
        return Val("[]::JSON[]", "coll")
    if isinstance(node, fp.This):
        return ctx.this_val()
    if isinstance(node, fp.Constant):
        if node.name == "rowIndex":
            return Val(ctx.row_index, "int")
        if node.name in ("resource", "rootResource"):
            return Val(ctx.resource, "one", ctx.types.get(ctx.resource))
        if node.name == "context":
            return ctx.this_val()
        if node.name not in ctx.constants:
            raise Invalid(f"{ctx.field}: constant %{node.name} is not defined in the view", field=ctx.field)
        return ctx.constants[node.name]
    if isinstance(node, fp.Member):
        return _compile_member(node, ctx)
    if isinstance(node, fp.Index):
        base = compile_expr(node.base, ctx)
        idx = compile_expr(node.index, ctx)
        if idx.kind != "int":
            raise Unsupported("non-integer index")
        return Val(f"({to_coll(base)})[({idx.sql}) + 1]", "one", base.ftype)
    if isinstance(node, fp.Call):
        return _compile_call(node, ctx)
    if isinstance(node, fp.Unary):
        operand = compile_expr(node.operand, ctx)
        num = typed(operand, "num", f"{ctx.field}: unary {node.op} on several values")
        return Val(f"(-({num}))" if node.op == "-" else num, "int" if operand.kind == "int" else "num")
    if isinstance(node, fp.Binary):
        return _compile_binary(node, ctx)
    raise Unsupported(type(node).__name__)


def _compile_member(node: fp.Member, ctx: Ctx) -> Val:
    chain = _member_chain(node)
    assert chain is not None
    base_node, names = chain
    if base_node is None:
        # `Patient.name`: a leading type name filters the focus to that type (the resource itself here)
        if names[0][:1].isupper() and names[0] == ctx.resource_type:
            if len(names) == 1:
                return ctx.this_val()
            names = names[1:]
        base = ctx.this_val()
    else:
        base = compile_expr(base_node, ctx)
    if base.kind not in ("one", "coll"):
        raise Unsupported("member of a primitive value")
    return _navigate(base, names, ctx)


def _navigate(base: Val, names: list[str], ctx: Ctx) -> Val:
    typed = _navigate_typed(base, names, ctx)
    if typed is not None:
        return typed
    if base.kind == "one":
        # Fast path: when every step is a single object, one json_extract reaches the leaf. A NULL can mean "absent"
        # or "an array on the way" (DuckDB paths do not spread arrays), and only then the step-by-step walk runs.
        fast = f"json_extract({base.sql}, {q(json_path(names))})"
        if len(names) == 1:
            return Val(_kids(base.sql, names[0]), "coll")
        slow = _navigate_steps(Val(base.sql, "one"), names, ctx)
        return Val(f"CASE WHEN {fast} IS NOT NULL THEN fp_wrap({fast}) ELSE {slow.sql} END", "coll")
    return _navigate_steps(base, names, ctx)


def _navigate_typed(base: Val, names: list[str], ctx: Ctx) -> Val | None:
    """Members whose cardinality the FHIR model knows become one JSONPath ([*] where the element repeats).

    Members of the resource itself come from `_top`, a list of its top-level members that the query extracts once
    per row, so that each column parses a small piece of JSON rather than the whole resource again.
    """
    if base.kind not in ("one", "coll") or not base.ftype:
        return None
    ftype: str | None = base.ftype
    steps: list[tuple[str, bool]] = []
    for name in names:
        info = schema.child(ftype, name)
        if info is None:
            break
        ftype, many = info
        steps.append((name, many))
        if not ftype:
            break
    if not steps:
        return _root_choice(base, names, ctx)
    rest = names[len(steps) :]
    root = base.kind == "one" and base.sql == ctx.resource
    if root:
        first, first_many = steps[0]
        if first not in ctx.top:
            ctx.top.append(first)
        x: str | None = f"_top[{ctx.top.index(first) + 1}]"
        path = "$" + ("[*]" if first_many else "") + "".join(f".{n}" + ("[*]" if m else "") for n, m in steps[1:])
    else:
        x = base.sql if base.kind == "one" else None
        path = "$" + "".join(f".{n}" + ("[*]" if m else "") for n, m in steps)
    many = any(m for _, m in steps)
    result: Val
    if base.kind == "one":
        assert x is not None
        if path == "$":
            result = Val(x, "one", ftype)
        elif many:
            # a missing member gives NULL, not an empty list
            result = Val(f"coalesce(json_extract({x}, {q(path)}), []::JSON[])", "coll", ftype)
        else:
            result = Val(f"json_extract({x}, {q(path)})", "one", ftype)
    else:
        v, w = ctx.fresh(), ctx.fresh()
        if many:
            result = Val(
                f"flatten(list_transform({base.sql}, lambda {v}: coalesce(json_extract({v}, {q(path)}), []::JSON[])))",
                "coll",
                ftype,
            )
        else:
            result = Val(
                f"list_filter(list_transform({base.sql}, lambda {v}: json_extract({v}, {q(path)})), lambda {w}: {w} IS NOT NULL)",
                "coll",
                ftype,
            )
    if rest:
        return _navigate(result, rest, ctx)
    return result


def _root_choice(base: Val, names: list[str], ctx: Ctx) -> Val | None:
    """`value` of the resource itself (a choice named without its type): the value[x] members the model lists, each
    read from `_top`, rather than listing the keys of the whole resource per row."""
    if not (base.kind == "one" and base.sql == ctx.resource and base.ftype) or names[0] not in choice_names():
        return None
    variants = [
        k
        for k in schema.elements(base.ftype)
        if k.startswith(names[0]) and k[len(names[0]) : len(names[0]) + 1].isupper()
    ]
    if not variants:
        return None
    parts = []
    for k in variants:
        if k not in ctx.top:
            ctx.top.append(k)
        parts.append(f"fp_wrap(_top[{ctx.top.index(k) + 1}])")
    result = Val(parts[0] if len(parts) == 1 else f"list_concat({', '.join(parts)})", "coll")
    return _navigate_steps(result, names[1:], ctx) if names[1:] else result


@lru_cache(maxsize=1)
def choice_names() -> frozenset[str]:
    """Element names that are choice types somewhere in R4 (value, effective, onset, deceased …)."""
    from fhirpathpy.models import models

    return frozenset(path.split(".")[-1] for path in models["r4"]["choiceTypePaths"])


def _kids(x: str, name: str) -> str:
    path = q(json_path([name]))
    if name in choice_names():
        return f"fp_kids_c({x}, {path}, {q(name)})"
    return f"fp_kids({x}, {path})"


def _navigate_steps(base: Val, names: list[str], ctx: Ctx) -> Val:
    cur = base
    for name in names:
        if cur.kind == "one":
            cur = Val(_kids(cur.sql, name), "coll")
        else:
            v = ctx.fresh()
            cur = Val(f"flatten(list_transform({cur.sql}, lambda {v}: {_kids(v, name)}))", "coll")
    return cur


def _compile_call(node: fp.Call, ctx: Ctx) -> Val:
    name, args = node.name, node.args
    if name == "ofType" and len(args) == 1:
        type_name = _type_name(args[0]).split(".")[-1]
        if isinstance(node.base, fp.Member):
            # FHIR JSON names a choice element by its type: value.ofType(Quantity) is valueQuantity
            choice = fp.Member(node.base.base, node.base.name + type_name[:1].upper() + type_name[1:])
            return _compile_member(choice, ctx)
        raise Unsupported("ofType() on something other than a choice element")
    if name == "getResourceKey" and not args:
        rid = _navigate(Val(ctx.resource, "one", ctx.types.get(ctx.resource)), ["id"], ctx)
        return Val(f"fp_str({to_one(rid, 'a resource has one id')})", "str")
    base = compile_expr(node.base, ctx) if node.base is not None else ctx.this_val()
    msg = f"{ctx.field}: {name}() applied to several values"
    if name == "where" and len(args) == 1:
        v = ctx.fresh()
        cond = to_bool(
            compile_expr(args[0], ctx.with_this(v, base.ftype)), f"{ctx.field}: where() criteria gave several values"
        )
        return Val(f"list_filter({to_coll(base)}, lambda {v}: coalesce({cond}, false))", "coll", base.ftype)
    if name == "exists" and len(args) <= 1:
        if args:
            return Val(f"(len({_compile_call(fp.Call(node.base, 'where', args), ctx).sql}) > 0)", "bool")
        if base.kind == "coll":
            return Val(f"(len({base.sql}) > 0)", "bool")
        return Val(f"({base.sql} IS NOT NULL)", "bool")
    if name == "empty" and not args:
        if base.kind == "coll":
            return Val(f"(len({base.sql}) = 0)", "bool")
        return Val(f"({base.sql} IS NULL)", "bool")
    if name == "count" and not args:
        return Val(f"len({to_coll(base)})", "int")
    if name == "first" and not args:
        return Val(f"({to_coll(base)})[1]", "one", base.ftype) if base.kind == "coll" else base
    if name == "last" and not args:
        return Val(f"({to_coll(base)})[-1]", "one", base.ftype) if base.kind == "coll" else base
    if name == "not" and not args:
        return Val(f"(NOT {to_bool(base, msg)})", "bool")
    if name == "join" and len(args) <= 1:
        sep = compile_expr(args[0], ctx) if args else Val("''", "str")
        if sep.kind != "str":
            raise Unsupported("join() separator that is not a string")
        v = ctx.fresh()
        return Val(f"array_to_string(list_transform({to_coll(base)}, lambda {v}: fp_str({v})), {sep.sql})", "str")
    if name == "extension" and len(args) == 1:
        url = compile_expr(args[0], ctx)
        if url.kind != "str":
            raise Unsupported("extension() url that is not a string")
        exts = _navigate(base, ["extension"], ctx) if base.kind in ("one", "coll") else None
        if exts is None:
            raise Unsupported("extension() of a primitive value")
        v = ctx.fresh()
        return Val(
            f"list_filter({to_coll(exts)}, lambda {v}: json_extract_string({v}, '$.url') = {url.sql})",
            "coll",
            "Extension",
        )
    if name == "getReferenceKey" and len(args) <= 1:
        type_sql = q(_type_name(args[0]).split(".")[-1]) if args else "NULL"
        if base.kind not in ("one", "coll"):
            raise Unsupported("getReferenceKey() of a primitive value")
        if isinstance(node.base, fp.Member):
            # participant.individual.reference as one member chain: one JSONPath ($[*].individual.reference)
            refs = _compile_member(fp.Member(node.base, "reference"), ctx)
        else:
            refs = _navigate(base, ["reference"], ctx)
        if refs.kind == "one":
            # a single Reference (subject, serviceProvider): a plain string, without list machinery per row
            return Val(f"fp_refkey(fp_str({refs.sql}), {type_sql})", "str")
        v, w = ctx.fresh(), ctx.fresh()
        keys = f"list_transform({to_coll(refs)}, lambda {v}: fp_refkey(fp_str({v}), {type_sql}))"
        return Val(
            f"list_transform(list_filter({keys}, lambda {w}: {w} IS NOT NULL), lambda {w}: to_json({w}))", "coll"
        )
    if name in ("lowBoundary", "highBoundary") and not args:
        # precision-dependent bounds run as a small Python UDF per value; the type comes from ofType() when given
        hint = _type_name(node.base.args[0]) if isinstance(node.base, fp.Call) and node.base.name == "ofType" else ""
        v, w = ctx.fresh(), ctx.fresh()
        high = "true" if name == "highBoundary" else "false"
        vals = f"list_transform({to_coll(base)}, lambda {v}: fp_boundary(CAST({v} AS VARCHAR), {q(hint.split('.')[-1])}, {high})::JSON)"
        return Val(f"list_filter({vals}, lambda {w}: {w} IS NOT NULL)", "coll")
    if name == "substring" and 1 <= len(args) <= 2:
        start = compile_expr(args[0], ctx)
        length = compile_expr(args[1], ctx) if len(args) == 2 else None
        if start.kind != "int" or (length is not None and length.kind != "int"):
            raise Unsupported("substring() with non-integer bounds")
        text = typed(base, "str", msg)
        if length is None:
            return Val(f"substr({text}, ({start.sql}) + 1)", "str")
        return Val(f"substr({text}, ({start.sql}) + 1, {length.sql})", "str")
    if name == "toString" and not args:
        return Val(typed(base, "str", msg), "str")
    if name in ("startsWith", "endsWith", "contains") and len(args) == 1 and node.base is not None:
        arg = compile_expr(args[0], ctx)
        if arg.kind != "str":
            raise Unsupported(f"{name}() with a non-string argument")
        fn = {"startsWith": "starts_with", "endsWith": "ends_with", "contains": "contains"}[name]
        return Val(f"{fn}({typed(base, 'str', msg)}, {arg.sql})", "bool")
    raise Unsupported(f"function {name}()")


_NUMERIC_OPS = {"+", "-", "*", "/", "div", "mod"}


def _compile_binary(node: fp.Binary, ctx: Ctx) -> Val:
    op = node.op
    left = compile_expr(node.left, ctx)
    right = compile_expr(node.right, ctx)
    msg = f"{ctx.field}: operator {op} applied to several values"
    if op in ("and", "or", "xor", "implies"):
        a, b = to_bool(left, msg), to_bool(right, msg)
        sql = {
            "and": f"({a} AND {b})",
            "or": f"({a} OR {b})",
            "xor": f"({a} <> {b})",
            "implies": f"((NOT {a}) OR {b})",
        }[op]
        return Val(sql, "bool")
    if op in ("=", "!="):
        sql = _equals(left, right, msg)
        return Val(sql if op == "=" else f"(NOT {sql})", "bool")
    if op in ("<", ">", "<=", ">="):
        return Val(_order(op, left, right, msg), "bool")
    if op == "&":
        return Val(f"(coalesce({typed(left, 'str', msg)}, '') || coalesce({typed(right, 'str', msg)}, ''))", "str")
    if op == "+" and "str" in (left.kind, right.kind):
        return Val(f"({typed(left, 'str', msg)} || {typed(right, 'str', msg)})", "str")
    if op in _NUMERIC_OPS:
        a, b = typed(left, "num", msg), typed(right, "num", msg)
        both_int = left.kind == "int" and right.kind == "int"
        if op == "/":
            return Val(f"({a} / NULLIF({b}, 0))", "num")
        if op == "div":
            return Val(f"CAST(trunc({a} / NULLIF({b}, 0)) AS BIGINT)", "int")
        if op == "mod":
            return Val(f"({a} % NULLIF({b}, 0))", "int" if both_int else "num")
        return Val(f"({a} {op} {b})", "int" if both_int else "num")
    if op == "|":
        # union keeps the first occurrence of each item, in order (list_distinct would reorder)
        u, x, i = ctx.fresh(), ctx.fresh(), ctx.fresh()
        both = f"list_concat({to_coll(left)}, {to_coll(right)})"
        return Val(
            f"list_transform([{both}], lambda {u}: list_filter({u}, lambda {x}, {i}: list_position({u}, {x}) = {i}))[1]",
            "coll",
        )
    if op in ("in", "contains"):
        item, coll = (left, right) if op == "in" else (right, left)
        v = ctx.fresh()
        one = to_one(item, msg)
        return Val(
            f"CASE WHEN {one} IS NULL THEN NULL ELSE len(list_filter({to_coll(coll)}, lambda {v}: fp_eq({v}, {one}))) > 0 END",
            "bool",
        )
    raise Unsupported(f"operator {op}")


def _scalar_kind(a: Val, b: Val) -> str | None:
    for v in (a, b):
        if v.kind in ("str", "bool"):
            return v.kind
    for v in (a, b):
        if v.kind in ("num", "int"):
            return "num"
    return None


def _equals(left: Val, right: Val, msg: str) -> str:
    kind = _scalar_kind(left, right)
    # a collection of several items is never equal to a single value (FHIRPath collection equality)
    guards = [v.sql for v in (left, right) if v.kind == "coll"]
    if kind is None:
        sql = f"fp_eq({_first(left)}, {_first(right)})"
    else:
        sql = f"({_typed_first(left, kind)} = {_typed_first(right, kind)})"
    for g in guards:
        sql = f"CASE WHEN len({g}) > 1 THEN false ELSE {sql} END"
    if len(guards) == 2:
        # two collections: equal when item-by-item equal
        a, b = guards
        sql = f"CASE WHEN len({a}) = 0 OR len({b}) = 0 THEN NULL WHEN len({a}) > 1 OR len({b}) > 1 THEN {a} = {b} ELSE fp_eq({a}[1], {b}[1]) END"
    return sql


def _first(v: Val) -> str:
    if v.kind == "coll":
        return f"({v.sql})[1]"
    return to_one(v, "")


def _typed_first(v: Val, kind: str) -> str:
    if v.kind == "coll":
        one = f"({v.sql})[1]"
        return {"str": f"fp_str({one})", "num": f"fp_num({one})", "bool": f"fp_boolv({one})"}[kind]
    return typed(v, kind, "")


def _order(op: str, left: Val, right: Val, msg: str) -> str:
    kind = _scalar_kind(left, right)
    if kind is None:
        a, b = to_one(left, msg), to_one(right, msg)
        return {
            "<": f"fp_lt({a}, {b})",
            ">": f"fp_lt({b}, {a})",
            "<=": f"(NOT fp_lt({b}, {a}))",
            ">=": f"(NOT fp_lt({a}, {b}))",
        }[op]
    return f"({typed(left, kind, msg)} {op} {typed(right, kind, msg)})"


# ---------------------------------------------------------------- the view


@dataclass
class Column:
    name: str
    path: str
    type: str | None
    collection: bool
    field: str
    description: str | None = None

    @property
    def sql_type(self) -> str:
        base = _sql_type(self.type)
        return base + "[]" if self.collection else base


def _sql_type(fhir_type: str | None) -> str:
    if fhir_type == "boolean":
        return "BOOLEAN"
    if fhir_type in INTEGER_TYPES:
        return "BIGINT"
    if fhir_type == "decimal":
        return "DOUBLE"
    if fhir_type in STRING_TYPES:
        return "VARCHAR"
    return "JSON"


@dataclass
class Fallback:
    field: str
    expression: str
    reason: str


@dataclass
class Rows:
    """The rows a select node produces for one focus: one row of named expressions, or a STRUCT list."""

    names: list[str]
    types: list[str]
    single: list[str] | None = None
    lst: str | None = None

    def as_list(self, d: Dialect = DUCKDB) -> str:
        if self.lst is not None:
            return self.lst
        assert self.single is not None
        return d.list_of([d.struct(self.names, self.single)])


def _struct(names: list[str], exprs: list[str]) -> str:
    return DUCKDB.struct(names, exprs)


@dataclass
class CompiledView:
    view: dict
    name: str
    resource: str
    columns: list[Column]
    sql_template: str  # with {source} where the resources relation goes
    fallbacks: list[Fallback] = field(default_factory=list)
    constants: dict[str, object] = field(default_factory=dict)
    key_sql: str = "json_extract_string(src.resource, '$.id')"  # the resource id, for _resource_key
    column_types: list[str] | None = None  # SQL types when they differ from the declared ones (typed.py)
    engine: str = "json"  # json: this module; typed (duckdb|spark): typed.py
    # typed engine: the STRUCT of the members the view reads ({name: kind | {…} | [item]}, see typed.Shape), and
    # the query parsing JSON text into it (`_fhir`), which stands for {parsed} in sql_template
    shape: dict | None = None
    parse_sql: str | None = None
    # the same rows as one query per top-level unionAll branch, in another order (typed._split_union)
    split_template: str | None = None

    @property
    def types(self) -> list[str]:
        return self.column_types or [c.sql_type for c in self.columns]

    def sql(self, source: str = "resources", *, keyed: bool = False) -> str:
        """The query over `source`; keyed adds a last column _resource_key (the id of the row's resource)."""
        template = self.sql_template.replace("{parsed}", self.parse_sql) if self.parse_sql else self.sql_template
        return self._fill(template.replace("{source}", source), keyed)

    def sql_over_typed(self, relation: str, *, keyed: bool = False) -> str:
        """The typed engine's query over rows that already hold the parsed `_fhir` STRUCT (a typed snapshot: a
        STRUCT with at least the members of `shape`), instead of parsing JSON text."""
        assert self.parse_sql is not None, "only a typed view reads a typed snapshot"
        template = self.split_template or self.sql_template
        return self._fill(template.replace("{parsed}", f"SELECT _fhir FROM {relation}"), keyed)

    def _fill(self, text: str, keyed: bool) -> str:
        key_expr = self.key_sql
        if not keyed:
            key, inner = "", ""
        elif "{inner_key}" in text:  # the rows come out of an unnesting (or a filter) named `rows`
            key, inner = f", rows.{KEY_COLUMN}", f", {key_expr} AS {KEY_COLUMN}"
        else:
            key, inner = f",\n  {key_expr} AS {KEY_COLUMN}", ""
        return text.replace("{inner_key}", inner).replace("{key}", key)

    def explain(self) -> str:
        lines = [f"view {self.name!r} over {self.resource}", "columns:"]
        lines += [f"  {c.name}: {c.type or 'json'}{'[]' if c.collection else ''}  <- {c.path}" for c in self.columns]
        if self.fallbacks:
            lines.append("Python fallback (fhirpathpy) used for:")
            lines += [f"  {f.field}: {f.expression}  ({f.reason})" for f in self.fallbacks]
        else:
            lines.append("Python fallback: none, the whole view runs as DuckDB SQL")
        from yilian.analytics import typed  # typed builds on this module

        runs = self
        try:
            runs = typed.compile_typed(self.view) if self.engine == "json" else self
            lines.append("engine: typed — each resource's JSON parsed once into the members the view reads")
        except Unsupported as exc:
            lines.append(f"engine: JSON compiler — the typed engine (and Spark) cannot run this view: {exc}")
        lines += ["sql:", runs.sql("resources")]
        return "\n".join(lines)


_VALUE_KEYS = {
    "valueBase64Binary": "str",
    "valueBoolean": "bool",
    "valueCanonical": "str",
    "valueCode": "str",
    "valueDate": "str",
    "valueDateTime": "str",
    "valueDecimal": "num",
    "valueId": "str",
    "valueInstant": "str",
    "valueInteger": "int",
    "valueInteger64": "int",
    "valueOid": "str",
    "valuePositiveInt": "int",
    "valueString": "str",
    "valueTime": "str",
    "valueUnsignedInt": "int",
    "valueUri": "str",
    "valueUrl": "str",
    "valueUuid": "str",
}


def _constants(view: dict) -> tuple[dict[str, Val], dict[str, object]]:
    raw = view.get("constant", [])
    if not isinstance(raw, list):
        raise Invalid("constant must be a list", field="constant")
    out: dict[str, Val] = {}
    plain: dict[str, object] = {}
    for i, c in enumerate(raw):
        where = f"constant[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not NAME_RE.match(c["name"]):
            raise Invalid(f"{where}: a constant needs a name made of letters, digits and _", field=f"{where}.name")
        values = [k for k in c if k.startswith("value")]
        if len(values) != 1:
            raise Invalid(f"{where} ({c['name']}): a constant needs exactly one value[x]", field=where)
        key = values[0]
        if key not in _VALUE_KEYS:
            raise Invalid(f"{where}: {key} is not a primitive value type a constant can have", field=f"{where}.{key}")
        value, kind = c[key], _VALUE_KEYS[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise Invalid(f"{where}: {key} must be true or false", field=f"{where}.{key}")
            out[c["name"]] = Val("true" if value else "false", "bool")
        elif kind in ("int", "num"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Invalid(f"{where}: {key} must be a number", field=f"{where}.{key}")
            out[c["name"]] = Val(str(value) if kind == "int" else f"CAST({value!r} AS DOUBLE)", kind)
        else:
            if not isinstance(value, str):
                raise Invalid(f"{where}: {key} must be a string", field=f"{where}.{key}")
            out[c["name"]] = Val(q(value), "str")
        plain[c["name"]] = value
    return out, plain


class _Compiler:
    def __init__(self, view: dict):
        self.view = view
        self.counter = 0
        self.fallbacks: list[Fallback] = []
        self.columns: list[Column] = []
        self.recording = True  # False while compiling a second copy of a select (forEachOrNull's empty case)
        self.constants, self.plain_constants = _constants(view)
        self.resource_type = view["resource"]
        self.types: dict[str, str | None] = {"resource": self.resource_type}
        self.top: list[str] = []

    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def ctx(self, this: str, row_index: str, field: str) -> Ctx:
        return Ctx(
            this, "resource", row_index, self.constants, self.fresh, field, self.resource_type, self.types, self.top
        )

    def expr(self, text: object, ctx: Ctx) -> Val:
        """Compile one FHIRPath, falling back to the Python evaluator for what SQL cannot say."""
        if not isinstance(text, str):
            raise Invalid(f"{ctx.field}: a FHIRPath expression must be a string", field=ctx.field)
        try:
            node = fp.parse(text)
        except fp.FhirPathSyntaxError as exc:
            raise Invalid(f"{ctx.field}: invalid FHIRPath: {exc}", field=ctx.field) from exc
        try:
            return compile_expr(node, ctx)
        except Unsupported as exc:
            self._check_constants(node, ctx)
            if self.recording:
                self.fallbacks.append(Fallback(ctx.field, text, str(exc)))
            call = f"fp_eval({q(text)}, CAST({ctx.this} AS VARCHAR), CAST({ctx.resource} AS VARCHAR), {ctx.row_index}, {q(json.dumps(self.plain_constants))})"
            return Val(f"coalesce(json_extract({call}, '$[*]'), []::JSON[])", "coll")

    def _check_constants(self, node: fp.Node, ctx: Ctx) -> None:
        stack: list[object] = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, fp.Constant) and n.name not in self.constants and n.name not in _BUILTIN_CONSTANTS:
                raise Invalid(f"{ctx.field}: constant %{n.name} is not defined in the view", field=ctx.field)
            if isinstance(n, fp.Node):
                stack.extend(getattr(n, f) for f in getattr(n, "__dataclass_fields__", {}))
            elif isinstance(n, tuple):
                stack.extend(n)

    def column_value(self, col: Column, ctx: Ctx) -> str:
        v = self.expr(col.path, ctx)
        target = _sql_type(col.type)
        msg = f"column {col.name!r} ({col.path}) has more than one value; set collection: true to keep them all"
        if col.collection:
            w = self.fresh()
            return f"list_transform({to_coll(v)}, lambda {w}: {_from_json(w, target)})"
        if v.kind in ("coll", "one"):
            return _from_json(to_one(v, msg), target)
        if target == "JSON":
            return f"to_json({v.sql})"
        return f"CAST({v.sql} AS {target})"

    def select(self, node: object, this: str, row_index: str, field: str) -> Rows:
        if not isinstance(node, dict):
            raise Invalid(f"{field} must be an object", field=field)
        known = {"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll"}
        iterators = [k for k in ("forEach", "forEachOrNull", "repeat") if k in node]
        if len(iterators) > 1:
            raise Invalid(f"{field}: use only one of forEach, forEachOrNull and repeat", field=field)
        unknown = [k for k in node if k not in known]
        if unknown:
            raise Invalid(f"{field}: unknown element {unknown[0]!r}", field=f"{field}.{unknown[0]}")
        if not iterators:
            return self.select_body(node, this, row_index, field)
        kind = iterators[0]
        guard = self.self_filter(node, kind, this, row_index, field)
        if guard is not None:
            return guard
        e, i = self.fresh(), self.fresh()
        if kind == "repeat":
            paths = node["repeat"]
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
                raise Invalid(f"{field}.repeat must be a list of FHIRPath expressions", field=f"{field}.repeat")
            coll = self.repeat(paths, this, row_index, f"{field}.repeat")
        else:
            items = self.expr(node[kind], self.ctx(this, row_index, f"{field}.{kind}"))
            coll, self.types[e] = to_coll(items), items.ftype
        body = self.select_body(node, e, f"({i} - 1)", field)

        def per_element(items: str) -> str:
            if body.single is not None:
                return f"list_transform({items}, lambda {e}, {i}: {_struct(body.names, body.single)})"
            return f"flatten(list_transform({items}, lambda {e}, {i}: {body.as_list()}))"

        if kind == "forEachOrNull":
            # bind the collection once (a one-element list lambda); when it is empty the body runs once on an empty
            # focus (so %rowIndex is 0 and every path is null), or gives one row of nulls if that has no rows
            nulls = _struct(body.names, [f"CAST(NULL AS {t})" for t in body.types])
            recording, self.recording = self.recording, False
            empty = self.select_body(node, "CAST(NULL AS JSON)", "0", field).as_list()
            self.recording = recording
            c, z = self.fresh(), self.fresh()
            when_empty = f"list_transform([{empty}], lambda {z}: CASE WHEN len({z}) = 0 THEN [{nulls}] ELSE {z} END)[1]"
            per = f"list_transform([{coll}], lambda {c}: CASE WHEN len({c}) = 0 THEN {when_empty} ELSE {per_element(c)} END)[1]"
        else:
            per = per_element(coll)
        return Rows(body.names, body.types, lst=per)

    def self_filter(self, node: dict, kind: str, this: str, row_index: str, field: str) -> Rows | None:
        """`forEach: "where(criteria)"` iterates over the focus itself, or over nothing: compile it as a condition
        around the body, whose focus stays the outer one (for the resource: its members already extracted once in
        `_top`, instead of a full parse of the resource per column)."""
        text = node.get(kind)
        if kind != "forEach" or not isinstance(text, str):
            return None
        try:
            parsed = fp.parse(text)
        except fp.FhirPathSyntaxError:
            return None  # self.expr reports it with the element's path
        if not (
            isinstance(parsed, fp.Call) and parsed.name == "where" and parsed.base is None and len(parsed.args) == 1
        ):
            return None
        ctx = self.ctx(this, row_index, f"{field}.{kind}")
        try:
            cond = to_bool(compile_expr(parsed.args[0], ctx), f"{field}.{kind}: where() criteria gave several values")
        except Unsupported:
            return None
        body = self.select_body(node, this, "0", field)
        rows = body.as_list()
        return Rows(body.names, body.types, lst=f"CASE WHEN coalesce({cond}, false) THEN {rows} ELSE ({rows})[1:0] END")

    def repeat(self, paths: list[str], this: str, row_index: str, field: str) -> str:
        def children(x: str) -> str:
            parts = [to_coll(self.expr(p, self.ctx(x, row_index, field))) for p in paths]
            return parts[0] if len(parts) == 1 else f"list_concat({', '.join(parts)})"

        def level(x: str, depth: int) -> str:
            if depth == 0:
                return f"CASE WHEN len({children(x)}) > 0 THEN error({q(f'{field}: nesting deeper than {REPEAT_DEPTH} levels')}) ELSE []::JSON[] END"
            c = self.fresh()
            return f"flatten(list_transform({children(x)}, lambda {c}: list_prepend({c}, {level(c, depth - 1)})))"

        return level(this, REPEAT_DEPTH)

    def select_body(self, node: dict, this: str, row_index: str, field: str) -> Rows:
        parts: list[Rows] = []
        cols = node.get("column", [])
        if not isinstance(cols, list):
            raise Invalid(f"{field}.column must be a list", field=f"{field}.column")
        if cols:
            names, types, exprs = [], [], []
            for j, raw in enumerate(cols):
                col = self.column(raw, f"{field}.column[{j}]")
                names.append(col.name)
                types.append(col.sql_type)
                exprs.append(self.column_value(col, self.ctx(this, row_index, f"{col.field}.path")))
            parts.append(Rows(names, types, single=exprs))
        subs = node.get("select", [])
        if not isinstance(subs, list):
            raise Invalid(f"{field}.select must be a list", field=f"{field}.select")
        for j, sub in enumerate(subs):
            parts.append(self.select(sub, this, row_index, f"{field}.select[{j}]"))
        union = node.get("unionAll")
        if union is not None:
            if not isinstance(union, list) or not union:
                raise Invalid(f"{field}.unionAll must be a non-empty list", field=f"{field}.unionAll")
            branches = [self.select(u, this, row_index, f"{field}.unionAll[{j}]") for j, u in enumerate(union)]
            first = branches[0]
            for j, b in enumerate(branches[1:], start=1):
                if b.names != first.names:
                    raise Invalid(
                        f"{field}.unionAll[{j}]: columns {b.names} differ from unionAll[0]'s {first.names} "
                        "(every branch needs the same columns in the same order)",
                        field=f"{field}.unionAll[{j}]",
                    )
            parts.append(Rows(first.names, first.types, lst=f"list_concat({', '.join(b.as_list() for b in branches)})"))
        result = Rows([], [], single=[])
        for p in parts:
            result = product(result, p, self.fresh)
        return result

    def column(self, raw: object, field: str) -> Column:
        if not isinstance(raw, dict):
            raise Invalid(f"{field} must be an object", field=field)
        name, path = raw.get("name"), raw.get("path")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise Invalid(
                f"{field}: column name {name!r} must start with a letter and use only letters, digits and _",
                field=f"{field}.name",
            )
        if not isinstance(path, str):
            raise Invalid(f"{field} ({name}): path must be a FHIRPath string", field=f"{field}.path")
        ctype = raw.get("type")
        if ctype is not None and not isinstance(ctype, str):
            raise Invalid(f"{field} ({name}): type must be a FHIR type name", field=f"{field}.type")
        coll = raw.get("collection", False)
        if not isinstance(coll, bool):
            raise Invalid(f"{field} ({name}): collection must be true or false", field=f"{field}.collection")
        col = Column(name, path, ctype, coll, field, raw.get("description"))
        if self.recording:
            self.columns.append(col)
        return col


_BUILTIN_CONSTANTS = {"rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc"}


def _from_json(x: str, target: str) -> str:
    if target == "VARCHAR":
        return f"fp_str({x})"
    if target == "JSON":
        return x
    return f"CAST({x} AS {target})"


def product(a: Rows, b: Rows, fresh: Callable[[], str], d: Dialect = DUCKDB) -> Rows:
    """Every row of a combined with every row of b (sibling selects and columns of one select node)."""
    names, types = a.names + b.names, a.types + b.types
    if a.single is not None and b.single is not None:
        return Rows(names, types, single=a.single + b.single)
    if a.single is not None and not a.names:
        return b
    if a.single is not None:
        y = fresh()
        inner = d.struct(names, a.single + [d.member(y, n) for n in b.names])
        return Rows(names, types, lst=d.transform(b.lst or "", y, inner))
    x = fresh()
    if b.single is not None:
        inner = d.struct(names, [d.member(x, n) for n in a.names] + b.single)
        return Rows(names, types, lst=d.transform(a.lst or "", x, inner))
    y = fresh()
    inner = d.struct(names, [d.member(x, n) for n in a.names] + [d.member(y, n) for n in b.names])
    return Rows(names, types, lst=d.flatten(d.transform(a.lst or "", x, d.transform(b.lst or "", y, inner))))


def validate_view(view: object) -> dict:
    if not isinstance(view, dict) or not view:
        raise Invalid("a ViewDefinition must be a non-empty JSON object", field="ViewDefinition")
    if view.get("resourceType") not in (None, "ViewDefinition"):
        raise Invalid(f"resourceType must be ViewDefinition, not {view.get('resourceType')!r}", field="resourceType")
    resource = view.get("resource")
    if not isinstance(resource, str) or not RESOURCE_RE.match(resource):
        raise Invalid("resource is required: the FHIR resource type the view reads (e.g. Patient)", field="resource")
    select = view.get("select")
    if not isinstance(select, list) or not select:
        raise Invalid("select is required: a list of select elements with columns", field="select")
    where = view.get("where", [])
    if not isinstance(where, list) or not all(isinstance(w, dict) for w in where):
        raise Invalid("where must be a list of objects with a path", field="where")
    return view


def compile_view(view: object) -> CompiledView:
    """Validate a ViewDefinition and compile it to DuckDB SQL; raise Invalid naming the offending element."""
    view = validate_view(view)
    c = _Compiler(view)
    top = Rows([], [], single=[])
    for j, sel in enumerate(view["select"]):
        top = product(top, c.select(sel, "resource", "0", f"select[{j}]"), c.fresh)
    seen: set[str] = set()
    for col in c.columns:
        if col.name in seen and not _in_union_branches(view, col.name):
            raise Invalid(f"column name {col.name!r} is used twice; names must be unique", field=f"{col.field}.name")
        seen.add(col.name)
    if not top.names:
        raise Invalid("the view has no columns", field="select")
    conds = []
    for j, w in enumerate(view.get("where", [])):
        f = f"where[{j}].path"
        v = c.expr(w.get("path"), c.ctx("resource", "0", f))
        msg = f"{f}: {w.get('path')!r} must give true, false or nothing, not several values"
        if v.kind == "bool":
            conds.append(v.sql)
        elif v.kind in ("coll", "one"):
            one = to_one(v, msg)
            not_bool = f"{f}: {w.get('path')!r} does not evaluate to a boolean"
            conds.append(
                f"CASE WHEN {one} IS NULL THEN NULL WHEN json_type({one}) = 'BOOLEAN' THEN {one}::VARCHAR = 'true' "
                f"ELSE error({q(not_bool)}) END"
            )
        else:
            raise Invalid(f"{f}: {w.get('path')!r} does not evaluate to a boolean", field=f)
    source = f"SELECT resource FROM {{source}} WHERE resource_type = {q(view['resource'])}"
    if c.top:
        # one parse of the whole resource per row: its top-level members the view reads, as small JSON values
        paths = ", ".join(q(json_path([k])) for k in c.top)
        source = f"SELECT resource, json_extract(resource, [{paths}]) AS _top FROM ({source}) AS typed"
    if conds:
        source = f"SELECT * FROM ({source}) AS filtered WHERE " + " AND ".join(
            f"coalesce({cnd}, false)" for cnd in conds
        )
    if top.single is not None:
        sql = view_query(list(zip(top.names, top.single, strict=True)), None, source, DUCKDB)
    else:
        sql = view_query([(n, None) for n in top.names], top.lst, source, DUCKDB)
    name = str(view["name"]) if isinstance(view.get("name"), str) else str(view["resource"]).lower()
    return CompiledView(
        view=view,
        name=name,
        resource=view["resource"],
        columns=[next(col for col in c.columns if col.name == n) for n in top.names],
        sql_template=sql,
        fallbacks=c.fallbacks,
        constants=c.plain_constants,
    )


def view_query(columns: list[tuple[str, str | None]], rows: str | None, source: str, d: Dialect) -> str:
    """The outer query of a view over one row per resource (`src`): each column an expression (name, SQL), or, given
    a list of STRUCT rows (`rows`), a field of the unnested row (name, None).

    Expressions stay outside the unnesting so that they are computed once per resource: inside a list lambda they
    would capture the whole resource once per list element. {key} and {inner_key} stay in the text: they add the
    resource id as _resource_key when a materialisation needs to replace the rows of changed resources (see
    CompiledView.sql)."""
    if rows is None:
        cols = ",\n  ".join(f"{e} AS {d.ident(n)}" for n, e in columns)
        return f"SELECT\n  {cols}{{key}}\nFROM ({source}) AS src"
    cols = ", ".join(f"{e if e is not None else 'r.' + d.ident(n)} AS {d.ident(n)}" for n, e in columns)
    return f"SELECT {cols}{{key}}\nFROM (SELECT src.*, {d.unnest(rows)} AS r{{inner_key}}\n      FROM ({source}) AS src) AS rows"


def _in_union_branches(view: dict, name: str) -> bool:
    """Union branches repeat the same column names on purpose."""
    found = False

    def walk(node: object) -> None:
        nonlocal found
        if isinstance(node, dict):
            for u in node.get("unionAll", []) or []:
                if isinstance(u, dict) and _declares(u, name):
                    found = True
            for k in ("select", "unionAll"):
                for s in node.get(k, []) or []:
                    walk(s)

    for s in view.get("select", []):
        walk(s)
    return found


def _declares(node: dict, name: str) -> bool:
    if any(isinstance(c, dict) and c.get("name") == name for c in node.get("column", []) or []):
        return True
    return any(
        isinstance(s, dict) and _declares(s, name) for k in ("select", "unionAll") for s in node.get(k, []) or []
    )


# Column-name order of the resulting table, for callers that need it before running anything.
def column_names(view: dict) -> list[str]:
    return [c.name for c in compile_view(view).columns]
