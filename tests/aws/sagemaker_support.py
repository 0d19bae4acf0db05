"""Test doubles and readers for SageMaker on moto (the builders are in `killswitch.testing.sim_kinds`).

moto 5.2 creates training and processing jobs `Completed` and has no StopTrainingJob: `sim_kinds.set_job_status`
puts a job back `InProgress` in moto's backend, and `StubbedTrainingStop` answers StopTrainingJob through a botocore
Stubber (only that call) and marks the job `Stopping` in moto as AWS would.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from killswitch.kill.discover import Clients
from killswitch.testing.sim_kinds import sagemaker_backend as backend
from killswitch.testing.sim_kinds import set_job_status


def notebook_status(c: Clients, region: str, name: str) -> str:
    return str(c("sagemaker", region).describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"])


def job_status(region: str, kind: str, name: str) -> str:
    return str(getattr(getattr(backend(region), f"{kind}_jobs")[name], f"{kind}_job_status"))


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
