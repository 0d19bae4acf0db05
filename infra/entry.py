"""`app.py`'s body: load and check the config and SCPs, build the app, synthesize. Exit 1 with clear lines."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from aws_cdk import App

from infra.app_builder import add_stacks, enable_nag, new_app
from infra.budget_stacks import BudgetStacksOverfull
from infra.constructs.lambda_common import LambdaEnvironmentTooLarge
from infra.workload_stack import StackConfigError
from killswitch.config import CONFIG_PATH_ENV, DEFAULT_CONFIG_FILE, ConfigError, KillSwitchConfig, load_config


def config_path(app: App) -> Path:
    """`$KILLSWITCH_CONFIG` wins (cdk.json always sets the context default), then context `config`, then default."""
    return Path(os.environ.get(CONFIG_PATH_ENV) or app.node.try_get_context("config") or DEFAULT_CONFIG_FILE)


def scp_errors(config: KillSwitchConfig, scp_dir: Path, out: TextIO) -> int:
    """Validate every `scp_policies/*.json` with the project's SCP validator; print findings; count the errors."""
    from killswitch.scp.validator import validate_path

    assert config.sandbox is not None
    count = 0
    for path in sorted(scp_dir.glob("*.json")):
        for finding in validate_path(path, list(config.sandbox.break_glass_role_arns)):
            out.write(str(finding) + "\n")
            count += finding.severity == "error"
    return count


def main(app: App | None = None, *, out: TextIO = sys.stderr) -> int:
    """Synthesize the app for the config; 0 on success, 1 with `file:line:col` lines on any input error."""
    app = app or new_app()
    path = config_path(app)
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            out.write(str(issue) + "\n")
        return 1
    scp_dir = Path(config.sandbox.scp).parent if config.sandbox else None
    if config.sandbox is not None and scp_dir is not None:
        n = scp_errors(config, scp_dir, out)
        if n:
            out.write(f"{n} SCP error(s) in {scp_dir}: fix them before synth\n")
            return 1
    try:
        add_stacks(app, config, config_file=str(path), scp_dir=scp_dir)
    except (StackConfigError, LambdaEnvironmentTooLarge, BudgetStacksOverfull) as exc:
        message = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        out.write(message + "\n")
        return 1
    enable_nag(app)
    app.synth()
    return 0
