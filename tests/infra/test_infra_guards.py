"""What must fail synth, and fail clearly: cdk-nag findings, oversize Lambda environment, bad stack inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Token
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from pydantic import ValidationError

from infra.app_builder import add_stacks, new_app
from infra.constructs.lambda_common import (
    CONFIG_FILE_IN_LAMBDA,
    LAMBDA_ENV_LIMIT_BYTES,
    TOKEN_SIZE_ESTIMATE,
    LambdaEnvironmentTooLarge,
    check_environment_size,
    environment_size,
)
from infra.management_stack import linked_budget_name
from infra.workload_stack import StackConfigError
from killswitch import settings
from tests.infra.infra_support import (
    MANAGEMENT_ACCOUNT,
    config_dict,
    make_config,
    synth_app,
    write_scps,
)


def test_cdk_nag_rejects_a_non_compliant_resource(tmp_path: Path) -> None:
    outdir = tmp_path / "cdk.out"
    config = make_config(sandbox=None, agents=[{"name": "bot", "budget": {"amount_usd": 5}}])
    _, [(workload, _)] = synth_app([config], tmp_path, outdir)
    sqs.CfnQueue(workload, "PlainQueue")  # no SSE, no TLS policy, no DLQ
    with pytest.raises(RuntimeError, match=r"AwsSolutions-SQS4") as info:
        Template.from_stack(workload)
    # the stack's own resources are all compliant or acknowledged: only the extra queue is reported
    paths = [line.split()[0] for line in str(info.value).splitlines() if line.startswith("   ks-")]
    assert paths and set(paths) == {"ks-workload/PlainQueue"}
    assert "AwsSolutions-SQS4" in (outdir / "validation-report.json").read_text(encoding="utf-8")


def _huge_config_dict() -> dict[str, object]:
    agents = [
        {
            "name": f"agent-with-a-rather-long-descriptive-name-{i:03d}",
            "budget": {"amount_usd": 100 + i},
            "caps": {"per_workflow_usd": {f"workflow-{j}": 5 for j in range(3)}},
        }
        for i in range(40)
    ]
    return config_dict(agents=agents, sandbox=None)


def test_a_config_far_over_4_kb_synthesizes_with_the_config_in_a_layer(tmp_path: Path) -> None:
    config = make_config(**_huge_config_dict())
    assert len(config.to_json()) > LAMBDA_ENV_LIMIT_BYTES
    workload, _ = add_stacks(new_app(str(tmp_path)), config, config_file="big.yaml", scp_dir=tmp_path)
    functions = Template.from_stack(workload).find_resources("AWS::Lambda::Function")
    assert len(functions) == 2
    for function in functions.values():
        env = function["Properties"]["Environment"]["Variables"]
        assert settings.ENV_CONFIG_JSON not in env
        assert env[settings.ENV_CONFIG_FILE] == CONFIG_FILE_IN_LAMBDA
        assert len(json.dumps(env)) < 1024


def test_an_oversize_environment_still_fails_clearly() -> None:
    env = {"POWERTOOLS_SERVICE_NAME": "x" * LAMBDA_ENV_LIMIT_BYTES}
    with pytest.raises(LambdaEnvironmentTooLarge) as info:
        check_environment_size(env, function="kill", config_file="big.yaml")
    message = str(info.value)
    assert message.startswith("big.yaml: ")
    assert "kill Lambda environment" in message and f"> the AWS limit of {LAMBDA_ENV_LIMIT_BYTES} bytes" in message


def test_environment_size_counts_deploy_time_values_at_an_upper_bound() -> None:
    token = Token.as_string({"Ref": "Topic"})
    assert environment_size({"A": "xyz"}) == 4
    assert environment_size({"ARN": token}) == 3 + TOKEN_SIZE_ESTIMATE


def test_workload_account_without_management_account_is_refused(tmp_path: Path) -> None:
    sandbox = {**config_dict()["sandbox"], "management_account_id": None}
    with pytest.raises(StackConfigError, match="management_account_id"):
        add_stacks(new_app(str(tmp_path)), make_config(sandbox=sandbox), scp_dir=write_scps(tmp_path / "scp"))


def test_missing_deny_scp_file_is_refused(tmp_path: Path) -> None:
    scp_dir = write_scps(tmp_path / "scp")
    (scp_dir / "deny-agent-compute.json").unlink()
    with pytest.raises(StackConfigError, match=r"deny-agent-compute\.json was not found"):
        add_stacks(new_app(str(tmp_path)), make_config(), scp_dir=scp_dir)


def test_invalid_scp_json_names_file_line_and_column(tmp_path: Path) -> None:
    scp_dir = write_scps(tmp_path / "scp")
    (scp_dir / "broken.json").write_text('{\n  "Version": "2012-10-17",\n  "Statement": [,]\n}\n', encoding="utf-8")
    with pytest.raises(StackConfigError, match=r"broken\.json:3:17: invalid JSON"):
        add_stacks(new_app(str(tmp_path)), make_config(), scp_dir=scp_dir)


def test_oversize_scp_is_refused_on_its_minified_length(tmp_path: Path) -> None:
    scp_dir = write_scps(tmp_path / "scp")
    actions = [f"ec2:Action{i:05d}" for i in range(700)]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": actions, "Resource": "*"}]}
    (scp_dir / "huge.json").write_text(json.dumps(policy), encoding="utf-8")
    with pytest.raises(StackConfigError, match=r"huge\.json:1:1: SCP is \d+ characters minified, over the 10240"):
        add_stacks(new_app(str(tmp_path)), make_config(), scp_dir=scp_dir)


def test_management_account_is_never_a_sandbox_target(tmp_path: Path) -> None:
    agents = config_dict()["agents"]
    bad = [{**agents[0], "sandbox_accounts": [MANAGEMENT_ACCOUNT]}]
    with pytest.raises(ValidationError, match="management account"):
        make_config(agents=bad)
    # and the stack refuses it even when a config bypasses validation
    config = make_config()
    sneaky = config.model_copy(
        update={"agents": [config.agents[0].model_copy(update={"sandbox_accounts": [MANAGEMENT_ACCOUNT]})]}
    )
    with pytest.raises(StackConfigError, match="cannot be a sandbox account"):
        add_stacks(new_app(str(tmp_path)), sneaky, scp_dir=write_scps(tmp_path / "scp"))


def test_linked_account_budget_names_fit_the_budgets_limit() -> None:
    config = make_config()
    summarizer = config.agent("summarizer")
    name = linked_budget_name(config, summarizer, "111122223333")
    assert name.startswith("ks-summarizer-111122223333-") and len(name) == len("ks-summarizer-111122223333-") + 8
    long_config = make_config(agents=[{**config_dict()["agents"][0], "budget_name": "b" * 100}])
    long_name = linked_budget_name(long_config, long_config.agents[0], "111122223333")
    assert len(long_name) == 100 and long_name.startswith("b" * 78 + "-111122223333-")
