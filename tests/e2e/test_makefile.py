"""The Makefile finds any Python >= 3.11 (python3.11, python3.12, python3.13, python3) and says when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make_python(path_dir: Path) -> subprocess.CompletedProcess[str]:
    """`make python` with only `path_dir` on PATH (so no Python of this machine is found by accident)."""
    return subprocess.run(
        [str(MAKE), "-s", "--no-print-directory", "python"],
        cwd=REPO,
        env={"PATH": str(path_dir)},
        capture_output=True,
        text=True,
        check=False,
    )


def fake(path: Path, script: str) -> None:
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)


def test_no_python_311_or_newer_is_a_clear_error(tmp_path: Path) -> None:
    fake(tmp_path / "python3", "exit 1")  # answers the version check like Python 3.10 would: too old
    proc = make_python(tmp_path)
    assert proc.returncode != 0
    assert "no Python >= 3.11 found (tried python3.11 python3.12 python3.13 python3)" in proc.stderr


def test_any_python_311_or_newer_is_used(tmp_path: Path) -> None:
    fake(tmp_path / "python3.11", "exit 1")  # too old (a broken or mislabeled interpreter): skipped
    fake(tmp_path / "python3.13", f'exec "{os.path.realpath(sys.executable)}" "$@"')
    proc = make_python(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("using python3.13: 3.")
