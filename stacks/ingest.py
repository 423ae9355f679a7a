"""Ingest (optional, context `invoke-audit:s3-ingest`): judges the Invoke records of each new
CloudTrail log file, the catch-all beside the real-time rule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.assets import BuiltAsset
from stacks.functions import FunctionCommons, PipelineFunction
from stacks.nag import acknowledge, partition_shown
from stacks.permissions import ServiceScope, grant_declared
from stacks.trail import TrailLogs

__all__ = ["INGEST_TIMEOUT", "Ingest"]

INGEST_TIMEOUT = cdk.Duration.minutes(5)


class Ingest(PipelineFunction):
    """Notified by the trail bucket for each new log file under the trail's prefix."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        commons: FunctionCommons,
        asset: BuiltAsset,
        queue: sqs.IQueue,
        trail: TrailLogs,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        settings = commons.settings
        if trail.bucket is None:
            raise ValueError("s3 ingest needs the trail bucket")
        super().__init__(
            scope,
            construct_id,
            function_name=settings.function_name("ingest"),
            description="Judges the Invoke records of each new CloudTrail log file.",
            asset=asset,
            environment=commons.environment(QUEUE_URL=queue.queue_url),
            log_retention_days=settings.log_retention_days,
            timeout=INGEST_TIMEOUT,
            memory_size=1024,
            dead_letter_queue=dead_letter_queue,
        )
        prefix = settings.ingest_prefix or f"AWSLogs/{cdk.Aws.ACCOUNT_ID}/CloudTrail/"
        key = commons.key.key_arn
        scopes = {
            "sqs": ServiceScope(resources=[queue.queue_arn], key_arn=key),
            "sns": ServiceScope(resources=[commons.topic.topic_arn], key_arn=key),
            "s3": ServiceScope(
                resources=[trail.bucket.arn_for_objects(f"{prefix}*")],
                key_arn=trail.key.key_arn if trail.key else None,
            ),
        }
        grant_declared(self.role, "ingest", scopes)
        self.role.add_to_principal_policy(commons.key_statement())
        trail.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3_notifications.LambdaDestination(self.function),
            s3.NotificationKeyFilter(prefix=prefix, suffix=".json.gz"),
        )
        shown_prefix = settings.ingest_prefix or "AWSLogs/<AWS::AccountId>/CloudTrail/"
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{trail.bucket_arn_shown(self)}/{shown_prefix}*]",
            "CloudTrail names each log file by region, date and a random suffix; the ingest "
            "function reads (s3:GetObject only) the log files under the trail's prefix.",
        )
        # CDK's notification handler is a child of the stack, created by the call above.
        for child in cdk.Stack.of(self).node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    f"AwsSolutions-IAM4[Policy::arn:{partition_shown(self)}:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own BucketNotificationsHandler (the custom resource that sets the "
                    "trail bucket's object-created notification at deploy time) comes with this "
                    "managed policy; it lets that handler write its own logs and nothing else.",
                )
