"""The real-time pipeline: trail -> EventBridge rule -> validator -> SQS FIFO -> remediator.

The stack composes one construct per unit and owns every grant. With `account_role` central it
also accepts the organization's members' Invoke events on its default bus, and the remediator
may assume the remediation role in those accounts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.core.config import load_allowlist_json
from stacks.alerts import METRICS_NAMESPACE, SERVICE_NAME, AlertTopic, Monitoring
from stacks.assets import ALLOWLIST_FILE, BuiltAsset
from stacks.events_rules import OrganizationBusPolicy, cdk_event_pattern
from stacks.functions import PipelineFunction
from stacks.keys import encryption_key, service_may_use_key
from stacks.nag import acknowledge, arn_of
from stacks.pattern import event_pattern, own_function_arn_prefix
from stacks.permissions import (
    ServiceScope,
    declared_statements,
    function_actions,
    lambda_policy_scope,
)
from stacks.queues import RemediationQueue, dead_letter_queue
from stacks.settings import AccountRole, DeploySettings
from stacks.storage import BACKUP_PREFIX, AccessLogsBucket, BackupBucket, RateLimitTable
from stacks.trail import InvokeTrail, trail_selectors

__all__ = ["REMEDIATOR_TIMEOUT", "InvokeAuditStack"]

VALIDATOR_TIMEOUT = cdk.Duration.seconds(30)
REMEDIATOR_TIMEOUT = cdk.Duration.seconds(60)
INGEST_TIMEOUT = cdk.Duration.minutes(5)
REMEDIATOR_CONCURRENCY = 2
RULE_RETRY_ATTEMPTS = 8
RULE_MAX_EVENT_AGE = cdk.Duration.hours(2)


class InvokeAuditStack(cdk.Stack):
    """Everything one account (standalone or central) needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        assets: Mapping[str, BuiltAsset],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.central = settings.account_role is AccountRole.CENTRAL
        prefix = settings.function_prefix
        self.own_prefix = own_function_arn_prefix(
            partition=cdk.Aws.PARTITION,
            region=cdk.Aws.REGION,
            account=cdk.Aws.ACCOUNT_ID,
            prefix=prefix,
        )
        self.key = encryption_key(
            self,
            "PipelineKey",
            description="invoke-audit queues, topic and policy backups",
            service_statements=self._service_key_statements(),
        )
        self.access_logs = AccessLogsBucket(
            self, "AccessLogs", retention_days=settings.trail_retention_days
        )
        self._trail()
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
        self.validator_dlq = dead_letter_queue(self, "ValidatorDeadLetterQueue", key=self.key)
        self.allowlist = load_allowlist_json(assets["validator"].path / ALLOWLIST_FILE)
        self._functions(assets)
        self._grants()
        self._rule()
        if settings.s3_ingest:
            self._ingest(assets["ingest"])
        if self.central and settings.organization_id:
            self.bus_policy = OrganizationBusPolicy(
                self,
                "OrganizationBus",
                organization_id=settings.organization_id,
                statement_id=f"{prefix}accept-organization",
            )
            cdk.CfnOutput(
                self,
                "CentralBusArn",
                value=self.bus_policy.bus_arn,
                description="invoke-audit:central-bus-arn for the member stacks",
            )
        self._monitoring()
        self._outputs()

    # -- units ---------------------------------------------------------------------------

    def _service_key_statements(self) -> list[iam.PolicyStatement]:
        same_account = {"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}}
        return [
            service_may_use_key(
                "CloudWatchAlarmsPublishToTheTopic",
                "cloudwatch.amazonaws.com",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                same_account,
            ),
            service_may_use_key(
                "EventBridgeWritesTheDeadLetterQueue",
                "events.amazonaws.com",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                same_account,
            ),
        ]

    def _trail(self) -> None:
        settings = self.settings
        self.trail: InvokeTrail | None = None
        self.trail_bucket: s3.IBucket | None = None
        self.trail_key: kms.IKey | None = None
        if settings.uses_existing_trail:
            if settings.existing_trail_bucket:
                self.trail_bucket = s3.Bucket.from_bucket_name(
                    self, "ExistingTrailBucket", settings.existing_trail_bucket
                )
            if settings.existing_trail_key_arn:
                self.trail_key = kms.Key.from_key_arn(
                    self, "ExistingTrailKey", settings.existing_trail_key_arn
                )
            return
        self.trail = InvokeTrail(
            self,
            "Trail",
            trail_name=settings.trail_name,
            own_function_arn_prefix=self.own_prefix,
            management_events=settings.management_events,
            access_logs=self.access_logs.bucket,
            retention_days=settings.trail_retention_days,
        )
        self.trail_bucket = self.trail.bucket
        self.trail_key = self.trail.key

    def _environment(self, **extra: str) -> dict[str, str]:
        members = {}
        if self.central:
            members["ALLOWED_ACCOUNTS"] = ",".join(self.settings.member_account_ids)
        return {
            **members,
            "ALLOWLIST_PATH": f"/var/task/{ALLOWLIST_FILE}",
            "OWN_FUNCTION_PREFIX": self.settings.function_prefix,
            "TOPIC_ARN": self.alerts.topic.topic_arn,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **extra,
        }

    def _functions(self, assets: Mapping[str, BuiltAsset]) -> None:
        settings = self.settings
        self.validator = PipelineFunction(
            self,
            "Validator",
            function_name=settings.function_name("validator"),
            description="Judges each Lambda Invoke against the allowlist; queues violations.",
            asset=assets["validator"],
            environment=self._environment(QUEUE_URL=self.queue.queue.queue_url),
            log_retention_days=settings.log_retention_days,
            timeout=VALIDATOR_TIMEOUT,
            dead_letter_queue=self.validator_dlq,
        )
        remediator_env = self._environment(
            BACKUP_BUCKET=self.backups.bucket.bucket_name,
            RATE_TABLE=self.rate_limit.table.table_name,
        )
        if self.central:
            remediator_env["REMEDIATION_ROLE_NAME"] = settings.remediation_role_name
        self.remediator = PipelineFunction(
            self,
            "Remediator",
            function_name=settings.function_name("remediator"),
            description="Rewrites the resource policy of a function whose caller is not allowed.",
            asset=assets["remediator"],
            environment=remediator_env,
            log_retention_days=settings.log_retention_days,
            timeout=REMEDIATOR_TIMEOUT,
            memory_size=512,
            reserved_concurrency=REMEDIATOR_CONCURRENCY,
            role_name=(
                f"{settings.remediator_role_name_prefix}{cdk.Aws.REGION}" if self.central else None
            ),
        )
        self.remediator.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue.queue, batch_size=1, report_batch_item_failures=True
            )
        )

    def _grants(self) -> None:
        key = self.key.key_arn
        queue = ServiceScope(resources=[self.queue.queue.queue_arn], key_arn=key)
        topic = ServiceScope(resources=[self.alerts.topic.topic_arn], key_arn=key)
        validator_scopes = {"sqs": queue, "sns": topic}
        remediator_scopes = {
            "sns": topic,
            "lambda": lambda_policy_scope(self, self.settings.function_prefix),
            "s3": ServiceScope(
                resources=[self.backups.objects_arn],
                key_arn=key,
                per_action={
                    "s3:ListBucket": ServiceScope(
                        resources=[self.backups.bucket.bucket_arn],
                        conditions={"StringLike": {"s3:prefix": [f"{BACKUP_PREFIX}*"]}},
                    )
                },
            ),
            "dynamodb": ServiceScope(resources=[self.rate_limit.table.table_arn]),
        }
        if self.central and self.settings.organization_id:
            member_roles = [
                self.format_arn(
                    service="iam",
                    region="",
                    account=account,
                    resource="role",
                    resource_name=self.settings.remediation_role_name,
                )
                for account in self.settings.member_account_ids
            ]
            remediator_scopes["sts"] = ServiceScope(
                resources=member_roles,
                conditions={"StringEquals": {"aws:ResourceOrgID": self.settings.organization_id}},
            )
        for sid, function, scopes in (
            ("validator", self.validator, validator_scopes),
            ("remediator", self.remediator, remediator_scopes),
        ):
            actions = function_actions(sid, cross_account=self.central)
            for statement in declared_statements(sid, actions, scopes):
                function.role.add_to_principal_policy(statement)
        acknowledge(
            self.remediator.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:*:<AWS::AccountId>:function:*]",
            "The remediator rewrites the policy of whichever function of this account (in any "
            "region: the trail is multi-region) a caller not on the allowlist invoked, so it "
            "cannot name the functions in advance. Its own functions are excluded by an "
            "explicit Deny; protected ones by its code.",
        )
        acknowledge(
            self.remediator.role,
            f"AwsSolutions-IAM5[Resource::{arn_of(self.backups.cfn_bucket)}/{BACKUP_PREFIX}*]",
            "Each policy change writes a new backup object keyed by account, region, function "
            "and time; the grant is s3:PutObject only, under the backups/ prefix.",
        )
        # The pipeline key for the validator's dead-letter queue (asynchronous invocations).
        self.validator.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key])
        )

    def _rule(self) -> None:
        pattern = event_pattern(
            own_function_arn_prefix=self.own_prefix,
            allowlist=self.allowlist,
            size_limit=self.settings.pattern_size_limit,
        )
        self.rule = events.Rule(
            self,
            "InvokeRule",
            description="Lambda Invoke data events, except invoke-audit's own functions",
            event_pattern=cdk_event_pattern(pattern),
        )
        # The edge filter matches explicit JSON nulls, which CDK drops from an object pattern:
        # the template carries the pattern as JSON text instead (CloudFormation takes either),
        # exactly as compiled and tested.
        cfn_rule = self.rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        cfn_rule.add_property_override("EventPattern", json.dumps(pattern, separators=(",", ":")))
        self.rule.add_target(
            targets.LambdaFunction(
                self.validator.function,
                dead_letter_queue=self.validator_dlq,
                retry_attempts=RULE_RETRY_ATTEMPTS,
                max_event_age=RULE_MAX_EVENT_AGE,
            )
        )

    def _ingest(self, asset: BuiltAsset) -> None:
        settings = self.settings
        if self.trail_bucket is None:
            raise ValueError("s3 ingest needs the trail bucket")
        self.ingest_dlq = dead_letter_queue(self, "IngestDeadLetterQueue", key=self.key)
        self.ingest = PipelineFunction(
            self,
            "Ingest",
            function_name=settings.function_name("ingest"),
            description="Judges the Invoke records of each new CloudTrail log file.",
            asset=asset,
            environment=self._environment(QUEUE_URL=self.queue.queue.queue_url),
            log_retention_days=settings.log_retention_days,
            timeout=INGEST_TIMEOUT,
            memory_size=1024,
            dead_letter_queue=self.ingest_dlq,
        )
        prefix = settings.ingest_prefix or f"AWSLogs/{cdk.Aws.ACCOUNT_ID}/CloudTrail/"
        key = self.key.key_arn
        scopes = {
            "sqs": ServiceScope(resources=[self.queue.queue.queue_arn], key_arn=key),
            "sns": ServiceScope(resources=[self.alerts.topic.topic_arn], key_arn=key),
            "s3": ServiceScope(
                resources=[self.trail_bucket.arn_for_objects(f"{prefix}*")],
                key_arn=self.trail_key.key_arn if self.trail_key else None,
            ),
        }
        for statement in declared_statements("ingest", function_actions("ingest"), scopes):
            self.ingest.role.add_to_principal_policy(statement)
        self.ingest.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key])
        )
        self.trail_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3_notifications.LambdaDestination(self.ingest.function),
            s3.NotificationKeyFilter(prefix=prefix, suffix=".json.gz"),
        )
        shown_prefix = settings.ingest_prefix or "AWSLogs/<AWS::AccountId>/CloudTrail/"
        shown_bucket = (
            arn_of(self.trail.cfn_bucket)
            if self.trail is not None
            else f"arn:<AWS::Partition>:s3:::{settings.existing_trail_bucket}"
        )
        acknowledge(
            self.ingest.role,
            f"AwsSolutions-IAM5[Resource::{shown_bucket}/{shown_prefix}*]",
            "CloudTrail names each log file by region, date and a random suffix; the ingest "
            "function reads (s3:GetObject only) the log files under the trail's prefix.",
        )
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's own BucketNotificationsHandler (the custom resource that sets the "
                    "trail bucket's object-created notification at deploy time) comes with this "
                    "managed policy; it lets that handler write its own logs and nothing else.",
                )

    def _monitoring(self) -> None:
        dead_letter_queues: dict[str, sqs.IQueue] = {
            "remediation dead-letter queue": self.queue.dead_letter_queue,
            "validator dead-letter queue": self.validator_dlq,
        }
        functions = {"validator": self.validator.function, "remediator": self.remediator.function}
        if self.settings.s3_ingest:
            dead_letter_queues["ingest dead-letter queue"] = self.ingest_dlq
            functions["ingest"] = self.ingest.function
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            topic=self.alerts.topic,
            dead_letter_queues={_camel(k): v for k, v in dead_letter_queues.items()},
            functions={_camel(k): v for k, v in functions.items()},
            dashboard_name=f"invoke-audit-{self.settings.environment}",
            rate_limit=True,
        )

    def _outputs(self) -> None:
        cdk.CfnOutput(self, "QueueUrl", value=self.queue.queue.queue_url)
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        cdk.CfnOutput(self, "BackupBucketName", value=self.backups.bucket.bucket_name)
        if self.trail is not None:
            cdk.CfnOutput(self, "TrailBucketName", value=self.trail.bucket.bucket_name)
            cdk.CfnOutput(self, "TrailArn", value=self.trail.trail_arn)
        else:
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


def _camel(text: str) -> str:
    return "".join(word.capitalize() for word in text.replace("-", " ").split())
