"""The bench runner's BENCHMARKS.md writer: a partial run replaces only its own sections."""

from __future__ import annotations

import importlib
from pathlib import Path

from bench.common import Section

runner = importlib.import_module("bench.__main__")


def section(title: str, value: str) -> Section:
    return Section(title=title, headers=["what", "figure"], rows=[["x", value]])


def test_partial_run_keeps_the_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    runner.write_benchmarks([section("A", "1"), section("B", "2")], "make bench", partial=False, path=path)
    runner.write_benchmarks([section("B", "3")], "python -m bench --only b", partial=True, path=path)
    text = path.read_text()
    assert "| x | 1 |" in text and "| x | 3 |" in text and "| x | 2 |" not in text
    assert text.index("## A") < text.index("## B")  # order kept
    assert "_Produced by `make bench`" in text and "_Produced by `python -m bench --only b`" in text


def test_partial_run_keeps_the_hand_written_notes_above_the_sections(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    runner.write_benchmarks([section("A", "1"), section("B", "2")], "make bench", partial=False, path=path)
    machine_line = next(line for line in path.read_text().splitlines() if line.startswith("- machine:"))
    path.write_text(path.read_text().replace(machine_line, machine_line + "\n\nMeasured quietly: A and B.\n"))

    runner.write_benchmarks([section("B", "3")], "python -m bench --only b", partial=True, path=path)

    text = path.read_text()
    assert text.count("Measured quietly: A and B.") == 1
    assert text.index("- machine:") < text.index("Measured quietly") < text.index("## A")


def test_full_run_rewrites_everything(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    runner.write_benchmarks([section("A", "1")], "make bench", partial=False, path=path)
    path.write_text(path.read_text().replace("## A", "Old notes.\n\n## A"))
    runner.write_benchmarks([section("C", "9")], "make bench", partial=False, path=path)
    text = path.read_text()
    assert "Old notes." not in text
    assert "## A" not in text and "## C" in text and text.startswith("# Benchmarks\n")
