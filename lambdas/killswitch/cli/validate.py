"""`killswitch validate [PATH...]`: config files and SCP files; prints `file:line:col: CODE message`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from killswitch.config import ConfigError, load_config, resolve_config_path

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def validate_config_file(path: Path) -> list[str]:
    try:
        load_config(path)
    except ConfigError as exc:
        return [str(i) for i in exc.issues]
    return []


def validate_paths(paths: list[Path]) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) as printable lines."""
    errors: list[str] = []
    warnings: list[str] = []
    for path in paths:
        if path.suffix in {".yaml", ".yml"}:
            errors.extend(validate_config_file(path))
        else:
            errors.append(f"{path}:1:1: KS001 not a config file (.yaml/.yml)")
    return errors, warnings


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        paths: list[Path] = typer.Argument(None, help="Config (.yaml) files; default: the config file."),
    ) -> None:
        """Validate the config file (and SCP files); exit 1 on any error, warnings do not fail."""
        targets = list(paths or [resolve_config_path()])
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
