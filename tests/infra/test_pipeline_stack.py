"""The synthesized pipeline stack, point by point of the CDK app issue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from lambdas.core.config import load_allowlist
from stacks.pattern import event_pattern
from stacks.pipeline_stack import REMEDIATOR_TIMEOUT
from stacks.queues import MAX_RECEIVE_COUNT
from tests.support.synth import EXISTING_BUCKET, Synth

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
OWN_PREFIX = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":lambda:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":function:invoke-audit-",
        ],
    ]
}
INVOKE_SELECTOR = {
    "Name": Match.any_value(),
    "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
        {"Field": "eventName", "Equals": ["Invoke"]},
        {"Field": "resources.ARN", "NotStartsWith": [OWN_PREFIX]},
    ],
}
MANAGEMENT_SELECTOR = {
    "Name": Match.any_value(),
    "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
}


def _one(synth: Synth, variant: str, type_: str) -> tuple[str, dict[str, Any]]:
    found = synth.resources(variant, type_)
    assert len(found) == 1, f"{variant}: expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def _function(synth: Synth, variant: str, name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in synth.resources(variant, "AWS::Lambda::Function").items():
        if resource["Properties"].get("FunctionName") == name:
            return logical_id, resource
    raise AssertionError(f"{variant}: no function named {name}")


def _ref_target(value: Any) -> str:
    """The logical id a Ref / GetAtt points at."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


# -- trail ------------------------------------------------------------------------------


def test_trail_is_multi_region_validated_encrypted_with_advanced_selectors_only(synth):
    template = synth.template("standalone")
    template.has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "IsLogging": True,
            "IsMultiRegionTrail": True,
            "EnableLogFileValidation": True,
            "IncludeGlobalServiceEvents": True,
            "KMSKeyId": Match.object_like({"Fn::GetAtt": Match.any_value()}),
            "AdvancedEventSelectors": [MANAGEMENT_SELECTOR, INVOKE_SELECTOR],
            "EventSelectors": Match.absent(),
        },
    )


def test_management_events_can_be_turned_off_and_an_existing_trail_used(synth):
    assert synth.resources("existing", "AWS::CloudTrail::Trail") == {}
    outputs = synth.templates["existing"]["Outputs"]
    selectors = outputs["RequiredTrailSelectors"]["Value"]
    text = str(selectors)
    assert "Management" not in text
    assert "NotStartsWith" in text
    assert ":function:invoke-audit-" in text


def test_trail_bucket_is_encrypted_private_versioned_logged_and_expires(synth):
    template = synth.template("standalone")
    trail_id, trail = _one(synth, "standalone", "AWS::CloudTrail::Trail")
    bucket_id = _ref_target(trail["Properties"]["S3BucketName"])
    key_id = _ref_target(trail["Properties"]["KMSKeyId"])
    bucket = synth.templates["standalone"]["Resources"][bucket_id]["Properties"]
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert _ref_target(encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == key_id
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(rule.get("ExpirationInDays") == 365 for rule in rules)
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})
    assert synth.templates["standalone"]["Resources"][trail_id]["DependsOn"]


def test_trail_bucket_policy_is_scoped_by_source_arn_and_ssl_only(synth):
    _, trail = _one(synth, "standalone", "AWS::CloudTrail::Trail")
    bucket_id = _ref_target(trail["Properties"]["S3BucketName"])
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("standalone", "AWS::S3::BucketPolicy").values()
        if _ref_target(p["Properties"]["Bucket"]) == bucket_id
    ]
    assert len(policies) == 1
    statements = policies[0]
    cloudtrail = [
        s for s in statements if s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
    ]
    assert {s["Action"] for s in cloudtrail} == {"s3:GetBucketAcl", "s3:PutObject"}
    for statement in cloudtrail:
        source_arn = statement["Condition"]["StringEquals"]["aws:SourceArn"]
        assert "trail/invoke-audit-trail" in str(source_arn)
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- EventBridge rule -------------------------------------------------------------------


def test_rule_pattern_is_the_event_pattern_function_with_own_functions_excluded(synth):
    _, rule = _one(synth, "standalone", "AWS::Events::Rule")
    allowlist = load_allowlist(REPO / "config" / "allowlist.yaml")
    expected = event_pattern(own_function_arn_prefix="PREFIX", allowlist=allowlist)
    # The pattern is JSON text (so that the edge filter's nulls survive), joined around the
    # own-function prefix, whose partition, region and account are resolved at deploy time.
    joined = rule["Properties"]["EventPattern"]["Fn::Join"]
    assert joined[0] == ""
    text = "".join(part if isinstance(part, str) else f"<{next(iter(part))}>" for part in joined[1])
    prefix = "arn:<Ref>:lambda:<Ref>:<Ref>:function:invoke-audit-"
    assert json.loads(text.replace(prefix, "PREFIX")) == expected
    assert "null" in text  # the edge filter's null matches are in the deployed pattern
    assert "EventBusName" not in rule["Properties"]  # the default bus


def test_rule_targets_the_validator_with_retries_and_a_dead_letter_queue(synth):
    _, rule = _one(synth, "standalone", "AWS::Events::Rule")
    validator_id, _ = _function(synth, "standalone", "invoke-audit-validator")
    (target,) = rule["Properties"]["Targets"]
    assert _ref_target(target["Arn"]) == validator_id
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    dlq_id = _ref_target(target["DeadLetterConfig"]["Arn"])
    assert synth.templates["standalone"]["Resources"][dlq_id]["Type"] == "AWS::SQS::Queue"


# -- functions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["validator", "remediator"])
def test_functions_run_python_on_arm64_with_the_contract_handler(synth, name):
    _, function = _function(synth, "standalone", f"invoke-audit-{name}")
    props = function["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == f"lambdas.{name}.handler.lambda_handler"
    assert props["LoggingConfig"]["LogGroup"]


def test_functions_get_the_contract_environment(synth):
    common = {
        "ALLOWLIST_PATH": "/var/task/allowlist.json",
        "OWN_FUNCTION_PREFIX": "invoke-audit-",
        "POWERTOOLS_SERVICE_NAME": "invoke-audit",
        "POWERTOOLS_METRICS_NAMESPACE": "InvokeAudit",
    }
    expected_keys = {
        "invoke-audit-validator": {"QUEUE_URL", "TOPIC_ARN"},
        "invoke-audit-remediator": {"TOPIC_ARN", "BACKUP_BUCKET", "RATE_TABLE"},
        "invoke-audit-ingest": {"QUEUE_URL", "TOPIC_ARN"},
    }
    for variant in ("standalone", "central"):
        for name, keys in expected_keys.items():
            if variant == "standalone" and name.endswith("ingest"):
                continue
            _, function = _function(synth, variant, name)
            env = function["Properties"]["Environment"]["Variables"]
            extra = {"REMEDIATION_ROLE_NAME", "ALLOWED_ACCOUNTS"} if variant == "central" else set()
            if variant == "central" and not name.endswith("remediator"):
                extra = {"ALLOWED_ACCOUNTS"}
            assert set(env) == set(common) | keys | extra, (variant, name)
            for key, value in common.items():
                assert env[key] == value
    _, remediator = _function(synth, "central", "invoke-audit-remediator")
    central_env = remediator["Properties"]["Environment"]["Variables"]
    assert central_env["REMEDIATION_ROLE_NAME"] == "invoke-audit-remediation"
    assert central_env["ALLOWED_ACCOUNTS"] == "222233334444,555566667777"


def test_log_groups_have_retention_and_the_function_names(synth):
    groups = synth.resources("standalone", "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"]: g["Properties"] for g in groups.values()}
    assert set(names) == {
        "/aws/lambda/invoke-audit-validator",
        "/aws/lambda/invoke-audit-remediator",
    }
    assert all(props["RetentionInDays"] == 90 for props in names.values())


def test_remediator_has_reserved_concurrency_and_a_timeout_below_the_visibility(synth):
    _, remediator = _function(synth, "standalone", "invoke-audit-remediator")
    props = remediator["Properties"]
    assert props["ReservedConcurrentExecutions"] == 2
    queues = synth.resources("standalone", "AWS::SQS::Queue")
    (queue,) = [q["Properties"] for q in queues.values() if q["Properties"].get("RedrivePolicy")]
    assert props["Timeout"] == REMEDIATOR_TIMEOUT.to_seconds()
    assert queue["VisibilityTimeout"] > props["Timeout"]


# -- queue, table, bucket, topic --------------------------------------------------------


def test_remediation_queue_is_fifo_encrypted_deduplicated_by_id_with_a_fifo_dlq(synth):
    resources = synth.templates["standalone"]["Resources"]
    queues = synth.resources("standalone", "AWS::SQS::Queue")
    (queue,) = [q["Properties"] for q in queues.values() if q["Properties"].get("RedrivePolicy")]
    assert queue["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is False
    assert queue["KmsMasterKeyId"]
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT == 5
    dlq = resources[_ref_target(redrive["deadLetterTargetArn"])]["Properties"]
    assert dlq["FifoQueue"] is True
    assert dlq["KmsMasterKeyId"]
    for policy in synth.resources("standalone", "AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_remediator_consumes_the_queue_with_partial_batch_responses(synth):
    synth.template("standalone").has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": Match.any_value(),
            "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("RemediationQueue"), "Arn"]},
        },
    )


def test_rate_limit_table_has_a_string_key_ttl_and_recovery(synth):
    synth.template("standalone").has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def test_backup_bucket_is_versioned_kms_private_and_ssl_only(synth):
    resources = synth.templates["standalone"]["Resources"]
    _, remediator = _function(synth, "standalone", "invoke-audit-remediator")
    bucket_id = _ref_target(remediator["Properties"]["Environment"]["Variables"]["BACKUP_BUCKET"])
    bucket = resources[bucket_id]
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(props["PublicAccessBlockConfiguration"].values())
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("standalone", "AWS::S3::BucketPolicy").values()
        if _ref_target(p["Properties"]["Bucket"]) == bucket_id
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policies[0]
    )


def test_topic_is_encrypted_and_the_email_subscription_is_optional(synth):
    for variant in ("standalone", "central"):
        _, topic = _one(synth, variant, "AWS::SNS::Topic")
        assert topic["Properties"]["KmsMasterKeyId"]
    assert synth.resources("standalone", "AWS::SNS::Subscription") == {}
    synth.template("central").has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "security@example.com"}
    )


def test_keys_rotate_and_their_policies_grant_no_wildcard_action(synth):
    for variant in synth.templates:
        for key in synth.resources(variant, "AWS::KMS::Key").values():
            props = key["Properties"]
            assert props["EnableKeyRotation"] is True
            for statement in props["KeyPolicy"]["Statement"]:
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                assert not [a for a in actions if "*" in a], (variant, statement.get("Sid"))


# -- alarms, dashboard ------------------------------------------------------------------


def test_alarms_cover_every_dead_letter_queue_errors_and_the_rate_limit(synth):
    for variant, queue_count in (("standalone", 2), ("central", 3)):
        alarms = synth.resources(variant, "AWS::CloudWatch::Alarm").values()
        props = [a["Properties"] for a in alarms]
        dlq_alarms = [p for p in props if p["MetricName"] == "ApproximateNumberOfMessagesVisible"]
        assert len(dlq_alarms) == queue_count
        assert all(p["Threshold"] == 1 for p in dlq_alarms)
        remediator_id, _ = _function(synth, variant, "invoke-audit-remediator")
        errors = [p for p in props if p["MetricName"] == "Errors"]
        assert [{"Name": "FunctionName", "Value": {"Ref": remediator_id}}] in [
            p["Dimensions"] for p in errors
        ]
        (rate,) = [p for p in props if p["MetricName"] == "RateLimitTripped"]
        assert rate["Namespace"] == "InvokeAudit"
        assert rate["Dimensions"] == [{"Name": "service", "Value": "invoke-audit"}]
        assert all(p["AlarmActions"] for p in props)
        assert all(p["TreatMissingData"] == "notBreaching" for p in props)
    _one(synth, "standalone", "AWS::CloudWatch::Dashboard")


# -- S3 ingest --------------------------------------------------------------------------


def test_s3_ingest_is_off_by_default(synth):
    names = [
        f["Properties"]["FunctionName"]
        for f in synth.resources("standalone", "AWS::Lambda::Function").values()
    ]
    assert "invoke-audit-ingest" not in names
    assert synth.resources("standalone", "Custom::S3BucketNotifications") == {}


@pytest.mark.parametrize("variant", ["central", "existing"])
def test_s3_ingest_runs_on_the_trail_buckets_object_created_notification(synth, variant):
    ingest_id, ingest = _function(synth, variant, "invoke-audit-ingest")
    assert ingest["Properties"]["Handler"] == "lambdas.ingest.handler.lambda_handler"
    _, notification = _one(synth, variant, "Custom::S3BucketNotifications")
    (config,) = notification["Properties"]["NotificationConfiguration"][
        "LambdaFunctionConfigurations"
    ]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert _ref_target(config["LambdaFunctionArn"]) == ingest_id
    rules = {r["Name"]: r["Value"] for r in config["Filter"]["Key"]["FilterRules"]}
    assert rules["suffix"] == ".json.gz"
    assert "CloudTrail/" in str(rules["prefix"])
    if variant == "existing":
        assert notification["Properties"]["BucketName"] == EXISTING_BUCKET
    synth.template(variant).has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "s3.amazonaws.com", "FunctionName": {"Fn::GetAtt": [ingest_id, "Arn"]}},
    )
