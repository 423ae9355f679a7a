"""Least privilege: each function's role holds exactly what its adapters declare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.adapters import (
    INGEST_ADAPTERS,
    REMEDIATOR_ADAPTERS,
    REMEDIATOR_CROSS_ACCOUNT_ADAPTERS,
    VALIDATOR_ADAPTERS,
)
from tests.support.synth import MEMBER_ACCOUNT, ORG_ID, Synth, flat

pytestmark = pytest.mark.infra

DECLARED = {
    "validator": VALIDATOR_ADAPTERS,
    "remediator": REMEDIATOR_ADAPTERS,
    "ingest": INGEST_ADAPTERS,
}
# What the platform needs besides the declared calls: the function's own log group, the KMS
# key of the encrypted queues/topic/buckets, and the remediator's SQS event source mapping.
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
KMS = {"kms:Decrypt", "kms:GenerateDataKey"}
EVENT_SOURCE = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
PLATFORM = {
    "validator": LOGS | KMS,
    "remediator": LOGS | KMS | EVENT_SOURCE,
    "ingest": LOGS | KMS,
}
CASES = [
    ("standalone", "validator"),
    ("standalone", "remediator"),
    ("central", "validator"),
    ("central", "remediator"),
    ("central", "ingest"),
    ("existing", "ingest"),
]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


def _role_statements(synth: Synth, variant: str, function: str) -> list[dict[str, Any]]:
    resources = synth.templates[variant]["Resources"]
    (role_id,) = [
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("FunctionName") == f"invoke-audit-{variant}-{function}"
    ]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    statements = []
    for policy in synth.resources(variant, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, f"{variant}/{function}: no policy on its role"
    return statements


def _declared(variant: str, function: str) -> set[str]:
    adapters = DECLARED[function]
    if variant == "central" and function == "remediator":
        adapters = adapters + REMEDIATOR_CROSS_ACCOUNT_ADAPTERS
    return {action for cls in adapters for action in cls.IAM_ACTIONS}


@pytest.mark.parametrize(("variant", "function"), CASES)
def test_role_grants_exactly_the_declared_actions(synth, variant, function):
    statements = _role_statements(synth, variant, function)
    allowed = {a for s in statements if s["Effect"] == "Allow" for a in _actions(s)}
    declared = _declared(variant, function)
    assert declared, "the adapters declare nothing: lambdas.adapters is not what we expect"
    assert declared <= allowed
    extra = allowed - declared
    assert extra <= PLATFORM[function], f"not declared by any adapter: {sorted(extra)}"


# IAM Access Analyzer's policy checks act on documents: no resource type exists for them.
PROOF_ACTIONS = ["access-analyzer:CheckNoNewAccess", "access-analyzer:CheckNoPublicAccess"]


@pytest.mark.parametrize(("variant", "function"), CASES)
def test_no_grant_is_on_every_resource_but_the_policy_checks(synth, variant, function):
    for statement in _role_statements(synth, variant, function):
        if statement["Effect"] == "Deny":
            continue
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if "*" in resources:
            assert sorted(_actions(statement)) == PROOF_ACTIONS, statement
            assert resources == ["*"] and statement["Effect"] == "Allow"


@pytest.mark.parametrize("variant", ["standalone", "central"])
def test_the_remediator_may_run_exactly_the_two_policy_checks(synth, variant):
    granted = {
        a
        for s in _role_statements(synth, variant, "remediator")
        if s["Effect"] == "Allow"
        for a in _actions(s)
        if a.startswith("access-analyzer:")
    }
    assert sorted(granted) == PROOF_ACTIONS
    for other in ("validator",):
        assert not any(
            a.startswith("access-analyzer:")
            for s in _role_statements(synth, variant, other)
            for a in _actions(s)
        )


GUARDRAILS = [
    {
        "Sid": "NeverGrantEveryone",
        "Effect": "Deny",
        "Action": "lambda:AddPermission",
        "Resource": "*",
        "Condition": {"StringEquals": {"lambda:Principal": "*"}},
    },
    {
        "Sid": "NeverOpenAFunctionUrl",
        "Effect": "Deny",
        "Action": ["lambda:CreateFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig"],
        "Resource": "*",
    },
]


def test_the_remediator_may_not_touch_the_pipelines_own_functions(synth):
    arn = "arn:<Ref:AWS::Partition>:lambda:<Ref:AWS::Region>:<Ref:AWS::AccountId>:function:"
    for variant in ("standalone", "central"):
        statements = _role_statements(synth, variant, "remediator")
        lambda_allowed = {
            a
            for s in statements
            if s["Effect"] == "Allow"
            for a in _actions(s)
            if a.startswith("lambda:")
        }
        own = [s for s in statements if s.get("Sid") == "RemediatorLambdaDenyOwn"]
        assert len(own) == 1
        assert set(_actions(own[0])) == lambda_allowed
        # exactly the pipeline's functions (and their versions and aliases), never a prefix
        expected = []
        for name in synth.settings[variant].functions:
            expected += [
                f"{arn}invoke-audit-{variant}-{name}",
                f"{arn}invoke-audit-{variant}-{name}:*",
            ]
        assert sorted(flat(r) for r in own[0]["Resource"]) == sorted(expected)
        # and it never grants everyone or opens a function URL
        assert [s for s in statements if s.get("Sid", "").startswith("Never")] == GUARDRAILS
        (allow,) = [s for s in statements if s["Effect"] == "Allow" and "lambda:" in str(s)]
        assert allow["Resource"]["Fn::Join"][1][-2:] == [
            {"Ref": "AWS::AccountId"},
            ":function:*",
        ]
        assert ":lambda:*:" in str(allow["Resource"])  # every region: the trail is multi-region


def test_the_validator_can_only_send_to_the_queue_publish_and_mark_notices(synth):
    statements = _role_statements(synth, "standalone", "validator")
    resources = synth.templates["standalone"]["Resources"]
    targets: dict[str, list[Any]] = {}
    for statement in statements:
        for action in _actions(statement):
            targets.setdefault(action, []).append(statement["Resource"])
    sqs_targets = {r["Fn::GetAtt"][0] for r in targets["sqs:SendMessage"]}
    assert all(resources[t]["Type"] == "AWS::SQS::Queue" for t in sqs_targets)
    assert [resources[r["Ref"]]["Type"] for r in targets["sns:Publish"]] == ["AWS::SNS::Topic"]
    # The scheduled run's notice marks: put and delete items of the rate-limit table, nothing else.
    dynamodb = sorted(a for a in targets if a.startswith("dynamodb:"))
    assert dynamodb == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    for action in dynamodb:
        (table,) = {r["Fn::GetAtt"][0] for r in targets[action]}
        assert resources[table]["Type"] == "AWS::DynamoDB::Table"
        assert resources[table]["Properties"]["TimeToLiveSpecification"] == {
            "AttributeName": "expires_at",
            "Enabled": True,
        }
    assert not [a for a in targets if a.startswith(("lambda:", "s3:", "sts:"))]


def test_cross_account_assume_role_is_limited_to_the_member_roles_of_the_organization(synth):
    assert "sts:AssumeRole" not in {
        a for s in _role_statements(synth, "standalone", "remediator") for a in _actions(s)
    }
    (statement,) = [
        s
        for s in _role_statements(synth, "central", "remediator")
        if "sts:AssumeRole" in _actions(s)
    ]
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG_ID}}
    text = str(statement["Resource"])
    assert f":iam::{MEMBER_ACCOUNT}:role/invoke-audit-central-remediation" in text
    assert ":iam::*:" not in text


def _policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument", "Statement"):
            if key in props:
                yield logical_id, props[key]
        for inline in props.get("Policies", []):
            yield logical_id, inline["PolicyDocument"]


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict) and "Statement" in document:
        statements = document["Statement"]
        yield from statements if isinstance(statements, list) else [statements]
    elif isinstance(document, dict) and "Effect" in document:
        yield document


def test_no_allow_statement_anywhere_grants_a_wildcard_action(synth):
    checked = 0
    for variant, template in synth.templates.items():
        for logical_id, document in _policy_documents(template):
            for statement in _statements(document):
                checked += 1
                if statement["Effect"] == "Allow":
                    wildcard = [a for a in _actions(statement) if "*" in a]
                    assert not wildcard, (variant, logical_id, wildcard)
    assert checked > 50


def test_only_cdks_notification_handler_uses_a_managed_policy(synth):
    for variant in synth.templates:
        for logical_id, role in synth.resources(variant, "AWS::IAM::Role").items():
            if role["Properties"].get("ManagedPolicyArns"):
                assert logical_id.startswith("BucketNotificationsHandler"), (variant, logical_id)


def test_bucket_level_s3_actions_are_granted_on_the_bucket_not_its_objects(synth):
    statements = _role_statements(synth, "standalone", "remediator")
    listing = [s for s in statements if "s3:ListBucket" in _actions(s)]
    assert len(listing) == 1
    (grant,) = listing
    assert _actions(grant) == ["s3:ListBucket"]
    assert grant["Resource"] == {"Fn::GetAtt": [grant["Resource"]["Fn::GetAtt"][0], "Arn"]}
    assert grant["Condition"] == {"StringLike": {"s3:prefix": ["backups/*"]}}
    objects = [s for s in statements if "s3:PutObject" in _actions(s)]
    assert objects and all("/backups/*" in str(s["Resource"]) for s in objects)
    assert all("s3:ListBucket" not in _actions(s) for s in objects)
