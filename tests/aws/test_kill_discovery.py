"""Discovery in two regions with moto: a tag-filtered DescribeInstances for EC2, the tagging API for ECS,
DescribeAutoScalingGroups for groups, live state from the describe calls, stale tags dropped, run scope. Discovery
only reads: one fleet for the module."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from killswitch.kill.discover import Clients, discover
from killswitch.kill.kinds.ec2 import describe_instances
from killswitch.kill.model import ASG, EC2_INSTANCE, ECS_SERVICE, ECS_TASK
from tests.aws.kill_support import AGENT, EAST, OTHER, REGIONS, RUN, WEST, Fleet, shared_fleet

__all__ = ["shared_fleet"]


def test_discovers_everything_of_the_agent_in_both_regions(shared_fleet: tuple[Clients, Fleet]) -> None:
    aws, f = shared_fleet
    found = discover(AGENT, REGIONS, aws)
    assert found.failures == []
    by_id = {r.resource_id: r for r in found.resources}
    for label in ("plain", "run", "exempt", "protected", "critical", "service", "task", "asg", "west", "west_service"):
        assert f[label] in by_id, label
    for label in ("other", "untagged", "other_service", "west_other"):
        assert f[label] not in by_id, label
    assert by_id[f["west"]].region == WEST and by_id[f["plain"]].region == EAST
    svc = by_id[f["service"]]
    assert (svc.resource_type, svc.desired_count, svc.cluster, svc.name) == (ECS_SERVICE, 2, "agents", "summarizer-api")
    assert svc.scalable_target is not None and (svc.scalable_target.min_capacity, svc.scalable_target.max_capacity) == (
        1,
        4,
    )
    assert by_id[f["west_service"]].scalable_target is None
    task = by_id[f["task"]]
    assert task.resource_type == ECS_TASK and task.state == "RUNNING" and task.task_group.startswith("family:")
    group = by_id[f["asg"]]
    assert (group.resource_type, group.min_size, group.max_size, group.desired_count) == (ASG, 1, 4, 2)
    assert group.suspended_processes == ("AZRebalance",)
    members = [r for r in found.resources if r.resource_type == EC2_INSTANCE and r.asg_name == "summarizer-workers"]
    assert len(members) == 2
    assert by_id[f["plain"]].state == "running" and by_id[f["plain"]].name == "summarizer-1"


def test_run_scope_discovers_only_the_run(shared_fleet: tuple[Clients, Fleet]) -> None:
    aws, f = shared_fleet
    found = discover(AGENT, REGIONS, aws, run_id=RUN)
    assert [r.resource_id for r in found.resources] == [f["run"]]


def test_stale_tags_are_dropped(shared_fleet: tuple[Clients, Fleet]) -> None:
    """The tagging API may list a resource whose live tags no longer match, or one that no longer exists (which
    fails a DescribeInstances by id): the describe calls decide."""
    aws, f = shared_fleet

    class StaleTagging:
        def __init__(self, inner: object, *arns: str):
            self.inner, self.arns = inner, arns

        def get_paginator(self, name: str) -> object:
            inner = self.inner.get_paginator(name)  # type: ignore[attr-defined]
            arns = self.arns

            class P:
                def paginate(self, **kw: object):
                    for page in inner.paginate(**kw):
                        page["ResourceTagMappingList"] += [{"ResourceARN": a, "Tags": []} for a in arns]
                        yield page

            return P()

    other_arn = f"arn:aws:ec2:{EAST}:123456789012:instance/{f['other']}"
    clients = Clients(
        overrides={("resourcegroupstaggingapi", EAST): StaleTagging(aws("resourcegroupstaggingapi", EAST), other_arn)}
    )
    found = discover(AGENT, [EAST], clients)
    ids = {r.resource_id for r in found.resources}
    assert f["other"] not in ids and f["plain"] in ids


def test_a_region_that_fails_does_not_hide_the_others(shared_fleet: tuple[Clients, Fleet]) -> None:
    _, f = shared_fleet

    class Denied:
        def get_paginator(self, name: str) -> object:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetResources")

    clients = Clients(overrides={("resourcegroupstaggingapi", WEST): Denied()})
    found = discover(AGENT, REGIONS, clients)
    assert [(x.region, x.code) for x in found.failures] == [(WEST, "AccessDeniedException")]
    assert f["plain"] in {r.resource_id for r in found.resources}


def test_other_agent_discovery_is_disjoint(shared_fleet: tuple[Clients, Fleet]) -> None:
    aws, f = shared_fleet
    ids = {r.resource_id for r in discover(OTHER, REGIONS, aws).resources}
    assert ids == {f["other"], f["other_service"], f["west_other"]}


def test_a_vanished_instance_falls_back_on_the_instance_id_filter(shared_fleet: tuple[Clients, Fleet]) -> None:
    """Reading instances by id (verify after act) with one that no longer exists: DescribeInstances by id fails for
    the whole batch (`InvalidInstanceID.NotFound`), so the batch is read again with an `instance-id` filter, which
    leaves the missing id out and still finds every other instance."""
    aws, f = shared_fleet
    vanished = "i-0123456789abcdef0"

    class CountingEc2:
        def __init__(self, inner: Any) -> None:
            self.inner, self.filtered = inner, 0
            self.errors: list[str] = []

        def describe_instances(self, **kw: Any) -> Any:
            try:
                return self.inner.describe_instances(**kw)
            except ClientError as exc:
                self.errors.append(exc.response["Error"]["Code"])
                raise

        def get_paginator(self, name: str) -> Any:
            if name == "describe_instances":
                self.filtered += 1
            return self.inner.get_paginator(name)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    ec2 = CountingEc2(aws("ec2", EAST))
    found = describe_instances(ec2, EAST, [f["plain"], vanished, f["critical"]])
    ids = {r.resource_id for r in found}
    assert ec2.errors == ["InvalidInstanceID.NotFound"] and ec2.filtered == 1  # the fallback ran
    assert ids == {f["plain"], f["critical"]}


def test_instances_are_found_by_a_tag_filtered_describe_not_the_tagging_api(
    shared_fleet: tuple[Clients, Fleet],
) -> None:
    """EC2 discovery is one DescribeInstances walk filtered on the tag (1,000 per page, live state in the page);
    the Tagging API pages list only the other kinds, so no instance is read twice."""
    aws, f = shared_fleet
    calls: list[tuple[str, dict[str, Any]]] = []

    def spy(name: str, inner: Any) -> Any:
        class Spy:
            def get_paginator(self, op: str) -> Any:
                paginator = inner.get_paginator(op)

                class P:
                    def paginate(self, **kw: Any) -> Any:
                        calls.append((f"{name}:{op}", kw))
                        return paginator.paginate(**kw)

                return P()

            def __getattr__(self, attr: str) -> Any:
                return getattr(inner, attr)

        return Spy()

    clients = Clients(
        overrides={
            ("ec2", EAST): spy("ec2", aws("ec2", EAST)),
            ("resourcegroupstaggingapi", EAST): spy("tagging", aws("resourcegroupstaggingapi", EAST)),
        }
    )
    found = discover(AGENT, [EAST], clients)
    assert {f["plain"], f["critical"], f["exempt"]} <= {r.resource_id for r in found.resources}
    ec2_walks = [kw for op, kw in calls if op == "ec2:describe_instances"]
    assert ec2_walks == [
        {"Filters": [{"Name": "tag-key", "Values": ["agent-name"]}], "PaginationConfig": {"PageSize": 1000}}
    ]
    [tagging] = [kw for op, kw in calls if op == "tagging:get_resources"]
    assert "ec2:instance" not in tagging["ResourceTypeFilters"] and "ecs:service" in tagging["ResourceTypeFilters"]
    assert tagging["TagFilters"] == [{"Key": "agent-name"}]  # one walk: exact matches and name variants

    calls.clear()
    assert [r.resource_id for r in discover(AGENT, [EAST], clients, run_id=RUN).resources] == [f["run"]]
    [run_walk] = [kw for op, kw in calls if op == "ec2:describe_instances"]
    assert run_walk["Filters"] == [
        {"Name": "tag:agent-name", "Values": [AGENT]},
        {"Name": "tag:agent-run-id", "Values": [RUN]},
    ]
