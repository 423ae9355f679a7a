"""The CloudTrail trail that records Lambda Invoke data events (and, optionally, management
events), with its encrypted, access-logged bucket.

Only advanced event selectors are used (a trail cannot have both kinds). Every function's
Invokes are recorded, the pipeline's own included: the validator's rule leaves those out by
their exact ARNs (so the pipeline does not trigger itself), and the tamper rule alerts when
anyone but an AWS service invokes them. A selector that left out a name prefix would be a
blind spot: anyone may name a function like the pipeline's.

To use an existing trail instead, set the context `invoke-audit:existing-trail-arn`: nothing
is created here, and the stack outputs the selectors that trail needs (`trail_selectors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.keys import encryption_key, service_may_use_key
from stacks.nag import arn_of, partition_shown
from stacks.settings import DeploySettings
from stacks.storage import evidence_bucket

__all__ = ["InvokeTrail", "TrailLogs", "trail_logs", "trail_selectors"]


def trail_selectors(*, management_events: bool) -> list[dict[str, Any]]:
    """The advanced event selectors, in CloudFormation's shape (Name, FieldSelectors)."""
    selectors: list[dict[str, Any]] = []
    if management_events:
        selectors.append(
            {
                "Name": "Management events",
                "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
            }
        )
    selectors.append(
        {
            "Name": "Lambda invocations of every function",
            "FieldSelectors": [
                {"Field": "eventCategory", "Equals": ["Data"]},
                {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
                # Invoke, and InvokeAsync / InvokeWithResponseStream should CloudTrail record
                # them (its documentation lists Invoke only), with any date suffix.
                {"Field": "eventName", "StartsWith": ["Invoke"]},
            ],
        }
    )
    return selectors


def _cfn_selectors(
    selectors: list[dict[str, Any]],
) -> list[cloudtrail.CfnTrail.AdvancedEventSelectorProperty]:
    return [
        cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
            name=selector["Name"],
            field_selectors=[
                cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                    field=field["Field"],
                    equal_to=field.get("Equals"),
                    starts_with=field.get("StartsWith"),
                )
                for field in selector["FieldSelectors"]
            ],
        )
        for selector in selectors
    ]


class InvokeTrail(Construct):
    """A multi-region trail with log file validation into a KMS-encrypted bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        trail_name: str,
        management_events: bool,
        access_logs: s3.IBucket,
        retention_days: int,
        object_lock_days: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.trail_arn = stack.format_arn(
            service="cloudtrail", resource="trail", resource_name=trail_name
        )
        source_arn = {"StringEquals": {"aws:SourceArn": self.trail_arn}}
        trail_context = {
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn": stack.format_arn(
                    service="cloudtrail", region="*", resource="trail", resource_name="*"
                )
            }
        }
        self.key = encryption_key(
            self,
            "Key",
            description=f"CloudTrail log files of {trail_name}",
            via_services=("s3",),
            service_statements=[
                service_may_use_key(
                    "CloudTrailEncryptsLogFiles",
                    "cloudtrail.amazonaws.com",
                    ["kms:GenerateDataKey"],
                    {**source_arn, **trail_context},
                ),
                service_may_use_key(
                    "CloudTrailDescribesTheKey",
                    "cloudtrail.amazonaws.com",
                    ["kms:DescribeKey"],
                    source_arn,
                ),
            ],
        )
        self.bucket = evidence_bucket(
            self,
            key=self.key,
            access_logs=access_logs,
            log_prefix="trail-bucket/",
            lifecycle_rules=[_lifecycle(retention_days)],
            object_lock_days=object_lock_days,
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailChecksTheBucketAcl",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:GetBucketAcl"],
                resources=[self.bucket.bucket_arn],
                conditions=source_arn,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailWritesLogFiles",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"AWSLogs/{cdk.Aws.ACCOUNT_ID}/*")],
                conditions={
                    "StringEquals": {
                        "aws:SourceArn": self.trail_arn,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            )
        )
        self.selectors = trail_selectors(management_events=management_events)
        self.trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=trail_name,
            is_logging=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            s3_bucket_name=self.bucket.bucket_name,
            kms_key_id=self.key.key_arn,
            advanced_event_selectors=_cfn_selectors(self.selectors),
        )
        # CloudTrail checks the bucket policy when the trail is created.
        if self.bucket.policy is not None:
            self.trail.node.add_dependency(self.bucket.policy)

    @property
    def cfn_bucket(self) -> s3.CfnBucket:
        return cast(s3.CfnBucket, self.bucket.node.default_child)


def _lifecycle(retention_days: int) -> s3.LifecycleRule:
    transitions = []
    if retention_days > 60:
        transitions.append(
            s3.Transition(
                storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                transition_after=cdk.Duration.days(30),
            )
        )
    return s3.LifecycleRule(
        id="expire-log-files",
        expiration=cdk.Duration.days(retention_days),
        # A log file overwritten or deleted is evidence too: kept as long as the current ones.
        noncurrent_version_expiration=cdk.Duration.days(retention_days),
        abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
        transitions=transitions,
    )


@dataclass(frozen=True)
class TrailLogs:
    """The trail whose log files the pipeline reads: its own (`trail`) or an existing one
    (`trail` None; bucket and key as far as the settings name them)."""

    trail: InvokeTrail | None
    bucket: s3.IBucket | None
    key: kms.IKey | None
    bucket_name_shown: str  # how cdk-nag shows the bucket's ARN in a finding

    def bucket_arn_shown(self, scope: Construct) -> str:
        if self.trail is not None:
            return arn_of(self.trail.cfn_bucket)
        return f"arn:{partition_shown(scope)}:s3:::{self.bucket_name_shown}"


def trail_logs(
    scope: Construct,
    *,
    settings: DeploySettings,
    access_logs: s3.IBucket,
) -> TrailLogs:
    """A new `InvokeTrail` (construct id `Trail`), or the existing trail of the settings."""
    if settings.uses_existing_trail:
        bucket = key = None
        if settings.existing_trail_bucket:
            bucket = s3.Bucket.from_bucket_name(
                scope, "ExistingTrailBucket", settings.existing_trail_bucket
            )
        if settings.existing_trail_key_arn:
            key = kms.Key.from_key_arn(scope, "ExistingTrailKey", settings.existing_trail_key_arn)
        return TrailLogs(None, bucket, key, settings.existing_trail_bucket or "")
    trail = InvokeTrail(
        scope,
        "Trail",
        trail_name=settings.trail_name,
        management_events=settings.management_events,
        access_logs=access_logs,
        retention_days=settings.trail_retention_days,
        object_lock_days=settings.object_lock_days,
    )
    return TrailLogs(trail, trail.bucket, trail.key, "")
