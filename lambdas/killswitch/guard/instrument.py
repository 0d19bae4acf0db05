"""Attribution: tag what an agent creates with `agent-name` / `agent-run-id` through botocore event hooks.

`before-parameter-build.<service>.<Operation>` fires before a request is serialised; the handler merges our tags
into the caller's parameters (keeping the caller's other tags). Registered on a boto3 Session it applies to every
client the session creates afterwards; on a client, to that client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("killswitch.guard")

# EC2 resource types tagged on RunInstances (the instance and what it creates with it).
_EC2_RUN_TYPES = ("instance", "volume", "network-interface")


def _merge_kv_list(
    existing: list[dict[str, Any]] | None, tags: Mapping[str, str], k: str, v: str
) -> list[dict[str, Any]]:
    out = [t for t in (existing or []) if t.get(k) not in tags]
    out.extend({k: key, v: value} for key, value in tags.items())
    return out


def _tag_specs(types: tuple[str, ...]) -> Callable[[dict[str, Any], Mapping[str, str]], None]:
    def apply(params: dict[str, Any], tags: Mapping[str, str]) -> None:
        specs = list(params.get("TagSpecifications") or [])
        for rtype in types:
            for spec in specs:
                if spec.get("ResourceType") == rtype:
                    spec["Tags"] = _merge_kv_list(spec.get("Tags"), tags, "Key", "Value")
                    break
            else:
                specs.append({"ResourceType": rtype, "Tags": _merge_kv_list(None, tags, "Key", "Value")})
        params["TagSpecifications"] = specs

    return apply


def _kv_list(field: str, k: str = "Key", v: str = "Value") -> Callable[[dict[str, Any], Mapping[str, str]], None]:
    def apply(params: dict[str, Any], tags: Mapping[str, str]) -> None:
        params[field] = _merge_kv_list(params.get(field), tags, k, v)

    return apply


def _map(field: str) -> Callable[[dict[str, Any], Mapping[str, str]], None]:
    def apply(params: dict[str, Any], tags: Mapping[str, str]) -> None:
        params[field] = {**(params.get(field) or {}), **tags}

    return apply


def _asg(params: dict[str, Any], tags: Mapping[str, str]) -> None:
    kept = [t for t in (params.get("Tags") or []) if t.get("Key") not in tags]
    kept.extend({"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items())
    params["Tags"] = kept


# event name suffix (service id.Operation) -> how to merge tags into that operation's parameters
TAGGERS: dict[str, Callable[[dict[str, Any], Mapping[str, str]], None]] = {
    "ec2.RunInstances": _tag_specs(_EC2_RUN_TYPES),
    "ec2.CreateVolume": _tag_specs(("volume",)),
    "ec2.CreateLaunchTemplate": _tag_specs(("launch-template",)),
    "ec2.RequestSpotInstances": _tag_specs(("spot-instances-request",)),
    "ecs.RunTask": _kv_list("tags", "key", "value"),
    "ecs.StartTask": _kv_list("tags", "key", "value"),
    "ecs.CreateService": _kv_list("tags", "key", "value"),
    "lambda.CreateFunction": _map("Tags"),
    "auto-scaling.CreateAutoScalingGroup": _asg,
    "sagemaker.CreateTrainingJob": _kv_list("Tags"),
    "sagemaker.CreateProcessingJob": _kv_list("Tags"),
    "sagemaker.CreateEndpoint": _kv_list("Tags"),
    "sagemaker.CreateNotebookInstance": _kv_list("Tags"),
    "batch.SubmitJob": _map("tags"),
    "glue.CreateJob": _map("Tags"),
    "emr.RunJobFlow": _kv_list("Tags"),
}


def instrument(target: Any, tags: Mapping[str, str]) -> Any:
    """Register the tagging hooks on a boto3 Session or a client; returns `target`."""
    events = getattr(target, "events", None)  # boto3.Session
    if events is None:
        events = target.meta.events  # client
    frozen = dict(tags)
    for suffix, tagger in TAGGERS.items():

        def handler(params: dict[str, Any], _tagger: Any = tagger, _op: str = suffix, **_: Any) -> None:
            _tagger(params, frozen)
            log.debug("tagged %s with %s", _op, frozen)

        # One tagging hook per operation and target: instrumenting again (a new run) replaces the old tags.
        unique_id = f"killswitch-guard-tags-{suffix}"
        events.unregister(f"before-parameter-build.{suffix}", unique_id=unique_id)
        events.register(f"before-parameter-build.{suffix}", handler, unique_id=unique_id)
    return target
