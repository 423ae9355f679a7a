"""EventBridge wiring shared by the stacks: the Invoke rule, and the organization bus policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from constructs import Construct

__all__ = ["OrganizationBusPolicy", "cdk_event_pattern"]

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


class OrganizationBusPolicy(Construct):
    """Lets every account of the organization put events on this account's default bus (the
    member stacks forward their Invoke events there)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, organization_id: str, statement_id: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.bus_arn = stack.format_arn(
            service="events", resource="event-bus", resource_name="default"
        )
        self.policy = events.CfnEventBusPolicy(
            self,
            "Policy",
            event_bus_name="default",
            statement_id=statement_id,
            statement={
                "Sid": statement_id,
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": self.bus_arn,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization_id}},
            },
        )
