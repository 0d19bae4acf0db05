"""stop_rds on moto: the agent's tagged DB instances and Aurora clusters are stopped and started again on restore;
cluster members, other agents, exempt and untagged databases are left alone; AWS's 7-day restart is stopped again by
the watch's re-check."""

from __future__ import annotations

from typing import Any

from killswitch.config import ALL_ACTIONS, KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.watch import RECHECK_EVENT
from killswitch.results import Outcome
from killswitch.testing import sim
from tests.aws.kill_support import AGENT, EAST, OTHER, aws, engine

__all__ = ["aws"]


def db(c: Clients, name: str, tags: dict[str, str], **kw: Any) -> str:
    resp = c("rds", EAST).create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine=kw.pop("Engine", "postgres"),
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password123",
        Tags=sim.tag_list(tags),
        **kw,
    )
    return str(resp["DBInstance"]["DBInstanceArn"])


def cluster(c: Clients, name: str, tags: dict[str, str]) -> str:
    resp = c("rds", EAST).create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password123",
        Tags=sim.tag_list(tags),
    )
    return str(resp["DBCluster"]["DBClusterArn"])


def status(c: Clients, name: str) -> str:
    return str(c("rds", EAST).describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceStatus"])


def cluster_status(c: Clients, name: str) -> str:
    return str(c("rds", EAST).describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["Status"])


def all_actions(config: KillSwitchConfig) -> KillSwitchConfig:
    agents = [a.model_copy(update={"actions": list(ALL_ACTIONS)}) if a.name == AGENT else a for a in config.agents]
    return config.model_copy(update={"agents": agents})


def test_kill_stops_the_agents_databases_restore_starts_them_and_the_recheck_stops_a_7_day_restart(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    t = sim.agent_tags
    mine = db(aws, "summarizer-db", t(AGENT))
    other = db(aws, "crawler-db", t(OTHER))
    exempt = db(aws, "summarizer-keep", t(AGENT, **{"killswitch:exempt": "true"}))
    untagged = db(aws, "shared-db", {})
    aurora = cluster(aws, "summarizer-aurora", t(AGENT))
    eng, _, _ = engine(all_actions(example_config), aws)

    report = eng.kill(AGENT)

    got = {r.resource_id: r for r in report.summary.results}
    assert got[mine].outcome is Outcome.SUCCESS and got[mine].action == "stop"
    assert got[aurora].outcome is Outcome.SUCCESS
    assert status(aws, "summarizer-db") == "stopped"
    assert cluster_status(aws, "summarizer-aurora") == "stopped"
    for name in ("crawler-db", "summarizer-keep", "shared-db"):
        assert status(aws, name) == "available", name
    assert {other, exempt, untagged}.isdisjoint(
        r.resource_id for r in report.summary.results if r.outcome is Outcome.SUCCESS
    )
    assert report.verification == "verified"

    aws("rds", EAST).start_db_instance(DBInstanceIdentifier="summarizer-db")  # AWS, 7 days later: no agent event
    (recheck,) = eng.handle_event(RECHECK_EVENT)
    assert status(aws, "summarizer-db") == "stopped"
    assert any(r.resource_id == mine and r.outcome is Outcome.SUCCESS for r in recheck.summary.results)

    restored = eng.restore(AGENT)
    assert restored.status == "restored"
    assert status(aws, "summarizer-db") == "available"
    assert cluster_status(aws, "summarizer-aurora") == "available"


def test_a_stopped_database_is_skipped_and_one_rds_cannot_stop_gets_its_code(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    from botocore.exceptions import ClientError

    good = db(aws, "summarizer-db", sim.agent_tags(AGENT))
    bad = db(aws, "summarizer-replica", sim.agent_tags(AGENT))
    db(aws, "summarizer-db-2", sim.agent_tags(AGENT))
    aws("rds", EAST).stop_db_instance(DBInstanceIdentifier="summarizer-db-2")
    inner = aws("rds", EAST)

    class ReplicaRds:
        def stop_db_instance(self, **kw: Any) -> Any:
            if kw["DBInstanceIdentifier"] == "summarizer-replica":
                msg = "read replicas cannot be stopped"
                raise ClientError({"Error": {"Code": "InvalidDBInstanceState", "Message": msg}}, "StopDBInstance")
            return inner.stop_db_instance(**kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("rds", EAST): ReplicaRds()}))
    report = eng.kill(AGENT)
    got = {r.resource_id: r for r in report.summary.results}
    assert got[bad].outcome is Outcome.ERROR and got[bad].code == "InvalidDBInstanceState"
    assert got[good].outcome is Outcome.SUCCESS and status(aws, "summarizer-db") == "stopped"
    skipped = [r for r in report.summary.results if r.message == "already stopped"]
    assert len(skipped) == 1
