"""A member account of a multi-account setup.

EventBridge does not deliver a member account's data events to another account's bus, so the
member records its own Invoke data events (a trail, or an existing one), forwards them with
a rule to the central account's bus, and offers a remediation role that only the central
remediator's role may assume. The functions, queue, table and backups live in the central
account.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.forwarding import InvokeForwarder
from stacks.nag import acknowledge, partition_shown
from stacks.permissions import (
    declared_statements,
    function_actions,
    lambda_policy_scope,
    remediation_guardrails,
    service_of,
)
from stacks.settings import DeploySettings
from stacks.storage import AccessLogsBucket
from stacks.trail import InvokeTrail

__all__ = ["InvokeAuditMemberStack", "central_remediator_role_arn", "member_role_actions"]

MAX_SESSION = cdk.Duration.hours(1)


def member_role_actions() -> tuple[str, ...]:
    """The remediator's Lambda policy actions: what it does inside a member account."""
    return tuple(a for a in function_actions("remediator") if service_of(a) == "lambda")


def central_remediator_role_arn(scope: Construct, settings: DeploySettings) -> str:
    """The exact ARN of the central remediator's role (same environment name, central
    account); the partition is the member's own."""
    return cdk.Stack.of(scope).format_arn(
        service="iam",
        region="",
        account=settings.central_account_id,
        resource="role",
        resource_name=settings.remediator_role_name,
    )


class InvokeAuditMemberStack(cdk.Stack):
    """The account-level part of a member account, deployed once per account (in its home
    region): the trail (multi-region), the remediation role, and the home region's
    forwarding rule. Other listed regions get a `ForwardingStack` each."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not settings.central_account_id or not settings.central_bus_arn:
            raise ValueError("a member stack needs the central account id and bus ARN")
        self.settings = settings
        self.access_logs = AccessLogsBucket(
            self, "AccessLogs", retention_days=settings.trail_retention_days
        )
        self.trail: InvokeTrail | None = None
        if not settings.uses_existing_trail:
            self.trail = InvokeTrail(
                self,
                "Trail",
                trail_name=settings.trail_name,
                management_events=settings.management_events,
                access_logs=self.access_logs.bucket,
                retention_days=settings.trail_retention_days,
                object_lock_days=settings.object_lock_days,
            )
        self.forwarder = InvokeForwarder(
            self,
            "Forward",
            bus_arn=settings.central_bus_arn,
            description="Forward Lambda Invoke data events to the central invoke-audit bus",
            email=settings.alert_email,
        )
        self._remediation_role()
        cdk.CfnOutput(self, "RemediationRoleArn", value=self.remediation_role.role_arn)

    def _remediation_role(self) -> None:
        settings = self.settings
        trusted: dict[str, Any] = {"aws:PrincipalArn": central_remediator_role_arn(self, settings)}
        if settings.organization_id:
            trusted["aws:PrincipalOrgID"] = settings.organization_id
        self.remediation_role = iam.Role(
            self,
            "RemediationRole",
            role_name=settings.remediation_role_name,
            description="Assumed by the central invoke-audit remediator to rewrite policies",
            max_session_duration=MAX_SESSION,
            # The account as principal (a role ARN as principal would have to exist first),
            # narrowed to the one role by aws:PrincipalArn.
            assumed_by=iam.AccountPrincipal(settings.central_account_id).with_conditions(
                {"StringEquals": trusted}
            ),
        )
        # A member account runs no pipeline function: nothing is excluded by name.
        scopes = {"lambda": lambda_policy_scope(self, ())}
        for statement in declared_statements("remediation", member_role_actions(), scopes):
            self.remediation_role.add_to_policy(statement)
        for statement in remediation_guardrails():
            self.remediation_role.add_to_policy(statement)
        acknowledge(
            self.remediation_role,
            f"AwsSolutions-IAM5[Resource::arn:{partition_shown(self)}:lambda:*:<AWS::AccountId>:"
            "function:*]",
            "The central remediator rewrites the policy of whichever function of this account "
            "a caller not on the allowlist invoked, in any region; it may never grant `*` or "
            "configure function URLs (explicit Deny).",
        )
