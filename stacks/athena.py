"""Athena over the trail's bucket, for `invoke-audit history --engine athena` (context key
`invoke-audit:athena`).

- a Glue database and the CloudTrail table of `models.athena_table` (AWS's documented columns,
  partition projection by account, region and date: no partitions to load, ever);
- an Athena workgroup that enforces its settings: results in its own bucket (KMS-encrypted,
  expired after N days), and a cutoff of bytes scanned per query (Athena cancels a query past
  it: a mistyped query cannot scan the whole trail);
- a managed policy with exactly what a person needs to run the history query (the Athena
  adapter's actions on this workgroup, the table in Glue, the trail's log files, the results
  bucket and keys, the stack's outputs), attached to the roles the context names.

The stack outputs the database, table and workgroup: the CLI's defaults.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cli.history import OUTPUT_DATABASE, OUTPUT_TABLE, OUTPUT_WORKGROUP
from lambdas.adapters.athena import AthenaQuery, StackOutputs
from models.athena_table import (
    COLUMNS,
    INPUT_FORMAT,
    OUTPUT_FORMAT,
    PARTITION_KEYS,
    SERDE,
    TrailLocation,
    projection_parameters,
)
from stacks.keys import encryption_key
from stacks.nag import acknowledge, arn_of
from stacks.settings import AthenaSettings, DeploySettings
from stacks.trail import TrailLogs

__all__ = ["HistoryQueries", "history_queries"]

TABLE_NAME = "cloudtrail"
GB = 1024**3


class HistoryQueries(Construct):
    """The Glue table, the Athena workgroup and the policy to run the history query."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AthenaSettings,
        database_name: str,
        workgroup_name: str,
        trail_bucket: s3.IBucket,
        trail_key: kms.IKey | None,
        trail_bucket_arn_shown: str,
        accounts: list[str],
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        location = TrailLocation(
            bucket=trail_bucket.bucket_name,
            accounts=tuple(accounts),
            regions=settings.regions,
            start_date=settings.start_date,
            organization_id=settings.organization_id,
        )
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name,
                description="invoke-audit: CloudTrail logs for `invoke-audit history`",
            ),
        )
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "EXTERNAL": "TRUE",
                    "classification": "cloudtrail",
                    **projection_parameters(location),
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in PARTITION_KEYS
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in COLUMNS],
                    location=location.logs_root,
                    input_format=INPUT_FORMAT,
                    output_format=OUTPUT_FORMAT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=SERDE),
                ),
            ),
        )
        self.table.node.add_dependency(self.database)
        self.results_key = encryption_key(
            self,
            "ResultsKey",
            description="invoke-audit history: Athena query results",
            via_services=("s3",),
        )
        self.results = s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.results_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="history-results/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(settings.results_retention_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=workgroup_name,
            description="invoke-audit history: the CloudTrail table, with a scan limit",
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=settings.bytes_scanned_cutoff_gb * GB,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.results.s3_url_for_object("results/"),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.results_key.key_arn
                    ),
                ),
            ),
        )
        self.policy = self._user_policy(
            database_name, workgroup_name, trail_bucket, trail_key, location
        )
        logs_prefix = location.logs_root.removeprefix(f"s3://{trail_bucket.bucket_name}/")
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{trail_bucket_arn_shown}/{logs_prefix}*]",
            "Athena reads every log file of the projected accounts, regions and days under "
            "the trail's AWSLogs prefix (s3:GetObject only); the query's filters pick the days.",
        )
        results = self.results.node.default_child
        assert isinstance(results, cdk.CfnResource)
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{arn_of(results)}/results/*]",
            "Athena writes each query's results under a name of its own choosing below the "
            "workgroup's results/ prefix, as the user who runs the query, and reads them back.",
        )
        for name in settings.user_roles:
            self.policy.attach_to_role(iam.Role.from_role_name(self, f"User{name}", name))
        for key, value in (
            (OUTPUT_DATABASE, database_name),
            (OUTPUT_TABLE, TABLE_NAME),
            (OUTPUT_WORKGROUP, workgroup_name),
        ):
            output = cdk.CfnOutput(stack, key, value=value)
            output.override_logical_id(key)
        cdk.CfnOutput(stack, "HistoryUserPolicyArn", value=self.policy.managed_policy_arn)

    def _user_policy(
        self,
        database_name: str,
        workgroup_name: str,
        trail_bucket: s3.IBucket,
        trail_key: kms.IKey | None,
        location: TrailLocation,
    ) -> iam.ManagedPolicy:
        stack = cdk.Stack.of(self)
        arn = f"arn:{stack.partition}"
        glue_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        logs_prefix = location.logs_root.removeprefix(f"s3://{trail_bucket.bucket_name}/")
        statements = [
            iam.PolicyStatement(
                sid="RunTheHistoryQueryInTheWorkgroup",
                actions=list(AthenaQuery.IAM_ACTIONS),
                resources=[
                    f"{arn}:athena:{stack.region}:{stack.account}:workgroup/{workgroup_name}"
                ],
            ),
            iam.PolicyStatement(
                sid="ReadTheTableDefinition",
                actions=["glue:GetDatabase", "glue:GetTable"],
                resources=[
                    f"{glue_arn}:catalog",
                    f"{glue_arn}:database/{database_name}",
                    f"{glue_arn}:table/{database_name}/{TABLE_NAME}",
                ],
            ),
            iam.PolicyStatement(
                sid="ReadTheTrailLogFiles",
                actions=["s3:GetObject"],
                resources=[trail_bucket.arn_for_objects(f"{logs_prefix}*")],
            ),
            iam.PolicyStatement(
                sid="ListTheTrailLogFiles",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[trail_bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="WriteAndReadQueryResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.results.arn_for_objects("results/*")],
            ),
            iam.PolicyStatement(
                sid="ListQueryResults",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[self.results.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="EncryptAndDecryptQueryResults",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.results_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="ReadTheStackOutputs",
                actions=list(StackOutputs.IAM_ACTIONS),
                resources=[stack.stack_id],
            ),
        ]
        if trail_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="DecryptTheTrailLogFiles",
                    actions=["kms:Decrypt"],
                    resources=[trail_key.key_arn],
                )
            )
        return iam.ManagedPolicy(
            self,
            "UserPolicy",
            description="invoke-audit history: run the history query on Athena, nothing else",
            statements=statements,
        )


def history_queries(
    scope: Construct, *, settings: DeploySettings, trail: TrailLogs, access_logs: s3.IBucket
) -> HistoryQueries | None:
    """`HistoryQueries` (construct id `History`) when the context asks for it."""
    if settings.athena is None or trail.bucket is None:  # settings.check() requires the bucket
        return None
    return HistoryQueries(
        scope,
        "History",
        settings=settings.athena,
        database_name=f"invoke_audit_{settings.environment.replace('-', '_')}",
        workgroup_name=f"{settings.name_prefix}history",
        trail_bucket=trail.bucket,
        trail_key=trail.key,
        trail_bucket_arn_shown=trail.bucket_arn_shown(scope),
        accounts=list(settings.athena.accounts)
        or [cdk.Aws.ACCOUNT_ID, *settings.member_account_ids],
        access_logs=access_logs,
    )
