"""The condition language of the suite data.

A condition is what a ``when`` field or a route rule holds. Grammar::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | atom
    atom    := "(" expr ")" | TRAIT | operand [OP operand]
    operand := $NAME | ${NAME} | $1..$9 | "text" | 'text' | NUMBER | @fn(args)
    OP      := == | != | =~ | -eq | -ne | -gt | -ge | -lt | -le

A bare trait name is the job's trait (a named glob on BUILD_ENVIRONMENT or TEST_CONFIG,
see ``traits.toml``). A bare operand is true when it expands to a non-empty string
(bash's ``-n``). ``==`` and ``!=`` match the right side as a bash pattern, as ``[[ ]]``
does; the ``-xx`` operators compare integers. Tests on BUILD_ENVIRONMENT and
TEST_CONFIG must go through traits, so that each such test is written once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from .bash import glob_match

__all__ = ["Condition", "ConditionError", "Resolver", "parse_condition"]

TRAIT_ONLY_VARIABLES = frozenset({"BUILD_ENVIRONMENT", "TEST_CONFIG"})


class ConditionError(ValueError):
    """A condition that does not parse, or cannot be evaluated."""


class Resolver(Protocol):
    """What a condition needs from the state it is evaluated in."""

    def trait(self, name: str) -> bool: ...

    def expand(self, word: str) -> str: ...


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lp>\() | (?P<rp>\)) |
        (?P<op>==|!=|=~|-eq\b|-ne\b|-gt\b|-ge\b|-lt\b|-le\b) |
        (?P<str>"(?:[^"\\]|\\.)*"|'[^']*') |
        (?P<fn>@\w+\([^()]*\)) |
        (?P<var>\$\{\w+\}|\$\w+|\$[0-9#@]) |
        (?P<num>-?\d+(?![\w.])) |
        (?P<word>[A-Za-z_][\w.-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not"})


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"cannot read {text[pos:]!r} in condition {text!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "word" and value in _KEYWORDS:
            kind = value
        toks.append(_Tok(kind, value))
        pos = m.end()
    return toks


class Condition:
    """A parsed condition; ``evaluate`` it against a :class:`Resolver`."""

    def __init__(self, source: str, node: _Node) -> None:
        self.source = source
        self._node = node

    def evaluate(self, resolver: Resolver) -> bool:
        return self._node.eval(resolver)

    def traits(self) -> set[str]:
        """The trait names this condition uses."""
        found: set[str] = set()
        self._node.collect_traits(found)
        return found

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"


class _Node:
    def eval(self, r: Resolver) -> bool:
        raise NotImplementedError

    def collect_traits(self, found: set[str]) -> None:
        pass


@dataclass(frozen=True)
class _Trait(_Node):
    name: str

    def eval(self, r: Resolver) -> bool:
        return r.trait(self.name)

    def collect_traits(self, found: set[str]) -> None:
        found.add(self.name)


@dataclass(frozen=True)
class _Not(_Node):
    inner: _Node

    def eval(self, r: Resolver) -> bool:
        return not self.inner.eval(r)

    def collect_traits(self, found: set[str]) -> None:
        self.inner.collect_traits(found)


@dataclass(frozen=True)
class _BoolOp(_Node):
    op: str
    parts: tuple[_Node, ...]

    def eval(self, r: Resolver) -> bool:
        if self.op == "and":
            return all(p.eval(r) for p in self.parts)
        return any(p.eval(r) for p in self.parts)

    def collect_traits(self, found: set[str]) -> None:
        for p in self.parts:
            p.collect_traits(found)


def _operand_value(tok: _Tok, r: Resolver) -> str:
    if tok.kind == "str":
        body = tok.text[1:-1]
        if tok.text[0] == '"':
            return r.expand(re.sub(r"\\(.)", r"\1", body))
        return body
    if tok.kind == "num":
        return tok.text
    return r.expand(tok.text)


def _to_int(value: str, source: str) -> int:
    value = value.strip()
    if value == "":
        return 0
    try:
        return int(value)
    except ValueError:
        raise ConditionError(f"{value!r} is not an integer in condition {source!r}") from None


@dataclass(frozen=True)
class _Test(_Node):
    left: _Tok
    op: str | None
    right: _Tok | None
    source: str

    def eval(self, r: Resolver) -> bool:
        left = _operand_value(self.left, r)
        if self.op is None or self.right is None:
            return left != ""
        right = _operand_value(self.right, r)
        if self.op == "==":
            return glob_match(left, right)
        if self.op == "!=":
            return not glob_match(left, right)
        if self.op == "=~":
            return re.search(right, left) is not None
        a, b = _to_int(left, self.source), _to_int(right, self.source)
        return {
            "-eq": a == b,
            "-ne": a != b,
            "-gt": a > b,
            "-ge": a >= b,
            "-lt": a < b,
            "-le": a <= b,
        }[self.op]


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokenize(source)
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ConditionError(f"condition {self.source!r} ends too early")
        self.pos += 1
        return tok

    def parse(self) -> _Node:
        if not self.toks:
            raise ConditionError("empty condition")
        node = self.parse_or()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek().text!r} in condition {self.source!r}")  # type: ignore[union-attr]
        return node

    def parse_or(self) -> _Node:
        parts = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else _BoolOp("or", tuple(parts))

    def parse_and(self) -> _Node:
        parts = [self.parse_not()]
        while (tok := self.peek()) is not None and tok.kind == "and":
            self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else _BoolOp("and", tuple(parts))

    def parse_not(self) -> _Node:
        tok = self.peek()
        if tok is not None and tok.kind == "not":
            self.take()
            return _Not(self.parse_not())
        return self.parse_atom()

    def refuse_trait_variable(self, tok: _Tok) -> None:
        names = re.findall(r"\$\{?(\w+)", tok.text) if tok.kind in ("var", "str", "fn") else []
        for name in names:
            if name in TRAIT_ONLY_VARIABLES:
                raise ConditionError(
                    f"condition {self.source!r} tests ${name} directly: "
                    "name the test as a trait in traits.toml and use the trait"
                )

    def parse_atom(self) -> _Node:
        tok = self.take()
        if tok.kind == "lp":
            node = self.parse_or()
            close = self.take()
            if close.kind != "rp":
                raise ConditionError(f"missing ')' in condition {self.source!r}")
            return node
        if tok.kind == "word":
            nxt = self.peek()
            if nxt is None or nxt.kind != "op":
                return _Trait(tok.text)
            tok = _Tok("str", f"'{tok.text}'")
        if tok.kind in ("var", "str", "num", "fn"):
            self.refuse_trait_variable(tok)
            nxt = self.peek()
            if nxt is not None and nxt.kind == "op":
                self.take()
                right = self.take()
                if right.kind not in ("var", "str", "num", "fn", "word"):
                    raise ConditionError(f"bad right operand {right.text!r} in {self.source!r}")
                self.refuse_trait_variable(right)
                if right.kind == "word":
                    right = _Tok("str", f"'{right.text}'")
                return _Test(tok, nxt.text, right, self.source)
            return _Test(tok, None, None, self.source)
        raise ConditionError(f"unexpected {tok.text!r} in condition {self.source!r}")


def parse_condition(source: str) -> Condition:
    """Parse ``source``; raises :class:`ConditionError` with the reason."""
    return Condition(source, _Parser(source).parse())
