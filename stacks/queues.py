"""SQS queues: the FIFO queue of violations (with its dead-letter queue) and the plain
dead-letter queues of EventBridge targets and asynchronous invocations."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge

__all__ = ["MAX_RECEIVE_COUNT", "RemediationQueue", "dead_letter_queue"]

# A message that fails every time (a poison message) holds up the other violations of its
# function (its FIFO group) for at most MAX_RECEIVE_COUNT x the visibility timeout, then
# moves to the dead-letter queue (alarmed on).
MAX_RECEIVE_COUNT = 3


class RemediationQueue(Construct):
    """Violations in order per invoked resource (MessageGroupId = resource ARN), deduplicated
    by CloudTrail eventID (MessageDeduplicationId, so content-based deduplication is off)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        visibility_timeout: cdk.Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            fifo=True,
            content_based_deduplication=False,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=cdk.Duration.hours(1),
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            fifo=True,
            content_based_deduplication=False,
            deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
            fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=cdk.Duration.hours(1),
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue
            ),
        )

    def only_sent_by(self, roles: Sequence[iam.IRole]) -> None:
        """Deny sqs:SendMessage to every principal but `roles` (the validator's and ingest's):
        a violation message makes the remediator rewrite a policy, so nobody else may forge
        one, whatever their own IAM policies allow."""
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThePipelineSendsViolations",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": [r.role_arn for r in roles]}},
            )
        )


def dead_letter_queue(scope: Construct, construct_id: str, *, key: kms.IKey) -> sqs.Queue:
    """A standard encrypted queue that keeps undeliverable events for 14 days."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=cdk.Duration.hours(1),
        enforce_ssl=True,
        retention_period=cdk.Duration.days(14),
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue (of an EventBridge target or of "
        "asynchronous invocations); a message that lands here is alarmed on, not retried.",
    )
    return queue
