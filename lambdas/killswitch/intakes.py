"""Names of the kill Lambda's intakes, and which intake a delivery came through. Pure and stdlib-only (the guard
SDK imports it inside agent processes).

SNS tells a subscriber nothing about the publisher: trust comes from who may publish where (docs/aws-behaviour.md).
- the alerts topic `<prefix>-kill`: only AWS Budgets and Cost Anomaly Detection may publish (topic policy);
- the org alerts topic `<prefix>-org-alerts` in the management account: only that account's AWS Budgets may publish
  (its organization budgets, `killswitch.org_budgets`); trusted by its exact ARN;
- one guard topic per agent, `<prefix>-guard-<agent>`: only principals tagged `agent-name=<agent>` may publish,
  so the topic names the agent a guard event speaks for; every guard topic feeds the queue `<prefix>-guard-intake`,
  which only those topics may send to, drained by the kill Lambda at a bounded concurrency (flood resistance);
- no topic at all: a direct invoke (or `killswitch fire`), which only principals allowed `lambda:InvokeFunction`
  (ops) can make.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from killswitch.arns import Arn, parse_arn

_NOT_IN_TOPIC_NAMES = re.compile(r"[^A-Za-z0-9_-]")


class Intake(StrEnum):
    ALERTS = "alerts"  # AWS Budgets / Cost Anomaly Detection
    ORG_ALERTS = "org_alerts"  # the management account's organization budgets
    GUARD = "guard"  # one agent's guard topic (through the guard intake queue)
    DIRECT = "direct"  # no topic: a direct invoke by ops (or `killswitch fire`)
    UNKNOWN = "unknown"  # a topic or queue that is not one of ours


def alerts_topic_name(prefix: str) -> str:
    return f"{prefix}-kill"


def org_alerts_topic_name(prefix: str) -> str:
    return f"{prefix}-org-alerts"


def guard_topic_name(prefix: str, agent: str) -> str:
    """`<prefix>-guard-<agent>`; an agent name with characters SNS refuses (`.+=@`) gets them replaced and a short
    hash of the real name appended, so that two names never share a topic."""
    slug = _NOT_IN_TOPIC_NAMES.sub("-", agent)
    if slug != agent:
        slug = f"{slug}-{hashlib.sha256(agent.encode('utf-8')).hexdigest()[:8]}"
    return f"{prefix}-guard-{slug}"


def guard_topic_pattern(prefix: str) -> str:
    return f"{prefix}-guard-*"


def guard_queue_name(prefix: str) -> str:
    return f"{prefix}-guard-intake"


def guard_topic_arn(alerts_topic_arn: str, prefix: str, agent: str) -> str | None:
    """The agent's guard topic, next to the alerts topic (the guard SDK derives it from `KILLSWITCH_KILL_TOPIC_ARN`)."""
    arn = parse_arn(alerts_topic_arn)
    return arn.sibling("sns", guard_topic_name(prefix, agent)) if arn else None


@dataclass(frozen=True)
class Origin:
    intake: Intake
    agent: str | None = None  # GUARD: the agent whose topic it is
    arn: str | None = None  # the topic (or queue) it came through

    def describe(self) -> str:
        if self.intake is Intake.GUARD:
            return f"the guard topic of agent {self.agent!r}"
        if self.intake is Intake.ALERTS:
            return "the alerts topic (AWS Budgets and Cost Anomaly Detection only)"
        if self.intake is Intake.ORG_ALERTS:
            return "the org alerts topic (the management account's AWS Budgets only)"
        if self.intake is Intake.DIRECT:
            return "a direct invoke"
        return f"{self.arn!r}, which is not one of the kill switch's intakes"


@dataclass(frozen=True)
class Intakes:
    """Which intake a topic or queue ARN is. `alerts_topic_arn` (the Lambda's `KILLSWITCH_KILL_TOPIC_ARN`) pins the
    partition, region and account; without it (local runs) names alone decide. `org_alerts_topic_arn` is the
    management account's org alerts topic (`killswitch.org_budgets.org_alerts_topic_arn`): trusted by exact ARN."""

    prefix: str
    agents: tuple[str, ...]
    alerts_topic_arn: str | None = None
    org_alerts_topic_arn: str | None = None

    def _home(self, arn: Arn) -> bool:
        home = parse_arn(self.alerts_topic_arn)
        return home is None or (arn.partition, arn.region, arn.account) == (home.partition, home.region, home.account)

    def of_topic(self, topic_arn: object) -> Origin:
        if topic_arn is None:
            return Origin(Intake.DIRECT)
        arn = parse_arn(topic_arn)
        shown = topic_arn if isinstance(topic_arn, str) else repr(topic_arn)
        if self._is_org_alerts(arn):
            return Origin(Intake.ORG_ALERTS, arn=shown)
        if arn is None or arn.service != "sns" or not self._home(arn):
            return Origin(Intake.UNKNOWN, arn=shown[:200])
        if arn.resource == alerts_topic_name(self.prefix):
            return Origin(Intake.ALERTS, arn=shown)
        for agent in self.agents:
            if arn.resource == guard_topic_name(self.prefix, agent):
                return Origin(Intake.GUARD, agent=agent, arn=shown)
        return Origin(Intake.UNKNOWN, arn=shown[:200])

    def _is_org_alerts(self, arn: Arn | None) -> bool:
        if arn is None or arn.service != "sns" or arn.resource != org_alerts_topic_name(self.prefix):
            return False
        if self.org_alerts_topic_arn is not None:
            return parse_arn(self.org_alerts_topic_arn) == arn
        return self.alerts_topic_arn is None  # local runs only: no ARN to pin it, names alone decide

    def is_guard_queue(self, queue_arn: object) -> bool:
        arn = parse_arn(queue_arn)
        return (
            arn is not None
            and arn.service == "sqs"
            and self._home(arn)
            and arn.resource == guard_queue_name(self.prefix)
        )
