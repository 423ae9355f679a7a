"""Alerts: the SNS topic people subscribe to, the alarms that publish to it, a dashboard."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from models import names

__all__ = [
    "METRICS_NAMESPACE",
    "RATE_LIMIT_METRIC",
    "SERVICE_NAME",
    "AlertTopic",
    "Monitoring",
]

# Powertools adds the dimension `service` (POWERTOOLS_SERVICE_NAME) to every metric.
SERVICE_NAME = names.SERVICE_NAME
METRICS_NAMESPACE = names.METRICS_NAMESPACE
RATE_LIMIT_METRIC = "RateLimitTripped"


class AlertTopic(Construct):
    """The topic for violations, remediations and alarms; e-mail subscription optional."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, email: str | None
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="invoke-audit alerts",
            master_key=key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))


class Monitoring(Construct):
    """Alarms: any dead-letter queue not empty, function errors, the rate limit tripped."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        dashboard_name: str | None,
        rate_limit: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        action = cloudwatch_actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        queue_metrics: list[cloudwatch.IMetric] = []
        for name, queue in dead_letter_queues.items():
            metric = queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
            )
            queue_metrics.append(metric.with_(label=name))
            self._alarm(
                f"{name}NotEmpty",
                metric,
                f"Messages in the {name}: events or violations that could not be processed.",
                action,
            )
        error_metrics: list[cloudwatch.IMetric] = []
        invocation_metrics: list[cloudwatch.IMetric] = []
        for name, function in functions.items():
            errors = function.metric_errors(
                period=cdk.Duration.minutes(5), statistic=cloudwatch.Stats.SUM
            )
            error_metrics.append(errors.with_(label=name))
            invocation_metrics.append(
                function.metric_invocations(
                    period=cdk.Duration.minutes(5), statistic=cloudwatch.Stats.SUM, label=name
                )
            )
            self._alarm(f"{name}Errors", errors, f"The {name} function failed.", action)
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title="Invocations", left=invocation_metrics, width=8),
            cloudwatch.GraphWidget(title="Errors", left=error_metrics, width=8),
            cloudwatch.GraphWidget(title="Dead-letter queues", left=queue_metrics, width=8),
        ]
        if rate_limit:
            tripped = cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=RATE_LIMIT_METRIC,
                dimensions_map={"service": SERVICE_NAME},
                period=cdk.Duration.minutes(5),
                statistic=cloudwatch.Stats.SUM,
            )
            self._alarm(
                "RateLimitTripped",
                tripped,
                "The remediation rate limit was reached: policies are no longer being changed.",
                action,
            )
            widgets.append(
                cloudwatch.GraphWidget(title="Rate limit tripped", left=[tripped], width=8)
            )
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name, widgets=[widgets]
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        action: cloudwatch.IAlarmAction,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
