"""One pipeline function: its code asset, role, log group and settings.

The role starts empty (no managed policy): the stack grants each function exactly the
actions its adapters declare, plus writing to its own log group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.alerts import METRICS_NAMESPACE, SERVICE_NAME
from stacks.assets import ALLOWLIST_FILE, BuiltAsset
from stacks.nag import acknowledge
from stacks.settings import AccountRole, DeploySettings

__all__ = ["RUNTIME", "FunctionCommons", "PipelineFunction", "own_function_arns", "retention"]

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
ASSET_EXCLUDES = ("**/__pycache__", "**/*.pyc")

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    return _RETENTION[days]


def own_function_arns(scope: Construct, settings: DeploySettings) -> list[str]:
    """The exact unqualified ARNs of the functions this deployment runs, in its account and
    region (built from their names: no reference to the functions themselves, so that their
    own settings may name them)."""
    stack = cdk.Stack.of(scope)
    return [
        stack.format_arn(
            service="lambda",
            resource="function",
            resource_name=settings.function_name(function),
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        for function in settings.functions
    ]


@dataclass(frozen=True, kw_only=True)
class FunctionCommons:
    """What every pipeline function is given: the settings, the pipeline key, the alert topic."""

    settings: DeploySettings
    key: kms.IKey
    topic: sns.ITopic
    own_function_arns: tuple[str, ...]
    watched_regions: tuple[str, ...]  # may hold the token of the stack's region

    @property
    def central(self) -> bool:
        return self.settings.account_role is AccountRole.CENTRAL

    def environment(self, **extra: str) -> dict[str, str]:
        """The environment every function reads, plus `extra`."""
        members = {}
        if self.central:
            members["ALLOWED_ACCOUNTS"] = ",".join(self.settings.member_account_ids)
        return {
            **members,
            "ALLOWLIST_PATH": f"/var/task/{ALLOWLIST_FILE}",
            "OWN_FUNCTION_ARNS": ",".join(self.own_function_arns),
            "WATCHED_REGIONS": ",".join(self.watched_regions),
            "TOPIC_ARN": self.topic.topic_arn,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **extra,
        }

    def key_statement(self) -> iam.PolicyStatement:
        """Encrypt and decrypt with the pipeline key (its queues and topic)."""
        return iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn]
        )


class PipelineFunction(Construct):
    """A Python function on arm64 with its own role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        description: str,
        asset: BuiltAsset,
        environment: Mapping[str, str],
        log_retention_days: int,
        timeout: cdk.Duration,
        memory_size: int = 256,
        reserved_concurrency: int | None = None,
        role_name: str | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: only the actions its adapters declare",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=asset.handler,
            code=lambda_.Code.from_asset(
                str(asset.path),
                asset_hash=asset.digest,
                asset_hash_type=cdk.AssetHashType.CUSTOM,
                ignore_mode=cdk.IgnoreMode.GLOB,
                exclude=list(ASSET_EXCLUDES),
            ),
            role=self.role,
            log_group=self.log_group,
            environment=dict(environment),
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2 if dead_letter_queue is not None else None,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.13 is the runtime the asset's binary wheels (cp313, aarch64) are built "
            "for and the code is tested against; the runtime moves together with "
            "stacks.assets.LAMBDA_TARGET, not on its own.",
        )
