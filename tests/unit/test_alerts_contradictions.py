"""Issue 15 item 2: a Budgets letter that contradicts itself is refused with a reason, never guessed.

Every genuine variant of docs/aws-behaviour.md (monthly, daily, FORECASTED, CRLF, thousands separators, a missing amount
line, a threshold as a percentage) keeps parsing: see test_alerts_budgets.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from killswitch.config import KillSwitchConfig
from killswitch.kill.alerts import Alert, Rejected, parse_message
from tests.unit.alerts_support import BUDGET_SUBJECT, FIXTURES, letter

ACTUAL = letter("budget_monthly_actual.txt")  # Test Budget: $0.59 of $0.20, threshold $0.16
THOUSANDS = letter("budget_thousands.txt")  # Test Budget: $1,234.56 of $1,200.00, threshold $1,140.00


def _refused(text: str, config: KillSwitchConfig, *, subject: str | None = None) -> str:
    result = parse_message(text, config, subject=subject, message_id="m-1")
    assert isinstance(result, Rejected), result
    assert result.message_id == "m-1"
    assert result.raw == text
    return result.reason


AMOUNT, TYPE, NAME = "ACTUAL Amount: $0.59", "Alert Type: ACTUAL", "Budget Name: Test Budget"
CONTRADICTIONS = [
    ([(TYPE, f"{TYPE}\nAlert Type: FORECASTED")], "'Alert Type' lines"),
    ([(AMOUNT, f"ACTUAL Amount: $0.01\n{AMOUNT}")], "'ACTUAL Amount'"),
    ([("Budgeted Amount: $0.20", "Budgeted Amount: $0.20\nBudgeted Amount: $20.00")], "'Budgeted Amount'"),
    ([(NAME, f"{NAME}\nBudget Name: other")], "'Budget Name' lines"),
    ([(AMOUNT, "FORECASTED Amount: $0.59")], "amount line is 'FORECASTED Amount'"),
    ([(AMOUNT, f"{AMOUNT}\nFORECASTED Amount: $0.70")], "both an 'ACTUAL Amount' and a 'FORECASTED Amount'"),
    ([(AMOUNT, "ACTUAL Amount: $0.10")], "$0.10 and $0.59"),
    ([(TYPE, "Alert Type: FORECASTED"), ("ACTUAL Amount", "FORECASTED Amount")], "speaks of the ACTUAL cost"),
    ([(NAME, "Budget Name: killswitch-log-summarizer")], "more than one budget"),
    ([("AWS Account 111122223333", "AWS Account 111122223333\nAWS Account 444455556666")], "'AWS Account' lines"),
    ([("Alert Threshold: > $0.16", "Alert Threshold: > $0.02")], "alert threshold is $0.02"),
    ([("Alert Threshold: > $0.16", "Alert Threshold: > 50%")], "is not 50% of the $0.20"),
    ([("budget is $0.59.", "budget is $0.59. The ACTUAL Cost associated with this budget is $9.00.")], "one amount"),
]


@pytest.mark.parametrize(("replacements", "expected"), CONTRADICTIONS)
def test_self_contradicting_letters_are_refused(
    example_config: KillSwitchConfig, replacements: list[tuple[str, str]], expected: str
) -> None:
    text = ACTUAL
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    reason = _refused(text, example_config)
    assert expected in reason
    assert "contradicts itself" in reason


def test_two_letters_in_one_message_are_refused(example_config: KillSwitchConfig) -> None:
    reason = _refused(ACTUAL + "\n" + letter("budget_monthly_forecasted.txt"), example_config)
    assert "2 AWS Budgets letters" in reason
    assert "2 AWS Budgets letters" in _refused(ACTUAL + "\n" + ACTUAL, example_config)


def test_subject_naming_another_budget_is_a_contradiction(example_config: KillSwitchConfig) -> None:
    subject = BUDGET_SUBJECT.format(name="killswitch-log-summarizer")
    assert "more than one budget" in _refused(ACTUAL, example_config, subject=subject)
    # the subject AWS really sends (same name) is fine
    assert isinstance(parse_message(ACTUAL, example_config, subject=BUDGET_SUBJECT.format(name="Test Budget")), Alert)


@pytest.mark.parametrize(
    "number",
    ["260,0", "$260,0", "$2,60.00", "$1.234,56", "$1,2345.00", "1,234.56", "USD 1,234.56", "$ 1,234.56", "$12,34"],
)
def test_numbers_not_in_aws_form_are_refused(example_config: KillSwitchConfig, number: str) -> None:
    """`260,0` under the threshold was read as 2600 and killed; now it is refused and named."""
    text = THOUSANDS.replace("ACTUAL Amount: $1,234.56", f"ACTUAL Amount: {number}")
    reason = _refused(text, example_config)
    assert "ACTUAL amount" in reason
    assert number.strip() in reason or "form" in reason


@pytest.mark.parametrize("number", ["$1,234.56", "$1234.56"])
def test_both_aws_number_forms_are_read(example_config: KillSwitchConfig, number: str) -> None:
    text = THOUSANDS.replace("ACTUAL Amount: $1,234.56", f"ACTUAL Amount: {number}")
    result = parse_message(text.replace("this budget is $1,234.56.", f"this budget is {number}."), example_config)
    assert isinstance(result, Alert), result
    assert result.amount_usd == 1234.56


def test_a_repeated_identical_line_is_not_a_contradiction(example_config: KillSwitchConfig) -> None:
    result = parse_message(
        ACTUAL.replace("Alert Type: ACTUAL", "Alert Type: ACTUAL\nAlert Type:  ACTUAL"), example_config
    )
    assert isinstance(result, Alert), result
    assert result.amount_usd == 0.59


# A fuzz like the one in the issue: every fixture letter with lines dropped, repeated, garbled or a number bent into
# another form. A letter that is accepted keeps exactly the figures of its genuine version (or lacks one).
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GENUINE = sorted(p.name for p in FIXTURES.glob("budget_*.txt"))
_MONEY = re.compile(r"\$[\d,]+\.\d\d")
BENDS: list[Callable[[re.Match[str]], str]] = [
    lambda m: m.group(0).replace(",", "").replace(".", ","),  # $1,234.56 -> $1234,56
    lambda m: m.group(0).replace(".", ",")[:-1],  # $260.00 -> $260,0
    lambda m: m.group(0).lstrip("$"),  # no dollar sign
]


@st.composite
def bent_letter(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(GENUINE))
    out: list[str] = []
    for line in letter(name).splitlines(keepends=True):
        op = draw(st.sampled_from(["keep", "keep", "keep", "drop", "dup", "bend", "other"]))
        if op == "keep":
            out.append(line)
        elif op == "dup":
            out.extend([line, line])
        elif op == "bend":  # a number in another (European, ungrouped-with-comma, truncated) form
            out.append(_MONEY.sub(BENDS[draw(st.integers(0, len(BENDS) - 1))], line))
        elif op == "other":  # the same line with another figure
            out.append(_MONEY.sub("$7.77", line))
    return name, "".join(out)


@FUZZ
@given(case=bent_letter())
def test_accepted_fuzzed_letters_keep_their_genuine_figures(
    example_config: KillSwitchConfig, case: tuple[str, str]
) -> None:
    name, text = case
    result = parse_message(text, example_config)
    if isinstance(result, Rejected):
        assert result.reason and not result.reason.startswith("internal error")
        return
    genuine = parse_message(letter(name), example_config)
    assert isinstance(genuine, Alert), f"{name}: a refused letter became acceptable by mutation: {result}"
    for figure in ("amount_usd", "budgeted_usd", "threshold_usd"):
        got = getattr(result, figure)
        if got is not None and "$7.77" not in text:
            assert got == getattr(genuine, figure), (figure, text)
    assert result.kind == genuine.kind
    assert result.agent == genuine.agent
