"""The real-time pipeline, composed in the order the data flows:

    trail -> Invoke rule(s) -> validator -> FIFO queue -> remediator -> function policy
    (optional) trail log files -> ingest -> FIFO queue

Each unit is a construct of its own module, handed the resources it uses; this class wires
them. A central account also accepts its members' Invoke events on its default bus. Tamper
alarms watch the pipeline's own resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from models.allowlist import AllowlistConfig
from models.names import DEFAULT_PREFIX
from stacks.alerts import AlertTopic, Monitoring
from stacks.assets import BuiltAsset
from stacks.athena import history_queries
from stacks.canary import Canary, canary_function_name
from stacks.events_rules import VALIDATOR_SOURCES_MAX, CentralBusPolicy, InvokeRules
from stacks.functions import FunctionCommons, own_function_arns
from stacks.ingest import Ingest
from stacks.keys import BackupMacKey, pipeline_key
from stacks.outputs import pipeline_outputs
from stacks.pattern import edge_rules
from stacks.queues import RemediationQueue, dead_letter_queue
from stacks.remediator import QUEUE_VISIBILITY, REMEDIATOR_TIMEOUT, Remediator
from stacks.settings import AccountRole, DeploySettings
from stacks.storage import AccessLogsBucket, BackupBucket, RateLimitTable
from stacks.tamper import PipelineResources, TamperAlarms
from stacks.trail import trail_logs
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
        self.own_function_arns = tuple(own_function_arns(self, settings))
        self.key = pipeline_key(self, "PipelineKey")
        self.access_logs = AccessLogsBucket(
            self, "AccessLogs", retention_days=settings.trail_retention_days
        )
        self.trail = trail_logs(self, settings=settings, access_logs=self.access_logs.bucket)
        self.history = history_queries(
            self, settings=settings, trail=self.trail, access_logs=self.access_logs.bucket
        )
        self.alerts = AlertTopic(self, "Alerts", key=self.key, email=settings.alert_email)
        self.backups = BackupBucket(
            self,
            "Backups",
            key=self.key,
            access_logs=self.access_logs.bucket,
            object_lock_days=settings.object_lock_days,
        )
        self.backup_mac = BackupMacKey(self, "BackupMac")
        self.rate_limit = RateLimitTable(self, "RateLimit")
        self.queue = RemediationQueue(
            self, "RemediationQueue", key=self.key, visibility_timeout=QUEUE_VISIBILITY
        )
        commons = FunctionCommons(
            settings=settings,
            key=self.key,
            topic=self.alerts.topic,
            own_function_arns=self.own_function_arns,
            watched_regions=settings.regions or (cdk.Aws.REGION,),
        )
        self.validator_dlq = dead_letter_queue(self, "ValidatorDeadLetterQueue", key=self.key)
        self.validator = Validator(
            self,
            "Validator",
            commons=commons,
            asset=assets["validator"],
            queue=self.queue.queue,
            dead_letter_queue=self.validator_dlq,
            notice_marks=self.rate_limit,
        )
        self.remediator = Remediator(
            self,
            "Remediator",
            commons=commons,
            asset=assets["remediator"],
            queue=self.queue.queue,
            dead_letter_queue=self.queue.dead_letter_queue,
            backups=self.backups,
            rate_limit=self.rate_limit,
            mac_key=self.backup_mac,
        )
        self.rules = InvokeRules(
            self,
            "InvokeRule",
            rules=edge_rules(
                own_function_arns=self.own_function_arns,
                allowlist=allowlist,
                size_limit=settings.pattern_size_limit,
                max_rules=min(settings.max_event_rules, VALIDATOR_SOURCES_MAX),
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
        self.senders = [f for f in (self.validator, self.ingest) if f is not None]
        self.queue.only_sent_by([function.role for function in self.senders])
        if settings.account_role is AccountRole.CENTRAL:
            bus = CentralBusPolicy(
                self,
                "OrganizationBus",
                member_accounts=settings.member_account_ids,
                organization_id=settings.organization_id,
                statement_id=f"{settings.name_prefix}accept-members",
            )
            cdk.CfnOutput(
                self,
                "CentralBusArn",
                value=bus.bus_arn,
                description="invoke-audit:central-bus-arn for the member stacks",
            )
            cdk.CfnOutput(self, "RemediatorRoleArn", value=self.remediator.role.role_arn)
        self.tamper = TamperAlarms(
            self,
            "Tamper",
            watched=watched_resources(self),
            email=settings.alert_email,
            heartbeat_hours=settings.heartbeat_hours,
            heartbeat_functions=[function.function for function in self.senders],
        )
        self.canary = Canary(
            self,
            "Canary",
            function_name=canary_function_name(settings.environment),
            log_retention_days=settings.log_retention_days,
        )
        self.monitoring = self._monitoring()
        pipeline_outputs(self)

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
            dashboard_name=f"{DEFAULT_PREFIX}{self.settings.environment}",
            rate_limit=True,
        )


def watched_resources(stack: InvokeAuditStack) -> PipelineResources:
    """The resources of a pipeline stack that the tamper rules watch."""
    settings = stack.settings
    trails: list[str] = []
    keys = [stack.key.key_id, stack.key.key_arn]
    keys += [stack.backup_mac.key.key_id, stack.backup_mac.key.key_arn]
    if stack.trail.trail is not None:
        trails = [settings.trail_name, stack.trail.trail.trail_arn]
        keys += [stack.trail.trail.key.key_id, stack.trail.trail.key.key_arn]
    elif settings.existing_trail_arn:
        trails = [settings.existing_trail_arn, settings.existing_trail_arn.rsplit("/", 1)[-1]]
    names = [settings.function_name(function) for function in settings.functions]
    return PipelineResources(
        trails=trails,
        rules=[
            *(rule.rule_name for rule in stack.rules.rules),
            stack.validator.daily_run.rule_name,
        ],
        functions=[*names, *stack.own_function_arns],
        event_source_mappings=[stack.remediator.event_source.event_source_mapping_id],
        queue_urls=[stack.queue.queue.queue_url],
        keys=keys,
        function_arns=stack.own_function_arns,
    )
