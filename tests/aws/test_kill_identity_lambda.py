"""deny_iam and stop_lambda on moto: the agent's tagged roles/users get the deny policy and its tagged functions
reserved concurrency 0; nothing else is touched; restore puts every setting back exactly; errors carry codes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from killswitch.config import KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.model import IAM_ROLE, IAM_USER, LAMBDA_FUNCTION
from killswitch.results import Outcome
from killswitch.testing import sim, sim_kinds
from tests.aws.kill_support import AGENT, EAST, OTHER, WEST, aws, engine

__all__ = ["aws"]


def identity_fleet(c: Clients) -> dict[str, str]:
    t = sim.agent_tags
    f = {"policy": sim_kinds.deny_policy(c)}
    f["role"] = sim_kinds.iam_role(c, "summarizer-runtime", t(AGENT))
    f["user"] = sim_kinds.iam_user(c, "summarizer-ci", t(AGENT))
    f["other_role"] = sim_kinds.iam_role(c, "crawler-runtime", t(OTHER))
    f["untagged_role"] = sim_kinds.iam_role(c, "shared-runtime", {})
    f["exempt_role"] = sim_kinds.iam_role(c, "summarizer-admin", t(AGENT, **{"killswitch:exempt": "true"}))
    f["own_role"] = sim_kinds.iam_role(c, "killswitch-kill-us-east-1", t(AGENT))
    f["break_glass"] = sim_kinds.iam_role(c, "BreakGlass", t(AGENT))
    f["service_linked"] = sim_kinds.iam_role(c, "AWSServiceRoleForX", t(AGENT), path="/aws-service-role/x/")
    f["fn"] = sim_kinds.lambda_function(c, EAST, "summarize", t(AGENT))
    f["fn_reserved"] = sim_kinds.lambda_function(c, WEST, "summarize-west", t(AGENT), reserved=7)
    f["fn_other"] = sim_kinds.lambda_function(c, EAST, "crawl", t(OTHER), reserved=3)
    f["fn_exempt"] = sim_kinds.lambda_function(c, EAST, "summarize-exempt", t(AGENT, **{"killswitch:exempt": "true"}))
    f["fn_untagged"] = sim_kinds.lambda_function(c, EAST, "untagged", {})
    return f


PRINCIPALS = ("role", "user", "other_role", "untagged_role", "exempt_role", "own_role", "break_glass", "service_linked")
FUNCTIONS = (("fn", EAST), ("fn_reserved", WEST), ("fn_other", EAST), ("fn_exempt", EAST), ("fn_untagged", EAST))


def snapshot(c: Clients, f: dict[str, str]) -> dict[str, Any]:
    return sim_kinds.kind_snapshot(c, [f[p] for p in PRINCIPALS], [(r, f[n]) for n, r in FUNCTIONS])


def test_kill_denies_the_agents_principals_zeroes_its_functions_and_restore_is_exact(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    f = identity_fleet(aws)
    before = snapshot(aws, f)
    eng, ledger, _ = engine(example_config, aws)

    report = eng.kill(AGENT, reason="budget")

    got = {r.resource_id: r for r in report.summary.results}
    assert got[f["role"]].outcome is Outcome.SUCCESS and got[f["role"]].action == "deny"
    assert got[f["user"]].outcome is Outcome.SUCCESS and got[f["user"]].resource_type == IAM_USER
    assert sim_kinds.attached_policies(aws, f["role"]) == [f["policy"]]
    assert sim_kinds.attached_policies(aws, f["user"]) == [f["policy"]]
    for spared in ("other_role", "untagged_role", "exempt_role", "own_role", "break_glass", "service_linked"):
        assert sim_kinds.attached_policies(aws, f[spared]) == [], spared
    assert "protected principal" in got[f["own_role"]].message
    assert "protected principal" in got[f["break_glass"]].message
    assert sim_kinds.reserved_concurrency(aws, EAST, f["fn"]) == 0
    assert sim_kinds.reserved_concurrency(aws, WEST, f["fn_reserved"]) == 0
    assert sim_kinds.reserved_concurrency(aws, EAST, f["fn_other"]) == 3
    assert sim_kinds.reserved_concurrency(aws, EAST, f["fn_exempt"]) is None
    assert sim_kinds.reserved_concurrency(aws, EAST, f["fn_untagged"]) is None
    assert got[f["fn"]].action == "throttle" and got[f["fn"]].resource_type == LAMBDA_FUNCTION

    status = {line["resource_id"]: line for line in eng.status(AGENT)[0]["resources"]}
    assert status[f["role"]]["restore"] == "detach the deny policy"
    assert status[f["fn"]]["restore"] == "remove reserved concurrency"
    assert status[f["fn_reserved"]]["restore"] == "reserved concurrency → 7"

    restored = eng.restore(AGENT)
    assert restored.status == "restored", restored.to_dict()["results"]
    assert snapshot(aws, f) == before
    assert all(not k.active for k in ledger.list_kills(AGENT))


def test_second_kill_is_idempotent_and_other_agents_kill_leaves_ours_alone(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    f = identity_fleet(aws)
    eng, _, _ = engine(example_config, aws)
    eng.kill(AGENT)
    after_first = snapshot(aws, f)
    second = eng.kill(AGENT)
    got = {r.resource_id: r for r in second.summary.results}
    assert got[f["role"]].outcome is Outcome.NO_ACTION and "already handled" in got[f["role"]].message
    assert got[f["fn"]].outcome is Outcome.NO_ACTION
    assert snapshot(aws, f) == after_first

    eng.restore(AGENT)
    other = eng.kill(OTHER)  # research-crawler: manual approval, nothing of log-summarizer is even planned
    assert {r.resource_id for r in other.summary.results}.isdisjoint({f["role"], f["user"], f["fn"]})


def test_missing_deny_policy_and_a_vanished_function_get_codes_and_block_nothing(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    f = identity_fleet(aws)
    aws("iam", "us-east-1").delete_policy(PolicyArn=f["policy"])  # stack not deployed in this account
    inner = aws("lambda", EAST)

    class GoneFunction:
        def put_function_concurrency(self, **kw: Any) -> Any:
            if kw["FunctionName"] == f["fn"]:
                raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "Put")
            return inner.put_function_concurrency(**kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    clients = Clients(overrides={("lambda", EAST): GoneFunction()})
    eng, _, _ = engine(example_config, clients)
    report = eng.kill(AGENT)
    got = {r.resource_id: r for r in report.summary.results}
    assert got[f["role"]].outcome is Outcome.ERROR and got[f["role"]].code == "NoSuchEntity"
    assert got[f["fn"]].outcome is Outcome.ERROR and got[f["fn"]].code == "ResourceNotFoundException"
    assert got[f["fn_reserved"]].outcome is Outcome.SUCCESS  # the other region's function is still zeroed
    assert report.status == "partial" and report.exit_code() == 2


def test_iam_role_kind_is_skipped_when_the_action_is_not_enabled(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    f = identity_fleet(aws)
    agents = [
        a.model_copy(update={"actions": ["stop_ec2", "stop_lambda"]}) if a.name == AGENT else a
        for a in example_config.agents
    ]
    eng, _, _ = engine(example_config.model_copy(update={"agents": agents}), aws)
    report = eng.kill(AGENT)
    got = {r.resource_id: r for r in report.summary.results}
    # IAM is not even read (one tag read per principal) when deny_iam is not enabled.
    assert f["role"] not in got and not [r for r in report.summary.results if r.resource_type == IAM_ROLE]
    assert sim_kinds.attached_policies(aws, f["role"]) == []
    assert sim_kinds.reserved_concurrency(aws, EAST, f["fn"]) == 0
