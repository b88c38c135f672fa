"""The few SQL spellings that differ between DuckDB and Spark SQL, for the compilers that emit both.

Both engines have the same building blocks for nested data — lists with lambdas (transform, filter, flatten),
structs, and a generator that turns a list into rows — under different names; everything else the compilers emit
(CASE, COALESCE, comparisons, regexp_extract, substring) is written the same in both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# SQL scalar kinds the typed compiler works with, and their type names per engine
KINDS = ("str", "int", "num", "bool", "json")


@dataclass(frozen=True)
class Dialect:
    name: str  # "duckdb" | "spark"

    @property
    def spark(self) -> bool:
        return self.name == "spark"

    def lit(self, text: str) -> str:
        """A string literal (Spark reads backslashes in literals as escapes)."""
        if self.spark:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"

    def ident(self, name: str) -> str:
        if self.spark:
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def member(self, x: str, name: str) -> str:
        return f"{x}.{self.ident(name)}"

    def transform(self, items: str, var: str, body: str, index: str | None = None) -> str:
        """A list with `body` applied to each element; `index` names the element's position (see row_index)."""
        if self.spark:
            params = f"({var}, {index})" if index else var
            return f"transform({items}, {params} -> {body})"
        params = f"{var}, {index}" if index else var
        return f"list_transform({items}, lambda {params}: {body})"

    def row_index(self, index: str) -> str:
        """%rowIndex (0-based) from a transform's position variable: DuckDB counts from 1, Spark from 0."""
        return index if self.spark else f"({index} - 1)"

    def filter(self, items: str, var: str, cond: str) -> str:
        if self.spark:
            return f"filter({items}, {var} -> {cond})"
        return f"list_filter({items}, lambda {var}: {cond})"

    def flatten(self, items: str) -> str:
        return f"flatten({items})"

    def concat(self, lists: list[str]) -> str:
        if len(lists) == 1:
            return lists[0]
        return f"concat({', '.join(lists)})" if self.spark else f"list_concat({', '.join(lists)})"

    def distinct(self, items: str) -> str:
        """Duplicates dropped, first occurrences kept in order (FHIRPath union; DuckDB's list_distinct reorders)."""
        if self.spark:
            return f"array_distinct({items})"
        return f"list_transform([{items}], lambda u: list_filter(u, lambda x, i: list_position(u, x) = i))[1]"

    def empty(self) -> str:
        """An empty list, typed by its context (coalesce, concat)."""
        return "array()" if self.spark else "[]"

    def first(self, items: str) -> str:
        """The first element, or NULL for an empty list (never an error)."""
        return f"get({items}, 0)" if self.spark else f"({items})[1]"

    def first_not_null(self, items: str) -> str:
        """The first item that is not NULL, or NULL."""
        if self.spark:
            return f"get(filter({items}, x -> x IS NOT NULL), 0)"
        return f"list_any_value({items})"

    def size(self, items: str) -> str:
        """Number of elements; 0 for NULL (Spark's size(NULL) is -1 or NULL depending on settings)."""
        return f"greatest(coalesce(size({items}), 0), 0)" if self.spark else f"coalesce(len({items}), 0)"

    def list_of(self, items: list[str]) -> str:
        return f"array({', '.join(items)})" if self.spark else f"[{', '.join(items)}]"

    def struct(self, names: list[str], exprs: list[str]) -> str:
        if not names:
            return "named_struct('_', NULL)" if self.spark else "struct_pack(_ := NULL)"
        if self.spark:
            return "named_struct(" + ", ".join(f"{self.lit(n)}, {e}" for n, e in zip(names, exprs, strict=True)) + ")"
        return "struct_pack(" + ", ".join(f"{self.ident(n)} := {e}" for n, e in zip(names, exprs, strict=True)) + ")"

    def error(self, message: str) -> str:
        return f"raise_error({self.lit(message)})" if self.spark else f"error({self.lit(message)})"

    def starts_with(self, text: str, prefix: str) -> str:
        return f"startswith({text}, {prefix})" if self.spark else f"starts_with({text}, {prefix})"

    def ends_with(self, text: str, suffix: str) -> str:
        return f"endswith({text}, {suffix})" if self.spark else f"ends_with({text}, {suffix})"

    def contains(self, text: str, part: str) -> str:
        return f"contains({text}, {part})"

    def unnest(self, items: str) -> str:
        """The generator turning a list of STRUCT rows into rows (in a SELECT list)."""
        return f"explode({items})" if self.spark else f"unnest({items})"

    # ---------------------------------------------------------------- types

    def scalar_type(self, kind: str) -> str:
        if self.spark:
            return {"str": "STRING", "int": "BIGINT", "num": "DOUBLE", "bool": "BOOLEAN", "json": "STRING"}[kind]
        return {"str": "VARCHAR", "int": "BIGINT", "num": "DOUBLE", "bool": "BOOLEAN", "json": "JSON"}[kind]

    def list_type(self, item: str) -> str:
        return f"ARRAY<{item}>" if self.spark else f"{item}[]"

    def cast(self, x: str, sql_type: str) -> str:
        return f"CAST({x} AS {sql_type})"

    def null(self, sql_type: str) -> str:
        return f"CAST(NULL AS {sql_type})"

    def parse_json(self, text: str, shape: dict[str, object]) -> str:
        """Parse JSON text once into a STRUCT holding only the members in `shape` ({name: type or nested shape}).

        shape values: a scalar kind, a nested dict (an object), or a one-element list of either (a list)."""
        if self.spark:
            return f"from_json({text}, {self.lit(self._ddl(shape))})"
        return f"json_transform({text}, {self.lit(json.dumps(self._structure(shape), separators=(',', ':')))})"

    def _ddl(self, shape: object) -> str:
        if isinstance(shape, dict):
            return "STRUCT<" + ", ".join(f"{self.ident(k)}: {self._ddl(v)}" for k, v in shape.items()) + ">"
        if isinstance(shape, list):
            return f"ARRAY<{self._ddl(shape[0])}>"
        return self.scalar_type(str(shape))

    def _structure(self, shape: object) -> object:
        if isinstance(shape, dict):
            return {k: self._structure(v) for k, v in shape.items()}
        if isinstance(shape, list):
            return [self._structure(shape[0])]
        return self.scalar_type(str(shape))


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")
