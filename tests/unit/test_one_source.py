"""Things that have exactly one home: ledger keys are built in `killswitch/keys.py`, the metrics namespace is
`killswitch.metrics.METRICS_NAMESPACE`. Scans the code's string literals (docstrings and comments are free to name
them)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "lambdas" / "killswitch"
KEY_PREFIX = re.compile(r"(^|#)(AGENT|GUARD|SPEND|DAY|CAP|LEASE|CHARGE|OUTCOME|METER|KILL|RES|DEDUPE|REJECTED)#")
KEY_SORT_KEYS = {"STATE", "RECORD", "DEDUPE", "TICK"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _literals(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def _sources(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(root.rglob("*.py"))


def test_every_ledger_key_is_built_in_keys_py() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for path in _sources(PACKAGE)
        if path.name != "keys.py"
        for line, text in _literals(path)
        if KEY_PREFIX.search(text) or text in KEY_SORT_KEYS
    ]
    assert found == [], "ledger keys built outside killswitch/keys.py:\n" + "\n".join(found)


def test_one_metrics_namespace_constant() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in _sources(PACKAGE, REPO / "infra", REPO / "bench")
        if path != PACKAGE / "metrics.py"
        for line, text in _literals(path)
        if "AgentKillSwitch" in text
    ]
    assert found == [], "metrics namespace written outside killswitch/metrics.py:\n" + "\n".join(found)
