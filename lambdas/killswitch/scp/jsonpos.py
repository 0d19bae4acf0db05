"""Strict JSON with positions: a small parser that keeps the line/column of every key and value.

The stdlib `json` module does the syntax check (its `JSONDecodeError` carries line and column); this module then
walks the same text once more to record where each key and value starts, and to find duplicate keys (which `json`
silently collapses). Comments and trailing commas, which JSON forbids but editors tolerate, get their own codes.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"')
_LITERALS = {"true": True, "false": False, "null": None}


@dataclass
class Node:
    """A JSON value with the 1-based line/column where it starts."""

    line: int
    col: int
    value: Any = None  # scalars: the Python value; objects/arrays: None (see members/items)
    kind: str = "scalar"  # "object" | "array" | "scalar"
    members: list[Member] = field(default_factory=list)
    items: list[Node] = field(default_factory=list)

    def get(self, key: str) -> Member | None:
        """First member with this exact key (objects only)."""
        return next((m for m in self.members if m.key == key), None)

    def to_python(self) -> Any:
        if self.kind == "object":
            return {m.key: m.value.to_python() for m in self.members}
        if self.kind == "array":
            return [i.to_python() for i in self.items]
        return self.value


@dataclass
class Member:
    key: str
    line: int
    col: int
    value: Node


@dataclass(frozen=True)
class JsonProblem:
    line: int
    col: int
    kind: str  # "syntax" | "comment" | "trailing_comma" | "duplicate_key"
    message: str


class _Positions:
    def __init__(self, text: str):
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_right(self._starts, pos) - 1
        return i + 1, pos - self._starts[i] + 1


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def syntax_problem(text: str) -> JsonProblem | None:
    """The first syntax error of `text`, classified (comment, trailing comma or other); None when it is JSON."""
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        pos = exc.pos
        rest = text[pos : pos + 2]
        if rest in ("//", "/*") or text[pos : pos + 1] == "#":
            return JsonProblem(exc.lineno, exc.colno, "comment", "comments are not allowed in JSON")
        before = text[:pos].rstrip()
        if before.endswith(",") and text[pos : pos + 1] in ("}", "]"):
            line, col = _Positions(text).at(len(before) - 1)
            return JsonProblem(line, col, "trailing_comma", "trailing comma is not allowed in JSON")
        return JsonProblem(exc.lineno, exc.colno, "syntax", f"invalid JSON: {exc.msg}")
    except ValueError as exc:  # NaN / Infinity
        m = re.search(r"-?\b(NaN|Infinity)\b", text)
        line, col = _Positions(text).at(m.start()) if m else (1, 1)
        return JsonProblem(line, col, "syntax", f"invalid JSON: {exc} is not a JSON value")
    return None


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.where = _Positions(text)
        self.problems: list[JsonProblem] = []

    def _ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        self.pos = m.end() if m else self.pos

    def _string(self) -> str:
        m = _STRING.match(self.text, self.pos)
        if not m:  # unreachable for text that json.loads accepted
            raise ValueError(f"expected a string at offset {self.pos}")
        self.pos = m.end()
        return str(json.loads(m.group(0)))

    def value(self) -> Node:
        self._ws()
        line, col = self.where.at(self.pos)
        ch = self.text[self.pos]
        if ch == "{":
            return self._object(line, col)
        if ch == "[":
            return self._array(line, col)
        if ch == '"':
            return Node(line, col, self._string())
        for word, val in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return Node(line, col, val)
        m = _NUMBER.match(self.text, self.pos)
        if not m:  # unreachable for text that json.loads accepted
            raise ValueError(f"unexpected character at {line}:{col}")
        self.pos = m.end()
        num = m.group(0)
        return Node(line, col, float(num) if any(c in num for c in ".eE") else int(num))

    def _object(self, line: int, col: int) -> Node:
        node = Node(line, col, kind="object")
        seen: dict[str, Member] = {}
        self.pos += 1
        self._ws()
        if self.text[self.pos] == "}":
            self.pos += 1
            return node
        while True:
            self._ws()
            kline, kcol = self.where.at(self.pos)
            key = self._string()
            self._ws()
            self.pos += 1  # ':'
            member = Member(key, kline, kcol, self.value())
            if key in seen:
                first = seen[key]
                self.problems.append(
                    JsonProblem(kline, kcol, "duplicate_key", f"duplicate key {key!r} (first at line {first.line})")
                )
            else:
                seen[key] = member
            node.members.append(member)
            self._ws()
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "}":
                return node

    def _array(self, line: int, col: int) -> Node:
        node = Node(line, col, kind="array")
        self.pos += 1
        self._ws()
        if self.text[self.pos] == "]":
            self.pos += 1
            return node
        while True:
            node.items.append(self.value())
            self._ws()
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "]":
                return node


def parse(text: str) -> tuple[Node | None, list[JsonProblem]]:
    """Parse strict JSON. Returns (root, problems): root is None when there is a syntax problem."""
    problem = syntax_problem(text)
    if problem:
        return None, [problem]
    parser = _Parser(text)
    root = parser.value()
    return root, parser.problems
