"""Forwarding: the Invoke events of one region, sent to the bus that judges them.

CloudTrail delivers an event to EventBridge only in the region where the call happened, so a
multi-region trail still needs a rule in every region. Each region listed in the context key
`invoke-audit:regions` other than the home one gets a small `ForwardingStack` whose rule
sends that region's Invoke events to the home region's default bus (or, in a member account,
to the central account's bus); the member account's own region forwards the same way.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from stacks.alerts import AlertTopic
from stacks.events_rules import cdk_event_pattern
from stacks.keys import encryption_key, service_may_use_key
from stacks.pattern import event_pattern
from stacks.queues import dead_letter_queue
from stacks.settings import AccountRole, DeploySettings

__all__ = ["ForwardingStack", "InvokeForwarder", "home_bus_arn"]


def home_bus_arn(scope: Construct, region: str) -> str:
    """The default bus of this account in `region`."""
    return cdk.Stack.of(scope).format_arn(
        service="events", region=region, resource="event-bus", resource_name="default"
    )


class InvokeForwarder(Construct):
    """A rule that sends every Lambda Invoke event of this region to `bus_arn`, with a
    dead-letter queue, an alarm on it, and a topic for that alarm (encrypted, own key)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus_arn: str,
        description: str,
        email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = encryption_key(
            self,
            "Key",
            description="invoke-audit forwarding dead-letter queue and alerts",
            via_services=("sqs", "sns"),
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
        self.dead_letter_queue = dead_letter_queue(self, "DeadLetterQueue", key=self.key)
        # Nothing is left out here: a member account runs no pipeline function, and the
        # pipeline's own functions live in the home region only.
        self.rule = events.Rule(
            self,
            "Rule",
            description=description,
            event_pattern=cdk_event_pattern(event_pattern()),
        )
        bus = events.EventBus.from_event_bus_arn(self, "Bus", bus_arn)
        self.rule.add_target(targets.EventBus(bus, dead_letter_queue=self.dead_letter_queue))
        self.alerts = AlertTopic(self, "Alerts", key=self.key, email=email)
        alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueNotEmpty",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="Invoke events that could not be forwarded.",
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alerts.topic))


class ForwardingStack(cdk.Stack):
    """One extra region of a deployment: its Invoke events go to the home region's bus of
    this account, or, in a member account, to the central account's bus."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if settings.account_role is AccountRole.MEMBER:
            if not settings.central_bus_arn:
                raise ValueError("a member's forwarding stack needs the central bus ARN")
            bus_arn = settings.central_bus_arn
        elif settings.home_region:
            bus_arn = home_bus_arn(self, settings.home_region)
        else:
            raise ValueError("forwarding stacks need invoke-audit:regions (home region first)")
        self.forwarder = InvokeForwarder(
            self,
            "Forward",
            bus_arn=bus_arn,
            description="Forward Lambda Invoke data events to the invoke-audit bus",
            email=settings.alert_email,
        )
