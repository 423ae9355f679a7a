"""The Access Analyzer prover against botocore's Stubber: requests and answers are checked
against the service model, so the shapes below are the ones AWS sends and expects."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.core.proof import ProofUnavailableError

pytestmark = pytest.mark.functional

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:blog"
OLD = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "public",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
        }
    ],
}
NEW = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "s3",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION,
            "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"}},
        }
    ],
}
EMPTY = '{"Statement": [], "Version": "2012-10-17"}'


@pytest.fixture
def stubbed():
    client = boto3.client(
        "accessanalyzer",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield AccessAnalyzerProver(client), stubber
        stubber.assert_no_pending_responses()


def expect_no_new(stubber, result, old=OLD, new=NEW, reasons=()):
    stubber.add_response(
        "check_no_new_access",
        {"result": result, "message": f"{result.lower()} message", "reasons": list(reasons)},
        {
            "existingPolicyDocument": json.dumps(old, sort_keys=True) if old else EMPTY,
            "newPolicyDocument": json.dumps(new, sort_keys=True) if new else EMPTY,
            "policyType": "RESOURCE_POLICY",
        },
    )


def expect_no_public(stubber, result, new=NEW, reasons=()):
    stubber.add_response(
        "check_no_public_access",
        {"result": result, "message": f"{result.lower()} message", "reasons": list(reasons)},
        {
            "policyDocument": json.dumps(new, sort_keys=True) if new else EMPTY,
            "resourceType": "AWS::Lambda::Function",
        },
    )


def test_both_checks_pass(stubbed):
    prover, stubber = stubbed
    expect_no_new(stubber, "PASS")
    expect_no_public(stubber, "PASS")
    proof = prover.prove(FUNCTION, OLD, NEW)
    assert proof.passed
    assert [c.name for c in proof.checks] == ["CheckNoNewAccess", "CheckNoPublicAccess"]
    assert proof.describe() == "CheckNoNewAccess: PASS; CheckNoPublicAccess: PASS"


def test_a_failed_check_names_its_reasons(stubbed):
    prover, stubber = stubbed
    expect_no_new(
        stubber,
        "FAIL",
        reasons=[{"description": "grants s3 new access", "statementIndex": 0, "statementId": "s3"}],
    )
    expect_no_public(stubber, "FAIL", reasons=[{"description": "public", "statementIndex": 0}])
    proof = prover.prove(FUNCTION, OLD, NEW)
    assert not proof.passed
    assert [c.describe() for c in proof.failed] == [
        "CheckNoNewAccess: FAIL (s3: grants s3 new access)",
        "CheckNoPublicAccess: FAIL (statement 0: public)",
    ]


def test_no_policy_left_is_proven_as_an_empty_policy(stubbed):
    prover, stubber = stubbed
    expect_no_new(stubber, "PASS", new=None)
    expect_no_public(stubber, "PASS", new=None)
    assert prover.prove(FUNCTION, OLD, None).passed


def test_no_policy_before_is_proven_as_an_empty_policy(stubbed):
    prover, stubber = stubbed
    expect_no_new(stubber, "FAIL", old=None)
    expect_no_public(stubber, "PASS")
    assert not prover.prove(FUNCTION, None, NEW).passed


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 403),
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
        ("ValidationException", 400),
    ],
)
def test_a_check_that_cannot_be_answered_is_unavailable(stubbed, code, status):
    prover, stubber = stubbed
    stubber.add_client_error(
        "check_no_new_access",
        service_error_code=code,
        service_message="no",
        http_status_code=status,
    )
    with pytest.raises(
        ProofUnavailableError, match=rf"CheckNoNewAccess could not be answered: {code}"
    ):
        prover.prove(FUNCTION, OLD, NEW)


def test_the_adapter_declares_exactly_the_two_checks():
    assert AccessAnalyzerProver.IAM_ACTIONS == (
        "access-analyzer:CheckNoNewAccess",
        "access-analyzer:CheckNoPublicAccess",
    )
