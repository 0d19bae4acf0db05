"""Lambda cold start proxies: each handler's own import time beyond boto3 (`python -X importtime`) and the asset.

A handler needs boto3/botocore anyway (the runtime ships them), so the figure that code here can change is what the
handler adds on top: each run imports boto3 first, then the handler, in a fresh interpreter, and reads both
cumulative times from `-X importtime`. Medians of several runs; boto3's own import time in the same runs is the
baseline the ratio compares with (the machine is shared: absolute times move with its load, the ratio much less).
The asset is staged with CDK's own copy and the stack's exclude list (`lambda_common.ASSET_EXCLUDE`).

An honest cold start also pays for what the handler defers to its first invocation: the same run then reads the
config file the stack ships (`runtime_config.runtime_json` of the shipped `killswitch.yaml`, through
`settings.read_config_file`, as the handlers do) and reports import + first config load. For comparison, the kill
handler is also measured with the first load validating the config (`KillSwitchConfig.from_json`: what the cold
start paid before the Lambdas stopped validating the synth-validated config).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from bench.common import Section, median

HANDLERS = ("killswitch.handlers.kill", "killswitch.handlers.spend_recorder", "killswitch.handlers.meter")
BASELINE = "boto3"  # imported first in every run: in the runtime, needed by every handler
GOAL_MS = 60  # issue 14: the kill handler's own import time, beyond boto3/botocore
CONFIG = "killswitch.config"  # the pydantic config models (and pydantic itself): the largest share today
PYDANTIC = "pydantic"
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "killswitch.yaml"
# After the imports, in the same interpreter: the first config load, timed (µs on stdout).
RUNTIME_LOAD = (
    "from killswitch.settings import read_config_file; read_config_file(os.environ['KILLSWITCH_CONFIG_FILE'])"
)
VALIDATING_LOAD = (
    "from killswitch.config import KillSwitchConfig; "
    "KillSwitchConfig.from_json(open(os.environ['KILLSWITCH_CONFIG_PLAIN'], encoding='utf-8').read())"
)
# Wall-clock load time, then the CPU time (`process_time`) of the import and of the load: on a shared machine the
# CPU time moves much less with the load than the wall clock does.
_TIMED = (
    "_c1 = time.process_time(); _t = time.perf_counter(); {load}; _c2 = time.process_time(); "
    "print(round((time.perf_counter() - _t) * 1e6), round((_c1 - _c0) * 1e6), round((_c2 - _c1) * 1e6))"
)


@dataclass(frozen=True)
class ImportProfile:
    baseline_us: int  # boto3 and everything it imports
    handler_us: int  # the handler and everything it imports that boto3 did not
    config_us: int  # of which `killswitch.config` and what it imports first (pydantic)
    heaviest: tuple[tuple[str, int], ...]  # the handler's heaviest direct imports (cumulative µs)
    load_us: int = 0  # the first config load after the import (wall clock, same interpreter)
    cpu_import_us: int = 0  # CPU time of the handler's import (with a config load only)
    cpu_load_us: int = 0  # CPU time of the first config load

    @property
    def cpu_cold_us(self) -> int:
        return self.cpu_import_us + self.cpu_load_us

    @property
    def cold_us(self) -> int:
        """What a cold start pays beyond boto3: the import and the first config load."""
        return self.handler_us + self.load_us


def parse_importtime(stderr: str, module: str) -> ImportProfile:
    """Read `-X importtime` output of `import boto3; import <module>`: top-level cumulative times of both and the
    module's direct imports (one indentation level below it, listed before it). A module's imports are listed
    before it, one level deeper; pydantic counts with the config wherever it was first imported."""
    baseline = handler = 0
    children: list[tuple[str, int]] = []
    after: list[tuple[int, str, int]] = []  # (depth, name, cumulative) of what the handler imported, in order
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        cumulative, depth, name = int(m.group(2)), len(m.group(3)) // 2, m.group(4)
        if depth == 0 and name == BASELINE:
            baseline, children, after = cumulative, [], []
        elif depth == 0 and name == module:
            handler = cumulative
            break
        elif depth == 1:
            children.append((name, cumulative))
        after.append((depth, name, cumulative))
    if not baseline or not handler:
        raise ValueError(f"no import time for {BASELINE} and {module} in the -X importtime output")
    children.sort(key=lambda c: -c[1])
    return ImportProfile(baseline, handler, _config_share(after), tuple(children[:4]))


def _config_share(entries: list[tuple[int, str, int]]) -> int:
    """Cumulative µs of the config module plus pydantic's, unless pydantic was imported inside the config's."""
    found = {name: i for i, (_, name, _) in enumerate(entries) if name in (CONFIG, PYDANTIC)}
    if CONFIG not in found:
        return 0
    at = found[CONFIG]
    depth, _, total = entries[at]
    start = at
    while start > 0 and entries[start - 1][0] > depth:  # the config's own subtree, listed right before it
        start -= 1
    pydantic_at = found.get(PYDANTIC)
    if pydantic_at is not None and not start <= pydantic_at < at:
        total += entries[pydantic_at][2]
    return total


def import_profile(
    module: str, pycache: Path | None = None, *, config_dir: Path | None = None, load: str = RUNTIME_LOAD
) -> ImportProfile:
    """Without `pycache`, the project's modules compile from source on each run, as in Lambda (the asset ships no
    bytecode and the code directory is read-only); with it, they load from bytecode cached there by an earlier run.
    With `config_dir` (`write_config_files`), the run then times the first config load (`load`)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE")
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    code = f"import {BASELINE}; import {module}"
    if config_dir is not None:
        env["KILLSWITCH_CONFIG_FILE"] = str(config_dir / "runtime.json")
        env["KILLSWITCH_CONFIG_PLAIN"] = str(config_dir / "plain.json")
        code = f"import {BASELINE}; import os, time; _c0 = time.process_time(); import {module}\n" + _TIMED.format(
            load=load
        )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"import {module} failed: {proc.stderr.strip().splitlines()[-1:]}")
    profile = parse_importtime(proc.stderr, module)
    if config_dir is None:
        return profile
    load_us, cpu_import_us, cpu_load_us = (int(v) for v in proc.stdout.strip().splitlines()[-1].split())
    return replace(profile, load_us=load_us, cpu_import_us=cpu_import_us, cpu_load_us=cpu_load_us)


def write_config_files(directory: Path, config_file: Path = SHIPPED_CONFIG) -> Path:
    """The config as the stack ships it to the Lambdas (`runtime.json`) and as plain JSON (`plain.json`)."""
    from killswitch.config import load_config
    from killswitch.runtime_config import runtime_json

    config = load_config(config_file)
    (directory / "runtime.json").write_text(runtime_json(config), encoding="utf-8")
    (directory / "plain.json").write_text(config.to_json(), encoding="utf-8")
    return directory


def staged_asset(dest: Path, *, offline_packages: bool = False) -> Path:
    """The Lambda code asset as `cdk synth` stages it: CDK's copy of `lambdas/` with the stack's exclude list
    (`offline_packages=True`: without excluding the CLI, validators and moto builders, the baseline)."""
    from aws_cdk import CopyOptions, FileSystem

    from infra.constructs.lambda_common import ASSET_EXCLUDE, LAMBDA_SOURCE, OFFLINE_PACKAGES

    exclude = [e for e in ASSET_EXCLUDE if e not in OFFLINE_PACKAGES] if offline_packages else ASSET_EXCLUDE
    FileSystem.copy_directory(str(LAMBDA_SOURCE), str(dest), CopyOptions(exclude=exclude))
    return dest


def asset_size(root: Path) -> tuple[int, int, int]:
    """(files, bytes, zipped bytes) of a staged asset."""
    buf = io.BytesIO()
    files = raw = 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            files += 1
            raw += path.stat().st_size
            zf.write(path, str(path.relative_to(root)))
    return files, raw, len(buf.getvalue())


def _ms(profiles: list[ImportProfile], figure: str) -> float:
    return median([getattr(p, figure) for p in profiles]) / 1000


def run(quick: bool = False, runs: int | None = None) -> Section:
    runs = runs or (3 if quick else 9)
    load_before = os.getloadavg()[0]
    rows = []
    figures: dict[str, float] = {}
    baselines: list[float] = []
    kill = HANDLERS[0]
    with tempfile.TemporaryDirectory(prefix="killswitch-config-") as tmp:
        config_dir = write_config_files(Path(tmp))
        for module in HANDLERS:
            profiles = [import_profile(module, config_dir=config_dir) for _ in range(runs)]
            baselines.extend(p.baseline_us for p in profiles)
            own_ms, load_ms, cold_ms = (_ms(profiles, f) for f in ("handler_us", "load_us", "cold_us"))
            base_ms, config_ms = _ms(profiles, "baseline_us"), _ms(profiles, "config_us")
            typical = sorted(profiles, key=lambda p: p.handler_us)[len(profiles) // 2]  # the run with the median
            heaviest = ", ".join(f"`{name}` {us / 1000:.0f} ms" for name, us in typical.heaviest)
            rows.append(
                [
                    f"`{module}`",
                    f"{own_ms:.0f} ms",
                    f"{load_ms:.1f} ms",
                    f"{cold_ms:.0f} ms",
                    f"{config_ms:.0f} ms ({config_ms / own_ms:.0%})",
                    f"{base_ms:.0f} ms",
                    f"{own_ms / base_ms:.2f}× / {cold_ms / base_ms:.2f}×",
                    heaviest,
                ]
            )
            figures.update(
                {
                    f"{module}.import_ms": own_ms,
                    f"{module}.config_load_ms": load_ms,
                    f"{module}.cold_ms": cold_ms,
                    f"{module}.cold_cpu_ms": _ms(profiles, "cpu_cold_us"),
                    f"{module}.config_ms": config_ms,
                    f"{module}.boto3_ms": base_ms,
                }
            )
        validating = [import_profile(kill, config_dir=config_dir, load=VALIDATING_LOAD) for _ in range(runs)]
        with tempfile.TemporaryDirectory(prefix="killswitch-pycache-") as pycache:
            import_profile(kill, Path(pycache), config_dir=config_dir)  # writes the bytecode
            cached = [import_profile(kill, Path(pycache), config_dir=config_dir) for _ in range(runs)]
    validating_load_ms, validating_cold_ms = _ms(validating, "load_us"), _ms(validating, "cold_us")
    validating_cpu_ms = _ms(validating, "cpu_cold_us")
    validating_base_ms = _ms(validating, "baseline_us")
    cached_ms, cached_cold_ms, cached_base_ms = (_ms(cached, f) for f in ("handler_us", "cold_us", "baseline_us"))
    figures.update(
        {
            f"{kill}.validating_load_ms": validating_load_ms,
            f"{kill}.validating_cold_ms": validating_cold_ms,
            f"{kill}.validating_cold_cpu_ms": validating_cpu_ms,
            f"{kill}.import_ms_bytecode": cached_ms,
            f"{kill}.cold_ms_bytecode": cached_cold_ms,
        }
    )
    with tempfile.TemporaryDirectory(prefix="killswitch-asset-") as tmp:
        asset = staged_asset(Path(tmp) / "asset")
        files, raw, zipped = asset_size(asset)
        all_files, all_raw, all_zipped = asset_size(staged_asset(Path(tmp) / "all", offline_packages=True))
        packages = sorted(
            {rel.parts[1] for rel in (p.relative_to(asset) for p in asset.rglob("*.py")) if len(rel.parts) > 2}
        )
    figures.update(asset_files=files, asset_bytes=raw, asset_zip_bytes=zipped, asset_zip_bytes_with_offline=all_zipped)
    boto3_ms = median(baselines) / 1000
    figures["boto3_ms"] = boto3_ms
    kill_ms, kill_cold_ms = figures[f"{kill}.import_ms"], figures[f"{kill}.cold_ms"]
    return Section(
        title="Lambda cold start (import time, asset size)",
        headers=[
            "handler module",
            "own import, beyond boto3",
            "first config load",
            "import + first config load",
            f"of which `{CONFIG}` + pydantic (import)",
            "boto3 (same runs)",
            "import / boto3, (import + load) / boto3",
            "heaviest direct imports",
        ],
        rows=rows,
        notes=[
            f'median of {runs} fresh interpreters per handler, each `python -X importtime -c "import boto3; '
            f'import <handler>"` then the first config load (`settings.read_config_file` of the file the stack'
            f" ships, made from the shipped `killswitch.yaml`), timed in the same interpreter; boto3 itself:"
            f" {boto3_ms:.0f} ms (median of all runs). Goal (issue 14): the kill handler's own import ≤ {GOAL_MS} ms"
            " on a quiet machine, where boto3 takes ~180 ms (≤ ~0.33× boto3).",
            f"`{kill}` with the first load validating the config (`KillSwitchConfig.from_json`, what the Lambdas did"
            f" before they read the synth-validated file without validating): load {validating_load_ms:.0f} ms,"
            f" import + load {validating_cold_ms:.0f} ms ({validating_cold_ms / validating_base_ms:.2f}× boto3)"
            f" against {kill_cold_ms:.0f} ms ({kill_cold_ms / figures[f'{kill}.boto3_ms']:.2f}×) above; in CPU time"
            f" (`process_time`, steadier on a shared machine) {validating_cpu_ms:.0f} ms against"
            f" {figures[f'{kill}.cold_cpu_ms']:.0f} ms. The config models are `defer_build` and never build a schema"
            " in Lambda (`killswitch.runtime_config`); `killswitch.events` (the guard event model, validated on every"
            " guard event) is now the first schema the process builds and carries pydantic's first-build cost.",
            f"`{kill}` from bytecode (`.pyc` cached by an earlier run, boto3's too): import {cached_ms:.0f} ms, import"
            f" + first config load {cached_cold_ms:.0f} ms beyond boto3's {cached_base_ms:.0f} ms"
            f" ({cached_ms / cached_base_ms:.2f}× / {cached_cold_ms / cached_base_ms:.2f}×); from source"
            f" {kill_ms:.0f} ms: the difference is compiling the project's modules, which Lambda repeats on every"
            " cold start because the asset ships no bytecode (shipping it needs `.pyc` compiled by the runtime's"
            " Python 3.13 at bundling).",
            f"what is left of the kill handler's import is pydantic itself (the `{CONFIG}` column: the models are"
            " classes, so pydantic is imported; `killswitch.events` validates guard events with it on every guard"
            " event) and the pipeline's own modules (~8,000 lines every kill path runs: alerts, engine, model,"
            " ledger, kinds), which cost about twice as much compiled from source as from bytecode.",
            f"machine load (1-minute load average, 2 cores) {load_before:.1f} at the start and"
            f" {os.getloadavg()[0]:.1f} at the end of these runs: absolute times scale with it, ratios much less.",
            f"asset (staged by CDK's copy with `ASSET_EXCLUDE`): {files} files, {raw / 1024:.0f} KiB,"
            f" {zipped / 1024:.0f} KiB zipped ({zipped / all_zipped:.2f}× the {all_files} files,"
            f" {all_raw / 1024:.0f} KiB, {all_zipped / 1024:.0f} KiB zipped it would be with the CLI, validators and"
            " moto builders);"
            " boto3 and Powertools come from the runtime and the public layer."
            f" Subpackages of `killswitch` shipped: {', '.join(packages)}.",
        ],
        figures=figures,
    )
