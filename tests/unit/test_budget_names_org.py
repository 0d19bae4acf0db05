"""Organization budgets (issue 13 item 4): which the management side gets, their names, the way back from a name to
(agent, account), the org alerts intake, and the config errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from killswitch.config import ConfigError, KillSwitchConfig, parse_config
from killswitch.intakes import Intake, Intakes, Origin
from killswitch.kill.alerts import Alert, Rejected, parse_message
from killswitch.kill.intake import authorize, org_budget_alert
from killswitch.org_budgets import (
    OrgBudgetKey,
    org_alerts_topic_arn,
    org_budget_for,
    org_budget_keys,
    org_budget_spec,
)
from killswitch.testing import sim

MGMT = "999988887777"
HUB = "444455556666"
SPOKE_A, SPOKE_B = "555566667777", "666677778888"


def config(
    *, accounts: dict[str, Any] | None = None, per_account: float | None = 100, **extra: Any
) -> KillSwitchConfig:
    budget: dict[str, Any] = {"amount_usd": 500, "warn_at_pct": 80, "kill_at_pct": 100}
    if per_account is not None:
        budget["per_account_usd"] = per_account
    data: dict[str, Any] = {
        "prefix": "ks",
        "regions": ["us-east-1"],
        "notify": {"emails": ["ops@example.com"]},
        "agents": [
            {"name": "summarizer", "budget": budget},
            {"name": "crawler", "budget_name": "Crawler Budget", "budget": {"amount_usd": 50}},
        ],
        "accounts": accounts
        if accounts is not None
        else {
            "account_ids": [SPOKE_A, SPOKE_B],
            "organization_root_id": "r-ab12",
            "hub_account_id": HUB,
            "management_account_id": MGMT,
        },
        **extra,
    }
    return KillSwitchConfig.model_validate(data)


def hashed_name(cfg: KillSwitchConfig, key: OrgBudgetKey, placement: str = "ks-org-budgets-0") -> str:
    return org_budget_spec(cfg, key, placement).name


def keys(cfg: KillSwitchConfig) -> list[tuple[str, str | None]]:
    return [(k.agent.name, k.account) for k in org_budget_keys(cfg)]


def test_a_separate_hub_gets_an_org_wide_budget_per_agent_and_one_per_listed_account() -> None:
    assert keys(config()) == [
        ("summarizer", None),
        ("summarizer", SPOKE_A),
        ("summarizer", SPOKE_B),
        ("crawler", None),
    ]


def test_the_hub_in_the_management_account_needs_no_org_wide_budget() -> None:
    # Its workload budgets already see every linked account: only the per-account budgets are added.
    shared = config(accounts={"account_ids": [SPOKE_A], "organization_root_id": "r-ab12"})
    assert keys(shared) == [("summarizer", SPOKE_A)]
    same = config(
        accounts={
            "account_ids": [SPOKE_A],
            "organization_root_id": "r-ab12",
            "hub_account_id": MGMT,
            "management_account_id": MGMT,
        }
    )
    assert keys(same) == [("summarizer", SPOKE_A)]


def test_org_wide_budgets_can_be_turned_off() -> None:
    cfg = config(
        accounts={
            "account_ids": [SPOKE_A],
            "organization_root_id": "r-ab12",
            "hub_account_id": HUB,
            "management_account_id": MGMT,
            "org_wide_budgets": False,
        }
    )
    assert keys(cfg) == [("summarizer", SPOKE_A)]


def test_old_and_new_hashed_names_map_to_the_same_agent_and_account() -> None:
    cfg = config()
    old = hashed_name(cfg, OrgBudgetKey(cfg.agent("summarizer"), SPOKE_B))
    changed = config(per_account=100, notify={"emails": ["ops@example.com", "new@example.com"]})
    new = hashed_name(changed, OrgBudgetKey(changed.agent("summarizer"), SPOKE_B))
    moved = hashed_name(cfg, OrgBudgetKey(cfg.agent("summarizer"), SPOKE_B), placement="ks-org-budgets-3")
    assert len({old, new, moved}) == 3  # an email change or a move is a replacement: a new name each time
    assert old.startswith(f"ks-summarizer-{SPOKE_B}-")
    for name in (old, new, moved, f"ks-summarizer-{SPOKE_B}"):
        key = org_budget_for(changed, name)
        assert key is not None and (key.agent.name, key.account) == ("summarizer", SPOKE_B), name


def test_org_wide_and_custom_budget_names_map_back() -> None:
    cfg = config()
    crawler = OrgBudgetKey(cfg.agent("crawler"), None)
    name = hashed_name(cfg, crawler)
    assert name.startswith("Crawler Budget-org-")
    key = org_budget_for(cfg, name)
    assert key is not None and (key.agent.name, key.account) == ("crawler", None)


@pytest.mark.parametrize(
    "name",
    [
        "ks-summarizer-777777777777-1234abcd",  # an account that is not in accounts.account_ids
        "ks-summarizer-1234abcd",  # the workload budget's name: not an organization budget
        "ks-stranger-org-1234abcd",
        f"ks-summarizer-{SPOKE_A}-XYZ",
        "",
    ],
)
def test_a_name_that_maps_nowhere_is_none(name: str) -> None:
    assert org_budget_for(config(), name) is None


def test_a_long_agent_name_is_cut_and_still_maps_back() -> None:
    long_name = "a" * 100
    cfg = config(agents=[{"name": long_name, "budget": {"amount_usd": 5, "per_account_usd": 1}}])
    name = hashed_name(cfg, OrgBudgetKey(cfg.agents[0], SPOKE_A))
    assert len(name) == 100 and f"-{SPOKE_A}-" in name
    key = org_budget_for(cfg, name)
    assert key is not None and key.account == SPOKE_A


def test_the_letter_of_a_per_account_budget_names_agent_and_account() -> None:
    cfg = config()
    name = hashed_name(cfg, OrgBudgetKey(cfg.agent("summarizer"), SPOKE_A))
    alert = parse_message(sim.budgets_letter(name, 120.0, 100.0, 100.0), cfg)
    assert isinstance(alert, Alert)
    assert (alert.agent, alert.org_budget, alert.budget_account) == ("summarizer", True, SPOKE_A)
    assert f"linked account {SPOKE_A}" in alert.reason
    assert alert.percent_of_budget == pytest.approx(120.0)


def test_a_letter_of_an_unknown_budget_is_rejected_with_the_name() -> None:
    result = parse_message(sim.budgets_letter("ks-summarizer-777777777777-1234abcd", 1.0, 1.0, 1.0), config())
    assert isinstance(result, Rejected)
    assert "ks-summarizer-777777777777-1234abcd" in result.reason and "not managed" in result.reason


def test_the_org_alerts_topic_is_trusted_by_its_exact_arn() -> None:
    cfg = config()
    hub_topic = f"arn:aws:sns:us-east-1:{HUB}:ks-kill"
    org_topic = org_alerts_topic_arn(cfg, hub_topic)
    assert org_topic == f"arn:aws:sns:us-east-1:{MGMT}:ks-org-alerts"
    intakes = Intakes("ks", tuple(cfg.agent_names()), hub_topic, org_alerts_topic_arn=org_topic)
    assert intakes.of_topic(org_topic).intake is Intake.ORG_ALERTS
    for other in (
        f"arn:aws:sns:us-east-1:{HUB}:ks-org-alerts",  # the right name in another account
        f"arn:aws:sns:us-west-2:{MGMT}:ks-org-alerts",  # or another region
        f"arn:aws:sns:us-east-1:{MGMT}:ks-kill",
    ):
        assert intakes.of_topic(other).intake is Intake.UNKNOWN, other
    # Without the org topic's ARN (no accounts:), nothing is the org alerts topic.
    plain = Intakes("ks", tuple(cfg.agent_names()), hub_topic)
    assert plain.of_topic(org_topic).intake is Intake.UNKNOWN


def test_the_hub_in_the_management_account_trusts_its_own_org_topic() -> None:
    shared = config(accounts={"account_ids": [SPOKE_A], "organization_root_id": "r-ab12"})
    assert org_alerts_topic_arn(shared, f"arn:aws:sns:us-east-1:{HUB}:ks-kill") == (
        f"arn:aws:sns:us-east-1:{HUB}:ks-org-alerts"
    )
    without = config(per_account=None).model_copy(update={"accounts": None})
    assert org_alerts_topic_arn(without, "arn:aws:sns:us-east-1:111111111111:ks-kill") is None


YAML = """\
prefix: ks
regions: [us-east-1]
agents:
  - name: summarizer
    budget: {{amount_usd: 500, per_account_usd: 100}}
{accounts}
"""


def issues(accounts: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(YAML.format(accounts=accounts), "org.yaml")
    return [str(i) for i in err.value.issues]


def test_per_account_usd_without_accounts_names_the_field() -> None:
    [issue] = issues("")
    assert issue.startswith("org.yaml:5:")
    assert "agents[0].budget.per_account_usd" in issue and "accounts.account_ids" in issue


def test_per_account_usd_with_ous_only_says_ou_members_are_unknown_at_synth() -> None:
    [issue] = issues("accounts: {organizational_units: [ou-ab12-cdef3456]}")
    assert "agents[0].budget.per_account_usd" in issue
    assert "unknown at synth" in issue and "org-wide budget" in issue


def test_a_separate_hub_without_the_management_account_names_the_field() -> None:
    [issue] = issues(f'accounts: {{account_ids: ["{SPOKE_A}"], organization_root_id: r-ab12, hub_account_id: "{HUB}"}}')
    assert "accounts.management_account_id" in issue and HUB in issue


def test_two_different_management_accounts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"differs from sandbox\.management_account_id"):
        config(
            sandbox={"break_glass_role_arns": ["arn:aws:iam::*:role/BreakGlass"], "management_account_id": HUB},
        )


def test_the_management_account_cannot_be_a_listed_account() -> None:
    with pytest.raises(ValueError, match="is the management account"):
        config(
            accounts={
                "account_ids": [SPOKE_A, MGMT],
                "organization_root_id": "r-ab12",
                "management_account_id": MGMT,
            }
        )


def test_on_the_org_topic_the_organization_reading_of_a_name_wins() -> None:
    # `ks-bot-org-<hash>` is agent bot's org-wide budget and also reads as agent bot-org's workload budget: the
    # intake it came by decides which one it is.
    cfg = config(
        agents=[{"name": "bot", "budget": {"amount_usd": 5}}, {"name": "bot-org", "budget": {"amount_usd": 7}}],
    )
    name = hashed_name(cfg, OrgBudgetKey(cfg.agent("bot"), None))
    parsed = parse_message(sim.budgets_letter(name, 6.0, 5.0, 5.0), cfg)
    assert isinstance(parsed, Alert) and parsed.agent == "bot-org" and not parsed.org_budget
    org = org_budget_alert(parsed, cfg, Origin(Intake.ORG_ALERTS, arn=f"arn:aws:sns:us-east-1:{MGMT}:ks-org-alerts"))
    assert isinstance(org, Alert)
    assert (org.agent, org.org_budget, org.budget_account) == ("bot", True, None)
    assert "(org-wide: every linked account)" in org.reason
    # On the hub's own alerts topic the same letter is bot-org's workload budget, as before.
    assert authorize(parsed, Origin(Intake.ALERTS)) == parsed


BREAK_GLASS = ["arn:aws:iam::*:role/BreakGlass"]


def test_a_hub_other_than_the_sandbox_workload_account_is_refused() -> None:
    """The spoke trust, the org alerts subscription and the hub bus policy name `accounts.hub_account_id`; the kill
    Lambda deploys to `sandbox.workload_account_id`: two different accounts would leave the spokes trusting a role
    that does not exist."""
    with pytest.raises(ValueError, match=r"444455556666 is not sandbox\.workload_account_id"):
        config(
            sandbox={
                "break_glass_role_arns": BREAK_GLASS,
                "management_account_id": MGMT,
                "workload_account_id": SPOKE_B,
            }
        )


def test_a_hub_outside_the_management_account_in_shared_account_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"deploys into the management account 999988887777 \(shared-account mode\)"):
        config(sandbox={"break_glass_role_arns": BREAK_GLASS, "management_account_id": MGMT})


def test_a_hub_that_is_the_sandbox_workload_account_is_accepted() -> None:
    cfg = config(
        sandbox={"break_glass_role_arns": BREAK_GLASS, "management_account_id": MGMT, "workload_account_id": HUB}
    )
    assert cfg.accounts is not None and cfg.accounts.hub_account_id == HUB
