"""The context key invoke-audit:athena: the Glue table with partition projection, the Athena
workgroup (scan limit, encrypted results with a lifecycle), the user policy and the outputs
the CLI defaults to. Expected values are written out here, not read from the code."""

from __future__ import annotations

import pytest

from stacks.settings import SettingsError, settings_from_mapping
from tests.support.synth import EXISTING_BUCKET, MEMBER_ACCOUNT, ORG_ID, cdk_json_context

pytestmark = pytest.mark.infra

GIB = 1024**3


def _one(synth, variant, kind):
    (resource,) = synth.resources(variant, kind).values()
    return resource["Properties"]


def test_without_the_context_key_there_is_no_athena(synth):
    for kind in ("AWS::Glue::Database", "AWS::Glue::Table", "AWS::Athena::WorkGroup"):
        assert synth.resources("standalone", kind) == {}
    assert "HistoryWorkgroup" not in synth.templates["standalone"].get("Outputs", {})


@pytest.mark.parametrize("variant", ["central", "existing"])
def test_the_table_projects_account_region_and_date(synth, variant):
    table = _one(synth, variant, "AWS::Glue::Table")["TableInput"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["account", "region", "timestamp"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.account.type"] == "enum"
    assert parameters["projection.region.type"] == "enum"
    assert parameters["projection.timestamp.type"] == "date"
    assert parameters["projection.timestamp.format"] == "yyyy/MM/dd"
    storage = table["StorageDescriptor"]
    assert storage["InputFormat"] == "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hive.hcatalog.data.JsonSerDe"
    names = [c["Name"] for c in storage["Columns"]]
    assert names[:6] == [
        "eventversion",
        "useridentity",
        "eventtime",
        "eventsource",
        "eventname",
        "awsregion",
    ]
    assert {
        "requestparameters",
        "additionaleventdata",
        "resources",
        "recipientaccountid",
        "errorcode",
    } <= set(names)


def test_an_existing_trail_bucket_is_projected_with_the_given_accounts(synth):
    parameters = _one(synth, "existing", "AWS::Glue::Table")["TableInput"]["Parameters"]
    assert parameters["projection.account.values"] == "444455556666"
    assert parameters["projection.region.values"] == "us-east-1"
    assert parameters["projection.timestamp.range"] == "2020/01/01,NOW"
    assert parameters["storage.location.template"] == (
        f"s3://{EXISTING_BUCKET}/AWSLogs/${{account}}/CloudTrail/${{region}}/${{timestamp}}"
    )


def test_an_organization_trail_projects_this_account_and_the_members(synth):
    parameters = _one(synth, "central", "AWS::Glue::Table")["TableInput"]["Parameters"]
    accounts = parameters["projection.account.values"]
    assert accounts["Fn::Join"][1] == [{"Ref": "AWS::AccountId"}, f",{MEMBER_ACCOUNT},555566667777"]
    assert parameters["projection.region.values"] == "us-east-1,eu-west-1"
    assert parameters["projection.timestamp.range"] == "2024/01/01,NOW"
    template = parameters["storage.location.template"]["Fn::Join"][1]
    assert template[-1] == f"/AWSLogs/{ORG_ID}/${{account}}/CloudTrail/${{region}}/${{timestamp}}"


@pytest.mark.parametrize(("variant", "cutoff_gb"), [("central", 100), ("existing", 10)])
def test_the_workgroup_enforces_its_scan_limit_and_encrypted_results(synth, variant, cutoff_gb):
    workgroup = _one(synth, variant, "AWS::Athena::WorkGroup")
    configuration = workgroup["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == cutoff_gb * GIB
    encryption = configuration["ResultConfiguration"]["EncryptionConfiguration"]
    assert encryption["EncryptionOption"] == "SSE_KMS"
    key_id = encryption["KmsKey"]["Fn::GetAtt"][0]
    assert synth.templates[variant]["Resources"][key_id]["Type"] == "AWS::KMS::Key"
    assert synth.templates[variant]["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize(("variant", "days"), [("central", 30), ("existing", 7)])
def test_the_results_bucket_is_encrypted_private_and_expires(synth, variant, days):
    results = [
        props
        for name, resource in synth.resources(variant, "AWS::S3::Bucket").items()
        if name.startswith("History") and (props := resource["Properties"])
    ]
    assert len(results) == 1
    bucket = results[0]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert bucket["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    lifecycle = bucket["LifecycleConfiguration"]["Rules"]
    assert [r["ExpirationInDays"] for r in lifecycle] == [days]


def test_the_user_policy_grants_the_history_query_and_nothing_more(synth):
    (policy,) = synth.resources("central", "AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] != "*"
        found = statement["Action"]
        actions |= {found} if isinstance(found, str) else set(found)
    assert actions == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
        "glue:GetDatabase",
        "glue:GetTable",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "cloudformation:DescribeStacks",
    }
    assert policy["Properties"]["Roles"] == ["security-analyst"]


def test_the_outputs_are_the_names_the_cli_reads(synth):
    outputs = synth.templates["central"]["Outputs"]
    assert outputs["HistoryDatabase"]["Value"] == "invoke_audit_central"
    assert outputs["HistoryTable"]["Value"] == "cloudtrail"
    assert outputs["HistoryWorkgroup"]["Value"] == "invoke-audit-central-history"
    workgroup = _one(synth, "central", "AWS::Athena::WorkGroup")
    assert workgroup["Name"] == "invoke-audit-central-history"
    database = _one(synth, "central", "AWS::Glue::Database")
    assert database["DatabaseInput"]["Name"] == "invoke_audit_central"


@pytest.mark.parametrize(
    ("athena", "message"),
    [
        ({"accounts": ["111122223333"]}, "regions: required"),
        ({"regions": ["us-east-1"], "colour": "blue"}, "unknown keys"),
        ({"regions": ["us-east-1;"]}, "region names"),
        ({"regions": ["us-east-1"], "start-date": "2024-01-01"}, "yyyy/MM/dd"),
        ({"regions": ["us-east-1"], "bytes-scanned-cutoff-gb": 0}, "bytes-scanned-cutoff-gb"),
        ("{not json", "JSON object"),
    ],
)
def test_bad_athena_context_names_the_key(athena, message):
    with pytest.raises(SettingsError, match=message) as error:
        settings_from_mapping({**cdk_json_context(), "invoke-audit:athena": athena})
    assert "invoke-audit:athena" in str(error.value)


def test_athena_needs_the_trail_bucket_and_is_not_for_member_accounts():
    context = {**cdk_json_context(), "invoke-audit:athena": {"regions": ["us-east-1"]}}
    with pytest.raises(SettingsError, match="existing-trail-bucket"):
        settings_from_mapping(
            {
                **context,
                "invoke-audit:existing-trail-arn": "arn:aws:cloudtrail:us-east-1:444455556666:trail/t",
            }
        )
    with pytest.raises(SettingsError, match="member"):
        settings_from_mapping(
            {
                **context,
                "invoke-audit:account-role": "member",
                "invoke-audit:central-account-id": "111122223333",
                "invoke-audit:central-bus-arn": "arn:aws:events:us-east-1:111122223333:event-bus/default",
            }
        )
