"""Smoke test of the hub benchmark on a tiny organization: every kill stops the agent in every account × region,
assumes each spoke role once, and leaves the other agent running."""

from __future__ import annotations

from bench import hub_bench


def test_hub_section_on_two_accounts_and_two_regions() -> None:
    section = hub_bench.run(size=(2, ("us-east-1", "us-west-2")))
    assert section.title == "Hub kill across accounts (moto)"
    assert len(section.rows) == 4 and all(len(r) == len(section.headers) for r in section.rows)
    f = section.figures
    assert f["other_agent_untouched"] == 1
    for key in ("pool16.moto", "pool1.moto", "pool16.latency", "pool1.latency"):
        assert f[f"{key}.stopped"] == 4, key  # 2 accounts × 2 regions, one instance each
        assert f[f"{key}.errors"] == 0, key
        assert f[f"{key}.assume_role"] == 2, key  # once per account per kill
    # The same work whatever the pool size: the same AWS calls.
    assert f["pool16.moto.calls"] == f["pool1.moto.calls"]
