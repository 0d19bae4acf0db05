"""Organization budgets (issue 13 item 4) in the templates: linked-account and org-wide budgets in the
`<prefix>-org-budgets-N` stacks of the management account, the `<prefix>-org-alerts` topic and its subscription to
the hub kill Lambda, the hub's invoke permission, and the spread of 1,000 agents × 3 accounts under 400 resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from infra.app_builder import new_app
from infra.budget_stacks import BudgetStacksOverfull
from infra.org_budget_stacks import (
    MAX_ORG_BUDGETS_PER_STACK,
    add_org_budget_stacks,
    assign_org_budgets,
    check_org_capacity,
)
from killswitch.config import KillSwitchConfig
from killswitch.org_budgets import org_budget_for, org_budget_keys
from tests.infra.infra_support import (
    MANAGEMENT_ACCOUNT,
    WORKLOAD_ACCOUNT,
    make_config,
    only,
    render,
    resources,
    synth_app,
    write_scps,
)

SPOKE_A, SPOKE_B = "555566667777", "666677778888"
ACCOUNTS = {"account_ids": [SPOKE_A, SPOKE_B], "organization_root_id": "r-ab12"}
AGENTS: list[dict[str, Any]] = [
    {"name": "summarizer", "budget": {"amount_usd": 500, "per_account_usd": 120}},
    {"name": "crawler", "budget_name": "Crawler Budget", "budget": {"amount_usd": 1200, "forecasted": True}},
]
# The hub is the workload account (sandbox.workload_account_id); the management account is named by the sandbox.
CONFIG = make_config(agents=AGENTS, accounts={**ACCOUNTS, "budget_stacks": 2})
# The hub is the management account itself: no org-wide budgets (its own budgets see every linked account).
SHARED = make_config(prefix="shr", sandbox=None, agents=AGENTS[:1], accounts=ACCOUNTS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("orgbudgets")
    _, stacks = synth_app([CONFIG, SHARED], write_scps(base / "scp"), base / "cdk.out")
    out: dict[str, Any] = {}
    for config, (workload, management) in zip([CONFIG, SHARED], stacks, strict=True):
        assert management is not None
        out[config.prefix] = {
            "workload": Template.from_stack(workload),
            "management": Template.from_stack(management),
            "budget_stacks": [(s.stack_name, Template.from_stack(s), s) for s in management.org_budget_stacks],
            "management_stack": management,
        }
    return out


def org_budgets(built: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """Budget name → properties, over every org budget stack of `prefix`."""
    out = {}
    for _, template, _ in built[prefix]["budget_stacks"]:
        for res in resources(template, "AWS::Budgets::Budget").values():
            out[res["Properties"]["Budget"]["BudgetName"]] = res["Properties"]
    return out


def test_every_agent_gets_an_org_wide_budget_and_one_per_listed_account(built: dict[str, Any]) -> None:
    assert [name for name, _, _ in built["ks"]["budget_stacks"]] == ["ks-org-budgets-0", "ks-org-budgets-1"]
    budgets = org_budgets(built, "ks")
    mapped = {}
    for name, props in budgets.items():
        key = org_budget_for(CONFIG, name)
        assert key is not None, name
        mapped[(key.agent.name, key.account)] = props
    assert sorted(mapped, key=str) == sorted(
        [("summarizer", None), ("summarizer", SPOKE_A), ("summarizer", SPOKE_B), ("crawler", None)], key=str
    )
    per_account = mapped[("summarizer", SPOKE_A)]["Budget"]
    assert per_account["CostFilters"] == {"LinkedAccount": [SPOKE_A], "TagKeyValue": ["user:agent-name$summarizer"]}
    assert per_account["BudgetLimit"] == {"Amount": 120, "Unit": "USD"}
    assert per_account["BudgetName"].startswith(f"ks-summarizer-{SPOKE_A}-")
    org_wide = mapped[("summarizer", None)]["Budget"]
    assert org_wide["CostFilters"] == {"TagKeyValue": ["user:agent-name$summarizer"]}
    assert org_wide["BudgetLimit"] == {"Amount": 500, "Unit": "USD"}
    assert org_wide["BudgetName"].startswith("ks-summarizer-org-")
    crawler = mapped[("crawler", None)]
    assert crawler["Budget"]["BudgetName"].startswith("Crawler Budget-org-")
    assert {n["Notification"]["NotificationType"] for n in crawler["NotificationsWithSubscribers"]} == {
        "ACTUAL",
        "FORECASTED",
    }


def test_org_budgets_alert_the_org_topic_of_the_management_account(built: dict[str, Any]) -> None:
    for props in org_budgets(built, "ks").values():
        for notification in props["NotificationsWithSubscribers"]:
            subs = [render(s) for s in notification["Subscribers"]]
            sns = [s["Address"] for s in subs if s["SubscriptionType"] == "SNS"]
            assert sns == [f"arn:${{AWS::Partition}}:sns:us-east-1:{MANAGEMENT_ACCOUNT}:ks-org-alerts"]
            assert [s["Address"] for s in subs if s["SubscriptionType"] == "EMAIL"] == [
                "ops@example.com",
                "finops@example.com",
            ]


def test_org_budget_stacks_deploy_to_the_management_account_after_its_stack(built: dict[str, Any]) -> None:
    management = built["ks"]["management_stack"]
    for _, _, stack in built["ks"]["budget_stacks"]:
        assert stack.account == MANAGEMENT_ACCOUNT and stack.region == "us-east-1"
        assert management in stack.dependencies


def test_the_org_topic_takes_only_this_accounts_budgets(built: dict[str, Any]) -> None:
    template = built["ks"]["management"]
    topic = only(template, "AWS::SNS::Topic")["Properties"]
    assert topic["TopicName"] == "ks-org-alerts"
    assert "KmsMasterKeyId" in topic
    policy = only(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s.get("Sid"): render(s) for s in policy}
    allow = by_sid["AllowBudgetsPublish"]
    assert allow["Principal"] == {"Service": "budgets.amazonaws.com"}
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "${AWS::AccountId}"},
        "ArnLike": {"aws:SourceArn": "arn:${AWS::Partition}:budgets::${AWS::AccountId}:*"},
    }
    deny = by_sid["OnlyAwsServicesPublish"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}
    key_policy = only(template, "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    budgets_use = [s for s in key_policy if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert budgets_use and set(budgets_use[0]["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}


def test_the_org_topic_delivers_to_the_hub_kill_lambda_with_a_dead_letter_queue(built: dict[str, Any]) -> None:
    template = built["ks"]["management"]
    sub = only(template, "AWS::SNS::Subscription")["Properties"]
    assert sub["Protocol"] == "lambda"
    assert render(sub["Endpoint"]) == f"arn:${{AWS::Partition}}:lambda:us-east-1:{WORKLOAD_ACCOUNT}:function:ks-kill"
    dlq_id = next(iter(template.find_resources("AWS::SQS::Queue")))
    assert sub["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    queue = only(template, "AWS::SQS::Queue")["Properties"]
    assert queue["QueueName"] == "ks-org-alerts-dlq" and "KmsMasterKeyId" in queue
    alarm = only(template, "AWS::CloudWatch::Alarm")["Properties"]
    assert alarm["AlarmName"] == "ks-org-alerts-undelivered"


def test_the_hub_lets_only_the_org_topic_invoke_its_kill_lambda(built: dict[str, Any]) -> None:
    perms = [
        render(p["Properties"])
        for p in resources(built["ks"]["workload"], "AWS::Lambda::Permission").values()
        if "org-alerts" in str(render(p["Properties"].get("SourceArn")))
    ]
    assert perms == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": "${KillFunction7C4482CD.Arn}",
            "Principal": "sns.amazonaws.com",
            "SourceAccount": MANAGEMENT_ACCOUNT,
            "SourceArn": f"arn:${{AWS::Partition}}:sns:us-east-1:{MANAGEMENT_ACCOUNT}:ks-org-alerts",
        }
    ]


def test_the_management_stack_must_deploy_in_the_home_region(built: dict[str, Any]) -> None:
    rules = built["ks"]["management"].to_json()["Rules"]
    assertion = rules["OrgAlertsInHomeRegion"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_a_hub_in_the_management_account_gets_per_account_budgets_only(built: dict[str, Any]) -> None:
    budgets = org_budgets(built, "shr")
    keys = {(k.agent.name, k.account) for k in (org_budget_for(SHARED, n) for n in budgets) if k}
    assert keys == {("summarizer", SPOKE_A), ("summarizer", SPOKE_B)}
    sub = only(built["shr"]["management"], "AWS::SNS::Subscription")["Properties"]
    # Same account: the kill Lambda's ARN and the topic's ARN both use the deployment account.
    assert render(sub["Endpoint"]) == "arn:${AWS::Partition}:lambda:us-east-1:${AWS::AccountId}:function:shr-kill"
    [perm] = [
        render(p["Properties"])
        for p in resources(built["shr"]["workload"], "AWS::Lambda::Permission").values()
        if "org-alerts" in str(render(p["Properties"].get("SourceArn")))
    ]
    assert perm["SourceArn"] == "arn:${AWS::Partition}:sns:us-east-1:${AWS::AccountId}:shr-org-alerts"


def test_a_threshold_change_replaces_an_org_budget_under_a_new_name_that_maps_back(tmp_path: Path) -> None:
    raised = make_config(
        agents=[{**AGENTS[0], "budget": {**AGENTS[0]["budget"], "kill_at_pct": 90}}, AGENTS[1]],
        accounts={**ACCOUNTS, "budget_stacks": 2},
    )
    before = {n for n in _names(CONFIG) if f"-{SPOKE_A}-" in n and n.startswith("ks-summarizer")}
    after = {n for n in _names(raised) if f"-{SPOKE_A}-" in n and n.startswith("ks-summarizer")}
    assert len(before) == len(after) == 1 and before != after
    for name in before | after:
        key = org_budget_for(raised, name)
        assert key is not None and (key.agent.name, key.account) == ("summarizer", SPOKE_A)


def _names(config: KillSwitchConfig) -> set[str]:
    app = App()
    stacks = add_org_budget_stacks(app, config)
    return {spec.name for s in stacks for spec in s.specs.values()}


def big_config(agents: int, accounts: int = 3, stacks: int = 12) -> KillSwitchConfig:
    ids = [f"{100000000000 + i:012d}" for i in range(accounts)]
    return make_config(
        sandbox=None,
        agents=[
            {"name": f"agent-{i:04d}", "budget": {"amount_usd": 100, "per_account_usd": 40}} for i in range(agents)
        ],
        accounts={
            "account_ids": ids,
            "organization_root_id": "r-ab12",
            "hub_account_id": WORKLOAD_ACCOUNT,
            "management_account_id": MANAGEMENT_ACCOUNT,
            "budget_stacks": stacks,
        },
    )


def test_a_thousand_agents_times_three_accounts_stay_under_400_resources_per_stack() -> None:
    config = big_config(1000)
    app = new_app(builtin_validation=False)
    stacks: list[Stack] = list(add_org_budget_stacks(app, config))
    assert len(stacks) == 12
    counts = [len(Template.from_stack(s).to_json()["Resources"]) for s in stacks]
    assert sum(counts) == 4000  # an org-wide budget and three per-account budgets per agent
    assert max(counts) <= MAX_ORG_BUDGETS_PER_STACK < 400  # `cdk synth` adds one CDKMetadata resource


def test_adding_an_agent_never_moves_another_budget() -> None:
    before = assign_org_budgets(org_budget_keys(big_config(400)), 12)
    after = assign_org_budgets(org_budget_keys(big_config(401)), 12)
    where = {(k.agent.name, k.account): i for i, share in enumerate(before) for k in share}
    for i, share in enumerate(after):
        for k in share:
            assert where.get((k.agent.name, k.account), i) == i


def test_too_few_org_budget_stacks_name_the_field_and_the_count_that_fits() -> None:
    keys = org_budget_keys(big_config(1000))
    with pytest.raises(BudgetStacksOverfull, match=r"accounts\.budget_stacks: 2 organization budget stack") as err:
        check_org_capacity(keys, 2, config_file="org.yaml")
    assert str(err.value).startswith("org.yaml: ")
    needed = int(str(err.value).split("set accounts.budget_stacks to ")[1].split()[0])
    assert max(len(s) for s in assign_org_budgets(keys, needed)) <= MAX_ORG_BUDGETS_PER_STACK
    assert max(len(s) for s in assign_org_budgets(keys, needed - 1)) > MAX_ORG_BUDGETS_PER_STACK
