"""stop_batch on moto: the agent's tagged job queues are disabled and enabled again on restore (only those the kill
disabled); its unfinished jobs wait for `killswitch approve` and are then terminated (not restorable); other agents,
untagged and exempt queues or jobs are left alone; one queue Batch refuses gets its own error with the AWS code; a
queue created after the kill is disabled by the watch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.batch.models import batch_backends
from moto.resourcegroupstaggingapi import models as tagging_models

from killswitch.config import ALL_ACTIONS, KillSwitchConfig
from killswitch.kill.discover import Clients
from killswitch.kill.kinds.batch import BATCH_JOB, BATCH_QUEUE
from killswitch.kill.watch import CLOUDTRAIL_DETAIL_TYPE
from killswitch.results import Outcome
from killswitch.testing import sim, sim_kinds
from tests.aws.kill_support import AGENT, EAST, OTHER, engine

ACCOUNT = "123456789012"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    """moto with its Docker-free Batch (jobs are recorded, never run), Batch resources listed by the Tagging API."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    original = tagging_models.iter_taggable_backends
    monkeypatch.setattr(tagging_models, "iter_taggable_backends", sim_kinds.tagging_with_eks_and_batch(original))
    with mock_aws(config={"batch": {"use_docker": False}}):
        yield Clients()


def compute_environment(c: Clients, region: str = EAST) -> str:
    return sim_kinds.batch_compute_environment(c, region)


def queue(c: Clients, ce: str, name: str, tags: dict[str, str], state: str = "ENABLED") -> str:
    return sim_kinds.batch_queue(c, EAST, ce, name, tags, state=state)


def job(c: Clients, queue_name: str, status: str, tags: dict[str, str] | None = None) -> str:
    return sim_kinds.batch_job(c, EAST, queue_name, status, tags)


def terminated(job_arn: str) -> bool:
    """moto records TerminateJob on the job (`stop`) without moving its status."""
    return bool(batch_backends[ACCOUNT][EAST]._jobs[job_arn.rsplit("/", 1)[-1]].stop)


def state(c: Clients, name: str) -> str:
    return str(c("batch", EAST).describe_job_queues(jobQueues=[name])["jobQueues"][0]["state"])


def all_actions(config: KillSwitchConfig) -> KillSwitchConfig:
    agents = [a.model_copy(update={"actions": list(ALL_ACTIONS)}) if a.name == AGENT else a for a in config.agents]
    return config.model_copy(update={"agents": agents})


def test_kill_disables_the_agents_queues_jobs_wait_for_approval_and_restore_enables_only_what_it_disabled(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    t = sim.agent_tags
    ce = compute_environment(aws)
    mine = queue(aws, ce, "summarizer", t(AGENT))
    paused = queue(aws, ce, "summarizer-paused", t(AGENT), state="DISABLED")
    other = queue(aws, ce, "crawler", t(OTHER))
    exempt = queue(aws, ce, "summarizer-keep", t(AGENT, **{"killswitch:exempt": "true"}))
    untagged = queue(aws, ce, "shared", {})
    running = job(aws, "summarizer", "RUNNING")
    runnable = job(aws, "summarizer", "RUNNABLE")
    done = job(aws, "summarizer", "SUCCEEDED")
    kept = job(aws, "summarizer", "RUNNING", {"killswitch:exempt": "true"})
    foreign = job(aws, "crawler", "RUNNING", t(AGENT))  # tagged for the agent but in another agent's queue
    eng, _, _ = engine(all_actions(example_config), aws)

    report = eng.kill(AGENT)

    got = {r.resource_id: r for r in report.summary.results}
    assert got[mine].outcome is Outcome.SUCCESS and got[mine].action == "disable"
    assert state(aws, "summarizer") == "DISABLED"
    assert got[paused].outcome is Outcome.NO_ACTION and got[paused].message == "job queue already disabled"
    assert got[exempt].outcome is Outcome.NO_ACTION
    for name in ("crawler", "summarizer-keep", "shared"):
        assert state(aws, name) == "ENABLED", name
    assert other not in got and untagged not in got
    for j in (running, runnable):
        assert got[j].outcome is Outcome.NEEDS_APPROVAL and got[j].action == "stop_task"
        assert "cannot be undone" in got[j].message
        assert not terminated(j)
    assert got[kept].outcome is Outcome.NO_ACTION and not terminated(kept)
    assert done not in got and foreign not in got
    assert report.status == "awaiting_approval" and report.verification == "verified"
    lines = {x["resource_id"]: x for x in eng.status(AGENT)[0]["resources"]}
    assert lines[mine]["restore"] == "enable the job queue"
    assert lines[running]["restore"].startswith("nothing (never stopped")

    approved = eng.approve(str(report.kill_id))

    assert {r.resource_id for r in approved.summary.results if r.outcome is Outcome.SUCCESS} == {running, runnable}
    assert terminated(running) and terminated(runnable) and not terminated(kept)
    lines = {x["resource_id"]: x for x in eng.status(AGENT)[0]["resources"]}
    assert lines[running]["restore"] == "nothing (a terminated Batch job cannot be restarted; resubmit it)"

    restored = eng.restore(AGENT)
    assert restored.status == "restored"
    assert state(aws, "summarizer") == "ENABLED"
    assert state(aws, "summarizer-paused") == "DISABLED"  # not disabled by the kill: left as it was
    rres = {r.resource_id: r for r in restored.summary.results}
    assert rres[running].outcome is Outcome.NO_ACTION and "cannot be restarted" in rres[running].message


def test_a_second_kill_changes_nothing_and_a_run_scoped_kill_takes_only_the_runs_jobs(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    ce = compute_environment(aws)
    mine = queue(aws, ce, "summarizer", sim.agent_tags(AGENT))
    run_job = job(aws, "summarizer", "RUNNING", {"agent-run-id": "run-7f3a"})
    other_run = job(aws, "summarizer", "RUNNING", {"agent-run-id": "run-0000"})
    eng, _, _ = engine(all_actions(example_config), aws)

    scoped = eng.kill(AGENT, run_id="run-7f3a")
    got = {r.resource_id: r for r in scoped.summary.results}
    assert got[run_job].outcome is Outcome.NEEDS_APPROVAL
    assert other_run not in got  # its own agent-run-id names another run
    assert mine not in got and state(aws, "summarizer") == "ENABLED"  # the queue is the agent's, not the run's

    first = eng.kill(AGENT)
    second = eng.kill(AGENT)
    assert {r.resource_id for r in first.summary.results if r.outcome is Outcome.SUCCESS} == {mine}
    assert {r.resource_id: r.outcome for r in second.summary.results if r.resource_type == BATCH_QUEUE} == {
        mine: Outcome.NO_ACTION
    }
    assert all(
        r.outcome is Outcome.NO_ACTION and "already handled" in r.message
        for r in second.summary.results
        if r.resource_type == BATCH_JOB
    )


def test_a_queue_batch_refuses_gets_its_code_and_the_others_are_disabled(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    ce = compute_environment(aws)
    good = queue(aws, ce, "summarizer-a", sim.agent_tags(AGENT))
    bad = queue(aws, ce, "summarizer-b", sim.agent_tags(AGENT))
    inner = aws("batch", EAST)

    class RefusingBatch:
        def update_job_queue(self, **kw: Any) -> Any:
            if kw["jobQueue"] == bad:
                msg = "job queue summarizer-b is being updated"
                raise ClientError({"Error": {"Code": "ClientException", "Message": msg}}, "UpdateJobQueue")
            return inner.update_job_queue(**kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("batch", EAST): RefusingBatch()}))
    report = eng.kill(AGENT)
    got = {r.resource_id: r for r in report.summary.results}
    assert got[bad].outcome is Outcome.ERROR and got[bad].code == "ClientException"
    assert got[good].outcome is Outcome.SUCCESS and state(aws, "summarizer-a") == "DISABLED"
    assert state(aws, "summarizer-b") == "ENABLED"
    assert report.status == "partial" and report.exit_code() == 2


def test_a_queue_created_or_enabled_after_the_kill_is_disabled_by_the_watch(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    ce = compute_environment(aws)
    queue(aws, ce, "summarizer", sim.agent_tags(AGENT))
    eng, _, _ = engine(all_actions(example_config), aws)
    eng.kill(AGENT)
    aws("batch", EAST).update_job_queue(jobQueue="summarizer", state="ENABLED")  # the agent's CI re-enables it
    late = queue(aws, ce, "summarizer-late", sim.agent_tags(AGENT))
    event = {
        "source": "aws.batch",
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "region": EAST,
        "detail": {
            "eventSource": "batch.amazonaws.com",
            "eventName": "CreateJobQueue",
            "awsRegion": EAST,
            "requestParameters": {"jobQueueName": "summarizer-late", "tags": {"agent-name": AGENT}},
        },
    }

    (watch,) = eng.handle_event(event)

    assert state(aws, "summarizer") == "DISABLED" and state(aws, "summarizer-late") == "DISABLED"
    assert any(r.resource_id == late and r.outcome is Outcome.SUCCESS for r in watch.summary.results)
    eng.restore(AGENT)
    assert state(aws, "summarizer") == "ENABLED" and state(aws, "summarizer-late") == "ENABLED"


class ScalingBatch:
    """moto accepts UpdateComputeEnvironment but ignores `computeResources` (a TODO in moto 5.2): this applies them to
    moto's environment as AWS does, so that the test reads back what the kill and restore set."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.updates: list[dict[str, Any]] = []

    def update_compute_environment(self, **kw: Any) -> Any:
        self.updates.append(kw)
        out = self.inner.update_compute_environment(**kw)
        env = batch_backends[ACCOUNT][EAST].get_compute_environment(kw["computeEnvironment"])
        assert env is not None
        env.compute_resources.update(kw.get("computeResources") or {})
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def managed_environment(c: Clients, name: str, tags: dict[str, str], fargate: bool = False) -> str:
    return sim_kinds.batch_managed_environment(c, EAST, name, tags, fargate)


def vcpus(c: Clients, name: str) -> tuple[int | None, int]:
    ce = c("batch", EAST).describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
    cr = ce["computeResources"]
    return cr.get("minvCpus"), int(cr["maxvCpus"])


def test_managed_compute_environments_go_to_zero_vcpus_and_restore_puts_min_and_max_back(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    t = sim.agent_tags
    ec2 = managed_environment(aws, "summarizer-ec2", t(AGENT))
    fargate = managed_environment(aws, "summarizer-fargate", t(AGENT), fargate=True)
    managed_environment(aws, "crawler-ec2", t(OTHER))
    exempt = managed_environment(aws, "summarizer-keep", t(AGENT, **{"killswitch:exempt": "true"}))
    role = aws("iam", EAST).get_role(RoleName="batch-service")["Role"]["Arn"]
    unmanaged = aws("batch", EAST).create_compute_environment(
        computeEnvironmentName="summarizer-own", type="UNMANAGED", serviceRole=role, tags=t(AGENT)
    )["computeEnvironmentArn"]
    batch = ScalingBatch(aws("batch", EAST))
    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("batch", EAST): batch}))

    report = eng.kill(AGENT)

    got = {r.resource_id: r for r in report.summary.results}
    assert got[ec2].outcome is Outcome.SUCCESS and got[ec2].action == "scale_to_zero"
    assert got[fargate].outcome is Outcome.SUCCESS
    assert vcpus(aws, "summarizer-ec2") == (0, 0)
    assert vcpus(aws, "summarizer-fargate") == (None, 0)  # Fargate has no min vCPUs: only max is sent
    assert vcpus(aws, "crawler-ec2") == (2, 16) and vcpus(aws, "summarizer-keep") == (2, 16)
    assert got[exempt].outcome is Outcome.NO_ACTION
    assert got[unmanaged].outcome is Outcome.NO_ACTION and "stop_ec2" in got[unmanaged].message
    assert [u["computeEnvironment"] for u in batch.updates] == [ec2, fargate]
    assert report.verification == "verified"
    assert all("desiredvCpus" not in u["computeResources"] for u in batch.updates)  # the API cannot lower it

    second = eng.kill(AGENT)
    assert len(batch.updates) == 2 and not [r for r in second.summary.results if r.outcome is Outcome.SUCCESS]

    restored = eng.restore(AGENT)
    assert restored.status == "restored"
    assert vcpus(aws, "summarizer-ec2") == (2, 16)
    assert vcpus(aws, "summarizer-fargate") == (None, 16)
    assert vcpus(aws, "crawler-ec2") == (2, 16)
