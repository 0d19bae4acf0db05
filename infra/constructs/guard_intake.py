"""Guard intake: one SNS topic per agent that only that agent's principals may publish to, all feeding one queue the
kill Lambda drains at a bounded concurrency (issue 15 items 3 and 6).

The queue lives in the workload stack; each agent's topic (a topic and its policy: two resources per agent) lives in
that agent's budget stack (`infra/budget_stacks.py`), so a thousand agents never push one stack past CloudFormation's
500 resources. Topics and queue find each other by name (`killswitch.intakes`), never by cross-stack reference.

- The topic names the agent: `sns:Publish` is denied to every principal whose `aws:PrincipalTag/agent-name` is not
  exactly that agent (untagged principals included), so the kill Lambda reads the agent from the `TopicArn` and
  refuses a body naming another one. Agent roles must carry the `agent-name` principal tag.
- The queue accepts only those topics (deny for any other sender), so the SNS envelope it carries (with its
  `TopicArn`) is SNS's, not the agent's.
- The queue's event source mapping runs at most `GUARD_MAX_CONCURRENCY` of the kill function's reserved
  executions: a flood of guard events waits in the queue (and collapses per agent) while the alerts topic
  (Budgets / Cost Anomaly Detection) keeps the rest of the reservation for itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from killswitch import tags
from killswitch.config import AgentConfig, KillSwitchConfig
from killswitch.intakes import guard_queue_name, guard_topic_name, guard_topic_pattern

# Of the kill function's reserved concurrency (5), guard batches may use at most 2 (the SQS event source minimum):
# at least 3 executions always remain for the alerts topic.
GUARD_MAX_CONCURRENCY = 2
GUARD_BATCH_SIZE = 100
GUARD_BATCHING_WINDOW = Duration.seconds(2)
# AWS: a source queue's visibility timeout should be at least six times the function timeout (5 min).
GUARD_VISIBILITY_TIMEOUT = Duration.minutes(30)
GUARD_MAX_RECEIVES = 3


def guard_topic_arn_pattern(prefix: str) -> str:
    return f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:{guard_topic_pattern(prefix)}"


class GuardIntake(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: KillSwitchConfig,
        key: kms.IKey,
        function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = config.prefix
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=guard_queue_name(prefix),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=GUARD_VISIBILITY_TIMEOUT,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=GUARD_MAX_RECEIVES),
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyGuardTopicsSend",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnNotLike": {"aws:SourceArn": guard_topic_arn_pattern(prefix)}},
            )
        )
        # The agents' topics (in the budget stacks) subscribe by name; the Deny above keeps every other sender out.
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="GuardTopicsSend",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnLike": {"aws:SourceArn": guard_topic_arn_pattern(prefix)}},
            )
        )
        function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=GUARD_BATCH_SIZE,
                max_batching_window=GUARD_BATCHING_WINDOW,
                max_concurrency=GUARD_MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )


class AgentGuardTopics(Construct):
    """The guard topics of `agents` (each publishable only by principals tagged with its agent), subscribed to the
    workload stack's guard intake queue. Built in the agents' budget stack; key and queue are found by name."""

    def __init__(self, scope: Construct, construct_id: str, *, config: KillSwitchConfig, agents: Sequence[AgentConfig]):
        super().__init__(scope, construct_id)
        prefix = config.prefix
        stack = Stack.of(self)
        key = kms.Alias.from_alias_name(self, "Key", f"alias/{prefix}")  # KillSwitchKey's alias (workload stack)
        queue_arn = f"arn:{stack.partition}:sqs:{stack.region}:{stack.account}:{guard_queue_name(prefix)}"
        self.topics: dict[str, sns.Topic] = {}
        for agent in agents:
            name = guard_topic_name(prefix, agent.name)
            topic = sns.Topic(
                self,
                name.removeprefix(f"{prefix}-"),  # stable per agent: reordering agents replaces nothing
                topic_name=name,
                display_name=f"Agent Kill Switch: guard events of {agent.name}"[:100],
                master_key=key,
                enforce_ssl=True,
            )
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OnlyThisAgentPublishes",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["SNS:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"StringNotEquals": {f"aws:PrincipalTag/{tags.AGENT_NAME}": agent.name}},
                )
            )
            # The subscription rides on the topic itself (no third resource per agent).
            cfn = topic.node.default_child
            assert isinstance(cfn, sns.CfnTopic)
            cfn.subscription = [sns.CfnTopic.SubscriptionProperty(endpoint=queue_arn, protocol="sqs")]
            self.topics[agent.name] = topic
