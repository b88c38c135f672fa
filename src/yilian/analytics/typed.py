"""Compile a ViewDefinition to SQL over *typed* resources: each resource's JSON is parsed once into a STRUCT that
holds only the members the view reads, and every column is then a plain struct/list expression.

Why: the JSON compiler (`compiler.py`) handles all of the spec's FHIRPath subset, but each of its columns re-reads a
JSON fragment; with tens of columns per view that re-parsing is most of the cost. Here the view's paths, checked
against the R4 model (`schema.py`: which elements repeat, which primitive type a leaf has), give the STRUCT type; one
`json_transform` (DuckDB) or `from_json` (Spark) per resource fills it. The same code emits DuckDB SQL and Spark SQL
(`dialect.py`), which is how the views run on PySpark.

It covers what the shipped views use: member paths (with `ofType()` on choice elements), `first() exists() empty()
count() where() not() extension() getResourceKey() getReferenceKey() substring() startsWith() endsWith()
contains()`, `= != < > <= >= and or xor implies + - * / &`, `|` of the variants of one choice element, literals,
`%constants`, `%rowIndex`, and the select tree (`forEach`, `forEachOrNull`, `unionAll`, nested `select`, `where`).
Anything else raises Unsupported and the view runs through the JSON compiler instead (same rows, slower).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yilian.analytics import fhirpath as fp
from yilian.analytics import schema
from yilian.analytics.compiler import (
    _VALUE_KEYS,
    Column,
    CompiledView,
    Rows,
    Unsupported,
    _sql_type,
    choice_names,
    compile_view,
    product,
    view_query,
)
from yilian.analytics.dialect import DUCKDB, Dialect

_KIND_OF_SQL = {"VARCHAR": "str", "BIGINT": "int", "DOUBLE": "num", "BOOLEAN": "bool"}


@dataclass
class Shape:
    """The part of a FHIR type a view reads: which members, repeated or not, down to primitive leaves."""

    ftype: str | None  # FHIR complex type; None for a primitive
    kind: str | None  # SQL kind of a primitive (str, int, num, bool)
    many: bool
    children: dict[str, Shape] = field(default_factory=dict)

    def parse_shape(self) -> object:
        """This shape as Dialect.parse_json wants it; an object read only for existence stays JSON text."""
        if self.kind is not None:
            inner: object = self.kind
        elif self.children:
            inner = {k: c.parse_shape() for k, c in self.children.items()}
        else:
            inner = "json"
        return [inner] if self.many else inner


@dataclass(frozen=True)
class TV:
    """A typed value: SQL, a list or a single (nullable) value, and its shape (complex) or kind (primitive)."""

    sql: str
    many: bool
    shape: Shape | None = None
    kind: str | None = None  # str | int | num | bool for primitives
    # the same list before its NULLs were dropped, when that is how it was made: first() then takes the first
    # non-NULL item directly instead of building the filtered list (most columns end in `.first()`)
    with_nulls: str | None = None
    # a list reached through lists: (SQL of its only item, conditions) where the conditions say that every list on
    # the way has exactly one element — most FHIR lists do (one coding, one participant) — so first() is a plain
    # struct access instead of list lambdas (about half their cost on the benchmark views)
    # (the last element: the condition that the first list on the way is empty, when the whole path is: absent
    # elements — no basedOn, no location — are as common, and the lambdas cost as much on an empty list)
    only: tuple[str, tuple[str, ...], str] | None = None


@dataclass
class Ctx:
    this: TV
    resource: TV
    row_index: str
    field: str


class _Typed:
    def __init__(self, view: dict, d: Dialect):
        self.view = view
        self.d = d
        self.counter = 0
        self.root = Shape(view["resource"], None, False)
        self.resource = TV("_fhir", False, self.root)
        self.constants = self._constants()

    def fresh(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    def _constants(self) -> dict[str, TV]:
        out = {}
        for c in self.view.get("constant", []) or []:
            key = next(k for k in c if k.startswith("value"))
            kind, value = _VALUE_KEYS[key], c[key]
            if kind == "bool":
                out[c["name"]] = TV("true" if value else "false", False, kind="bool")
            elif kind in ("int", "num"):
                out[c["name"]] = TV(repr(value) if kind == "num" else str(value), False, kind=kind)
            else:
                out[c["name"]] = TV(self.d.lit(str(value)), False, kind="str")
        return out

    # ---------------------------------------------------------------- navigation

    def member(self, base: TV, name: str) -> TV:
        if base.shape is None or base.shape.ftype is None:
            raise Unsupported("member of a primitive value")
        info = schema.child(base.shape.ftype, name)
        if info is None:
            raise Unsupported(f"element {name} unknown to the R4 model of {base.shape.ftype}")
        ftype, many = info
        kind = None if ftype else schema.primitive_kinds(base.shape.ftype).get(name, "str")
        shape = base.shape.children.setdefault(name, Shape(ftype or None, kind, many))
        d = self.d
        if not base.many:
            sql = d.member(base.sql, name)
            if many:
                first_list = (d.first(sql), (f"{d.size(sql)} = 1",), f"{d.size(sql)} = 0")
                return TV(f"coalesce({sql}, {d.empty()})", True, shape, kind, only=first_list)
            return TV(sql, many, shape, kind)
        only: tuple[str, tuple[str, ...], str] | None = None
        if base.only is not None:
            item, conds, none = base.only
            raw = d.member(item, name)
            only = (d.first(raw), (*conds, f"{d.size(raw)} = 1"), none) if many else (raw, conds, none)
        v = self.fresh()
        if many:
            sql = d.flatten(d.transform(base.sql, v, f"coalesce({d.member(v, name)}, {d.empty()})"))
        else:
            w = self.fresh()
            items = d.transform(base.sql, v, d.member(v, name))
            return TV(d.filter(items, w, f"{w} IS NOT NULL"), True, shape, kind, with_nulls=items, only=only)
        return TV(sql, True, shape, kind, only=only)

    def chain(self, node: fp.Node, ctx: Ctx) -> TV:
        assert isinstance(node, fp.Member)
        if node.base is None:
            if node.name == self.view["resource"] and ctx.this.sql == self.resource.sql:
                return ctx.this  # `Patient.name`: the leading type name is the resource itself
            return self.member(ctx.this, node.name)
        return self.member(self.expr(node.base, ctx), node.name)

    def choice(self, node: fp.Call, ctx: Ctx) -> TV:
        """value.ofType(Quantity) is the JSON member valueQuantity."""
        base = node.base
        if not (isinstance(base, fp.Member) and len(node.args) == 1):
            raise Unsupported("ofType() on something other than a choice element")
        type_name = _type_name(node.args[0])
        name = base.name + type_name[:1].upper() + type_name[1:]
        parent = ctx.this if base.base is None else self.expr(base.base, ctx)
        return self.member(parent, name)

    def variants(self, base: TV, name: str) -> list[TV]:
        """All value[x] members of a choice element named without its type (for exists()/empty())."""
        if base.shape is None or base.shape.ftype is None or name not in choice_names():
            raise Unsupported(f"element {name}")
        keys = [
            k
            for k in schema.elements(base.shape.ftype)
            if k.startswith(name) and k[len(name) : len(name) + 1].isupper()
        ]
        if not keys:
            raise Unsupported(f"element {name}")
        return [self.member(base, k) for k in keys]

    # ---------------------------------------------------------------- expressions

    def expr(self, node: fp.Node, ctx: Ctx) -> TV:
        d = self.d
        if isinstance(node, fp.Literal):
            if node.kind == "string":
                return TV(d.lit(str(node.value)), False, kind="str")
            if node.kind == "integer":
                return TV(str(node.value), False, kind="int")
            if node.kind == "number":
                return TV(f"CAST({node.value!r} AS DOUBLE)", False, kind="num")
            if node.kind == "boolean":
                return TV("true" if node.value else "false", False, kind="bool")
            raise Unsupported(f"{node.kind} literal")
        if isinstance(node, fp.This):
            return ctx.this
        if isinstance(node, fp.Constant):
            if node.name == "rowIndex":
                return TV(ctx.row_index, False, kind="int")
            if node.name in ("resource", "rootResource"):
                return ctx.resource
            if node.name in self.constants:
                return self.constants[node.name]
            raise Unsupported(f"%{node.name}")
        if isinstance(node, fp.Member):
            return self.chain(node, ctx)
        if isinstance(node, fp.Index):
            base, idx = self.expr(node.base, ctx), self.expr(node.index, ctx)
            if idx.kind != "int" or not idx.sql.isdigit():
                raise Unsupported("index that is not an integer literal")
            if not base.many:
                return base if idx.sql == "0" else TV(d.null(self.type_of(base)), False, base.shape, base.kind)
            item = f"get({base.sql}, {idx.sql})" if d.spark else f"({base.sql})[{int(idx.sql) + 1}]"
            return TV(item, False, base.shape, base.kind)
        if isinstance(node, fp.Unary):
            operand = self.expr(node.operand, ctx)
            if operand.many or operand.kind not in ("int", "num"):
                raise Unsupported("unary minus on something other than a number")
            return TV(f"(-({operand.sql}))" if node.op == "-" else operand.sql, False, kind=operand.kind)
        if isinstance(node, fp.Call):
            return self.call(node, ctx)
        if isinstance(node, fp.Binary):
            return self.binary(node, ctx)
        raise Unsupported(type(node).__name__)

    def type_of(self, v: TV) -> str:
        if v.kind is None:
            raise Unsupported("a complex value where a primitive is needed")
        return self.d.scalar_type(v.kind)

    def one(self, v: TV, message: str) -> TV:
        """A single value: a list of several values stops the query with `message`, as the spec asks."""
        if not v.many:
            return v
        d = self.d
        return TV(
            f"CASE WHEN {d.size(v.sql)} > 1 THEN {d.error(message)} ELSE {d.first(v.sql)} END", False, v.shape, v.kind
        )

    def truth(self, v: TV, ctx: Ctx) -> str:
        if v.kind != "bool" or v.many:
            raise Unsupported("a condition that is not a single boolean")
        return v.sql

    def exists(self, v: TV) -> str:
        return f"({self.d.size(v.sql)} > 0)" if v.many else f"({v.sql} IS NOT NULL)"

    def call(self, node: fp.Call, ctx: Ctx) -> TV:
        d, name, args = self.d, node.name, node.args
        if name == "ofType":
            return self.choice(node, ctx)
        if name == "getResourceKey" and not args:
            return self.member(ctx.resource, "id")
        if name in ("exists", "empty") and not args and isinstance(node.base, fp.Member):
            # `value.exists()`: a choice element named without its type exists when any of its variants does
            parent = ctx.this if node.base.base is None else self.expr(node.base.base, ctx)
            if (
                parent.shape is not None
                and parent.shape.ftype
                and schema.child(parent.shape.ftype, node.base.name) is None
            ):
                found = " OR ".join(self.exists(v) for v in self.variants(parent, node.base.name))
                return TV(f"({found})" if name == "exists" else f"(NOT ({found}))", False, kind="bool")
        of_keys = node.base
        if (
            name == "first"
            and not args
            and isinstance(of_keys, fp.Call)
            and of_keys.name == "getReferenceKey"
            and isinstance(of_keys.base, fp.Binary)
            and of_keys.base.op == "|"
        ):
            # `(focus | basedOn).getReferenceKey(T).first()`: the union keeps its operands' order, so its first
            # key is the first key of the operands in turn (a union of References needs no list of them)
            lists = []
            for part in _union_parts(of_keys.base):
                part_keys = self.call(fp.Call(part, "getReferenceKey", of_keys.args), ctx)
                lists.append(part_keys.sql if part_keys.many else d.list_of([part_keys.sql]))
            return TV(d.first_not_null(d.concat(lists)), False, kind="str")
        base = self.expr(node.base, ctx) if node.base is not None else ctx.this
        message = f"{ctx.field}: {name}() applied to several values"
        if name == "where" and len(args) == 1:
            v = self.fresh() if base.many else base.sql
            item = TV(v, False, base.shape, base.kind)
            cond = self.truth(self.expr(args[0], Ctx(item, ctx.resource, ctx.row_index, ctx.field)), ctx)
            if base.many:
                only = None
                if base.only is not None:
                    # the filtered list of a one-element list is that element or nothing, and of an empty list
                    # empty: first() keeps its plain reads (diagnosis.where(rank = 1).condition… on Encounters
                    # without diagnosis ran the lambdas for nothing: ≈ 0.1 CPU-s per 500,000)
                    only_item, conds, none = base.only
                    sole = TV(only_item, False, base.shape, base.kind)
                    kept = self.truth(self.expr(args[0], Ctx(sole, ctx.resource, ctx.row_index, ctx.field)), ctx)
                    only = (f"(CASE WHEN coalesce({kept}, false) THEN {only_item} END)", conds, none)
                return TV(d.filter(base.sql, v, f"coalesce({cond}, false)"), True, base.shape, base.kind, only=only)
            # a single value (Reference.identifier) is kept or dropped: no list needed
            return TV(f"CASE WHEN coalesce({cond}, false) THEN {base.sql} END", False, base.shape, base.kind)
        if name == "exists" and len(args) <= 1:
            if args:
                return TV(self.exists(self.call(fp.Call(node.base, "where", args), ctx)), False, kind="bool")
            return TV(self.exists(base), False, kind="bool")
        if name == "empty" and not args:
            return TV(f"(NOT {self.exists(base)})", False, kind="bool")
        if name == "count" and not args:
            return TV(
                d.size(base.sql) if base.many else f"(CASE WHEN {base.sql} IS NULL THEN 0 ELSE 1 END)",
                False,
                kind="int",
            )
        if name == "first" and not args:
            if not base.many:
                return base
            general = d.first_not_null(base.with_nulls) if base.with_nulls is not None else d.first(base.sql)
            if base.only is not None:
                only_item, conds, none = base.only
                general = f"CASE WHEN {' AND '.join(conds)} THEN {only_item} WHEN {none} THEN NULL ELSE {general} END"
            return TV(general, False, base.shape, base.kind)
        if name == "not" and not args:
            return TV(f"(NOT {self.truth(self.one(base, message), ctx)})", False, kind="bool")
        if name == "extension" and len(args) == 1:
            url = self.expr(args[0], ctx)
            if url.kind != "str" or url.many:
                raise Unsupported("extension() url that is not a string")
            exts = self.member(base, "extension")
            v = self.fresh()
            self.member(TV(v, False, exts.shape), "url")  # the url must be in the parsed struct
            return TV(d.filter(exts.sql, v, f"{d.member(v, 'url')} = {url.sql}"), True, exts.shape)
        if name == "getReferenceKey" and len(args) <= 1:
            type_name = _type_name(args[0]) if args else None
            refs = self.member(base, "reference")
            if not refs.many:
                return TV(self.refkey(refs.sql, type_name), False, kind="str")
            v, w = self.fresh(), self.fresh()
            keys = d.transform(refs.with_nulls or refs.sql, v, self.refkey(v, type_name))
            only = (self.refkey(refs.only[0], type_name), *refs.only[1:]) if refs.only is not None else None
            return TV(d.filter(keys, w, f"{w} IS NOT NULL"), True, kind="str", with_nulls=keys, only=only)
        if name == "substring" and 1 <= len(args) <= 2:
            text = self.one(base, message)
            bounds = [self.expr(a, ctx) for a in args]
            if text.kind != "str" or any(b.kind != "int" or b.many for b in bounds):
                raise Unsupported("substring() of something other than a string")
            rest = f", {bounds[1].sql}" if len(bounds) == 2 else ""
            return TV(f"substring({text.sql}, ({bounds[0].sql}) + 1{rest})", False, kind="str")
        if name in ("startsWith", "endsWith", "contains") and len(args) == 1 and node.base is not None:
            text, arg = self.one(base, message), self.expr(args[0], ctx)
            if text.kind != "str" or arg.kind != "str" or arg.many:
                raise Unsupported(f"{name}() of something other than strings")
            fn = {"startsWith": d.starts_with, "endsWith": d.ends_with, "contains": d.contains}[name]
            return TV(fn(text.sql, arg.sql), False, kind="bool")
        raise Unsupported(f"function {name}()")

    def refkey(self, ref: str, type_name: str | None) -> str:
        if not self.d.spark:
            return f"fp_refkey({ref}, {self.d.lit(type_name) if type_name else 'NULL'})"
        # the same cases as the DuckDB macro fp_refkey: [base/]Type/id[/_history/v], or urn:uuid:… when untyped
        pattern = (
            f"(^|/){type_name}/([^/]+)(/_history/[^/]+)?$" if type_name else "(^|/)[A-Za-z]+/([^/]+)(/_history/[^/]+)?$"
        )
        key = f"nullif(regexp_extract({ref}, {self.d.lit(pattern)}, 2), '')"
        if type_name is None:
            key = f"coalesce({key}, CASE WHEN startswith({ref}, 'urn:uuid:') THEN substring({ref}, 10) END)"
        return key

    def binary(self, node: fp.Binary, ctx: Ctx) -> TV:
        op = node.op
        if op == "|":
            return self.union(node, ctx)
        message = f"{ctx.field}: operator {op} applied to several values"
        left = self.one(self.expr(node.left, ctx), message)
        right = self.one(self.expr(node.right, ctx), message)
        if op in ("and", "or", "xor", "implies"):
            a, b = self.truth(left, ctx), self.truth(right, ctx)
            sql = {
                "and": f"({a} AND {b})",
                "or": f"({a} OR {b})",
                "xor": f"({a} <> {b})",
                "implies": f"((NOT {a}) OR {b})",
            }
            return TV(sql[op], False, kind="bool")
        kinds = {left.kind, right.kind}
        if None in kinds:
            raise Unsupported(f"operator {op} on a complex value")
        numeric = kinds <= {"int", "num"}
        if op in ("=", "!=", "<", ">", "<=", ">="):
            if len(kinds) > 1 and not numeric:
                raise Unsupported(f"operator {op} between {left.kind} and {right.kind}")
            sql_op = "<>" if op == "!=" else op
            return TV(f"({left.sql} {sql_op} {right.sql})", False, kind="bool")
        if op == "&" and kinds == {"str"}:
            return TV(f"(coalesce({left.sql}, '') || coalesce({right.sql}, ''))", False, kind="str")
        if op in ("+", "-", "*", "/") and numeric:
            if op == "/":
                return TV(f"(CAST({left.sql} AS DOUBLE) / NULLIF({right.sql}, 0))", False, kind="num")
            return TV(f"({left.sql} {op} {right.sql})", False, kind="int" if kinds == {"int"} else "num")
        raise Unsupported(f"operator {op}")

    def union(self, node: fp.Binary, ctx: Ctx) -> TV:
        """`effective.ofType(dateTime) | effective.ofType(Period).start`: variants of one choice element, of which
        FHIR JSON holds at most one, so the union is whichever is present."""
        parts = _union_parts(node)
        values = [self.expr(p, ctx) for p in parts]
        kinds = {v.kind for v in values}
        if len(kinds) != 1 or None in kinds:
            raise Unsupported("union (|) of complex values or of values of different types")
        roots = {_choice_root(p) for p in parts}
        if len(roots) == 1 and None not in roots and not any(v.many for v in values):
            return TV(f"coalesce({', '.join(v.sql for v in values)})", False, kind=values[0].kind)
        d = self.d
        lists = [
            v.sql if v.many else f"CASE WHEN {v.sql} IS NULL THEN {d.empty()} ELSE {d.list_of([v.sql])} END"
            for v in values
        ]
        return TV(d.distinct(d.concat(lists)), True, kind=values[0].kind)

    # ---------------------------------------------------------------- the select tree

    def column(self, col: Column, ctx: Ctx) -> tuple[str, str]:
        """(SQL, SQL type) of one column."""
        node = fp.parse(col.path)
        v = self.expr(node, ctx)
        d = self.d
        declared = _sql_type(col.type)
        kind = _KIND_OF_SQL.get(declared)
        if v.kind is None:
            raise Unsupported("a column holding a complex value (JSON)")
        if kind is None:
            kind = v.kind  # no type in the view: the model's type of the leaf
        elif kind != v.kind and not (kind == "num" and v.kind == "int"):
            raise Unsupported(f"column typed {col.type} over a {v.kind} value")
        sql_type = d.scalar_type(kind)
        if col.collection:
            items = v.sql if v.many else f"CASE WHEN {v.sql} IS NULL THEN {d.empty()} ELSE {d.list_of([v.sql])} END"
            return d.cast(items, d.list_type(sql_type)), d.list_type(sql_type)
        message = f"column {col.name!r} ({col.path}) has more than one value; set collection: true to keep them all"
        value = self.one(v, message).sql
        return (value if kind == v.kind else d.cast(value, sql_type)), sql_type

    def select(self, node: dict, this: TV, row_index: str, field: str) -> Rows:
        d = self.d
        kind = next((k for k in ("forEach", "forEachOrNull", "repeat") if k in node), None)
        if kind == "repeat":
            raise Unsupported("repeat")
        if kind is None:
            return self.body(node, this, row_index, field)
        ctx = Ctx(this, self.resource, row_index, field)
        parsed = fp.parse(node[kind])
        if kind == "forEach" and isinstance(parsed, fp.Call) and parsed.name == "where" and parsed.base is None:
            # `forEach: "where(…)"`: the focus itself, or nothing
            cond = self.truth(self.expr(parsed.args[0], ctx), ctx)
            rows = self.body(node, this, "0", field)
            as_list = rows.as_list(d)
            return Rows(
                rows.names,
                rows.types,
                lst=f"CASE WHEN coalesce({cond}, false) THEN {as_list} ELSE {d.filter(as_list, self.fresh(), 'false')} END",
            )
        items = self.expr(parsed, ctx)
        if items.kind is not None:
            raise Unsupported(f"{kind} over primitive values")
        coll = (
            items.sql
            if items.many
            else f"CASE WHEN {items.sql} IS NULL THEN {d.empty()} ELSE {d.list_of([items.sql])} END"
        )
        if kind == "forEachOrNull":
            # an empty collection still gives the body one run, on an empty focus (%rowIndex 0, every path null)
            coll = f"CASE WHEN {d.size(coll)} = 0 THEN {d.list_of(['NULL'])} ELSE {coll} END"
        e, i = self.fresh(), self.fresh()
        body = self.body(node, TV(e, False, items.shape), d.row_index(i), field)
        if body.single is not None:
            per = d.transform(coll, e, d.struct(body.names, body.single), i)
        else:
            per = d.flatten(d.transform(coll, e, body.as_list(d), i))
            if kind == "forEachOrNull":
                # …and a body without rows on it (a nested forEach) still gives one row of nulls
                nulls = d.struct(body.names, [d.null(t) for t in body.types])
                per = f"CASE WHEN {d.size(per)} = 0 THEN {d.list_of([nulls])} ELSE {per} END"
        return Rows(body.names, body.types, lst=per)

    def body(self, node: dict, this: TV, row_index: str, field: str) -> Rows:
        parts: list[Rows] = []
        cols = node.get("column", [])
        if cols:
            names, types, exprs = [], [], []
            for j, raw in enumerate(cols):
                col = Column(
                    raw["name"], raw["path"], raw.get("type"), raw.get("collection", False), f"{field}.column[{j}]"
                )
                sql, sql_type = self.column(col, Ctx(this, self.resource, row_index, f"{col.field}.path"))
                names.append(col.name)
                types.append(sql_type)
                exprs.append(sql)
            parts.append(Rows(names, types, single=exprs))
        for j, sub in enumerate(node.get("select", []) or []):
            parts.append(self.select(sub, this, row_index, f"{field}.select[{j}]"))
        union = node.get("unionAll")
        if union:
            branches = [self.select(u, this, row_index, f"{field}.unionAll[{j}]") for j, u in enumerate(union)]
            first = branches[0]
            if any(b.types != first.types for b in branches):
                raise Unsupported("unionAll branches with different column types")
            parts.append(Rows(first.names, first.types, lst=self.d.concat([b.as_list(self.d) for b in branches])))
        result = Rows([], [], single=[])
        for p in parts:
            result = product(result, p, self.fresh, self.d)
        return result


def _union_parts(node: fp.Node) -> list[fp.Node]:
    """The operands of `a | b | c`, in order."""
    parts: list[fp.Node] = []
    stack: list[fp.Node] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, fp.Binary) and n.op == "|":
            stack += [n.right, n.left]
        else:
            parts.append(n)
    return parts


def _type_name(node: fp.Node) -> str:
    if isinstance(node, fp.Member):
        return node.name
    if isinstance(node, fp.Literal) and node.kind == "string":
        return str(node.value)
    raise Unsupported("type specifier")


def _choice_root(node: fp.Node) -> tuple[str, str] | None:
    """(repr of the base, choice name) when node is `x.ofType(T)` or `x.ofType(T).member…`."""
    cur: fp.Node | None = node
    while isinstance(cur, fp.Member):
        cur = cur.base
    if isinstance(cur, fp.Call) and cur.name == "ofType" and isinstance(cur.base, fp.Member):
        return repr(cur.base.base), cur.base.name
    return None


# (columns, list of rows to unnest, condition on the resource, (list, element, position) to unnest at SQL level)
Branch = tuple[list[tuple[str, str | None]], str | None, str | None, tuple[str, str, str] | None]


def _split_union(view: dict, t: _Typed, columns: list[tuple[str, str | None]]) -> list[Branch] | None:
    """The view as one query per branch of its top-level `unionAll`, when its rows come from just that (observation:
    its own value, and one row per component): a branch `forEach: where(…)` becomes a plain filter, and no list of
    rows is concatenated. ≈ 37 % less CPU for observation's query; the rows come grouped by branch instead of by
    resource, so only materialisation (where order does not matter) uses it — see CompiledView.sql_over_typed."""
    listed = [
        sel for sel in view["select"] if any(k in sel for k in ("unionAll", "forEach", "forEachOrNull", "select"))
    ]
    if len(listed) != 1 or set(listed[0]) - {"unionAll"}:
        return None
    j = view["select"].index(listed[0])
    out: list[Branch] = []
    for k, u in enumerate(listed[0]["unionAll"]):
        field = f"select[{j}].unionAll[{k}]"
        each = _each(u, t, field)
        if each is not None:
            coll, e, i, body = each
            named = dict(zip(body.names, body.single or [], strict=True))
            out.append(([(n, x if x is not None else named[n]) for n, x in columns], None, None, (coll, e, i)))
            continue
        cond = None
        focus = u.get("forEach")
        parsed = fp.parse(focus) if isinstance(focus, str) else None
        if (
            isinstance(parsed, fp.Call)
            and parsed.name == "where"
            and parsed.base is None
            and set(u) <= {"forEach", "column"}
        ):
            ctx = Ctx(t.resource, t.resource, "0", field)
            cond = f"coalesce({t.truth(t.expr(parsed.args[0], ctx), ctx)}, false)"
            rows = t.body({"column": u.get("column", [])}, t.resource, "0", field)
        else:
            rows = t.select(u, t.resource, "0", field)
        cols: list[tuple[str, str | None]]
        if rows.single is not None:
            named = dict(zip(rows.names, rows.single, strict=True))
            cols = [(n, e if e is not None else named[n]) for n, e in columns]
            out.append((cols, None, cond, None))
        elif cond is None:
            cols = [(n, e if e is not None else f"r.{t.d.ident(n)}") for n, e in columns]
            out.append((cols, rows.lst, None, None))
        else:
            return None
    return out


def _each(u: dict, t: _Typed, field: str) -> tuple[str, str, str, Rows] | None:
    """A branch `forEach`/`forEachOrNull: <path>` with only columns, as a list unnested by the query itself — one
    row per element, the columns plain expressions over it (Pathling's plan) — instead of a list of STRUCT rows
    built by a lambda and unnested: (the list, the element's and its 1-based position's names, the columns)."""
    kind = next((k for k in ("forEach", "forEachOrNull") if k in u), None)
    if kind is None or set(u) - {kind, "column"} or not isinstance(u[kind], str):
        return None
    parsed = fp.parse(u[kind])
    if isinstance(parsed, fp.Call) and parsed.name == "where" and parsed.base is None:
        return None  # the focus itself or nothing: a filter (_split_union)
    d = t.d
    items = t.expr(parsed, Ctx(t.resource, t.resource, "0", field))
    if items.kind is not None:
        raise Unsupported(f"{kind} over primitive values")
    coll = (
        items.sql if items.many else f"CASE WHEN {items.sql} IS NULL THEN {d.empty()} ELSE {d.list_of([items.sql])} END"
    )
    if kind == "forEachOrNull":
        # an empty collection still gives one row, on an empty focus (%rowIndex 0, every path null)
        coll = f"CASE WHEN {d.size(coll)} = 0 THEN {d.list_of(['NULL'])} ELSE {coll} END"
    e, i = t.fresh(), t.fresh()
    body = t.body({"column": u.get("column", [])}, TV(e, False, items.shape), d.row_index(i), field)
    assert body.single is not None
    return coll, e, i, body


def compile_typed(view: dict, dialect: Dialect = DUCKDB) -> CompiledView:
    """The view as SQL over typed resources in `dialect`; raises Unsupported when it needs the JSON compiler.

    The view must already be valid (compile_view checks it); the result has the same columns, in the same order."""
    reference = compile_view(view)
    if reference.fallbacks:
        raise Unsupported("the view needs the Python evaluator")
    t = _Typed(view, dialect)
    d = dialect
    # top-level selects giving one row per resource stay plain columns of the outer query; only the ones giving
    # lists are combined into the list of rows that is unnested (see view_query)
    columns: list[tuple[str, str | None]] = []
    types: list[str] = []
    listed = Rows([], [], single=[])
    for j, sel in enumerate(view["select"]):
        part = t.select(sel, t.resource, "0", f"select[{j}]")
        types += part.types
        if part.single is not None:
            columns += list(zip(part.names, part.single, strict=True))
        else:
            columns += [(n, None) for n in part.names]
            listed = product(listed, part, t.fresh, d)
    conds = []
    for j, w in enumerate(view.get("where", []) or []):
        ctx = Ctx(t.resource, t.resource, "0", f"where[{j}].path")
        conds.append(
            f"coalesce({t.truth(t.one(t.expr(fp.parse(w['path']), ctx), 'where gave several values'), ctx)}, false)"
        )
    split = _split_union(view, t, columns) if not d.spark else None
    key = t.member(t.resource, "id")
    shape = t.root.parse_shape()
    assert isinstance(shape, dict)
    # {parsed}: one row per resource of the view's type holding `_fhir`, parsed from JSON text here, or read
    # from a typed snapshot's columns (CompiledView.sql_over_typed)
    parse_sql = (
        f"SELECT {d.parse_json('resource', shape)} AS _fhir FROM {{source}} "
        f"WHERE resource_type = {d.lit(view['resource'])}"
    )
    source = "{parsed}"
    if conds:
        source = "SELECT * FROM ({parsed}) AS parsed WHERE " + " AND ".join(conds)
    sql = view_query(columns, listed.lst, source, d)
    split_sql = None
    if split is not None:
        branches = []
        for cols, rows, cond, each in split:
            if each is not None:
                coll, e, i = each
                listed_cols = ", ".join(f"{x} AS {d.ident(n)}" for n, x in cols)
                # the list once per resource (_each_list), then its elements and their positions side by side
                # (DuckDB unnests two lists of one length in one SELECT in step)
                branches.append(
                    f"SELECT {listed_cols}{{key}}\nFROM (SELECT src.*, unnest(src._each_list) AS {e}, "
                    f"generate_subscripts(src._each_list, 1) AS {i}{{inner_key}}\n"
                    f"      FROM (SELECT src.*, {coll} AS _each_list FROM ({source}) AS src) AS src) AS rows"
                )
            elif rows is not None:
                branches.append(view_query(list(cols), rows, source, d))
            else:
                where = f" WHERE {cond}" if cond else ""
                listed_cols = ", ".join(f"{e} AS {d.ident(n)}" for n, e in cols)
                branches.append(
                    f"SELECT {listed_cols}{{key}}\nFROM (SELECT src.*{{inner_key}} FROM ({source}) AS src{where}) AS rows"
                )
        split_sql = "SELECT * FROM (" + "\nUNION ALL\n".join(f"({b})" for b in branches) + ") AS branches"
    return CompiledView(
        view=view,
        name=reference.name,
        resource=reference.resource,
        columns=reference.columns,
        sql_template=sql,
        constants=reference.constants,
        key_sql=key.sql.replace("_fhir", "src._fhir", 1),
        column_types=types,
        engine=f"typed ({d.name})",
        shape=shape,
        parse_sql=parse_sql,
        split_template=split_sql,
    )


def fast(compiled: CompiledView) -> CompiledView:
    """The typed DuckDB form of a compiled view when the typed compiler covers it, else the view itself."""
    if compiled.engine != "json":
        return compiled
    try:
        return compile_typed(compiled.view, DUCKDB)
    except Unsupported:
        return compiled
