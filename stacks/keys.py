"""Customer-managed KMS keys with an explicit key policy (no `kms:*` grant)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

__all__ = ["KEY_ADMIN_ACTIONS", "encryption_key", "pipeline_key", "service_may_use_key"]

# What the account (through its IAM policies) may do with the key: administer it and use it.
# Listed one by one, so that no policy in the app grants a wildcard action; PutKeyPolicy is
# here, so the account can never be locked out of the key.
KEY_ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


def encryption_key(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    service_statements: Sequence[iam.PolicyStatement] = (),
) -> kms.Key:
    """A rotated key whose policy lets the account administer it through IAM, plus
    `service_statements` for the AWS services that encrypt with it."""
    account_admin = iam.PolicyStatement(
        sid="AccountAdministersAndUsesTheKeyThroughIam",
        principals=[iam.AccountRootPrincipal()],
        actions=list(KEY_ADMIN_ACTIONS),
        resources=["*"],
    )
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        policy=iam.PolicyDocument(statements=[account_admin, *service_statements]),
    )


def service_may_use_key(
    sid: str, service: str, actions: Sequence[str], conditions: Mapping[str, Any]
) -> iam.PolicyStatement:
    """A key-policy statement for an AWS service principal, always with conditions."""
    return iam.PolicyStatement(
        sid=sid,
        principals=[iam.ServicePrincipal(service)],
        actions=list(actions),
        resources=["*"],
        conditions=dict(conditions),
    )


def pipeline_key(scope: Construct, construct_id: str) -> kms.Key:
    """The key of the pipeline's queues, topic and policy backups; CloudWatch alarms publish
    to the topic and EventBridge writes the rule's dead-letter queue with it."""
    same_account = {"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}}
    return encryption_key(
        scope,
        construct_id,
        description="invoke-audit queues, topic and policy backups",
        service_statements=[
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
        ],
    )
