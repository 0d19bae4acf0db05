"""How long the developer loop takes: in-process synth, `cdk synth` with the npm CLI, and the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import REPO, Section


def _timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - t0, proc.returncode


def run(quick: bool = False) -> Section:
    env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    rows = []
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as out:
        secs, rc = _timed([sys.executable, "app.py"], {**env, "CDK_OUTDIR": out})
        rows.append(["in-process synth (`python app.py`)", f"{secs:.1f} s", "ok" if rc == 0 else f"exit {rc}"])
        figures["synth_inprocess_s"] = secs
    cdk = REPO / "node_modules" / ".bin" / "cdk"
    if cdk.exists():
        with tempfile.TemporaryDirectory() as out:
            secs, rc = _timed([str(cdk), "synth", "--no-notices", "--quiet", "--output", out], env)
            rows.append(["`cdk synth` (npm aws-cdk v2 CLI)", f"{secs:.1f} s", "ok" if rc == 0 else f"exit {rc}"])
            figures["cdk_synth_s"] = secs
    if not quick:
        pytest = shutil.which("pytest", path=os.path.dirname(sys.executable)) or "pytest"
        secs, rc = _timed([pytest, "-q", "-n", "2", "-p", "no:randomly"], env)
        rows.append(["test suite (`pytest -n 2`)", f"{secs:.1f} s", "ok" if rc == 0 else f"exit {rc}"])
        figures["pytest_s"] = secs
    return Section(
        title="Developer loop",
        headers=["step", "wall time", "result"],
        rows=rows,
        notes=["`--quick` skips the test suite."],
        figures=figures,
    )
