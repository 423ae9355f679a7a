"""A member account of a multi-account setup.

EventBridge does not deliver a member account's data events to another account's bus, so the
member records its own Invoke data events (a trail, or an existing one), forwards them with
a rule to the central account's bus, and offers a remediation role that only the central
remediator's role may assume. The functions, queue, table and backups live in the central
account.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.alerts import AlertTopic
from stacks.events_rules import cdk_event_pattern
from stacks.keys import encryption_key, service_may_use_key
from stacks.nag import acknowledge
from stacks.pattern import event_pattern, own_function_arn_prefix
from stacks.permissions import (
    declared_statements,
    function_actions,
    lambda_policy_scope,
    service_of,
)
from stacks.queues import dead_letter_queue
from stacks.settings import DeploySettings
from stacks.storage import AccessLogsBucket
from stacks.trail import InvokeTrail

__all__ = ["InvokeAuditMemberStack", "member_role_actions"]

MAX_SESSION = cdk.Duration.hours(1)


def member_role_actions() -> tuple[str, ...]:
    """The remediator's Lambda policy actions: what it does inside a member account."""
    return tuple(a for a in function_actions("remediator") if service_of(a) == "lambda")


class InvokeAuditMemberStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not settings.central_account_id or not settings.central_bus_arn:
            raise ValueError("a member stack needs the central account id and bus ARN")
        self.settings = settings
        own_prefix = own_function_arn_prefix(
            partition=cdk.Aws.PARTITION,
            region=cdk.Aws.REGION,
            account=cdk.Aws.ACCOUNT_ID,
            prefix=settings.function_prefix,
        )
        self.key = encryption_key(
            self,
            "MemberKey",
            description="invoke-audit forwarding dead-letter queue and alerts",
            service_statements=[
                service_may_use_key(
                    f"{sid}UsesTheKey",
                    service,
                    ["kms:Decrypt", "kms:GenerateDataKey"],
                    {"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
                )
                for sid, service in (
                    ("CloudWatchAlarms", "cloudwatch.amazonaws.com"),
                    ("EventBridge", "events.amazonaws.com"),
                )
            ],
        )
        self.access_logs = AccessLogsBucket(
            self, "AccessLogs", retention_days=settings.trail_retention_days
        )
        self.trail: InvokeTrail | None = None
        if not settings.uses_existing_trail:
            self.trail = InvokeTrail(
                self,
                "Trail",
                trail_name=settings.trail_name,
                own_function_arn_prefix=own_prefix,
                management_events=settings.management_events,
                access_logs=self.access_logs.bucket,
                retention_days=settings.trail_retention_days,
            )
        self.forward_dlq = dead_letter_queue(self, "ForwardDeadLetterQueue", key=self.key)
        pattern = event_pattern(own_function_arn_prefix=own_prefix)
        self.rule = events.Rule(
            self,
            "ForwardInvokeRule",
            description="Forward Lambda Invoke data events to the central invoke-audit bus",
            event_pattern=cdk_event_pattern(pattern),
        )
        # As JSON text: CDK would drop the pattern's null (a record whose resource ARN is null).
        cfn_rule = self.rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        cfn_rule.add_property_override("EventPattern", json.dumps(pattern, separators=(",", ":")))
        central_bus = events.EventBus.from_event_bus_arn(
            self, "CentralBus", settings.central_bus_arn
        )
        self.rule.add_target(targets.EventBus(central_bus, dead_letter_queue=self.forward_dlq))
        self._remediation_role()
        self.alerts = AlertTopic(self, "Alerts", key=self.key, email=settings.alert_email)
        self._alarm()
        cdk.CfnOutput(self, "RemediationRoleArn", value=self.remediation_role.role_arn)

    def _remediation_role(self) -> None:
        settings = self.settings
        central_remediator = cdk.Stack.of(self).format_arn(
            service="iam",
            region="",
            account=settings.central_account_id,
            resource="role",
            resource_name=f"{settings.remediator_role_name_prefix}*",
        )
        self.remediation_role = iam.Role(
            self,
            "RemediationRole",
            role_name=settings.remediation_role_name,
            description="Assumed by the central invoke-audit remediator to rewrite policies",
            max_session_duration=MAX_SESSION,
            assumed_by=iam.AccountPrincipal(settings.central_account_id).with_conditions(
                {"ArnLike": {"aws:PrincipalArn": central_remediator}}
            ),
        )
        scopes = {"lambda": lambda_policy_scope(self, settings.function_prefix)}
        for statement in declared_statements("remediation", member_role_actions(), scopes):
            self.remediation_role.add_to_policy(statement)
        acknowledge(
            self.remediation_role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:*:<AWS::AccountId>:"
            "function:*]",
            "The central remediator rewrites the policy of whichever function of this account "
            "a caller not on the allowlist invoked, in any region; invoke-audit's own functions "
            "are excluded by an explicit Deny.",
        )

    def _alarm(self) -> None:
        alarm = cloudwatch.Alarm(
            self,
            "ForwardDeadLetterQueueNotEmpty",
            metric=self.forward_dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="Invoke events that could not be forwarded to the central bus.",
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alerts.topic))
