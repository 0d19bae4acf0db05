"""moto's Resource Groups Tagging API lists no EKS or Batch resources, AWS's `GetResources` lists every resource type:
this adds EKS node groups and Batch job queues / compute environments to moto's `GetResources`, read from moto's own
backends, so that the kinds' discovery runs through the shared Tagging API pages as it does in AWS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto.batch.models import batch_backends
from moto.core.resource_tagging import TaggedResource
from moto.eks.models import eks_backends
from moto.resourcegroupstaggingapi import models as tagging_models


@dataclass
class _Listed:
    resources: list[TaggedResource]

    def iter_tagged_resources(self) -> Iterator[TaggedResource]:
        return iter(self.resources)

    def owns_arn(self, arn: str) -> bool:
        return False


def _eks_and_batch(account_id: str, region: str) -> list[TaggedResource]:
    out: list[TaggedResource] = []
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


def list_eks_and_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    original = tagging_models.iter_taggable_backends

    def with_eks_and_batch(account_id: str, region_name: str) -> Iterator[Any]:
        yield from original(account_id, region_name)
        yield _Listed(_eks_and_batch(account_id, region_name))

    monkeypatch.setattr(tagging_models, "iter_taggable_backends", with_eks_and_batch)
