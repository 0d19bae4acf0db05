"""The meter's compute tick on moto for SageMaker notebooks and endpoints and RDS instances: what runs for an agent is
priced per hour from the snapshot (ml.* and db.* items) and accrued since the last tick; stopped, untagged and
unpriced resources accrue nothing (unpriced ones are reported, never guessed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from killswitch.kill.discover import Clients
from killswitch.meter.compute import SnapshotPrices, accrue
from killswitch.meter.managed import (
    RDS_INSTANCE_KIND,
    SAGEMAKER_ENDPOINT_KIND,
    SAGEMAKER_NOTEBOOK_KIND,
    ManagedComputeSource,
    rds_item,
)
from killswitch.testing import sim
from killswitch.testing.sim_kinds import sagemaker_endpoint as endpoint
from killswitch.testing.sim_kinds import sagemaker_notebook as notebook
from tests.aws import meter_support as M
from tests.aws.kill_support import aws  # noqa: F401 (fixture)

EAST = "us-east-1"
T = sim.agent_tags


def database(c: Clients, name: str, tags: dict[str, str], **kw: Any) -> str:
    resp = c("rds", EAST).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass=kw.pop("DBInstanceClass", "db.t3.micro"),
        Engine=kw.pop("Engine", "postgres"),
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password123",
        Tags=sim.tag_list(tags),
        **kw,
    )
    return str(resp["DBInstance"]["DBInstanceArn"])


def fleet(c: Clients) -> dict[str, str]:
    ids = {
        "nb": notebook(c, EAST, "summarizer-nb", T(M.AGENT, "run-1")),
        "nb_stopped": notebook(c, EAST, "summarizer-idle", T(M.AGENT)),
        "nb_untagged": notebook(c, EAST, "shared-nb", {}),
        "ep": endpoint(c, EAST, "summarizer-ep", T(M.AGENT, "run-1"), instance_type="ml.m5.large", count=2),
        "db": database(c, "summarizer-db", T(M.AGENT, "run-1")),
        "db_multi_az": database(c, "summarizer-ha", T(M.AGENT, "run-1"), DBInstanceClass="db.t3.small", MultiAZ=True),
        "db_stopped": database(c, "summarizer-old", T(M.AGENT)),
        "db_untagged": database(c, "shared-db", {}),
    }
    c("sagemaker", EAST).stop_notebook_instance(NotebookInstanceName="summarizer-idle")
    c("rds", EAST).stop_db_instance(DBInstanceIdentifier="summarizer-old")
    return ids


def test_running_notebooks_endpoints_and_databases_become_priced_units(aws: Clients) -> None:  # noqa: F811
    ids = fleet(aws)

    units = {u.resource_id: u for u in ManagedComputeSource(aws).running(EAST)}

    assert set(units) == {ids["nb"], ids["ep"], ids["db"], ids["db_multi_az"]}
    assert units[ids["nb"]].kind == SAGEMAKER_NOTEBOOK_KIND and units[ids["nb"]].items == {"sagemaker:ml.t3.medium": 1}
    assert units[ids["ep"]].kind == SAGEMAKER_ENDPOINT_KIND and units[ids["ep"]].items == {"sagemaker:ml.m5.large": 2}
    assert units[ids["db"]].kind == RDS_INSTANCE_KIND and units[ids["db"]].items == {"rds:db.t3.micro": 1}
    assert units[ids["db_multi_az"]].items == {"rds:db.t3.small": 2}  # the standby bills too
    assert all(u.agent == M.AGENT and u.run_id == "run-1" and u.launched_at for u in units.values())


def test_tick_accrues_them_since_the_last_tick(aws: Clients) -> None:  # noqa: F811
    fleet(aws)
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)  # moto stamps real creation times
    w = M.wire(aws, now=start)
    w.meter.state.set_last_tick(start)  # type: ignore[union-attr]

    report = w.meter.tick(start + timedelta(minutes=30))

    assert report.units >= 4
    hourly = Decimal("0.05") + 2 * Decimal("0.115") + Decimal("0.018") + 2 * Decimal("0.036")  # snapshot us-east-1
    run = [f for f in report.facts if f.run_id == "run-1"]
    assert sum(f.amount_usd for f in run) == hourly / 2


def test_a_serverless_variant_or_an_unknown_engine_is_unpriced_not_guessed(aws: Clients) -> None:  # noqa: F811
    database(aws, "summarizer-oracle", T(M.AGENT), Engine="oracle-ee", DBInstanceClass="db.m5.large")
    (unit,) = ManagedComputeSource(aws).running(EAST)
    assert unit.items == {"rds-oracle-ee:db.m5.large": 1}
    now = datetime.now(UTC) + timedelta(hours=1)
    (accrual,) = accrue([unit], SnapshotPrices(), now - timedelta(minutes=5), now, timedelta(minutes=5))
    assert accrual.amount_usd is None
    assert rds_item("aurora-postgresql", "db.r5.large") == "rds-aurora:db.r5.large"
    assert SnapshotPrices().hourly(EAST, rds_item("aurora-mysql", "db.r5.large")) == Decimal("0.29")
