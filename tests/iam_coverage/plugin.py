"""pytest plugin: record the Lambdas' AWS calls during the whole run, then check them against the synthesized roles.

Runs in every pytest session (also under xdist: workers send their calls to the controller). When the run recorded
any Lambda call, the workload (and management) templates are synthesized from `killswitch.yaml` and every call is
checked with `tests.iam_coverage.policy.check`; an uncovered call fails the session with the call, the test that
made it and why. `--no-iam-coverage` turns it off.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from killswitch import settings
from tests.iam_coverage.policy import Call, check
from tests.iam_coverage.recorder import Recorder
from tests.iam_coverage.template import Where, role_logical_id, role_statements

REPO = Path(__file__).resolve().parents[2]
CROSS_ACCOUNT_WORKLOAD = "444455556666"
# Hub and spokes: the kill Lambda lists the OUs' accounts and assumes `<prefix>-spoke` (only with `accounts:`).
HUB_ACCOUNTS = {
    "organizational_units": ["ou-ab12-cdef3456"],
    "account_ids": ["111111111111"],
    "organization_root_id": "r-ab12",
}
HUB_LIST_OPERATIONS = {"ListAccountsForParent", "ListOrganizationalUnitsForParent"}
_RECORDER = pytest.StashKey[Recorder]()
_GATHERED = pytest.StashKey[list[Call]]()
_PROBLEMS = pytest.StashKey[list[str]]()
MAX_SAMPLES_PER_OPERATION = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-iam-coverage", action="store_true", help="do not check the Lambdas' AWS calls")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--no-iam-coverage"):
        return
    recorder = Recorder()
    recorder.install()
    config.stash[_RECORDER] = recorder
    config.stash[_GATHERED] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is not None:
        recorder.uninstall()


def pytest_testnodedown(node: Any, error: Any) -> None:  # xdist controller: a worker's calls
    raw = getattr(node, "workeroutput", {}).get("iam_coverage_calls")
    gathered = node.config.stash.get(_GATHERED, None)
    if raw and gathered is not None:
        gathered.extend(Call(**c) for c in json.loads(raw))


def unique(calls: list[Call]) -> list[Call]:
    seen: dict[str, Call] = {}
    per_op: dict[tuple[str, str, str], int] = {}
    for c in calls:
        key = json.dumps([c.role, c.service, c.operation, c.region, c.params], sort_keys=True, default=str)
        op = (c.role, c.service, c.operation)
        if key in seen or per_op.get(op, 0) >= MAX_SAMPLES_PER_OPERATION:
            continue
        seen[key] = c
        per_op[op] = per_op.get(op, 0) + 1
    return list(seen.values())


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    recorder = config.stash.get(_RECORDER, None)
    if recorder is None:
        return
    calls = unique(recorder.calls + config.stash[_GATHERED])
    if hasattr(config, "workerinput"):  # xdist worker: hand the calls to the controller
        config.workeroutput["iam_coverage_calls"] = json.dumps([asdict(c) for c in calls], default=str)  # type: ignore[attr-defined]
        return
    if not calls:
        return
    problems = check_calls(calls)
    config.stash[_PROBLEMS] = [*problems, f"checked {len(calls)} distinct Lambda calls"]
    if problems and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_PROBLEMS, None)
    if not lines:
        return
    *problems, summary = lines
    terminalreporter.section("IAM coverage", sep="-", red=bool(problems), green=not problems)
    for line in problems:
        terminalreporter.line(line, red=True)
    terminalreporter.line(f"{summary}: {len(problems)} not allowed by the synthesized role policies")


# -- templates and bindings -----------------------------------------------------------------------------------------


def synthesize() -> dict[str, dict[str, Any]]:
    """Templates of the example config: shared-account mode (the kill Lambda calls Organizations itself),
    cross-account mode (it assumes the management account's org-kill role) and hub mode (`accounts:`, whose
    management template carries the spoke role's template in its StackSet: `hub-spoke`)."""
    from infra.app_builder import add_stacks, new_app
    from killswitch.config import AccountsConfig, load_config

    shared = load_config(REPO / "killswitch.yaml")
    assert shared.sandbox is not None
    cross = shared.model_copy(
        update={"sandbox": shared.sandbox.model_copy(update={"workload_account_id": CROSS_ACCOUNT_WORKLOAD})}
    )
    hub = shared.model_copy(update={"accounts": AccountsConfig.model_validate(HUB_ACCOUNTS)})
    out: dict[str, dict[str, Any]] = {}
    for mode, config in (("shared", shared), ("cross", cross), ("hub", hub)):
        app = new_app(builtin_validation=False)
        workload, management = add_stacks(app, config, scp_dir=REPO / "scp_policies")
        assembly = app.synth()
        out[f"{mode}-workload"] = assembly.get_stack_by_name(workload.stack_name).template
        if management is not None:
            out[f"{mode}-management"] = assembly.get_stack_by_name(management.stack_name).template
    out["hub-spoke"] = spoke_template(out["hub-management"])
    return out


def spoke_template(management: dict[str, Any]) -> dict[str, Any]:
    """The template the StackSet deploys to every spoke account (its TemplateBody, intrinsics of the management
    stack resolved; the spoke's own pseudo parameters are resolved later, per call, for the spoke account)."""
    from tests.iam_coverage.template import resolve

    for res in management["Resources"].values():
        if res["Type"] == "AWS::CloudFormation::StackSet" and res["Properties"]["StackSetName"].endswith("-spoke"):
            body = resolve(
                res["Properties"]["TemplateBody"], management["Resources"], Where("999988887777", "us-east-1")
            )
            return dict(json.loads(body))
    raise LookupError("no StackSet in the hub-mode management template")


def role_template(call: Call) -> tuple[str, dict[str, str]]:
    """(template key, role lookup) for the role a call runs under."""
    from infra.constructs.kill_function import KILL_HANDLER
    from infra.constructs.meter import METER_HANDLER
    from infra.constructs.spend_recorder import SPEND_RECORDER_HANDLER

    if call.role == "org-kill":
        return "cross-management", {"role_name": "killswitch-org-kill"}
    if call.role == "spoke":
        return "hub-spoke", {"role_name": "killswitch-spoke"}
    if call.role == "kill" and (_is_spoke_assume(call) or call.operation in HUB_LIST_OPERATIONS):
        return "hub-workload", {"handler": KILL_HANDLER}
    if call.role == "spend":
        return "shared-workload", {"handler": SPEND_RECORDER_HANDLER}
    if call.role == "meter":
        return "shared-workload", {"handler": METER_HANDLER}
    if call.service == "sts":
        return "cross-workload", {"handler": KILL_HANDLER}
    return "shared-workload", {"handler": KILL_HANDLER}


def bind(call: Call, template: dict[str, Any], where: Where) -> Call:
    """The Lambda's own table, topics, queue and org role are whatever the test named them: use the stack's names."""
    from tests.iam_coverage.template import resolve

    resources = template["Resources"]
    names: dict[str, Any] = {}
    for lid, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::DynamoDB::Table":
            names["TableName"] = props["TableName"]
        elif res["Type"] == "AWS::SQS::Queue" and str(props.get("QueueName", "")).endswith("-dlq"):
            # The queue the Lambdas send to (the guard intake queue is only read, by its event source mapping).
            names["QueueUrl"] = resolve({"Ref": lid}, resources, where)
        elif res["Type"] == "AWS::SNS::Topic" and str(props.get("TopicName", "")).endswith("-events"):
            names["TopicArn"] = resolve({"Ref": lid}, resources, where)
    params = dict(call.params)
    for key in ("TableName", "QueueUrl", "TopicArn"):
        if key in params and key in names:
            params[key] = names[key]
    if "TransactItems" in params and "TableName" in names:
        params["TransactItems"] = [
            {kind: {"TableName": names["TableName"]} for kind in item} for item in params["TransactItems"]
        ]
    if "RequestItems" in params and "TableName" in names:
        params["RequestItems"] = {names["TableName"]: {}}
    if call.service == "sts" and "RoleArn" in params and not _is_spoke_assume(call):
        org_role = _org_role_arn(template, where)
        if org_role:
            params["RoleArn"] = org_role
    return replace(call, params=params)


def _is_spoke_assume(call: Call) -> bool:
    return call.service == "sts" and str(call.params.get("RoleArn", "")).endswith("-spoke")


def _org_role_arn(template: dict[str, Any], where: Where) -> str | None:
    from tests.iam_coverage.template import resolve

    for res in template["Resources"].values():
        if res["Type"] == "AWS::Lambda::Function":
            value = res["Properties"].get("Environment", {}).get("Variables", {}).get(settings.ENV_ORG_ROLE)
            if value:
                return str(resolve(value, template["Resources"], where))
    return None


def check_calls(calls: list[Call], templates: dict[str, dict[str, Any]] | None = None) -> list[str]:
    templates = templates if templates is not None else synthesize()
    problems = []
    for call in calls:
        key, lookup = role_template(call)
        template = templates[key]
        where = Where(account=call.account, region=call.region)
        statements = role_statements(template, role_logical_id(template, **lookup), where)
        for problem in check(bind(call, template, where), statements):
            problems.append(f"{call.role} Lambda: {call.service}:{call.operation} ({call.where}): {problem}")
    return sorted(set(problems))
