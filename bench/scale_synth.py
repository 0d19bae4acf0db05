"""Synth at organization scale: 1,000 agents with caps and workflow caps, offline, against 10 agents in the same run.

Goal (issue 13): `cdk synth` of 1,000 agents completes offline in ≤ 60 s on the 2-core machine, no stack over 500
resources (budget stacks hold ≤ 400 budgets). Before the config moved into a layer, the 4 KB Lambda environment
stopped a deployment at about 14 agents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, Section

BIG = 1000
SMALL = 10
CFN_RESOURCE_LIMIT = 500


def scale_config(agents: int) -> dict[str, Any]:
    """`agents` agents, each with run/day caps and two workflow caps; budgets spread over enough stacks."""
    return {
        "prefix": "scale",
        "regions": ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"],
        "notify": {"emails": ["finops@example.com", "oncall@example.com"]},
        "budget_stacks": max(1, -(-agents // 100)),  # ≤ 133 agents (3 resources each) a stack
        "agents": [
            {
                "name": f"agent-{i:04d}",
                "budget": {"amount_usd": 100 + i, "warn_at_pct": 80, "kill_at_pct": 100, "forecasted": i % 3 == 0},
                "caps": {
                    "per_run_usd": 5,
                    "per_day_usd": 50,
                    "per_workflow_usd": {"deep-research": 20, "summarize": 2},
                },
                # a few agents with sandbox accounts: their linked-account budgets sit in the management stack
                **({"sandbox_accounts": [f"{111122220000 + i:012d}"]} if i < 20 else {}),
            }
            for i in range(agents)
        ],
        "sandbox": {
            "break_glass_role_arns": ["arn:aws:iam::*:role/BreakGlass"],
            "scp": "scp_policies/deny-agent-compute.json",
            "management_account_id": "999988887777",
        },
    }


def _write_yaml(data: dict[str, Any], path: Path) -> None:
    # JSON is YAML: no PyYAML dump needed, and the loader's positions still work.
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _synth(command: list[str], config: Path, outdir: Path) -> tuple[float, int, str]:
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "KILLSWITCH_CONFIG": str(config),
        "CDK_OUTDIR": str(outdir),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - t0, proc.returncode, proc.stderr[-2000:]


def _stack_sizes(outdir: Path) -> dict[str, int]:
    out = {}
    for path in sorted(outdir.glob("*.template.json")):
        template = json.loads(path.read_text(encoding="utf-8"))
        out[path.name.removesuffix(".template.json")] = len(template.get("Resources", {}))
    return out


def measure(agents: int, *, cli: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "killswitch.yaml"
        data = scale_config(agents)
        _write_yaml(data, config)
        outdir = Path(tmp) / "cdk.out"
        secs, rc, err = _synth([sys.executable, "app.py"], config, outdir)
        if rc != 0:
            raise RuntimeError(f"in-process synth of {agents} agents failed (exit {rc}):\n{err}")
        sizes = _stack_sizes(outdir)
        result: dict[str, Any] = {"agents": agents, "inprocess_s": secs, "sizes": sizes}
        result["config_bytes"] = len(json.dumps(data, separators=(",", ":")))
        if cli:
            cdk = REPO / "node_modules" / ".bin" / "cdk"
            cli_out = Path(tmp) / "cdk.cli.out"
            command = [str(cdk), "synth", "--no-notices", "--quiet", "--output", str(cli_out)]
            secs, rc, err = _synth(command, config, cli_out)
            if rc != 0:
                raise RuntimeError(f"cdk synth of {agents} agents failed (exit {rc}):\n{err}")
            result["cdk_synth_s"] = secs
        return result


def run(quick: bool = False) -> Section:
    cli = (REPO / "node_modules" / ".bin" / "cdk").exists()
    load_before = os.getloadavg()[0]
    small = measure(SMALL, cli=cli)
    big = measure(BIG if not quick else 300, cli=cli)
    load_after = os.getloadavg()[0]
    rows = []
    for r in (small, big):
        sizes: dict[str, int] = r["sizes"]
        largest = max(sizes, key=lambda k: sizes[k])
        rows.append(
            [
                str(r["agents"]),
                f"{r['config_bytes'] / 1024:.0f} KiB",
                str(len(sizes)),
                f"{sizes[largest]} ({largest})",
                f"{r['inprocess_s']:.1f} s",
                f"{r['cdk_synth_s']:.1f} s" if "cdk_synth_s" in r else "n/a",
            ]
        )
    ratio = big.get("cdk_synth_s", big["inprocess_s"]) / small.get("cdk_synth_s", small["inprocess_s"])
    over = [name for name, n in big["sizes"].items() if n > CFN_RESOURCE_LIMIT]
    notes = [
        f"{big['agents']} agents against {SMALL} in the same run: {ratio:.1f}× the synth time; goal ≤ 60 s for "
        f"1,000 agents with `cdk synth`. Stacks over the {CFN_RESOURCE_LIMIT}-resource limit: {over or 'none'}.",
        "Each agent has run/day caps and two workflow caps; the config rides in a Lambda layer (the 4 KB "
        "environment held about 14 agents). Budgets: `budget_stacks` = ⌈agents / 100⌉, ≤ 133 agents a stack "
        "(3 resources each: budget, guard topic, topic policy).",
        "Both synths run cdk-nag; the in-process figure is `python app.py`, the other the npm `cdk synth` CLI.",
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after, on {os.cpu_count()} CPUs: "
        "absolute times scale with the load; the ratio against 10 agents is the portable figure.",
    ]
    figures = {
        "small_inprocess_s": small["inprocess_s"],
        "big_inprocess_s": big["inprocess_s"],
        "big_max_resources": float(max(big["sizes"].values())),
        "load_before": load_before,
        "load_after": load_after,
    }
    if "cdk_synth_s" in big:
        figures["big_cdk_synth_s"] = big["cdk_synth_s"]
        figures["small_cdk_synth_s"] = small["cdk_synth_s"]
    return Section(
        title="Synth at organization scale",
        headers=["agents", "config JSON", "stacks", "most resources in one stack", "`python app.py`", "`cdk synth`"],
        rows=rows,
        notes=notes,
        figures=figures,
    )
