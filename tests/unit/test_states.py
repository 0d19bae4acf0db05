"""One agent state, one report status, one period: the types the engine, the guard, the report and the meter share,
with their wire values unchanged."""

from __future__ import annotations

import json
from datetime import date

import pytest

from killswitch import config, periods
from killswitch.guard import Caps, Guard, InMemoryLedger, Mode
from killswitch.kill import model
from killswitch.kill.model import KillReport, KillStatus, Operation
from killswitch.meter import estimate
from killswitch.spend import report
from killswitch.states import AgentState, ReportStatus


def test_one_agent_state_for_the_engine_and_the_guard() -> None:
    assert model.AgentState is AgentState and Mode is AgentState
    assert Mode.STOPPED is AgentState.KILLED
    assert [s.value for s in AgentState] == ["OK", "THRIFT", "KILLED"]  # the ledger's strings
    assert [s.label for s in AgentState] == ["ok", "thrift", "killed"]  # the report's


def test_the_guard_past_its_period_cap_is_killed() -> None:
    guard = Guard("bot", Caps(per_day_usd=1.0), InMemoryLedger())
    with guard.run() as run:
        run.charge_usd(1.0)
    assert guard.mode is AgentState.KILLED


@pytest.mark.parametrize(
    ("stored", "state"),
    [
        ("KILLED", AgentState.KILLED),
        ("thrift", AgentState.THRIFT),
        (" ok ", AgentState.OK),
        ("gone", None),
        (None, None),
    ],
)
def test_parse_the_stored_state(stored: object, state: AgentState | None) -> None:
    assert AgentState.parse(stored) is state


def test_report_status_is_an_enum_with_the_event_strings() -> None:
    rep = KillReport(Operation.RESTORE, "bot", status=ReportStatus(KillStatus.RESTORED.value))
    assert rep.status is ReportStatus.RESTORED
    assert json.loads(json.dumps(rep.to_event()))["status"] == "restored"
    assert {s.value for s in KillStatus} <= {s.value for s in ReportStatus}  # a kill's status is a report status
    assert KillReport(Operation.NONE, None).to_event()["status"] == ""


def test_one_period_type_and_one_implementation() -> None:
    assert config.Period is periods.Period
    assert report.period_start is periods.period_start is estimate.period_start
    assert estimate.period_key is periods.period_key
    day = date(2026, 11, 22)
    assert [periods.period_key(p, day) for p in periods.Period] == ["2026-11-22", "2026-11", "2026-Q4", "2026"]
    assert [periods.period_start(p, day) for p in periods.Period] == [
        day,
        date(2026, 11, 1),
        date(2026, 10, 1),
        date(2026, 1, 1),
    ]
