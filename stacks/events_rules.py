"""EventBridge wiring shared by the stacks: the Invoke rule(s), and the organization bus
policy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.edge_filter import EdgeRules

__all__ = [
    "RULE_MAX_EVENT_AGE",
    "RULE_RETRY_ATTEMPTS",
    "VALIDATOR_SOURCES_MAX",
    "CentralBusPolicy",
    "InvokeRules",
    "cdk_event_pattern",
]

RULE_RETRY_ATTEMPTS = 8
RULE_MAX_EVENT_AGE = cdk.Duration.hours(2)

_PATTERN_FIELDS = {
    "source": "source",
    "detail-type": "detail_type",
    "detail": "detail",
    "account": "account",
    "region": "region",
    "resources": "resources",
    "id": "id",
    "time": "time",
    "version": "version",
}


def cdk_event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """`stacks.pattern.event_pattern`'s plain dict as a CDK EventPattern, field for field."""
    unknown = sorted(set(pattern) - set(_PATTERN_FIELDS))
    if unknown:
        raise ValueError(f"event pattern: top-level fields {unknown} are not envelope fields")
    return events.EventPattern(**{_PATTERN_FIELDS[key]: value for key, value in pattern.items()})


# Each rule adds one statement (about 350 bytes) to the validator's resource policy, which
# Lambda limits to 20 KB: beyond this many rules the allowlist's last rules share a coarse one.
# (The daily schedule rule, stacks/validator.py, adds one more: 51 statements, about 18 KB.)
VALIDATOR_SOURCES_MAX = 50


class InvokeRules(Construct):
    """The rules on the default bus that send the Invoke events the validator must judge to
    it, with retries and a dead-letter queue: one per `stacks.edge_filter.EdgeRule`, named by
    its key (`rule-NAME`, `unmatched`, `failed-invokes`, `padded-N`, `coarse`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rules: EdgeRules,
        validator: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        built: list[events.Rule] = []
        self.by_key: dict[str, events.Rule] = {}
        for edge_rule in rules.rules:
            rule = events.Rule(
                self,
                edge_rule.key,
                description=edge_rule.description[:512],
                event_pattern=cdk_event_pattern(edge_rule.pattern),
            )
            # The patterns match explicit JSON nulls, which CDK drops from an object pattern:
            # the template carries each pattern as JSON text instead (CloudFormation takes
            # either), exactly as compiled and tested.
            cfn_rule = rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            cfn_rule.add_property_override(
                "EventPattern", json.dumps(edge_rule.pattern, separators=(",", ":"))
            )
            rule.add_target(
                targets.LambdaFunction(
                    validator,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                    max_event_age=RULE_MAX_EVENT_AGE,
                )
            )
            built.append(rule)
            self.by_key[edge_rule.key] = rule
        self.rules: tuple[events.Rule, ...] = tuple(built)


class CentralBusPolicy(Construct):
    """Lets the listed member accounts (and, where an organization id is configured, only
    accounts of that organization) put Lambda events on this account's default bus: the
    member stacks forward their Invoke events there. Nothing else may be put."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        member_accounts: Sequence[str],
        organization_id: str | None,
        statement_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.bus_arn = stack.format_arn(
            service="events", resource="event-bus", resource_name="default"
        )
        # events:source is multivalued (one PutEvents call may carry several entries), hence
        # ForAllValues; a call without entries is refused by EventBridge itself.
        condition: dict[str, Any] = {"ForAllValues:StringEquals": {"events:source": ["aws.lambda"]}}
        if organization_id:
            condition["StringEquals"] = {"aws:PrincipalOrgID": organization_id}
        self.policy = events.CfnEventBusPolicy(
            self,
            "Policy",
            event_bus_name="default",
            statement_id=statement_id,
            statement={
                "Sid": statement_id,
                "Effect": "Allow",
                "Principal": {
                    "AWS": [
                        stack.format_arn(service="iam", region="", account=account, resource="root")
                        for account in sorted(member_accounts)
                    ]
                },
                "Action": "events:PutEvents",
                "Resource": self.bus_arn,
                "Condition": condition,
            },
        )
