"""Customer-managed KMS keys with an explicit key policy (no `kms:*` grant)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

__all__ = [
    "KEY_ADMIN_ACTIONS",
    "KEY_USE_ACTIONS",
    "BackupMacKey",
    "encryption_key",
    "pipeline_key",
    "service_may_use_key",
]

# What the account may do with a key through IAM policies: administer it, nothing more.
# Listed one by one, so that no policy in the app grants a wildcard action; PutKeyPolicy is
# here, so the account can never be locked out of the key. Encrypting and decrypting are
# granted separately (`via_services`), and only through the services that hold the data.
KEY_ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# What the pipeline's roles (and people who read its queues, backups or logs) need.
KEY_USE_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")


def encryption_key(
    scope: Construct,
    construct_id: str,
    *,
    description: str,
    via_services: Sequence[str],
    service_statements: Sequence[iam.PolicyStatement] = (),
) -> kms.Key:
    """A rotated key whose policy lets the account administer it through IAM, use it through
    IAM only by way of `via_services` (e.g. `sqs`, `s3`: the services holding data encrypted
    with it, in the stack's region), plus `service_statements` for the AWS service
    principals that encrypt with it."""
    account_admin = iam.PolicyStatement(
        sid="AccountAdministersTheKeyThroughIam",
        principals=[iam.AccountRootPrincipal()],
        actions=list(KEY_ADMIN_ACTIONS),
        resources=["*"],
    )
    account_use = iam.PolicyStatement(
        sid="AccountUsesTheKeyThroughItsServices",
        principals=[iam.AccountRootPrincipal()],
        actions=list(KEY_USE_ACTIONS),
        resources=["*"],
        conditions={
            "StringEquals": {
                "kms:CallerAccount": cdk.Aws.ACCOUNT_ID,
                "kms:ViaService": [
                    f"{service}.{cdk.Aws.REGION}.amazonaws.com" for service in via_services
                ],
            }
        },
    )
    return kms.Key(
        scope,
        construct_id,
        description=description,
        enable_key_rotation=True,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        policy=iam.PolicyDocument(statements=[account_admin, account_use, *service_statements]),
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
        via_services=("sqs", "sns", "s3"),
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


class BackupMacKey(Construct):
    """The HMAC key (HMAC_256, GENERATE_VERIFY_MAC) the remediator signs every policy backup
    with and `invoke-audit restore` verifies it with. Its policy lets the account administer
    it and grant `kms:VerifyMac` through IAM (to the operators who restore); `kms:GenerateMac`
    only to the role named by `may_sign` (the remediator's), so a backup nobody else can
    forge. KMS rotates no HMAC key automatically."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="invoke-audit policy backup signatures (HMAC)",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersTheKeyThroughIam",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(KEY_ADMIN_ACTIONS),
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="AccountVerifiesBackupsThroughIam",
                        principals=[iam.AccountRootPrincipal()],
                        actions=["kms:VerifyMac"],
                        resources=["*"],
                        conditions={"StringEquals": {"kms:CallerAccount": cdk.Aws.ACCOUNT_ID}},
                    ),
                ]
            ),
        )

    def may_sign(self, role: iam.IRole) -> None:
        """`role` (and no other principal) may sign: GenerateMac, and VerifyMac for its undo."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RemediatorSignsBackups",
                principals=[iam.ArnPrincipal(role.role_arn)],
                actions=["kms:GenerateMac", "kms:VerifyMac"],
                resources=["*"],
            )
        )
