"""The one test-support module of the tests, the benchmarks and `killswitch demo`: moto in-process (`moto_aws`,
`offline_env`), the stack's ledger table (`create_ledger_table`), a thread-safe moto client (`serialized`), fleet
builders on any boto3 endpoint and a `snapshot` of everything a kill changes and a restore must put back.

moto notes (docs/aws-behaviour.md): ECS needs a VPC with DNS hostnames, explicit security groups and
container-level memory; `moto_aws` holds ECS tasks RUNNING (moto would stop them on its own).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from killswitch import keys
from killswitch import tags as T
from killswitch.kill.common import ClientFactory
from killswitch.kill.kinds.ecs import SUSPENDED_KEYS, service_resource_id

AMI = "ami-12c6146b"  # any id works in moto
SG_NAME = "agent-workloads"
LEDGER_TABLE = "killswitch-ledger"


@contextmanager
def moto_aws() -> Iterator[None]:
    """moto in-process with ECS tasks held RUNNING and Batch without Docker (jobs are recorded, never run; moto is a
    dev dependency: imported on use)."""
    from moto import mock_aws
    from moto.moto_api import state_manager

    with mock_aws(config={"batch": {"use_docker": False}}):
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1000})
        try:
            yield
        finally:
            state_manager.unset_transition("ecs::task")


def create_ledger_table(dynamodb: Any, name: str = LEDGER_TABLE) -> str:
    """The ledger table as `infra/constructs/ledger.py` deploys it, minus what a local endpoint does not need (KMS,
    PITR, deletion protection): pk/sk strings, on-demand, TTL on `expires_at` (docs/contracts.md)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": keys.PK, "KeyType": "HASH"}, {"AttributeName": keys.SK, "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": keys.PK, "AttributeType": "S"},
            {"AttributeName": keys.SK, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": keys.TTL_ATTR}
    )
    return name


def serialized(client: Any) -> Any:
    """Make a moto-backed client handle one request at a time.

    moto's in-process DynamoDB is not thread-safe: a cancelled `TransactWriteItems` restores a snapshot of the
    table and can wipe writes other threads made meanwhile. Real DynamoDB applies each request atomically, so one
    request at a time is the faithful model; threads still interleave freely *between* requests (reserve, call,
    settle), which is where a read-then-write design would overspend.
    """
    lock = threading.Lock()
    original = client._make_api_call

    def call(operation: str, params: dict[str, Any]) -> Any:
        with lock:
            return original(operation, params)

    client._make_api_call = call
    return client


def tag_list(tags: Mapping[str, str], lower: bool = False) -> list[dict[str, str]]:
    if lower:
        return [{"key": k, "value": v} for k, v in tags.items()]
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def agent_tags(agent: str, run_id: str | None = None, **extra: str) -> dict[str, str]:
    tags = {T.AGENT_NAME: agent}
    if run_id:
        tags[T.AGENT_RUN_ID] = run_id
    tags.update(extra)
    return tags


def network(clients: ClientFactory, region: str) -> tuple[str, str]:
    """(subnet id, security group id) in a VPC with DNS hostnames; created on first use in a region."""
    ec2 = clients("ec2", region)
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [SG_NAME]}])["SecurityGroups"]
    if groups:
        vpc = groups[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        return str(subnets[0]["SubnetId"]), str(groups[0]["GroupId"])
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{region}a")["Subnet"]
    sg = ec2.create_security_group(GroupName=SG_NAME, Description="agent workloads", VpcId=vpc)["GroupId"]
    return str(subnet["SubnetId"]), str(sg)


def run_instance(
    clients: ClientFactory, region: str, tags: Mapping[str, str], *, disable_api_stop: bool = False, spot: bool = False
) -> str:
    kwargs: dict[str, Any] = {
        "ImageId": AMI,
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceType": "t3.micro",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(tags)}],
    }
    if disable_api_stop:
        kwargs["DisableApiStop"] = True
    if spot:
        kwargs["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time"}}
    return str(clients("ec2", region).run_instances(**kwargs)["Instances"][0]["InstanceId"])


def _task_definition(clients: ClientFactory, region: str) -> str:
    ecs = clients("ecs", region)
    return str(
        ecs.register_task_definition(
            family="agent-worker",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": "worker", "image": "public.ecr.aws/agent/worker:1", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def ecs_service(
    clients: ClientFactory,
    region: str,
    cluster: str,
    name: str,
    tags: Mapping[str, str],
    *,
    desired: int = 2,
    scaling: tuple[int, int] | None = None,
    daemon: bool = False,
) -> str:
    ecs = clients("ecs", region)
    ecs.create_cluster(clusterName=cluster)
    subnet, sg = network(clients, region)
    kwargs: dict[str, Any] = {
        "cluster": cluster,
        "serviceName": name,
        "taskDefinition": _task_definition(clients, region),
        "tags": tag_list(tags, lower=True),
    }
    if daemon:
        kwargs["schedulingStrategy"] = "DAEMON"
    else:
        kwargs.update(
            desiredCount=desired,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}},
        )
    arn = str(ecs.create_service(**kwargs)["service"]["serviceArn"])
    if scaling:
        clients("application-autoscaling", region).register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=service_resource_id(cluster, name),
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=scaling[0],
            MaxCapacity=scaling[1],
        )
    return arn


def ecs_task(clients: ClientFactory, region: str, cluster: str, tags: Mapping[str, str]) -> str:
    ecs = clients("ecs", region)
    ecs.create_cluster(clusterName=cluster)
    subnet, sg = network(clients, region)
    resp = ecs.run_task(
        cluster=cluster,
        taskDefinition=_task_definition(clients, region),
        count=1,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}},
        tags=tag_list(tags, lower=True),
    )
    return str(resp["tasks"][0]["taskArn"])


def auto_scaling_group(
    clients: ClientFactory,
    region: str,
    name: str,
    tags: Mapping[str, str],
    *,
    min_size: int = 1,
    max_size: int = 4,
    desired: int = 2,
    suspended: Iterable[str] = (),
) -> str:
    ec2 = clients("ec2", region)
    subnet, _ = network(clients, region)
    lt_name = f"lt-{name}"
    ec2.create_launch_template(
        LaunchTemplateName=lt_name, LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )
    asg = clients("autoscaling", region)
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": lt_name},
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=desired,
        VPCZoneIdentifier=subnet,
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()],
    )
    processes = list(suspended)
    if processes:
        asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=processes)
    return name


@dataclass
class FleetSnapshot:
    """What a kill changes and a restore must put back, per region. ASG member instances are left out (a group
    scaled to zero terminates them; restore launches new ones): the group's numbers stand for them."""

    instances: dict[str, str] = field(default_factory=dict)  # "region/id" → state
    services: dict[str, int] = field(default_factory=dict)  # "region/arn" → desiredCount
    scalable: dict[str, tuple[int, int, tuple[bool, ...]]] = field(default_factory=dict)
    groups: dict[str, tuple[int, int, int, tuple[str, ...]]] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # "region/arn" → lastStatus (stopped tasks stay stopped)

    def comparable(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "services": self.services,
            "scalable": self.scalable,
            "groups": self.groups,
        }


def snapshot(clients: ClientFactory, regions: Iterable[str]) -> FleetSnapshot:
    snap = FleetSnapshot()
    for region in regions:
        ec2 = clients("ec2", region)
        for page in ec2.get_paginator("describe_instances").paginate():
            for res in page["Reservations"]:
                for i in res["Instances"]:
                    tags = T.tag_list_to_dict(i.get("Tags"))
                    if "aws:autoscaling:groupName" not in tags:
                        snap.instances[f"{region}/{i['InstanceId']}"] = i["State"]["Name"]
        ecs = clients("ecs", region)
        for cluster in ecs.list_clusters().get("clusterArns", []):
            arns = ecs.list_services(cluster=cluster).get("serviceArns", [])
            for i in range(0, len(arns), 10):
                for s in ecs.describe_services(cluster=cluster, services=arns[i : i + 10])["services"]:
                    snap.services[f"{region}/{s['serviceArn']}"] = int(s["desiredCount"])
            task_arns = ecs.list_tasks(cluster=cluster).get("taskArns", [])
            task_arns += ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED").get("taskArns", [])
            for i in range(0, len(task_arns), 100):
                for t in ecs.describe_tasks(cluster=cluster, tasks=task_arns[i : i + 100])["tasks"]:
                    snap.tasks[f"{region}/{t['taskArn']}"] = t["lastStatus"]
        aas = clients("application-autoscaling", region)
        for t in aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]:
            s = t.get("SuspendedState") or {}
            snap.scalable[f"{region}/{t['ResourceId']}"] = (
                int(t["MinCapacity"]),
                int(t["MaxCapacity"]),
                tuple(bool(s.get(k, False)) for k in SUSPENDED_KEYS),
            )
        for g in clients("autoscaling", region).describe_auto_scaling_groups()["AutoScalingGroups"]:
            snap.groups[f"{region}/{g['AutoScalingGroupName']}"] = (
                int(g["MinSize"]),
                int(g["MaxSize"]),
                int(g["DesiredCapacity"]),
                tuple(sorted(p["ProcessName"] for p in g.get("SuspendedProcesses", []))),
            )
    return snap


def budgets_letter(budget_name: str, amount: float, budgeted: float, threshold: float) -> str:
    """The plain-text AWS Budgets notification, as SNS delivers it (docs/aws-behaviour.md)."""
    return (
        "AWS Budget Notification November 22, 2026\n"
        "AWS Account 123456789012\n\n"
        "Dear AWS Customer,\n\n"
        f"You requested that we alert you when the ACTUAL Cost associated with your {budget_name} budget is greater "
        f"than ${threshold:,.2f} for the current month. The ACTUAL Cost associated with this budget is "
        f"${amount:,.2f}. You can find additional details below and by accessing the AWS Budgets dashboard [1].\n\n"
        f"Budget Name: {budget_name}\n"
        "Budget Type: Cost\n"
        f"Budgeted Amount: ${budgeted:,.2f}\n"
        "Alert Type: ACTUAL\n"
        f"Alert Threshold: > ${threshold:,.2f}\n"
        f"ACTUAL Amount: ${amount:,.2f}\n\n"
        "[1] https://console.aws.amazon.com/billing/home#/budgets\n"
    )


@contextmanager
def offline_env(region: str, **extra: str) -> Iterator[None]:
    """Fake credentials and no endpoint override for an embedded moto backend; the caller's environment comes back.

    Used by `killswitch demo` and the benchmarks, so neither can ever reach a real account by accident.
    """
    saved = dict(os.environ)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "offline",
            "AWS_SECRET_ACCESS_KEY": "offline",
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            **extra,
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
