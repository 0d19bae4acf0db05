"""Smoke test of the cold-start section: the handler's own import time is read beyond boto3, and the staged asset is
the runtime-only one."""

from __future__ import annotations

from pathlib import Path

from bench import cold_start

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   botocore.session
import time:       400 |     180000 | boto3
import time:       200 |       5000 |     killswitch.arns
import time:       300 |      20000 |   killswitch.config
import time:       100 |       9000 |   killswitch.kill.engine
import time:      1000 |      40000 | killswitch.handlers.kill
"""


def test_pydantic_imported_elsewhere_still_counts_with_the_config() -> None:
    out = IMPORTTIME.replace("   killswitch.config", "   killswitch.guard").replace(
        "import time:       100 |       9000 |   killswitch.kill.engine",
        "import time:       100 |       7000 |   pydantic\nimport time:       100 |       9000 |   killswitch.config",
    )
    profile = cold_start.parse_importtime(out, "killswitch.handlers.kill")
    assert profile.config_us == 16_000  # 9 ms of the config + 7 ms of pydantic, imported first by another module


def test_the_handler_figure_excludes_boto3_and_names_its_heaviest_imports() -> None:
    profile = cold_start.parse_importtime(IMPORTTIME, "killswitch.handlers.kill")
    assert (profile.baseline_us, profile.handler_us, profile.config_us) == (180_000, 40_000, 20_000)
    assert profile.heaviest == (("killswitch.config", 20_000), ("killswitch.kill.engine", 9_000))


def test_the_staged_asset_has_the_handlers_and_no_offline_package(tmp_path: Path) -> None:
    asset = cold_start.staged_asset(tmp_path / "asset")
    shipped = {p.relative_to(asset).as_posix() for p in asset.rglob("*.py")}
    assert "killswitch/handlers/kill.py" in shipped
    assert not [p for p in shipped if p.startswith(("killswitch/cli/", "killswitch/scp/", "killswitch/testing/"))]
    files, raw, zipped = cold_start.asset_size(asset)
    assert files == len([p for p in asset.rglob("*") if p.is_file()]) and 0 < zipped < raw


def test_the_first_config_load_is_timed_after_the_import(tmp_path: Path) -> None:
    config_dir = cold_start.write_config_files(tmp_path)
    profile = cold_start.import_profile("killswitch.handlers.kill", config_dir=config_dir)
    assert profile.load_us > 0 and profile.cold_us == profile.handler_us + profile.load_us
    assert profile.cpu_import_us > 0 and profile.cpu_cold_us == profile.cpu_import_us + profile.cpu_load_us
    validating = cold_start.import_profile(
        "killswitch.handlers.kill", config_dir=config_dir, load=cold_start.VALIDATING_LOAD
    )
    assert validating.load_us > 0


def test_the_section_reports_each_handler_beyond_boto3_and_the_asset() -> None:
    section = cold_start.run(runs=1)
    for module in cold_start.HANDLERS:
        assert section.figures[f"{module}.import_ms"] > 0
        assert section.figures[f"{module}.boto3_ms"] > 0
        assert section.figures[f"{module}.config_load_ms"] > 0
        assert section.figures[f"{module}.cold_ms"] > section.figures[f"{module}.import_ms"]
        assert 0 < section.figures[f"{module}.config_ms"] < section.figures[f"{module}.import_ms"]
    assert section.figures["killswitch.handlers.kill.import_ms_bytecode"] > 0  # the same import from .pyc
    assert section.figures["killswitch.handlers.kill.validating_load_ms"] > 0  # the first load validating
    assert section.figures["killswitch.handlers.kill.validating_cold_cpu_ms"] > 0
    assert section.figures["killswitch.handlers.kill.cold_cpu_ms"] > 0
    assert section.figures["asset_files"] > 50
    assert "beyond boto3" in section.headers[1]
