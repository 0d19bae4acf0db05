"""The position-aware JSON scan agrees with the stdlib parser, and every key's position points at that key."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from killswitch.scp.jsonpos import Node, parse
from killswitch.scp.validator import CODES, validate_text

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _offset(text: str, line: int, col: int) -> int:
    return sum(len(x) + 1 for x in text.split("\n")[: line - 1]) + col - 1


def _check_positions(text: str, node: Node) -> None:
    """Decoding the text from each recorded position yields exactly that key or value."""
    decoder = json.JSONDecoder()
    assert decoder.raw_decode(text, _offset(text, node.line, node.col))[0] == node.to_python()
    for m in node.members:
        assert decoder.raw_decode(text, _offset(text, m.line, m.col))[0] == m.key
        _check_positions(text, m.value)
    for item in node.items:
        _check_positions(text, item)


@settings(max_examples=150, deadline=None)
@given(value=values, indent=st.sampled_from([None, 0, 2]), ascii_only=st.booleans())
def test_scan_matches_stdlib_and_positions_point_at_values(value: Any, indent: int | None, ascii_only: bool) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    root, problems = parse(text)
    assert problems == []
    assert root is not None
    assert root.to_python() == json.loads(text)
    _check_positions(text, root)


@settings(max_examples=100, deadline=None)
@given(key=st.text(min_size=1, max_size=6), first=scalars, second=scalars)
def test_duplicate_key_is_reported_at_the_second_occurrence(key: str, first: Any, second: Any) -> None:
    k = json.dumps(key)
    text = "{\n  " + k + ": " + json.dumps(first) + ",\n  " + k + ": " + json.dumps(second) + "\n}"
    root, problems = parse(text)
    assert root is not None
    assert [(p.kind, p.line, p.col) for p in problems] == [("duplicate_key", 3, 3)]
    assert "(first at line 2)" in problems[0].message


statement_parts = st.fixed_dictionaries(
    {},
    optional={
        "Sid": scalars | st.just("S1"),
        "Effect": st.sampled_from(["Deny", "Allow", "deny"]) | values,
        "Action": values | st.sampled_from(["*", "ec2:RunInstances", ["ec2:Run*", "bogus"]]),
        "NotAction": values,
        "Resource": values | st.just("*"),
        "Condition": values
        | st.just({"ArnNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/BreakGlass"}})
        | st.dictionaries(st.sampled_from(["Null", "ForAnyValue:StringLike", "X:Y:Z", ""]), values, max_size=2),
        "Principal": values,
    },
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "Version": st.just("2012-10-17") | scalars,
        "Statement": statement_parts | st.lists(statement_parts | values, max_size=3) | values,
    },
)


@settings(max_examples=200, deadline=None)
@given(doc=documents | values)
def test_validator_never_crashes_on_odd_documents(doc: Any) -> None:
    findings = validate_text(json.dumps(doc, indent=1), "f.json")
    assert all(f.code in CODES and f.line >= 1 and f.col >= 1 for f in findings)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet='{}[]":,/ \n*#ab01', max_size=40))
def test_validator_never_crashes_on_odd_text(text: str) -> None:
    findings = validate_text(text, "f.json")
    assert findings  # no random text is a valid kill-switch SCP
    assert all(f.line >= 1 and f.col >= 1 for f in findings)
