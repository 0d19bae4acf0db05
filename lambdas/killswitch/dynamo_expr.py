"""DynamoDB condition and update expressions, evaluated on wire-format items, for the in-memory twin.

Covers what the ledgers send (`killswitch.items`): comparisons (`= <> < <= > >=`), `BETWEEN`, `IN`, `AND`/`OR`/
`NOT`, parentheses, `attribute_exists`, `attribute_not_exists`, `begins_with`, `contains`; updates with `SET`
(`a + b`, `a - b`, `if_not_exists(a, b)`), `ADD` (numbers, sets) and `REMOVE`. Paths are top-level attribute names
or `#aliases`; anything else is refused with a ValueError rather than evaluated differently from DynamoDB.
Semantics follow DynamoDB: comparisons involving a missing attribute or two different types are false, strings
compare by code point (= UTF-8 byte order), numbers as decimals, and every `SET` reads the item as it was before
the update.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

Wire = dict[str, Any]  # one attribute value in the wire format, e.g. {"S": "x"} or {"N": "1.5"}
Node = tuple[Any, ...]

_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)|(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_FUNCTIONS = frozenset({"attribute_exists", "attribute_not_exists", "begins_with", "contains"})
_CLAUSES = frozenset({"SET", "ADD", "REMOVE", "DELETE"})


class ExpressionError(ValueError):
    """DynamoDB would answer ValidationException (bad syntax, undefined name or value, wrong operand type)."""


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"Invalid expression: unsupported syntax at {text[pos : pos + 20]!r} in {text!r}")
        out.append(m.group(m.lastgroup or "op"))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> str | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.upper() == word:
            self.i += 1
            return True
        return False

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok.upper() != expected.upper()):
            raise ExpressionError(f"Invalid expression: expected {expected or 'a token'} at {tok!r} in {self.text!r}")
        self.i += 1
        return tok

    def done(self) -> None:
        if self.peek() is not None:
            raise ExpressionError(f"Invalid expression: unexpected {self.peek()!r} in {self.text!r}")

    # -- conditions -----------------------------------------------------------------------------------------
    def condition(self) -> Node:
        node = self.conjunction()
        while self.keyword("OR"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.keyword("AND"):
            node = ("and", node, self.negation())
        return node

    def negation(self) -> Node:
        if self.keyword("NOT"):
            return ("not", self.negation())
        return self.primary()

    def primary(self) -> Node:
        if self.peek() == "(":
            self.take("(")
            node = self.condition()
            self.take(")")
            return node
        tok = self.peek() or ""
        if tok in _FUNCTIONS and self.peek(1) == "(":
            self.i += 2
            args = [self.operand()]
            while self.peek() == ",":
                self.take(",")
                args.append(self.operand())
            self.take(")")
            return ("fn", tok, tuple(args))
        left = self.operand()
        op = self.peek()
        if op in _COMPARATORS:
            self.i += 1
            return ("cmp", op, left, self.operand())
        if self.keyword("BETWEEN"):
            low = self.operand()
            self.take("AND")
            return ("between", left, low, self.operand())
        if self.keyword("IN"):
            self.take("(")
            options = [self.operand()]
            while self.peek() == ",":
                self.take(",")
                options.append(self.operand())
            self.take(")")
            return ("in", left, tuple(options))
        raise ExpressionError(f"Invalid expression: expected a comparison after {tok!r} in {self.text!r}")

    def operand(self) -> Node:
        tok = self.take()
        if tok.startswith(":"):
            return ("value", tok)
        if tok.startswith("#") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            return ("path", tok)
        raise ExpressionError(f"Invalid expression: unexpected {tok!r} in {self.text!r}")

    # -- updates --------------------------------------------------------------------------------------------
    def update(self) -> list[Node]:
        actions: list[Node] = []
        while self.peek() is not None:
            clause = self.take().upper()
            if clause not in _CLAUSES or clause == "DELETE":
                raise ExpressionError(f"Invalid UpdateExpression: unsupported clause {clause!r} in {self.text!r}")
            while True:
                path = self.operand()
                if path[0] != "path":
                    raise ExpressionError(f"Invalid UpdateExpression: {path[1]!r} is not a path in {self.text!r}")
                if clause == "SET":
                    self.take("=")
                    actions.append(("set", path, self.set_value()))
                elif clause == "ADD":
                    actions.append(("add", path, self.operand()))
                else:
                    actions.append(("remove", path))
                if self.peek() != ",":
                    break
                self.take(",")
        if not actions:
            raise ExpressionError("Invalid UpdateExpression: the expression is empty")
        return actions

    def set_value(self) -> Node:
        left = self.set_operand()
        if self.peek() in ("+", "-"):
            op = self.take()
            return ("arith", op, left, self.set_operand())
        return left

    def set_operand(self) -> Node:
        if self.peek() == "if_not_exists" and self.peek(1) == "(":
            self.i += 2
            path = self.operand()
            self.take(",")
            fallback = self.set_value()
            self.take(")")
            return ("if_not_exists", path, fallback)
        return self.operand()


@lru_cache(maxsize=512)
def parse_condition(text: str) -> Node:
    parser = _Parser(text)
    node = parser.condition()
    parser.done()
    return node


@lru_cache(maxsize=512)
def parse_update(text: str) -> tuple[Node, ...]:
    return tuple(_Parser(text).update())


class Context:
    """Names and values of one request, resolved the way DynamoDB resolves them."""

    def __init__(self, names: Mapping[str, str] | None, values: Mapping[str, Wire] | None):
        self.names = names or {}
        self.values = values or {}

    def name(self, node: Node) -> str:
        token = node[1]
        if not token.startswith("#"):
            return str(token)
        if token not in self.names:
            raise ExpressionError(f"An expression attribute name used in the document path is not defined: {token}")
        return self.names[token]

    def operand(self, node: Node, item: Mapping[str, Wire]) -> Wire | None:
        if node[0] == "value":
            if node[1] not in self.values:
                raise ExpressionError(f"An expression attribute value used in expression is not defined: {node[1]}")
            return self.values[node[1]]
        if node[0] == "path":
            return item.get(self.name(node))
        if node[0] == "if_not_exists":
            current = item.get(self.name(node[1]))
            return current if current is not None else self.operand(node[2], item)
        if node[0] == "arith":
            return _arith(node[1], self.operand(node[2], item), self.operand(node[3], item))
        raise ExpressionError(f"Invalid expression: unsupported operand {node[0]}")


def _type(value: Wire) -> str:
    return next(iter(value))


def _number(value: Wire) -> Decimal:
    return Decimal(value["N"])


def number_text(value: Decimal) -> str:
    """DynamoDB's text for a computed number: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _arith(op: str, left: Wire | None, right: Wire | None) -> Wire:
    if left is None or right is None:
        raise ExpressionError("The provided expression refers to an attribute that does not exist in the item")
    if _type(left) != "N" or _type(right) != "N":
        raise ExpressionError("An operand in the update expression has an incorrect data type")
    result = _number(left) + _number(right) if op == "+" else _number(left) - _number(right)
    return {"N": number_text(result)}


def _comparable(value: Wire) -> Any:
    kind = _type(value)
    if kind == "N":
        return _number(value)
    if kind in ("S", "B", "BOOL", "NULL"):
        return value[kind]
    if kind in ("SS", "BS"):
        return frozenset(value[kind])
    if kind == "NS":
        return frozenset(Decimal(v) for v in value[kind])
    return value[kind]


def _compare(op: str, left: Wire | None, right: Wire | None) -> bool:
    if left is None or right is None or _type(left) != _type(right):
        return op == "<>" and not (left is None and right is None)
    a, b = _comparable(left), _comparable(right)
    if op == "=":
        return bool(a == b)
    if op == "<>":
        return bool(a != b)
    if _type(left) not in ("N", "S", "B"):
        raise ExpressionError(f"Invalid ConditionExpression: {op} does not apply to type {_type(left)}")
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def evaluate(node: Node, item: Mapping[str, Wire], ctx: Context) -> bool:
    """Truth of a parsed condition on `item` (an empty mapping for an item that does not exist)."""
    kind = node[0]
    if kind == "or":
        return evaluate(node[1], item, ctx) or evaluate(node[2], item, ctx)
    if kind == "and":
        return evaluate(node[1], item, ctx) and evaluate(node[2], item, ctx)
    if kind == "not":
        return not evaluate(node[1], item, ctx)
    if kind == "cmp":
        return _compare(node[1], ctx.operand(node[2], item), ctx.operand(node[3], item))
    if kind == "between":
        value = ctx.operand(node[1], item)
        return _compare(">=", value, ctx.operand(node[2], item)) and _compare("<=", value, ctx.operand(node[3], item))
    if kind == "in":
        value = ctx.operand(node[1], item)
        return any(_compare("=", value, ctx.operand(option, item)) for option in node[2])
    if kind == "fn":
        return _function(node[1], node[2], item, ctx)
    raise ExpressionError(f"Invalid expression: unsupported node {kind}")


def _function(name: str, args: tuple[Node, ...], item: Mapping[str, Wire], ctx: Context) -> bool:
    if name in ("attribute_exists", "attribute_not_exists"):
        if len(args) != 1 or args[0][0] != "path":
            raise ExpressionError(f"Invalid ConditionExpression: {name} takes one path")
        exists = ctx.name(args[0]) in item
        return exists if name == "attribute_exists" else not exists
    if len(args) != 2:
        raise ExpressionError(f"Invalid ConditionExpression: {name} takes two operands")
    value, arg = ctx.operand(args[0], item), ctx.operand(args[1], item)
    if value is None or arg is None:
        return False
    if name == "begins_with":
        return (
            _type(value) == _type(arg)
            and _type(value) in ("S", "B")
            and value[_type(value)].startswith(arg[_type(arg)])
        )
    # contains: a substring of a string, or a member of a set or list
    kind = _type(value)
    if kind == "S":
        return _type(arg) == "S" and arg["S"] in value["S"]
    if kind in ("SS", "NS", "BS"):
        return _type(arg) == kind[0] and _comparable(arg) in _comparable(value)
    if kind == "L":
        return arg in value["L"]
    return False


def apply_update(
    actions: tuple[Node, ...], item: Mapping[str, Wire], ctx: Context, key_names: tuple[str, ...]
) -> dict[str, Wire]:
    """The item after the update. Every right-hand side reads the item as it was before (DynamoDB semantics)."""
    seen: set[str] = set()
    changes: list[tuple[str, Wire | None]] = []
    for action in actions:
        name = ctx.name(action[1])
        if name in key_names:
            raise ExpressionError(f"Cannot update attribute {name}. This attribute is part of the key")
        if name in seen:
            raise ExpressionError(f"Invalid UpdateExpression: Two document paths overlap with each other: {name}")
        seen.add(name)
        if action[0] == "set":
            changes.append((name, ctx.operand(action[2], item)))
        elif action[0] == "remove":
            changes.append((name, None))
        else:
            changes.append((name, _add(item.get(name), ctx.operand(action[2], item))))
    out = dict(item)
    for name, value in changes:
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def _add(current: Wire | None, value: Wire | None) -> Wire:
    if value is None:
        raise ExpressionError("An expression attribute value used in expression is not defined")
    kind = _type(value)
    if kind not in ("N", "SS", "NS", "BS"):
        raise ExpressionError("Invalid UpdateExpression: ADD takes a number or a set")
    if current is None:
        return value
    if _type(current) != kind:
        raise ExpressionError("An operand in the update expression has an incorrect data type")
    if kind == "N":
        return {"N": number_text(_number(current) + _number(value))}
    return {kind: list(dict.fromkeys([*current[kind], *value[kind]]))}
