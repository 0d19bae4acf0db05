"""Builders for SageMaker resources on moto (notebook instances, training/processing jobs, endpoints).

moto 5.2 creates training and processing jobs `Completed` and has no StopTrainingJob: `set_job_status` puts a job
back `InProgress` in moto's backend, and `StubbedTrainingStop` answers StopTrainingJob through a botocore Stubber
(only that call) and marks the job `Stopping` in moto as AWS would.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from killswitch.kill.discover import Clients
from killswitch.testing import sim

ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/sagemaker-execution"
IMAGE = f"{DEFAULT_ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/agent:latest"


def backend(region: str) -> Any:
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][region]


def notebook(c: Clients, region: str, name: str, tags: dict[str, str], instance_type: str = "ml.t3.medium") -> str:
    resp = c("sagemaker", region).create_notebook_instance(
        NotebookInstanceName=name, InstanceType=instance_type, RoleArn=ROLE, Tags=sim.tag_list(tags)
    )
    return str(resp["NotebookInstanceArn"])


def notebook_status(c: Clients, region: str, name: str) -> str:
    return str(c("sagemaker", region).describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"])


def training_job(c: Clients, region: str, name: str, tags: dict[str, str], status: str = "InProgress") -> str:
    resp = c("sagemaker", region).create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://agent-bucket/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=sim.tag_list(tags),
    )
    set_job_status(region, "training", name, status)
    return str(resp["TrainingJobArn"])


def processing_job(c: Clients, region: str, name: str, tags: dict[str, str], status: str = "InProgress") -> str:
    resp = c("sagemaker", region).create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
        AppSpecification={"ImageUri": IMAGE},
        RoleArn=ROLE,
        Tags=sim.tag_list(tags),
    )
    set_job_status(region, "processing", name, status)
    return str(resp["ProcessingJobArn"])


def set_job_status(region: str, kind: str, name: str, status: str) -> None:
    job = getattr(backend(region), f"{kind}_jobs")[name]
    setattr(job, f"{kind}_job_status", status)


def job_status(region: str, kind: str, name: str) -> str:
    return str(getattr(getattr(backend(region), f"{kind}_jobs")[name], f"{kind}_job_status"))


def endpoint(
    c: Clients, region: str, name: str, tags: dict[str, str], *, instance_type: str = "ml.m5.large", count: int = 2
) -> str:
    sm = c("sagemaker", region)
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
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
    resp = sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config", Tags=sim.tag_list(tags))
    return str(resp["EndpointArn"])


def endpoint_exists(c: Clients, region: str, name: str) -> bool:
    return any(e["EndpointName"] == name for e in c("sagemaker", region).list_endpoints()["Endpoints"])


class StubbedTrainingStop:
    """Wraps moto's SageMaker client; StopTrainingJob (missing in moto) goes through a botocore Stubber."""

    def __init__(self, inner: Any, region: str, fail: dict[str, str] | None = None):
        self.inner = inner
        self.region = region
        self.fail = fail or {}  # job name → AWS error code
        self.stopped: list[str] = []
        self._client = boto3.client("sagemaker", region_name=region)
        self._stubber = Stubber(self._client)

    def stop_training_job(self, **kw: Any) -> Any:
        name = kw["TrainingJobName"]
        if name in self.fail:
            self._stubber.add_client_error("stop_training_job", self.fail[name], f"job {name}", expected_params=kw)
        else:
            self._stubber.add_response("stop_training_job", {}, kw)
        with self._stubber:
            resp = self._client.stop_training_job(**kw)
        self.stopped.append(name)
        set_job_status(self.region, "training", name, "Stopping")
        return resp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PendingNotebook:
    """Wraps moto's SageMaker client: StopNotebookInstance of `names` fails like AWS does for a Pending notebook."""

    def __init__(self, inner: Any, names: set[str]):
        self.inner = inner
        self.names = names

    def stop_notebook_instance(self, **kw: Any) -> Any:
        name = kw["NotebookInstanceName"]
        if name in self.names:
            msg = f"Status (Pending) not in ([InService]). Unable to transition to (Stopping) for Notebook ({name})"
            raise ClientError({"Error": {"Code": "ValidationException", "Message": msg}}, "StopNotebookInstance")
        return self.inner.stop_notebook_instance(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
