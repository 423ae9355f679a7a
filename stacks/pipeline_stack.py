"""The real-time pipeline, composed in the order the data flows:

    trail -> Invoke rule(s) -> validator -> FIFO queue -> remediator -> function policy
    (optional) trail log files -> ingest -> FIFO queue

Each unit is a construct of its own module, handed the resources it uses; this class wires
them. A central account also accepts its members' Invoke events on its default bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from models.allowlist import AllowlistConfig
from stacks.alerts import AlertTopic, Monitoring
from stacks.assets import BuiltAsset
from stacks.events_rules import InvokeRules, OrganizationBusPolicy
from stacks.functions import FunctionCommons
from stacks.ingest import Ingest
from stacks.keys import pipeline_key
from stacks.pattern import event_pattern, own_function_arn_prefix
from stacks.queues import RemediationQueue, dead_letter_queue
from stacks.remediator import REMEDIATOR_TIMEOUT, Remediator
from stacks.settings import DeploySettings
from stacks.storage import AccessLogsBucket, BackupBucket, RateLimitTable
from stacks.trail import trail_logs, trail_selectors
from stacks.validator import Validator

__all__ = ["REMEDIATOR_TIMEOUT", "InvokeAuditStack"]


class InvokeAuditStack(cdk.Stack):
    """Everything one account (standalone or central) needs, judged against `allowlist`
    (validated by the caller; the same config is in the validator's asset)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        allowlist: AllowlistConfig,
        assets: Mapping[str, BuiltAsset],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.own_prefix = own_function_arn_prefix(
            partition=cdk.Aws.PARTITION,
            region=cdk.Aws.REGION,
            account=cdk.Aws.ACCOUNT_ID,
            prefix=settings.function_prefix,
        )
        self.key = pipeline_key(self, "PipelineKey")
        self.access_logs = AccessLogsBucket(
            self, "AccessLogs", retention_days=settings.trail_retention_days
        )
        self.trail = trail_logs(
            self,
            settings=settings,
            own_function_arn_prefix=self.own_prefix,
            access_logs=self.access_logs.bucket,
        )
        self.alerts = AlertTopic(self, "Alerts", key=self.key, email=settings.alert_email)
        self.backups = BackupBucket(
            self, "Backups", key=self.key, access_logs=self.access_logs.bucket
        )
        self.rate_limit = RateLimitTable(self, "RateLimit")
        self.queue = RemediationQueue(
            self,
            "RemediationQueue",
            key=self.key,
            visibility_timeout=cdk.Duration.seconds(REMEDIATOR_TIMEOUT.to_seconds() * 6),
        )
        commons = FunctionCommons(settings=settings, key=self.key, topic=self.alerts.topic)
        self.validator_dlq = dead_letter_queue(self, "ValidatorDeadLetterQueue", key=self.key)
        self.validator = Validator(
            self,
            "Validator",
            commons=commons,
            asset=assets["validator"],
            queue=self.queue.queue,
            dead_letter_queue=self.validator_dlq,
        )
        self.remediator = Remediator(
            self,
            "Remediator",
            commons=commons,
            asset=assets["remediator"],
            queue=self.queue.queue,
            backups=self.backups,
            rate_limit=self.rate_limit,
        )
        self.rules = InvokeRules(
            self,
            "InvokeRule",
            pattern=event_pattern(
                own_function_arn_prefix=self.own_prefix,
                allowlist=allowlist,
                size_limit=settings.pattern_size_limit,
            ),
            validator=self.validator.function,
            dead_letter_queue=self.validator_dlq,
        )
        self.ingest: Ingest | None = None
        if settings.s3_ingest:
            self.ingest = Ingest(
                self,
                "Ingest",
                commons=commons,
                asset=assets["ingest"],
                queue=self.queue.queue,
                trail=self.trail,
                dead_letter_queue=dead_letter_queue(self, "IngestDeadLetterQueue", key=self.key),
            )
        if commons.central and settings.organization_id:
            bus = OrganizationBusPolicy(
                self,
                "OrganizationBus",
                organization_id=settings.organization_id,
                statement_id=f"{settings.function_prefix}accept-organization",
            )
            cdk.CfnOutput(
                self,
                "CentralBusArn",
                value=bus.bus_arn,
                description="invoke-audit:central-bus-arn for the member stacks",
            )
        self.monitoring = self._monitoring()
        self._outputs()

    def _monitoring(self) -> Monitoring:
        functions = [f for f in (self.validator, self.remediator, self.ingest) if f is not None]
        queues: dict[str, sqs.IQueue] = {"RemediationDeadLetterQueue": self.queue.dead_letter_queue}
        for function in functions:
            if function.dead_letter_queue is not None:
                queues[f"{function.node.id}DeadLetterQueue"] = function.dead_letter_queue
        return Monitoring(
            self,
            "Monitoring",
            topic=self.alerts.topic,
            dead_letter_queues=queues,
            functions={function.node.id: function.function for function in functions},
            dashboard_name=f"invoke-audit-{self.settings.environment}",
            rate_limit=True,
        )

    def _outputs(self) -> None:
        cdk.CfnOutput(self, "QueueUrl", value=self.queue.queue.queue_url)
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        cdk.CfnOutput(self, "BackupBucketName", value=self.backups.bucket.bucket_name)
        trail = self.trail.trail
        if trail is not None:
            cdk.CfnOutput(self, "TrailBucketName", value=trail.bucket.bucket_name)
            cdk.CfnOutput(self, "TrailArn", value=trail.trail_arn)
            return
        selectors = trail_selectors(
            own_function_arn_prefix=self.own_prefix,
            management_events=self.settings.management_events,
        )
        cdk.CfnOutput(
            self,
            "RequiredTrailSelectors",
            description="Put these advanced event selectors on the existing trail",
            value=self.to_json_string(selectors),
        )
