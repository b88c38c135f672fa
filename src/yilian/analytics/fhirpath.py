"""A parser for the FHIRPath subset that SQL on FHIR v2 views use.

The parser turns an expression into a small tree (`Node` subclasses) that the compiler (compiler.py) translates to
DuckDB SQL. It accepts the whole FHIRPath operator grammar so that an expression the compiler cannot translate still
parses, and can then be evaluated by the Python fallback; text that is not FHIRPath at all is refused here with the
position of the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class FhirPathSyntaxError(ValueError):
    """The text is not a FHIRPath expression."""


@dataclass(frozen=True)
class Node:
    pass


@dataclass(frozen=True)
class Literal(Node):
    value: object
    kind: str  # string | number | integer | boolean | date | datetime | time | empty


@dataclass(frozen=True)
class This(Node):
    pass


@dataclass(frozen=True)
class IndexVar(Node):
    pass


@dataclass(frozen=True)
class Constant(Node):
    name: str


@dataclass(frozen=True)
class Member(Node):
    base: Node | None  # None: a member of the focus ($this)
    name: str


@dataclass(frozen=True)
class Call(Node):
    base: Node | None
    name: str
    args: tuple[Node, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Index(Node):
    base: Node
    index: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class TypeOp(Node):
    op: str  # is | as
    operand: Node
    type_name: str


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@\d{4}(-\d{2}(-\d{2})?)?T(\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?(Z|[+-]\d{2}:\d{2})?)
  | (?P<date>@\d{4}(-\d{2}(-\d{2})?)?)
  | (?P<time>@T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)
  | (?P<number>\d+(\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<delimited>`(?:[^`\\]|\\.)*`)
  | (?P<constant>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<special>\$this|\$index|\$total)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|=~<>.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FhirPathSyntaxError(f"unexpected character {text[pos]!r} at position {pos} in {text!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("eof", "", len(text)))
    return tokens


# Binary operators by precedence, loosest first (FHIRPath §"Operator precedence").
_LEVELS: list[tuple[str, ...]] = [
    ("implies",),
    ("or", "xor"),
    ("and",),
    ("in", "contains"),
    ("=", "~", "!=", "!~"),
    ("<=", "<", ">", ">="),
    ("|",),
    ("is", "as"),
    ("+", "-", "&"),
    ("*", "/", "div", "mod"),
]
_KEYWORD_OPS = {"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.next()
        if tok.text != text or tok.kind not in ("op",):
            raise FhirPathSyntaxError(f"expected {text!r} at position {tok.pos} in {self.text!r}, found {tok.text!r}")
        return tok

    def is_op(self, ops: tuple[str, ...]) -> bool:
        tok = self.peek()
        if tok.kind == "op":
            return tok.text in ops
        return tok.kind == "ident" and tok.text in ops and tok.text in _KEYWORD_OPS

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise FhirPathSyntaxError("empty expression")
        node = self.binary(0)
        tok = self.peek()
        if tok.kind != "eof":
            raise FhirPathSyntaxError(f"unexpected {tok.text!r} at position {tok.pos} in {self.text!r}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.is_op(_LEVELS[level]):
            op = self.next().text
            if op in ("is", "as"):
                left = TypeOp(op, left, self.type_specifier())
                continue
            right = self.binary(level + 1)
            left = Binary(op, left, right)
        return left

    def type_specifier(self) -> str:
        parts = [self.identifier()]
        while self.peek().text == "." and self.peek().kind == "op":
            self.next()
            parts.append(self.identifier())
        return ".".join(parts)

    def identifier(self) -> str:
        tok = self.next()
        if tok.kind == "ident":
            return tok.text
        if tok.kind == "delimited":
            return _unescape(tok.text[1:-1])
        raise FhirPathSyntaxError(f"expected a name at position {tok.pos} in {self.text!r}, found {tok.text!r}")

    def unary(self) -> Node:
        if self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.next().text
            return Unary(op, self.unary())
        return self.postfix()

    def postfix(self) -> Node:
        node = self.term()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text == ".":
                self.next()
                node = self.invocation(node)
            elif tok.kind == "op" and tok.text == "[":
                self.next()
                index = self.binary(0)
                self.expect("]")
                node = Index(node, index)
            else:
                return node

    def invocation(self, base: Node | None) -> Node:
        tok = self.peek()
        if tok.kind == "special":
            self.next()
            return {"$this": This(), "$index": IndexVar()}.get(tok.text, This())
        name = self.identifier()
        if self.peek().kind == "op" and self.peek().text == "(":
            self.next()
            args: list[Node] = []
            if not (self.peek().kind == "op" and self.peek().text == ")"):
                args.append(self.binary(0))
                while self.peek().kind == "op" and self.peek().text == ",":
                    self.next()
                    args.append(self.binary(0))
            self.expect(")")
            return Call(base, name, tuple(args))
        return Member(base, name)

    def term(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.next()
            if "." in tok.text:
                return Literal(float(tok.text), "number")
            return Literal(int(tok.text), "integer")
        if tok.kind == "string":
            self.next()
            return Literal(_unescape(tok.text[1:-1]), "string")
        if tok.kind in ("date", "datetime", "time"):
            self.next()
            return Literal(tok.text[1:].lstrip("T") if tok.kind == "time" else tok.text[1:], tok.kind)
        if tok.kind == "constant":
            self.next()
            body = tok.text[1:]
            if body[:1] in ("`", "'"):
                body = _unescape(body[1:-1])
            return Constant(body)
        if tok.kind == "special":
            self.next()
            return IndexVar() if tok.text == "$index" else This()
        if tok.kind == "op" and tok.text == "(":
            self.next()
            node = self.binary(0)
            self.expect(")")
            return node
        if tok.kind == "op" and tok.text == "{":
            self.next()
            self.expect("}")
            return Literal(None, "empty")
        if tok.kind == "ident" and tok.text in ("true", "false"):
            self.next()
            return Literal(tok.text == "true", "boolean")
        if tok.kind in ("ident", "delimited"):
            return self.invocation(None)
        raise FhirPathSyntaxError(
            f"unexpected {tok.text or 'end of expression'!r} at position {tok.pos} in {self.text!r}"
        )


def parse(text: str) -> Node:
    """Parse a FHIRPath expression or raise FhirPathSyntaxError naming the position."""
    if not isinstance(text, str):
        raise FhirPathSyntaxError(f"a FHIRPath expression must be a string, not {type(text).__name__}")
    return _Parser(text).parse()
