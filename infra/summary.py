"""What would be deployed: `python -m infra.summary [CONFIG]` synthesizes in-process (no CDK CLI, no AWS) and
prints each stack's resources by type and the budgets per agent."""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from aws_cdk import App, cx_api

from infra.app_builder import build_app
from killswitch.config import ConfigError, load_config, resolve_config_path


def _budget_line(props: dict[str, Any]) -> str:
    budget = props["Budget"]
    limit = budget.get("BudgetLimit", {})
    filters = "; ".join(f"{k}={','.join(v)}" for k, v in sorted(budget.get("CostFilters", {}).items()))
    alerts = []
    for n in props.get("NotificationsWithSubscribers", []):
        note = n["Notification"]
        kinds = Counter(s["SubscriptionType"] for s in n["Subscribers"])
        to = "+".join(f"{c} {k.lower()}" for k, c in sorted(kinds.items()))
        alerts.append(f"{note['NotificationType']}>{note['Threshold']:g}% → {to}")
    return (
        f"{budget['BudgetName']}: {limit.get('Amount', '?'):g} {limit.get('Unit', '')} {budget['TimeUnit']}"
        f" [{filters}]" + (f" alerts: {', '.join(alerts)}" if alerts else "")
    )


def _action_line(props: dict[str, Any]) -> str:
    scp = props["Definition"].get("ScpActionDefinition", {})
    threshold = props["ActionThreshold"]
    return (
        f"{props['BudgetName']}: {props['ActionType']} at {threshold['Value']:g}"
        f"{'%' if threshold['Type'] == 'PERCENTAGE' else ' USD'} on {', '.join(scp.get('TargetIds', []))}"
        f" ({props['ApprovalModel'].lower()} approval)"
    )


def describe_assembly(assembly: cx_api.CloudAssembly) -> str:
    lines: list[str] = []
    for stack in assembly.stacks:
        resources: dict[str, Any] = stack.template.get("Resources", {})
        types = Counter(r["Type"] for r in resources.values() if r["Type"] != "AWS::CDK::Metadata")
        lines.append(f"{stack.stack_name} ({stack.environment.name}): {sum(types.values())} resources")
        lines += [f"  {count:3d}  {rtype}" for rtype, count in sorted(types.items())]
        budgets = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Budgets::Budget"]
        if budgets:
            lines.append("  budgets:")
            lines += [f"    {_budget_line(b)}" for b in budgets]
        actions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Budgets::BudgetsAction"]
        if actions:
            lines.append("  budget actions:")
            lines += [f"    {_action_line(a)}" for a in actions]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def describe_app(app: App) -> str:
    """Synthesize `app` (its validation plugins run) and describe every stack."""
    return describe_assembly(app.synth())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = resolve_config_path(args[0] if args else None)
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            sys.stderr.write(f"{issue}\n")
        return 1
    scp_dir = Path(config.sandbox.scp).parent if config.sandbox else None
    with tempfile.TemporaryDirectory(prefix="killswitch-summary-") as outdir:
        app = build_app(config, config_file=str(path), scp_dir=scp_dir, outdir=outdir)
        sys.stdout.write(f"config: {path}\n")
        sys.stdout.write(describe_app(app))
    return 0


if __name__ == "__main__":
    sys.exit(main())
