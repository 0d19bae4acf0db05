"""Config loading: the example file is valid; every broken file fails with file, position, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from killswitch.config import (
    ALL_ACTIONS,
    Approval,
    ConfigError,
    KillSwitchConfig,
    load_config,
    parse_config,
)
from killswitch.tags import cost_filter_value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "config"

# file -> (code, line, col, field path, substring of the message)
BAD_FILES = {
    "unknown-key.yaml": ("KS101", 5, 5, "agents[0].colour", "unknown key 'colour'"),
    "wrong-type.yaml": ("KS199", 4, 14, "agents[0].budget.amount_usd", "valid number"),
    "negative-amount.yaml": ("KS105", 5, 7, "agents[0].budget.amount_usd", "greater than 0"),
    "warn-not-below-kill.yaml": (
        "KS107",
        4,
        30,
        "agents[0].budget.warn_at_pct",
        "warn_at_pct (100) must be below kill_at_pct (90)",
    ),
    "duplicate-agent.yaml": ("KS107", 5, 5, "agents[1].name", "agent name 'bot' is already used by agents[0]"),
    "bad-account.yaml": ("KS103", 5, 24, "agents[0].sandbox_accounts[0]", "12 digits"),
    "unknown-action.yaml": ("KS104", 5, 25, "agents[0].actions[1]", "'nuke_everything' is not allowed"),
    "bad-region.yaml": ("KS103", 1, 22, "regions[1]", "'moon-base-1' is invalid: not an AWS region"),
    "bad-arn.yaml": ("KS103", 6, 27, "sandbox.break_glass_role_arns[0]", "not an IAM role ARN"),
    "missing-budget.yaml": ("KS102", 3, 5, "agents[0].budget", "required key 'budget' is missing"),
    "duplicate-yaml-key.yaml": ("KS100", 5, 1, "", "duplicate key 'regions' (first at line 1)"),
    "yaml-syntax.yaml": ("KS100", 2, 7, "", "YAML: expected ',' or ']'"),
    "management-as-sandbox.yaml": (
        "KS107",
        5,
        24,
        "agents[0].sandbox_accounts[0]",
        "999988887777 is the management account",
    ),
    "sandbox-without-section.yaml": ("KS107", 5, 5, "agents[0].sandbox_accounts", "needs a top-level sandbox section"),
    "bad-period.yaml": ("KS104", 4, 30, "agents[0].budget.period", "'WEEKLY' is not allowed"),
    "bad-email.yaml": ("KS103", 3, 12, "notify.emails[0]", "not an email address"),
    "no-agents.yaml": ("KS106", 2, 1, "agents", "at least 1 item"),
    "not-a-mapping.yaml": ("KS100", 1, 1, "", "must be a YAML mapping"),
    "forecast-kill-without-forecast.yaml": (
        "KS107",
        4,
        30,
        "agents[0].budget.kill_on_forecast",
        "kill_on_forecast needs forecasted",
    ),
}


def test_example_config_is_valid(example_config: KillSwitchConfig) -> None:
    assert example_config.agent_names() == ["log-summarizer", "research-crawler"]
    summarizer = example_config.agent("log-summarizer")
    assert summarizer.budget.amount_usd == 500
    assert example_config.budget_name_for(summarizer) == "killswitch-log-summarizer"
    crawler = example_config.agent("research-crawler")
    assert example_config.budget_name_for(crawler) == "Test Budget"
    assert crawler.approval is Approval.MANUAL
    assert tuple(crawler.actions) == ALL_ACTIONS  # default: every action
    assert example_config.agent_for_budget("Test Budget") is crawler
    assert example_config.agent_for_budget("nobody") is None
    assert example_config.scp_policy_name() == "killswitch-deny-agent-compute"


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_fails_with_position_field_and_reason(name: str) -> None:
    code, line, col, field, text = BAD_FILES[name]
    path = FIXTURES / name
    with pytest.raises(ConfigError) as info:
        load_config(path)
    issues = info.value.issues
    assert len(issues) == 1, [str(i) for i in issues]
    issue = issues[0]
    assert (issue.code, issue.line, issue.col, issue.field) == (code, line, col, field), str(issue)
    assert text in issue.message, str(issue)
    rendered = str(issue)
    assert rendered.startswith(f"{path}:{line}:{col}: {code} ")


def test_every_bad_file_has_its_own_message() -> None:
    messages = []
    for name in BAD_FILES:
        with pytest.raises(ConfigError) as info:
            load_config(FIXTURES / name)
        messages.append(info.value.issues[0].message)
    assert len(set(messages)) == len(BAD_FILES) >= 10


def test_all_fixture_files_are_covered() -> None:
    assert {p.name for p in FIXTURES.glob("*.yaml")} == set(BAD_FILES)


def test_several_mistakes_are_all_reported() -> None:
    text = "regions: [nowhere]\nagents:\n  - name: bot\n    budget: {amount_usd: 0}\n    extra: 1\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "multi.yaml")
    fields = {i.field for i in info.value.issues}
    assert fields == {"regions[0]", "agents[0].budget.amount_usd", "agents[0].extra"}


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml")
    assert "cannot read config" in str(info.value)


def test_path_override_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "other.yaml"
    cfg.write_text("regions: [eu-west-1]\nagents:\n  - name: solo\n    budget: {amount_usd: 3}\n")
    monkeypatch.setenv("KILLSWITCH_CONFIG", str(cfg))
    assert load_config().regions == ["eu-west-1"]


def test_json_round_trip_for_lambda_environment(example_config: KillSwitchConfig) -> None:
    again = KillSwitchConfig.from_json(example_config.to_json())
    assert again == example_config


def test_defaults_and_cost_filter() -> None:
    cfg = parse_config("regions: [us-east-1]\nagents:\n  - name: bot\n    budget: {amount_usd: 10}\n")
    agent = cfg.agent("bot")
    assert (agent.budget.warn_at_pct, agent.budget.kill_at_pct) == (80, 100)
    assert cfg.deploy_region == "us-east-1"
    assert cfg.max_resources_for(agent) == 1000
    assert cost_filter_value("bot") == "user:agent-name$bot"
    with pytest.raises(KeyError, match="not in the config"):
        cfg.agent("ghost")


def test_lambda_side_never_imports_yaml() -> None:
    """The Lambda runtime has no PyYAML: reading the config from JSON must not import it."""
    import subprocess
    import sys

    code = (
        "import sys, killswitch.settings, killswitch.config as c;"
        'c.KillSwitchConfig.from_json(\'{"regions":["us-east-1"],"agents":[{"name":"a","budget":{"amount_usd":1}}]}\');'
        "sys.exit(1 if 'yaml' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
