"""The synthesized pipeline stack, point by point of the CDK app issue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from cli.allowlist_file import load_allowlist
from stacks.canary import with_canary_rule
from stacks.pattern import edge_rules
from stacks.pipeline_stack import REMEDIATOR_TIMEOUT
from stacks.queues import MAX_RECEIVE_COUNT
from tests.support.synth import EXISTING_BUCKET, Synth, flat

pytestmark = pytest.mark.infra

REPO = Path(__file__).resolve().parents[2]
INVOKE_SELECTOR = {
    "Name": Match.any_value(),
    "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
        {"Field": "eventName", "StartsWith": ["Invoke"]},
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


def _validator_rules(synth: Synth, variant: str) -> list[dict[str, Any]]:
    """The rules that send Invoke events to the validator (the edge rules; not its daily
    schedule, tests/infra/test_daily_run.py)."""
    validator_id, _ = _function(synth, variant, f"invoke-audit-{variant}-validator")
    return [
        rule
        for rule in synth.resources(variant, "AWS::Events::Rule").values()
        if any(_ref_target(t["Arn"]) == validator_id for t in rule["Properties"]["Targets"])
        and "ScheduleExpression" not in rule["Properties"]
    ]


def _ref_target(value: Any) -> str:
    """The logical id a Ref / GetAtt points at."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


# -- trail ------------------------------------------------------------------------------


def test_trail_is_multi_region_validated_encrypted_with_advanced_selectors_only(synth):
    template = synth.template("regions")
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


def test_management_events_are_off_by_default_and_every_functions_invokes_are_recorded(synth):
    # The default trail records Invokes only (management events are usually logged already),
    # of every function: the pipeline's own are recorded too, so that a direct invoke of
    # them is seen; nothing is left out by name.
    synth.template("standalone").has_resource_properties(
        "AWS::CloudTrail::Trail", {"AdvancedEventSelectors": [INVOKE_SELECTOR]}
    )
    assert synth.settings["standalone"].management_events is False
    assert synth.resources("existing", "AWS::CloudTrail::Trail") == {}
    outputs = synth.templates["existing"]["Outputs"]
    selectors = outputs["RequiredTrailSelectors"]["Value"]
    text = flat(selectors)
    assert "Management" not in text
    assert "resources.ARN" not in text and "NotStartsWith" not in text
    assert '"StartsWith":["Invoke"]' in text.replace(" ", "")


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
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 365
    # overwritten or deleted log files are kept as long as the current ones
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 365}
    assert "ObjectLockEnabled" not in bucket
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
        assert "trail/invoke-audit-standalone-trail" in flat(source_arn)
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- EventBridge rule -------------------------------------------------------------------


def test_the_rules_are_the_compiled_edge_rules_with_own_functions_excluded(synth):
    rules = _validator_rules(synth, "standalone")
    allowlist = with_canary_rule(
        load_allowlist(REPO / "config" / "allowlist.yaml"), "invokeaudit-canary-standalone"
    )
    arn = "arn:<Ref:AWS::Partition>:lambda:<Ref:AWS::Region>:<Ref:AWS::AccountId>:function:"
    own = [f"{arn}invoke-audit-standalone-{name}" for name in ("validator", "remediator")]
    expected = edge_rules(own_function_arns=own, allowlist=allowlist).rules
    # JSON text (so that the patterns' nulls survive), joined around the own functions' exact
    # ARNs, whose partition, region and account are resolved at deploy time.
    deployed = {
        r["Properties"]["Description"]: json.loads(flat(r["Properties"]["EventPattern"]))
        for r in rules
    }
    assert deployed == {rule.description: rule.pattern for rule in expected}
    assert {rule.key for rule in expected} >= {
        "rule-blog-s3-trigger",
        "unmatched",
        "failed-invokes",
    }
    for rule in rules:
        text = flat(rule["Properties"]["EventPattern"])
        assert json.loads(text)["detail"]["resources"]["ARN"][0] == {"anything-but": sorted(own)}
        assert "null" in text
        assert "EventBusName" not in rule["Properties"]  # the default bus


def test_every_rule_targets_the_validator_with_retries_and_a_dead_letter_queue(synth):
    rules = _validator_rules(synth, "standalone")
    assert len(rules) >= 3
    for rule in rules:
        (target,) = rule["Properties"]["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
        dlq_id = _ref_target(target["DeadLetterConfig"]["Arn"])
        assert synth.templates["standalone"]["Resources"][dlq_id]["Type"] == "AWS::SQS::Queue"


# -- functions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["validator", "remediator"])
def test_functions_run_python_on_arm64_with_the_contract_handler(synth, name):
    _, function = _function(synth, "standalone", f"invoke-audit-standalone-{name}")
    props = function["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == f"lambdas.{name}.handler.lambda_handler"
    assert props["LoggingConfig"]["LogGroup"]


def test_functions_get_the_contract_environment(synth):
    common = {
        "ALLOWLIST_PATH": "/var/task/allowlist.json",
        "POWERTOOLS_SERVICE_NAME": "invoke-audit",
        "POWERTOOLS_METRICS_NAMESPACE": "InvokeAudit",
    }
    expected_keys = {
        "validator": {"QUEUE_URL", "TOPIC_ARN", "RATE_TABLE"},
        "remediator": {
            "TOPIC_ARN",
            "BACKUP_BUCKET",
            "BACKUP_MAC_KEY_ARN",
            "RATE_TABLE",
            "DEAD_LETTER_QUEUE_URL",
        },
        "ingest": {"QUEUE_URL", "TOPIC_ARN"},
    }
    for variant in ("standalone", "central", "regions"):
        arn = "arn:<Ref:AWS::Partition>:lambda:<Ref:AWS::Region>:<Ref:AWS::AccountId>:function:"
        if variant == "regions":  # the home region is pinned: partition and region are known
            arn = "arn:aws:lambda:us-east-1:<Ref:AWS::AccountId>:function:"
        functions = synth.settings[variant].functions
        own = ",".join(f"{arn}invoke-audit-{variant}-{name}" for name in functions)
        for name in functions:
            _, function = _function(synth, variant, f"invoke-audit-{variant}-{name}")
            env = function["Properties"]["Environment"]["Variables"]
            extra = {"REMEDIATION_ROLE_NAME", "ALLOWED_ACCOUNTS"} if variant == "central" else set()
            if variant == "central" and name != "remediator":
                extra = {"ALLOWED_ACCOUNTS"}
            if variant == "regions" and name in ("validator", "remediator"):
                extra = {"SECURITY_HUB_FINDINGS"}  # invoke-audit:securityhub is on there
            contract = {"OWN_FUNCTION_ARNS", "WATCHED_REGIONS"}
            assert set(env) == set(common) | contract | expected_keys[name] | extra, (variant, name)
            for key, value in common.items():
                assert env[key] == value
            # the pipeline's own functions by exact ARN, every one of them, no prefix
            assert flat(env["OWN_FUNCTION_ARNS"]) == own
            watched = flat(env["WATCHED_REGIONS"])
            assert watched == (
                "us-east-1,eu-west-1" if variant == "regions" else "<Ref:AWS::Region>"
            )
    _, remediator = _function(synth, "central", "invoke-audit-central-remediator")
    central_env = remediator["Properties"]["Environment"]["Variables"]
    assert central_env["REMEDIATION_ROLE_NAME"] == "invoke-audit-central-remediation"
    assert central_env["ALLOWED_ACCOUNTS"] == "222233334444,555566667777"


def test_log_groups_have_retention_and_the_function_names(synth):
    groups = synth.resources("standalone", "AWS::Logs::LogGroup")
    names = {g["Properties"]["LogGroupName"]: g["Properties"] for g in groups.values()}
    assert set(names) == {
        "/aws/lambda/invoke-audit-standalone-validator",
        "/aws/lambda/invoke-audit-standalone-remediator",
        "/aws/lambda/invokeaudit-canary-standalone",
    }
    assert all(props["RetentionInDays"] == 90 for props in names.values())


def test_remediator_has_reserved_concurrency_and_a_timeout_below_the_visibility(synth):
    _, remediator = _function(synth, "standalone", "invoke-audit-standalone-remediator")
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
    assert redrive["maxReceiveCount"] == MAX_RECEIVE_COUNT == 3
    # a poison message holds its function's FIFO group for at most 3 x 2 min (README)
    assert queue["VisibilityTimeout"] * MAX_RECEIVE_COUNT <= 6 * 60
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
            "DeletionProtectionEnabled": True,
        },
    )
    synth.template("standalone").has_resource(
        "AWS::DynamoDB::Table", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_backup_bucket_is_versioned_kms_private_and_ssl_only(synth):
    resources = synth.templates["standalone"]["Resources"]
    _, remediator = _function(synth, "standalone", "invoke-audit-standalone-remediator")
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
        topics = synth.resources(variant, "AWS::SNS::Topic").values()
        assert len(topics) == 2  # alerts, tamper alarms
        assert all(topic["Properties"]["KmsMasterKeyId"] for topic in topics)
    assert synth.resources("standalone", "AWS::SNS::Subscription") == {}
    subscriptions = synth.resources("central", "AWS::SNS::Subscription").values()
    assert [(s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions] == [
        ("email", "security@example.com")
    ] * 2


def test_keys_rotate_and_their_policies_grant_no_wildcard_action(synth):
    for variant in synth.templates:
        for key in synth.resources(variant, "AWS::KMS::Key").values():
            props = key["Properties"]
            # KMS rotates symmetric encryption keys; it rotates no HMAC key automatically.
            if props.get("KeySpec") == "HMAC_256":
                assert "EnableKeyRotation" not in props
            else:
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
        remediator_id, _ = _function(synth, variant, f"invoke-audit-{variant}-remediator")
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
    assert "invoke-audit-standalone-ingest" not in names
    assert synth.resources("standalone", "Custom::S3BucketNotifications") == {}


@pytest.mark.parametrize("variant", ["central", "existing"])
def test_s3_ingest_runs_on_the_trail_buckets_object_created_notification(synth, variant):
    ingest_id, ingest = _function(synth, variant, f"invoke-audit-{variant}-ingest")
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
