"""`killswitch validate [PATH...]`: config files and SCP files; prints `file:line:col: CODE message`.

`.yaml`/`.yml` paths are config files; `.json` paths and directories are SCP documents (every `*.json` directly in
the directory), except those in an `iam_policies` directory: the IAM deny policy a kill attaches to agent principals
(`killswitch.scp.iam_deny`). With no path: the config file, `scp_policies/` and `iam_policies/` (when they exist).
SCPs are checked against the
break-glass roles of the config being validated (or of the default config file, when it loads).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from killswitch.config import (
    ConfigError,
    ConfigIssue,
    KillSwitchConfig,
    field_positions,
    load_config,
    resolve_config_path,
)
from killswitch.scp.iam_deny import validate_deny_path
from killswitch.scp.validator import kill_switch_role_arns
from killswitch.scp.validator import validate_path as validate_scp_path

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

DEFAULT_SCP_DIR = Path("scp_policies")
DEFAULT_IAM_DIR = Path("iam_policies")
CONFIG_SUFFIXES = {".yaml", ".yml"}


def validate_config_file(path: Path) -> list[str]:
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return [str(i) for i in exc.issues]
    return [str(i) for i in missing_files(cfg, path)]


def missing_files(cfg: KillSwitchConfig, path: Path) -> list[ConfigIssue]:
    """Files the config names must exist: `cdk synth` reads `sandbox.scp` relative to the working directory."""
    if cfg.sandbox is None or Path(cfg.sandbox.scp).is_file():
        return []
    positions = field_positions(path.read_text(encoding="utf-8"))
    line, col = positions.get(("sandbox", "scp")) or positions.get(("sandbox",)) or (1, 1)
    where = "" if ("sandbox", "scp") in positions else " (the default)"
    message = f"policy file {cfg.sandbox.scp}{where} does not exist (relative to {Path.cwd()})"
    return [ConfigIssue(str(path), line, col, "KS108", "sandbox.scp", message)]


def _exemptions_from(configs: list[Path]) -> tuple[list[str] | None, tuple[str, ...] | None]:
    """Break-glass ARNs and the kill switch's exact role ARNs of the first config that loads (the given ones, else
    the default file)."""
    candidates = configs or [resolve_config_path()]
    for path in candidates:
        try:
            cfg: KillSwitchConfig = load_config(path)
        except ConfigError:
            continue
        if cfg.sandbox:
            roles = kill_switch_role_arns(cfg.prefix, cfg.deploy_region)
            return list(cfg.sandbox.break_glass_role_arns), roles
    return None, None


def validate_paths(paths: list[Path]) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) as printable lines."""
    errors: list[str] = []
    warnings: list[str] = []
    configs = [p for p in paths if p.suffix in CONFIG_SUFFIXES]
    scps = [p for p in paths if p.suffix not in CONFIG_SUFFIXES]
    for path in configs:
        errors.extend(validate_config_file(path))
    break_glass, kill_switch_roles = _exemptions_from(configs) if scps else (None, None)
    for path in scps:
        if DEFAULT_IAM_DIR.name in (path.name, path.parent.name):
            for finding in validate_deny_path(path):
                (errors if finding.severity == "error" else warnings).append(str(finding))
        elif path.suffix == ".json" or path.is_dir():
            for finding in validate_scp_path(path, break_glass, kill_switch_roles):
                (errors if finding.severity == "error" else warnings).append(str(finding))
        else:
            errors.append(f"{path}:1:1: KS001 not a config file (.yaml/.yml), an SCP file (.json) or a directory")
    return errors, warnings


def default_targets() -> list[Path]:
    targets = [resolve_config_path()]
    if DEFAULT_SCP_DIR.is_dir():
        targets.append(DEFAULT_SCP_DIR)
    if DEFAULT_IAM_DIR.is_dir():
        targets.append(DEFAULT_IAM_DIR)
    return targets


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        paths: list[Path] = typer.Argument(
            None, help="Config (.yaml) files, SCP (.json) files or directories; default: the config and scp_policies/."
        ),
    ) -> None:
        """Validate the config file and SCP files; exit 1 on any error, warnings do not fail."""
        targets = list(paths or default_targets())
        errors, warnings = validate_paths(targets)
        # Plain echo: `file:line:col: CODE message` lines must never be wrapped (editors and CI parse them).
        for line in warnings:
            typer.echo(line)
        for line in errors:
            typer.echo(line, err=True)
        if errors:
            err_console.print(f"[red]{len(errors)} error(s)[/red], {len(warnings)} warning(s)")
            raise typer.Exit(1)
        out_console.print(f"OK: {', '.join(str(p) for p in targets)} ({len(warnings)} warning(s))")
