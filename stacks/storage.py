"""Where the pipeline keeps state: S3 access logs, policy backups, the rate-limit counters."""

from __future__ import annotations

from typing import cast

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.nag import acknowledge

__all__ = ["BACKUP_PREFIX", "AccessLogsBucket", "BackupBucket", "RateLimitTable"]

BACKUP_PREFIX = "backups/"


class AccessLogsBucket(Construct):
    """Receives the S3 server access logs of the other buckets.

    S3 delivers access logs only to buckets encrypted with SSE-S3, hence no KMS key here.
    """

    def __init__(self, scope: Construct, construct_id: str, *, retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=cdk.Duration.days(retention_days),
                    noncurrent_version_expiration=cdk.Duration.days(7),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "This bucket is the access-log destination of the other buckets; "
            "logging it into itself would log its own log deliveries forever.",
        )


def evidence_bucket(
    scope: Construct,
    *,
    key: kms.IKey,
    access_logs: s3.IBucket,
    log_prefix: str,
    lifecycle_rules: list[s3.LifecycleRule],
    object_lock_days: int = 0,
) -> s3.Bucket:
    """A bucket that holds evidence (trail logs, policy backups): KMS, public access blocked,
    SSL only, versioned, access-logged, kept when the stack is removed; with
    `object_lock_days`, every new object version is locked (governance mode) that long."""
    return s3.Bucket(
        scope,
        "Bucket",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix,
        lifecycle_rules=lifecycle_rules,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        object_lock_enabled=True if object_lock_days else None,
        object_lock_default_retention=(
            s3.ObjectLockRetention.governance(cdk.Duration.days(object_lock_days))
            if object_lock_days
            else None
        ),
    )


class BackupBucket(Construct):
    """The original policy, the event and the plan, written before every policy change."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        access_logs: s3.IBucket,
        object_lock_days: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = evidence_bucket(
            self,
            key=key,
            access_logs=access_logs,
            log_prefix="backup-bucket/",
            object_lock_days=object_lock_days,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
        )

    @property
    def cfn_bucket(self) -> s3.CfnBucket:
        return cast(s3.CfnBucket, self.bucket.node.default_child)

    @property
    def objects_arn(self) -> str:
        return self.bucket.arn_for_objects(f"{BACKUP_PREFIX}*")


class RateLimitTable(Construct):
    """Remediation counters: one item per hour window (`pk`), expired by DynamoDB TTL.

    Kept when the stack is removed and protected from deletion: deleting the table would
    reset the rate limit (and stop remediation until it is back)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
