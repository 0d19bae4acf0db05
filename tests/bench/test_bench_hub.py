"""Smoke test of the hub benchmark on a tiny organization: every kill stops the agent in every account × region,
assumes each spoke role once, and leaves the other agent running."""

from __future__ import annotations

from bench import hub_bench


def test_hub_section_on_two_accounts_and_two_regions() -> None:
    section = hub_bench.run(size=(2, ("us-east-1", "us-west-2")))
    assert section.title == "Hub kill across accounts (moto)"
    keys = [f"pool{pool}.{aws}" for aws in ("moto", "latency", "latency50") for pool in (1, 16)]
    assert len(section.rows) == len(keys) and all(len(r) == len(section.headers) for r in section.rows)
    f = section.figures
    assert f["other_agent_untouched"] == 1
    for key in keys:
        assert f[f"{key}.stopped"] == 4, key  # 2 accounts × 2 regions, one instance each, running again each time
        assert f[f"{key}.errors"] == 0, key
        assert f[f"{key}.assume_role"] == 2, key  # once per account per kill
        assert 0 < f[f"{key}.moto_cpu_s"] < f[f"{key}.cpu_s"], key
    # The same work whatever the pool size or latency: the same AWS calls.
    assert len({f[f"{key}.calls"] for key in keys}) == 1
    # Clients are per service × region, shared by the spoke accounts: the same number in every kill.
    assert len({f[f"{key}.clients"] for key in keys}) == 1
