"""Tamper alarms: someone stops, blinds or rewires the pipeline itself.

Rules on the default bus match the control-plane calls that would silence the pipeline (stop
or change the trail, disable or empty its rules, change or throttle its functions, remove the
queue's event source, purge the queue, disable or delete its keys) on the pipeline's own
resources, and any Invoke of the pipeline's functions by something other than an AWS service
(EventBridge, S3, SQS call them; a person or a role calling them directly is suspicious).
They publish to a topic of their own, encrypted with a key of its own, so that disabling the
pipeline key does not silence the alarm about it. Optionally, a heartbeat alarm fires when
the pipeline has judged nothing for some hours.

The control-plane events are management events: they reach EventBridge only when a trail of
the account records management (write) events, e.g. the organization trail or this one with
`invoke-audit:management-events` on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk.interfaces import aws_events as events_interfaces
from constructs import Construct

from stacks.keys import encryption_key, service_may_use_key
from stacks.pattern import INVOKE_DETAIL_TYPE

__all__ = [
    "TAMPER_CALLS",
    "PipelineResources",
    "TamperAlarms",
    "tamper_patterns",
]

# The calls that silence the pipeline, by event source. Lambda's event names carry an API
# version suffix (`UpdateFunctionCode20150331v2`), hence prefixes there.
TAMPER_CALLS: dict[str, tuple[str, ...]] = {
    "cloudtrail": ("StopLogging", "DeleteTrail", "PutEventSelectors", "PutAdvancedEventSelectors"),
    "events": ("DisableRule", "DeleteRule", "RemoveTargets"),
    "lambda": ("PutFunctionConcurrency", "UpdateFunctionCode", "DeleteEventSourceMapping"),
    "sqs": ("PurgeQueue",),
    "kms": ("DisableKey", "ScheduleKeyDeletion"),
}


class PipelineResources:
    """What the tamper rules watch; values may be CDK tokens."""

    def __init__(
        self,
        *,
        trails: Sequence[str],  # names and ARNs (CloudTrail accepts either)
        rules: Sequence[str],  # rule names on the default bus
        functions: Sequence[str],  # names and unqualified ARNs
        event_source_mappings: Sequence[str],  # UUIDs
        queue_urls: Sequence[str],
        keys: Sequence[str],  # key ids and ARNs
        function_arns: Sequence[str],  # unqualified ARNs (Invoke records name these)
    ) -> None:
        self.trails = list(trails)
        self.rules = list(rules)
        self.functions = list(functions)
        self.event_source_mappings = list(event_source_mappings)
        self.queue_urls = list(queue_urls)
        self.keys = list(keys)
        self.function_arns = list(function_arns)


def _call(service: str, names: Sequence[Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source": [f"aws.{service}"],
        "detail-type": [INVOKE_DETAIL_TYPE],
        "detail": {"eventSource": [f"{service}.amazonaws.com"], "eventName": list(names), **detail},
    }


def _one_of(fields: Sequence[str], values: Sequence[str]) -> list[dict[str, Any]]:
    return [{"requestParameters": {field: list(values)}} for field in fields]


def tamper_patterns(watched: PipelineResources) -> dict[str, dict[str, Any]]:
    """One event pattern per watched service (rule id -> pattern); a service with nothing to
    watch (no trail of its own, say) gets none."""
    calls = TAMPER_CALLS
    patterns: dict[str, dict[str, Any]] = {}
    if watched.trails:
        patterns["Trail"] = _call(
            "cloudtrail",
            calls["cloudtrail"],
            {"$or": _one_of(("name", "trailName"), watched.trails)},
        )
    if watched.rules:
        patterns["Rules"] = _call(
            "events", calls["events"], {"$or": _one_of(("name", "rule"), watched.rules)}
        )
    if watched.functions:
        either = _one_of(("functionName",), watched.functions)
        if watched.event_source_mappings:
            either += _one_of(("uUID",), watched.event_source_mappings)
        patterns["Functions"] = _call(
            "lambda", [{"prefix": name} for name in calls["lambda"]], {"$or": either}
        )
    if watched.queue_urls:
        patterns["Queue"] = _call(
            "sqs", calls["sqs"], {"requestParameters": {"queueUrl": watched.queue_urls}}
        )
    if watched.keys:
        patterns["Keys"] = _call(
            "kms",
            calls["kms"],
            {
                "$or": [
                    {"requestParameters": {"keyId": watched.keys}},
                    {"resources": {"ARN": watched.keys}},
                ]
            },
        )
    if watched.function_arns:
        patterns["DirectInvoke"] = {
            "source": ["aws.lambda"],
            "detail-type": [INVOKE_DETAIL_TYPE],
            "detail": {
                "eventSource": ["lambda.amazonaws.com"],
                "eventName": ["Invoke"],
                "resources": {"ARN": watched.function_arns},
                "userIdentity": {"type": [{"anything-but": ["AWSService"]}]},
            },
        }
    return patterns


@jsii.implements(events.IRuleTarget)
class _Topic:
    """The topic as a rule target, without CDK's grants: `targets.SnsTopic` on an encrypted
    topic grants EventBridge the key and the topic with no condition; here the key policy
    names the account (`aws:SourceAccount`) and the topic policy the rules (`aws:SourceArn`)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self.topic = topic

    def bind(
        self,
        rule: events_interfaces.IRuleRef,
        id: str | None = None,
    ) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self.topic.topic_arn)


class TamperAlarms(Construct):
    """The tamper rules, their topic and key, and the optional heartbeat alarm."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        watched: PipelineResources,
        email: str | None,
        heartbeat_hours: int = 0,
        heartbeat_functions: Sequence[lambda_.IFunction] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        same_account = {"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}}
        self.key = encryption_key(
            self,
            "Key",
            description="invoke-audit tamper alarms (not the pipeline key)",
            via_services=("sns",),
            service_statements=[
                service_may_use_key(
                    f"{sid}PublishesTamperAlarms",
                    service,
                    ["kms:Decrypt", "kms:GenerateDataKey"],
                    same_account,
                )
                for sid, service in (
                    ("EventBridge", "events.amazonaws.com"),
                    ("CloudWatchAlarms", "cloudwatch.amazonaws.com"),
                )
            ],
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="invoke-audit tamper alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.rules: dict[str, events.CfnRule] = {}
        watched.keys += [self.key.key_id, self.key.key_arn]
        for rule_id, pattern in tamper_patterns(watched).items():
            rule = events.Rule(
                self,
                rule_id,
                description=f"invoke-audit tamper alarm: {rule_id}",
                event_pattern=events.EventPattern(source=pattern["source"]),
            )
            cfn_rule = rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            # As the Invoke rule: the pattern as written (with `$or`), not CDK's rendering.
            cfn_rule.add_property_override("EventPattern", pattern)
            rule.add_target(_Topic(self.topic))
            self.rules[rule_id] = cfn_rule
        if self.rules:
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="TheTamperRulesPublish",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions={
                        "ArnEquals": {"aws:SourceArn": [r.attr_arn for r in self.rules.values()]}
                    },
                )
            )
        self.heartbeat: cloudwatch.Alarm | None = None
        if heartbeat_hours and heartbeat_functions:
            self.heartbeat = self._heartbeat(heartbeat_hours, heartbeat_functions)

    def _heartbeat(self, hours: int, functions: Sequence[lambda_.IFunction]) -> cloudwatch.Alarm:
        period = cdk.Duration.hours(hours)
        metrics = {
            f"f{index}": function.metric_invocations(period=period, statistic="Sum")
            for index, function in enumerate(functions)
        }
        total = cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({name}, 0)" for name in metrics),
            using_metrics=metrics,
            period=period,
            label="pipeline invocations",
        )
        alarm = cloudwatch.Alarm(
            self,
            "Heartbeat",
            metric=total,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            alarm_description=(
                f"invoke-audit judged nothing for {hours} h: no validator (or ingest) "
                "invocation. The trail, the rules or the functions may be stopped."
            ),
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        return alarm
