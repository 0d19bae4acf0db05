"""Lambda cold start proxies: import time of each handler module (`python -X importtime`) and the asset size.

Import time is measured in fresh interpreters and reported as the median of several runs, next to the bare
interpreter start measured in the same run (the baseline every cold start pays anyway).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from bench.common import REPO, Section, median

HANDLERS = ["killswitch.handlers.kill", "killswitch.handlers.spend_recorder"]
EXCLUDE_DIRS = {"__pycache__", "cli"}  # the CLI is shipped in the asset but never imported by a handler
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


def _import_profile(module: str) -> tuple[float, list[tuple[str, float]]]:
    """(cumulative µs of `module`, the heaviest top-level imports) from one `-X importtime` run."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"import {module} failed: {proc.stderr.strip().splitlines()[-1:]}")
    total = 0.0
    top: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        cumulative, name = int(m.group(2)), m.group(3)
        if name == module:
            total = cumulative
        if "." not in name and name != module.split(".", maxsplit=1)[0]:  # whole packages (boto3, pydantic...)
            top.append((name, cumulative))
    top.sort(key=lambda t: -t[1])
    return total, top[:4]


def _wall(args: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        samples.append(time.perf_counter() - t0)
    return median(samples)


def asset_size(root: Path = REPO / "lambdas") -> tuple[int, int, int]:
    """(files, bytes, zipped bytes) of the Lambda asset as `Code.from_asset("lambdas")` ships it."""
    buf = io.BytesIO()
    files = raw = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_dir() or any(part in EXCLUDE_DIRS or part.endswith(".egg-info") for part in rel.parts):
                continue
            files += 1
            raw += path.stat().st_size
            zf.write(path, str(rel))
    return files, raw, len(buf.getvalue())


def run(quick: bool = False) -> Section:
    runs = 3 if quick else 7
    baseline = _wall([sys.executable, "-c", "pass"], runs)
    rows = []
    figures: dict[str, float] = {"interpreter_start_ms": baseline * 1000}
    for module in HANDLERS:
        profiles = [_import_profile(module) for _ in range(runs)]
        import_ms = median([p[0] for p in profiles]) / 1000
        wall = _wall([sys.executable, "-c", f"import {module}"], runs)
        heaviest = ", ".join(f"{name} {us / 1000:.0f} ms" for name, us in profiles[-1][1])
        rows.append(
            [f"`{module}`", f"{import_ms:.0f} ms", f"{wall * 1000:.0f} ms", f"{wall / baseline:.1f}×", heaviest]
        )
        figures[f"{module}.import_ms"] = import_ms
    files, raw, zipped = asset_size()
    figures.update(asset_files=files, asset_bytes=raw, asset_zip_bytes=zipped)
    return Section(
        title="Lambda cold start (import time, asset size)",
        headers=["handler module", "import (-X importtime)", "process wall", "vs bare interpreter", "heaviest imports"],
        rows=rows,
        notes=[
            f"bare interpreter start in the same run: {baseline * 1000:.0f} ms (median of {runs}).",
            f"asset `lambdas/` (no caches, no CLI): {files} files, {raw / 1024:.0f} KiB,"
            f" {zipped / 1024:.0f} KiB zipped;"
            " boto3 and Powertools come from the runtime and the public layer, not the asset.",
        ],
        figures=figures,
    )
