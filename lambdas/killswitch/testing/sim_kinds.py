"""Builders for the kinds added after EC2/ECS/ASG (IAM principals, Lambda functions, SageMaker, EKS node groups,
Batch, ...) on any boto3 endpoint (meant for moto), for `killswitch demo`, the bench and the tests; `kind_snapshot` is
what a kill changes in them. The SageMaker job / Batch job builders and the Tagging API patch reach into moto's
backends (moto is a dev dependency: imported on use)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from killswitch.kill.common import ClientFactory
from killswitch.kill.kinds.iam import deny_policy_name
from killswitch.testing.sim import network, tag_list

# The shipped default of `iam_policies/deny-agent.json` (the stack deploys the file; the demo uses this copy).
DEFAULT_DENY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "KillSwitchDenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}],
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def deny_policy(clients: ClientFactory, prefix: str = "killswitch", document: Mapping[str, Any] | None = None) -> str:
    """The managed deny policy the workload stack creates (`<prefix>-deny-agent`); returns its ARN."""
    iam = clients("iam", "us-east-1")
    resp = iam.create_policy(
        PolicyName=deny_policy_name(prefix), PolicyDocument=json.dumps(document or DEFAULT_DENY_POLICY)
    )
    return str(resp["Policy"]["Arn"])


def iam_role(clients: ClientFactory, name: str, tags: Mapping[str, str], *, path: str = "/") -> str:
    iam = clients("iam", "us-east-1")
    resp = iam.create_role(
        RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST), Tags=tag_list(tags)
    )
    return str(resp["Role"]["Arn"])


def iam_user(clients: ClientFactory, name: str, tags: Mapping[str, str]) -> str:
    return str(clients("iam", "us-east-1").create_user(UserName=name, Tags=tag_list(tags))["User"]["Arn"])


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return 'ok'\n")
    return buf.getvalue()


def lambda_function(
    clients: ClientFactory, region: str, name: str, tags: Mapping[str, str], *, reserved: int | None = None
) -> str:
    iam = clients("iam", "us-east-1")
    try:
        role = iam.get_role(RoleName="agent-lambda-exec")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam_role(clients, "agent-lambda-exec", {})
    fn = clients("lambda", region)
    arn = fn.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        Tags=dict(tags),
    )["FunctionArn"]
    if reserved is not None:
        fn.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    return str(arn)


def attached_policies(clients: ClientFactory, principal_arn: str) -> list[str]:
    iam = clients("iam", "us-east-1")
    kind, name = principal_arn.split(":")[5].split("/", 1)[0], principal_arn.rsplit("/", 1)[-1]
    if kind == "role":
        items = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    else:
        items = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    return sorted(a["PolicyArn"] for a in items)


def reserved_concurrency(clients: ClientFactory, region: str, function: str) -> int | None:
    value = (
        clients("lambda", region).get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    )
    return None if value is None else int(value)


def kind_snapshot(
    clients: ClientFactory, principals: Iterable[str], functions: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """Attached policies per principal and reserved concurrency per (region, function)."""
    return {
        "principals": {p: attached_policies(clients, p) for p in principals},
        "functions": {f"{r}/{f}": reserved_concurrency(clients, r, f) for r, f in functions},
    }


def cloudtrail_event(
    event_source: str, event_name: str, region: str, request: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An EventBridge "AWS API Call via CloudTrail" event as the watch rules deliver it to the kill Lambda."""
    return {
        "version": "0",
        "id": f"ct-{event_name}-{region}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + event_source.split(".", maxsplit=1)[0],
        "account": "123456789012",
        "region": region,
        "detail": {
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": region,
            "requestParameters": dict(request or {}),
        },
    }


def run_instances_request(tags: Mapping[str, str]) -> dict[str, Any]:
    """RunInstances `requestParameters` with its tag specification (CloudTrail's spelling)."""
    return {
        "instanceType": "t3.micro",
        "tagSpecificationSet": {
            "items": [{"resourceType": "instance", "tags": [{"key": k, "value": v} for k, v in tags.items()]}]
        },
    }


# -- SageMaker, EKS, Batch (moto is a dev dependency: imported on use) ------------------------------------------
SAGEMAKER_ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
SAGEMAKER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:latest"
EKS_ROLE = "arn:aws:iam::123456789012:role/eks"
MOTO_ACCOUNT = "123456789012"  # moto's default account
BATCH_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def sagemaker_backend(region: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[MOTO_ACCOUNT][region]


def sagemaker_notebook(
    clients: ClientFactory, region: str, name: str, tags: Mapping[str, str], instance_type: str = "ml.t3.medium"
) -> str:
    resp = clients("sagemaker", region).create_notebook_instance(
        NotebookInstanceName=name, InstanceType=instance_type, RoleArn=SAGEMAKER_ROLE, Tags=tag_list(tags)
    )
    return str(resp["NotebookInstanceArn"])


def set_job_status(region: str, kind: str, name: str, status: str) -> None:
    """moto 5.2 creates training and processing jobs `Completed`: this sets the status in moto's backend."""
    job = getattr(sagemaker_backend(region), f"{kind}_jobs")[name]
    setattr(job, f"{kind}_job_status", status)


def training_job(
    clients: ClientFactory, region: str, name: str, tags: Mapping[str, str], status: str = "InProgress"
) -> str:
    resp = clients("sagemaker", region).create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": SAGEMAKER_IMAGE, "TrainingInputMode": "File"},
        RoleArn=SAGEMAKER_ROLE,
        OutputDataConfig={"S3OutputPath": "s3://agent-bucket/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=tag_list(tags),
    )
    set_job_status(region, "training", name, status)
    return str(resp["TrainingJobArn"])


def processing_job(
    clients: ClientFactory, region: str, name: str, tags: Mapping[str, str], status: str = "InProgress"
) -> str:
    resp = clients("sagemaker", region).create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        AppSpecification={"ImageUri": SAGEMAKER_IMAGE},
        RoleArn=SAGEMAKER_ROLE,
        Tags=tag_list(tags),
    )
    set_job_status(region, "processing", name, status)
    return str(resp["ProcessingJobArn"])


def sagemaker_endpoint(
    clients: ClientFactory,
    region: str,
    name: str,
    tags: Mapping[str, str],
    *,
    instance_type: str = "ml.m5.large",
    count: int = 2,
) -> str:
    sm = clients("sagemaker", region)
    sm.create_model(
        ModelName=f"{name}-model", ExecutionRoleArn=SAGEMAKER_ROLE, PrimaryContainer={"Image": SAGEMAKER_IMAGE}
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "main",
                "ModelName": f"{name}-model",
                "InitialInstanceCount": count,
                "InstanceType": instance_type,
            }
        ],
    )
    resp = sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config", Tags=tag_list(tags))
    return str(resp["EndpointArn"])


def eks_cluster(clients: ClientFactory, region: str, name: str, tags: Mapping[str, str] | None = None) -> None:
    subnet, sg = network(clients, region)
    clients("eks", region).create_cluster(
        name=name,
        roleArn=EKS_ROLE,
        resourcesVpcConfig={"subnetIds": [subnet], "securityGroupIds": [sg]},
        tags=dict(tags or {}),
    )


def eks_nodegroup(
    clients: ClientFactory, region: str, cluster: str, name: str, tags: Mapping[str, str], **size: int
) -> str:
    """A managed node group (`min`/`max`/`desired` default 1/4/2) in an existing cluster; returns its ARN."""
    subnet, _ = network(clients, region)
    scaling = {"minSize": size.get("min", 1), "maxSize": size.get("max", 4), "desiredSize": size.get("desired", 2)}
    resp = clients("eks", region).create_nodegroup(
        clusterName=cluster,
        nodegroupName=name,
        nodeRole=EKS_ROLE,
        subnets=[subnet],
        scalingConfig=scaling,
        tags=dict(tags),
    )
    return str(resp["nodegroup"]["nodegroupArn"])


def batch_service_role(clients: ClientFactory) -> str:
    iam = clients("iam", "us-east-1")
    try:
        return str(iam.get_role(RoleName="batch-service")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="batch-service", AssumeRolePolicyDocument=json.dumps(BATCH_TRUST))
        return str(role["Role"]["Arn"])


def batch_compute_environment(clients: ClientFactory, region: str, name: str = "agents") -> str:
    """An UNMANAGED compute environment and the `work` job definition; returns the environment's ARN."""
    batch = clients("batch", region)
    resp = batch.create_compute_environment(
        computeEnvironmentName=name, type="UNMANAGED", serviceRole=batch_service_role(clients)
    )
    batch.register_job_definition(
        jobDefinitionName="work",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )
    return str(resp["computeEnvironmentArn"])


def batch_managed_environment(
    clients: ClientFactory, region: str, name: str, tags: Mapping[str, str], fargate: bool = False
) -> str:
    """A MANAGED compute environment: EC2 (min 2 / desired 2 / max 16 vCPUs) or Fargate (max 16)."""
    subnet, sg = network(clients, region)
    iam = clients("iam", "us-east-1")
    if not iam.list_instance_profiles()["InstanceProfiles"]:
        iam.create_instance_profile(InstanceProfileName="batch-instance")
    profile = iam.list_instance_profiles()["InstanceProfiles"][0]["Arn"]
    resources: dict[str, Any] = {"type": "FARGATE", "maxvCpus": 16, "subnets": [subnet], "securityGroupIds": [sg]}
    if not fargate:
        resources |= {"type": "EC2", "minvCpus": 2, "desiredvCpus": 2, "instanceTypes": ["m5.large"]}
        resources["instanceRole"] = profile
    resp = clients("batch", region).create_compute_environment(
        computeEnvironmentName=name,
        type="MANAGED",
        serviceRole=batch_service_role(clients),
        computeResources=resources,
        tags=dict(tags),
    )
    return str(resp["computeEnvironmentArn"])


def batch_queue(
    clients: ClientFactory, region: str, ce: str, name: str, tags: Mapping[str, str], *, state: str = "ENABLED"
) -> str:
    resp = clients("batch", region).create_job_queue(
        jobQueueName=name,
        state=state,
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        tags=dict(tags),
    )
    return str(resp["jobQueueArn"])


def batch_job(
    clients: ClientFactory, region: str, queue: str, status: str, tags: Mapping[str, str] | None = None
) -> str:
    """A job in `status`: moto's Docker-free Batch (`moto_aws` sets it) finishes every job at submit, a real one
    would be queued/running, so the status is set in moto's backend."""
    from moto.batch.models import batch_backends

    resp = clients("batch", region).submit_job(
        jobName="work", jobQueue=queue, jobDefinition="work", tags=dict(tags or {})
    )
    batch_backends[MOTO_ACCOUNT][region]._jobs[resp["jobId"]].status = status
    return str(resp["jobArn"])


def _eks_and_batch(account_id: str, region: str) -> list[Any]:
    from moto.batch.models import batch_backends
    from moto.core.resource_tagging import TaggedResource
    from moto.eks.models import eks_backends

    out: list[Any] = []
    if account_id in eks_backends and region in eks_backends[account_id]:
        for cluster in eks_backends[account_id][region].clusters.values():
            for ng in cluster.nodegroups.values():
                out.append(TaggedResource(ng.arn, dict(ng.tags or {}), "eks:nodegroup"))
    if account_id in batch_backends and region in batch_backends[account_id]:
        batch = batch_backends[account_id][region]
        for arn in batch._job_queues:
            out.append(TaggedResource(arn, batch.list_tags_for_resource(arn), "batch:job-queue"))
        for arn in batch._compute_environments:
            out.append(TaggedResource(arn, batch.list_tags_for_resource(arn), "batch:compute-environment"))
    return out


@dataclass
class _Listed:
    resources: list[Any]

    def iter_tagged_resources(self) -> Iterator[Any]:
        return iter(self.resources)

    def owns_arn(self, arn: str) -> bool:
        return False


def tagging_with_eks_and_batch(original: Callable[[str, str], Iterator[Any]]) -> Callable[[str, str], Iterator[Any]]:
    """moto's Resource Groups Tagging API lists no EKS or Batch resources, AWS's `GetResources` lists every resource
    type: this wraps moto's `iter_taggable_backends` to add EKS node groups and Batch job queues / compute
    environments, read from moto's own backends, so that discovery runs through the shared Tagging API pages as in
    AWS. Install it with `moto_lists_eks_and_batch()` (or a pytest monkeypatch of the same attribute)."""

    def with_eks_and_batch(account_id: str, region_name: str) -> Iterator[Any]:
        yield from original(account_id, region_name)
        yield _Listed(_eks_and_batch(account_id, region_name))

    return with_eks_and_batch


@contextmanager
def moto_lists_eks_and_batch() -> Iterator[None]:
    from moto.resourcegroupstaggingapi import models as tagging_models

    original = tagging_models.iter_taggable_backends
    tagging_models.iter_taggable_backends = tagging_with_eks_and_batch(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        tagging_models.iter_taggable_backends = original


@contextmanager
def moto_applies_batch_compute_resources() -> Iterator[None]:
    """moto 5.2 accepts UpdateComputeEnvironment but ignores `computeResources` (a TODO in moto): this applies them
    to moto's environment as AWS does, so that a kill's verify reads back the vCPUs it set."""
    from moto.batch.models import BatchBackend

    original = BatchBackend.update_compute_environment

    def update(self: Any, compute_environment_name: str, **kw: Any) -> tuple[str, str]:
        out = original(self, compute_environment_name, **kw)
        env = self.get_compute_environment(compute_environment_name)
        if env is not None:
            env.compute_resources.update(kw.get("compute_resources") or {})
        return out

    BatchBackend.update_compute_environment = update  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        BatchBackend.update_compute_environment = original  # type: ignore[method-assign]
