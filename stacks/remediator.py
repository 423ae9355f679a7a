"""The remediator: reads violations from the FIFO queue and rewrites the invoked function's
resource policy (backup first, rate-limited); in a central account, through the remediation
role of the member account the function lives in."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.assets import BuiltAsset
from stacks.functions import FunctionCommons, PipelineFunction
from stacks.keys import BackupMacKey
from stacks.nag import acknowledge, arn_of, partition_shown
from stacks.permissions import (
    ServiceScope,
    grant_declared,
    lambda_policy_scope,
    remediation_guardrails,
    security_hub_scope,
)
from stacks.storage import BACKUP_PREFIX, BackupBucket, RateLimitTable

__all__ = ["QUEUE_VISIBILITY", "REMEDIATOR_CONCURRENCY", "REMEDIATOR_TIMEOUT", "Remediator"]

REMEDIATOR_TIMEOUT = cdk.Duration.seconds(60)
REMEDIATOR_CONCURRENCY = 2
# The queue's visibility timeout: a failed message is retried after this, so a poison
# message holds its FIFO group for at most `queues.MAX_RECEIVE_COUNT` x this (6 minutes).
QUEUE_VISIBILITY = cdk.Duration.seconds(REMEDIATOR_TIMEOUT.to_seconds() * 2)


class Remediator(PipelineFunction):
    """One violation at a time from `queue`; backups in `backups`, counters in `rate_limit`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        commons: FunctionCommons,
        asset: BuiltAsset,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        backups: BackupBucket,
        rate_limit: RateLimitTable,
        mac_key: BackupMacKey,
    ) -> None:
        settings = commons.settings
        environment = commons.environment(
            BACKUP_BUCKET=backups.bucket.bucket_name,
            # Every backup is signed with this HMAC key (GenerateMac); restore verifies it.
            BACKUP_MAC_KEY_ARN=mac_key.key.key_arn,
            RATE_TABLE=rate_limit.table.table_name,
            # A policy Lambda refuses as public is sent here at once, never retried.
            DEAD_LETTER_QUEUE_URL=dead_letter_queue.queue_url,
        )
        if commons.central:
            environment["REMEDIATION_ROLE_NAME"] = settings.remediation_role_name
        if settings.security_hub:
            environment["SECURITY_HUB_FINDINGS"] = "on"
        super().__init__(
            scope,
            construct_id,
            function_name=settings.function_name("remediator"),
            description="Rewrites the resource policy of a function whose caller is not allowed.",
            asset=asset,
            environment=environment,
            log_retention_days=settings.log_retention_days,
            timeout=REMEDIATOR_TIMEOUT,
            memory_size=512,
            reserved_concurrency=REMEDIATOR_CONCURRENCY,
            # Named in a central account: the member roles trust exactly this role ARN.
            role_name=settings.remediator_role_name if commons.central else None,
        )
        self.event_source = event_sources.SqsEventSource(
            queue, batch_size=1, report_batch_item_failures=True
        )
        self.function.add_event_source(self.event_source)
        self._grant(commons, queue, dead_letter_queue, backups, rate_limit, mac_key)
        mac_key.may_sign(self.role)

    def _grant(
        self,
        commons: FunctionCommons,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        backups: BackupBucket,
        rate_limit: RateLimitTable,
        mac_key: BackupMacKey,
    ) -> None:
        settings = commons.settings
        stack = cdk.Stack.of(self)
        key = commons.key.key_arn
        scopes = {
            "sns": ServiceScope(resources=[commons.topic.topic_arn], key_arn=key),
            "lambda": lambda_policy_scope(stack, commons.own_function_arns),
            "s3": ServiceScope(
                resources=[backups.objects_arn],
                key_arn=key,
                per_action={
                    "s3:ListBucket": ServiceScope(
                        resources=[backups.bucket.bucket_arn],
                        conditions={"StringLike": {"s3:prefix": [f"{BACKUP_PREFIX}*"]}},
                    )
                },
            ),
            "dynamodb": ServiceScope(resources=[rate_limit.table.table_arn]),
            # Signs each backup; verifies one before the broken-caller watch's undo.
            "kms": ServiceScope(resources=[mac_key.key.key_arn]),
            # Delays a rate-limited message on its queue; sends a message that must not be
            # retried to the dead-letter queue.
            "sqs": ServiceScope(
                resources=[queue.queue_arn],
                key_arn=key,
                per_action={
                    "sqs:SendMessage": ServiceScope(resources=[dead_letter_queue.queue_arn])
                },
            ),
            # The two policy checks act on documents, not resources: the Service Authorization
            # Reference lists no resource type for them, so "*" is their only resource.
            "access-analyzer": ServiceScope(resources=["*"]),
        }
        if commons.central and settings.organization_id:
            member_roles = [
                stack.format_arn(
                    service="iam",
                    region="",
                    account=account,
                    resource="role",
                    resource_name=settings.remediation_role_name,
                )
                for account in settings.member_account_ids
            ]
            scopes["sts"] = ServiceScope(
                resources=member_roles,
                conditions={"StringEquals": {"aws:ResourceOrgID": settings.organization_id}},
            )
        if settings.security_hub:
            scopes["securityhub"] = security_hub_scope(stack)
        grant_declared(
            self.role,
            "remediator",
            scopes,
            cross_account=commons.central,
            findings=settings.security_hub,
        )
        for statement in remediation_guardrails():
            self.role.add_to_principal_policy(statement)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:{partition_shown(self)}:lambda:*:<AWS::AccountId>:function:*]",
            "The remediator rewrites the policy of whichever function of this account (in any "
            "region: the trail is multi-region) a caller not on the allowlist invoked, so it "
            "cannot name the functions in advance. Its own functions are excluded by an "
            "explicit Deny (exact ARNs); protected ones by its code; granting `*` and function "
            "URLs by explicit Denies.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only access-analyzer:CheckNoNewAccess and CheckNoPublicAccess: read-only checks of "
            "policy documents, which have no resource type (Service Authorization Reference, "
            "IAM Access Analyzer), so IAM accepts no other resource for them.",
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{arn_of(backups.cfn_bucket)}/{BACKUP_PREFIX}*]",
            "Each policy change writes a new backup object keyed by account, region, function "
            "and time; the grant is s3:PutObject only, under the backups/ prefix.",
        )
