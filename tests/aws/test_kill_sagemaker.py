"""stop_sagemaker on moto: the agent's notebook instances are stopped and started again on restore (only those the
kill stopped); training and processing jobs in progress and endpoints wait for approval (endpoints with the hourly
cost they keep accruing); approval stops the jobs (not restorable) and deletes the endpoints, which restore
re-creates from their endpoint config; other agents, exempt and untagged resources are never touched."""

from __future__ import annotations

from typing import Any

from killswitch.config import ALL_ACTIONS, Action, KillSwitchConfig
from killswitch.kill.discover import Clients, discover
from killswitch.kill.kinds import kinds_for
from killswitch.kill.kinds.base import ActContext
from killswitch.kill.kinds.sagemaker import ENDPOINT, NOTEBOOK, SageMakerEndpoints
from killswitch.kill.model import Resource
from killswitch.kill.watch import RECHECK_EVENT
from killswitch.results import Outcome
from killswitch.testing import sim
from killswitch.testing.sim_kinds import processing_job, training_job
from killswitch.testing.sim_kinds import sagemaker_endpoint as endpoint
from killswitch.testing.sim_kinds import sagemaker_notebook as notebook
from tests.aws.kill_support import AGENT, EAST, OTHER, WEST, aws, engine
from tests.aws.sagemaker_support import (
    PendingNotebook,
    StubbedTrainingStop,
    endpoint_exists,
    job_status,
    notebook_status,
)

__all__ = ["aws"]
t = sim.agent_tags


def all_actions(config: KillSwitchConfig) -> KillSwitchConfig:
    agents = [a.model_copy(update={"actions": list(ALL_ACTIONS)}) if a.name == AGENT else a for a in config.agents]
    return config.model_copy(update={"agents": agents})


def results(report: Any) -> dict[str, Any]:
    return {r.resource_id: r for r in report.summary.results}


def test_notebooks_stop_jobs_and_endpoints_wait_for_approval_and_restore_puts_back_exactly_what_changed(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    mine = notebook(aws, EAST, "summarizer-nb", t(AGENT))
    west = notebook(aws, WEST, "summarizer-nb-west", t(AGENT), "ml.m5.xlarge")
    stopped_before = notebook(aws, EAST, "summarizer-idle", t(AGENT))
    aws("sagemaker", EAST).stop_notebook_instance(NotebookInstanceName="summarizer-idle")
    other = notebook(aws, EAST, "crawler-nb", t(OTHER))
    exempt = notebook(aws, EAST, "summarizer-keep", t(AGENT, **{"killswitch:exempt": "true"}))
    untagged = notebook(aws, EAST, "shared-nb", {})
    train = training_job(aws, EAST, "summarizer-train", t(AGENT))
    done = training_job(aws, EAST, "summarizer-train-old", t(AGENT), status="Completed")
    other_train = training_job(aws, EAST, "crawler-train", t(OTHER))
    proc = processing_job(aws, EAST, "summarizer-proc", t(AGENT))
    ep = endpoint(aws, EAST, "summarizer-ep", t(AGENT), instance_type="ml.m5.large", count=2)
    other_ep = endpoint(aws, EAST, "crawler-ep", t(OTHER))
    stop_training = StubbedTrainingStop(aws("sagemaker", EAST), EAST)
    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("sagemaker", EAST): stop_training}))

    report = eng.kill(AGENT)

    got = results(report)
    assert got[mine].outcome is Outcome.SUCCESS and got[mine].action == "stop"
    assert got[west].outcome is Outcome.SUCCESS
    assert notebook_status(aws, EAST, "summarizer-nb") == "Stopped"
    assert notebook_status(aws, WEST, "summarizer-nb-west") == "Stopped"
    assert got[stopped_before].outcome is Outcome.NO_ACTION and "Stopped" in got[stopped_before].message
    for name in ("crawler-nb", "summarizer-keep", "shared-nb"):
        assert notebook_status(aws, EAST, name) == "InService", name
    assert {other, untagged}.isdisjoint(got)  # the Tagging API filter never returns them
    assert got[exempt].outcome is Outcome.NO_ACTION
    assert done not in got and other_train not in got  # only jobs in progress of the agent are listed
    assert got[train].outcome is Outcome.NEEDS_APPROVAL and "cannot be resumed" in got[train].message
    assert got[proc].outcome is Outcome.NEEDS_APPROVAL
    assert got[ep].outcome is Outcome.NEEDS_APPROVAL
    assert "$0.23/h" in got[ep].message and "2 × ml.m5.large" in got[ep].message  # 2 × $0.115 (snapshot)
    assert "summarizer-ep-config" in got[ep].message
    assert job_status(EAST, "training", "summarizer-train") == "InProgress"
    assert endpoint_exists(aws, EAST, "summarizer-ep")
    assert report.status == "awaiting_approval"
    assert report.verification == "verified"

    (line,) = [s for s in eng.status(AGENT)[0]["resources"] if s["resource_id"] == ep]
    assert line["done"] == "needs_approval"

    approved = eng.approve(report.kill_id)

    got = results(approved)
    assert got[train].outcome is Outcome.SUCCESS and stop_training.stopped == ["summarizer-train"]
    assert job_status(EAST, "training", "summarizer-train") == "Stopping"
    assert got[proc].outcome is Outcome.SUCCESS and job_status(EAST, "processing", "summarizer-proc") == "Stopped"
    assert got[ep].outcome is Outcome.SUCCESS and got[ep].action == "delete"
    assert not endpoint_exists(aws, EAST, "summarizer-ep")
    deleted = Resource(ENDPOINT, ep, EAST, name="summarizer-ep")
    assert SageMakerEndpoints().still_running([deleted], ActContext(aws)) == {}  # verify: gone is not running
    assert SageMakerEndpoints().still_running([Resource(ENDPOINT, other_ep, EAST, name="crawler-ep")], ActContext(aws))
    assert endpoint_exists(aws, EAST, "crawler-ep") and other_ep not in got
    texts = {s["resource_id"]: s["restore"] for s in eng.status(AGENT)[0]["resources"]}
    assert texts[train] == "nothing (a stopped training job cannot be resumed)"
    assert texts[ep] == "re-create endpoint from endpoint config summarizer-ep-config"
    assert texts[mine] == "start notebook instance"

    restored = eng.restore(AGENT)

    got = results(restored)
    assert restored.status == "restored"
    assert notebook_status(aws, EAST, "summarizer-nb") == "InService"
    assert notebook_status(aws, WEST, "summarizer-nb-west") == "InService"
    assert notebook_status(aws, EAST, "summarizer-idle") == "Stopped"  # not stopped by the kill: left stopped
    assert got[train].outcome is Outcome.NO_ACTION and "cannot be resumed" in got[train].message
    desc = aws("sagemaker", EAST).describe_endpoint(EndpointName="summarizer-ep")
    assert desc["EndpointConfigName"] == "summarizer-ep-config"
    tags = aws("sagemaker", EAST).list_tags(ResourceArn=desc["EndpointArn"])["Tags"]
    assert {"Key": "agent-name", "Value": AGENT} in tags


def test_a_second_kill_changes_nothing_and_the_recheck_stops_a_restarted_notebook(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    mine = notebook(aws, EAST, "summarizer-nb", t(AGENT))
    eng, _, _ = engine(all_actions(example_config), aws)
    first = eng.kill(AGENT)
    assert results(first)[mine].outcome is Outcome.SUCCESS

    second = eng.kill(AGENT)
    assert all(r.outcome is not Outcome.SUCCESS for r in second.summary.results)
    assert notebook_status(aws, EAST, "summarizer-nb") == "Stopped"

    aws("sagemaker", EAST).start_notebook_instance(NotebookInstanceName="summarizer-nb")  # the agent starts it again
    (recheck,) = eng.handle_event(RECHECK_EVENT)
    assert any(r.resource_id == mine and r.outcome is Outcome.SUCCESS for r in recheck.summary.results)
    assert notebook_status(aws, EAST, "summarizer-nb") == "Stopped"


def test_a_notebook_sagemaker_cannot_stop_gets_its_code_and_never_blocks_the_others(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    good = notebook(aws, EAST, "summarizer-nb", t(AGENT))
    pending = notebook(aws, EAST, "summarizer-starting", t(AGENT))
    wrapped = PendingNotebook(aws("sagemaker", EAST), {"summarizer-starting"})
    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("sagemaker", EAST): wrapped}))

    report = eng.kill(AGENT)

    got = results(report)
    assert got[pending].outcome is Outcome.ERROR and got[pending].code == "ValidationException"
    assert got[good].outcome is Outcome.SUCCESS and notebook_status(aws, EAST, "summarizer-nb") == "Stopped"
    assert report.status == "partial"


def test_a_training_job_stop_that_fails_on_approval_is_that_jobs_error(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    ok = training_job(aws, EAST, "summarizer-train", t(AGENT))
    gone = training_job(aws, EAST, "summarizer-train-ending", t(AGENT))
    stub = StubbedTrainingStop(aws("sagemaker", EAST), EAST, fail={"summarizer-train-ending": "ValidationException"})
    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("sagemaker", EAST): stub}))
    kill = eng.kill(AGENT)

    approved = eng.approve(kill.kill_id)

    got = results(approved)
    assert got[gone].outcome is Outcome.ERROR and got[gone].code == "ValidationException"
    assert got[ok].outcome is Outcome.SUCCESS and job_status(EAST, "training", "summarizer-train") == "Stopping"
    assert approved.status == "partial"


def test_discovery_finds_only_the_agents_resources_and_prices_its_endpoints(aws: Clients) -> None:
    nb = notebook(aws, EAST, "summarizer-nb", t(AGENT))
    ep = endpoint(aws, EAST, "summarizer-ep", t(AGENT), instance_type="ml.g4dn.xlarge", count=1)
    notebook(aws, EAST, "crawler-nb", t(OTHER))

    found = discover(AGENT, [EAST], aws, kinds=kinds_for([Action.STOP_SAGEMAKER]))

    by_id = {r.resource_id: r for r in found.resources}
    assert set(by_id) == {nb, ep} and not found.failures
    assert by_id[nb].resource_type == NOTEBOOK and by_id[nb].name == "summarizer-nb"
    assert by_id[ep].resource_type == ENDPOINT
    assert by_id[ep].extra["hourly_usd"] == "0.7364"
    assert by_id[ep].extra["variants"] == [{"instance_type": "ml.g4dn.xlarge", "count": 1}]


def test_an_endpoint_that_cannot_be_described_is_still_reported_and_blocks_nothing(
    aws: Clients, example_config: KillSwitchConfig
) -> None:
    from botocore.exceptions import ClientError

    ep = endpoint(aws, EAST, "summarizer-ep", t(AGENT))
    nb = notebook(aws, EAST, "summarizer-nb", t(AGENT))
    inner = aws("sagemaker", EAST)

    class DeniedDescribe:
        def describe_endpoint(self, **kw: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "DescribeEndpoint")

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    eng, _, _ = engine(all_actions(example_config), Clients(overrides={("sagemaker", EAST): DeniedDescribe()}))
    report = eng.kill(AGENT)

    got = results(report)
    assert got[ep].outcome is Outcome.NEEDS_APPROVAL and "price unknown" in got[ep].message
    assert "AccessDeniedException" in got[ep].message
    assert got[nb].outcome is Outcome.SUCCESS
