"""`python -m bench` (= `make bench`): run every benchmark, print the tables and rewrite BENCHMARKS.md.

    python -m bench [--quick] [--only fanout,guard,...] [--no-write] [--json FILE]

Every comparison is measured in the same run (ratios against a baseline), never against remembered numbers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import REPO, Section, git_revision, machine

# name -> module with `run(quick: bool) -> Section`
SECTIONS: dict[str, str] = {
    "fanout": "bench.fanout",
    "time_to_kill": "bench.time_to_kill",
    "guard": "bench.guard_section",
    "bedrock": "bench.bedrock_bench",
    "cold_start": "bench.cold_start",
    "tooling": "bench.tooling",
    "scale_synth": "bench.scale_synth",
    "meter": "bench.meter_bench",
    "hub": "bench.hub_bench",
}


def _split_sections(text: str) -> dict[str, str]:
    """`## title` → that section's Markdown (up to the next `## `), in file order."""
    out: dict[str, str] = {}
    title = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = ""
        if title is not None:
            out[title] += line
    return out


def _notes(text: str) -> str:
    """The hand-written notes between the generated header (ending with the `- machine:` line) and the first
    section: when and how the sections were measured. A partial run keeps them; a full run starts afresh."""
    head = text.split("\n## ", 1)[0]
    lines = head.splitlines()
    machine_line = next((i for i, line in enumerate(lines) if line.startswith("- machine:")), None)
    if machine_line is None:
        return ""
    return "\n".join(lines[machine_line + 1 :]).strip("\n")


def write_benchmarks(
    sections: list[Section], command: str, *, partial: bool, path: Path = REPO / "BENCHMARKS.md"
) -> None:
    """Rewrite BENCHMARKS.md. A partial run (`--only`) replaces its own sections and keeps the others as they were,
    and the hand-written notes above them, each section saying which command produced it."""
    stamp = f"`{command}` at `{git_revision()}`, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    fresh = {s.title: s.markdown() + f"\n_Produced by {stamp}._\n" for s in sections}
    keep = partial and path.exists()
    old = path.read_text() if keep else ""
    merged = {**_split_sections(old), **fresh} if keep else fresh
    notes = _notes(old) if keep else ""
    header = [
        "# Benchmarks",
        "",
        "Figures printed by `make bench` (`python -m bench`); every ratio compares with a baseline measured in the",
        "same run on the same machine. Regenerate with `make bench`; each section names the command that produced it.",
        "",
        f"- machine: {machine()}",
        "",
        *([notes, ""] if notes else []),
    ]
    path.write_text("\n".join(header) + "\n" + "\n".join(text.rstrip("\n") + "\n" for text in merged.values()))
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions, no test-suite run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--json", dest="json_path", help="also write the raw figures to this JSON file")
    args = parser.parse_args(argv)

    wanted = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    sections: list[Section] = []
    for name in wanted:
        t0 = time.perf_counter()
        run: Callable[[bool], Section] = importlib.import_module(SECTIONS[name]).run
        section = run(args.quick)
        sections.append(section)
        print(section.markdown())
        print(f"({name}: {time.perf_counter() - t0:.1f} s)\n", flush=True)

    command = "make bench" if not args.quick else "python -m bench --quick"
    if args.only:
        command += f" --only {args.only}"
    if not args.no_write:
        write_benchmarks(sections, command, partial=bool(args.only))
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump({s.title: s.figures for s in sections}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
