"""Code points to the repository's own docs/, never to documents outside it, and every docs/ file it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for top in ("lambdas", "infra", "bench", "tests", "scp_policies")
    for p in (REPO / top).rglob("*")
    if p.suffix in {".py", ".md", ".json"} and "egg-info" not in p.parts and p != Path(__file__)
]
OUTSIDE = re.compile(r"\b(DESIGN\.md|AWS_NOTES\.md|/work/shared)\b")
DOCS_LINK = re.compile(r"docs/([\w.-]+\.md)")


def test_no_reference_to_documents_outside_the_repository() -> None:
    hits = [f"{p.relative_to(REPO)}" for p in SOURCES if OUTSIDE.search(p.read_text(encoding="utf-8"))]
    assert hits == []


def test_every_docs_file_named_in_code_exists() -> None:
    named = {m for p in SOURCES for m in DOCS_LINK.findall(p.read_text(encoding="utf-8"))}
    assert named, "the code should point to docs/"
    assert sorted(n for n in named if not (REPO / "docs" / n).is_file()) == []
