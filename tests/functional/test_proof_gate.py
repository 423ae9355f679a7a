"""The proof before every write: Access Analyzer's answers from botocore's Stubber (checked
against the service model), everything else in moto. Expected policies are written here."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.remediation.remediate import Outcome, Violation
from tests.support.allowlists import load_config
from tests.support.aws import (
    World,
    aws,
    create_function,
    get_policy,
    notifications,
    put_policy,
    remediator,
)
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION, USER_ARN, invoke_record

pytestmark = pytest.mark.functional

EMPTY = '{"Statement": [], "Version": "2012-10-17"}'


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with aws():
        yield World()


@pytest.fixture
def analyzer():
    client = boto3.client("accessanalyzer", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber


def answer(stubber, operation, result, reasons=(), new=ANY):
    params = (
        {"existingPolicyDocument": ANY, "newPolicyDocument": new, "policyType": "RESOURCE_POLICY"}
        if operation == "check_no_new_access"
        else {"policyDocument": new, "resourceType": "AWS::Lambda::Function"}
    )
    stubber.add_response(
        operation, {"result": result, "message": result, "reasons": list(reasons)}, params
    )


def refuse(stubber, operation, code, status):
    stubber.add_client_error(
        operation, service_error_code=code, service_message="no", http_status_code=status
    )


def violation(arn):
    return Violation(
        function=arn,
        event_id="ev-1",
        caller=USER_ARN,
        reason="not on the allowlist",
        event_time="2025-01-02T03:04:05Z",
        record=invoke_record(arn, event_id="ev-1"),
    )


def blog(name="BlogFunction"):
    arn = create_function(name)
    put_policy(arn, blog_policy(arn))
    return arn


# What the blog rule makes of blog_policy: the public grant goes, the S3 grant gets the
# account the allow entry names. Written by hand, not computed.
def remediated_blog(arn):
    return [
        {
            "Sid": "s3-trigger",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": arn,
            "Condition": {
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"},
                "StringEquals": {"AWS:SourceAccount": ACCOUNT},
            },
        }
    ]


def with_proof(mode):
    config = load_config()
    return config.model_copy(update={"limits": config.limits.model_copy(update={"proof": mode})})


def test_both_checks_pass_then_the_policy_is_written(world, analyzer):
    client, stubber = analyzer
    arn = blog()
    answer(stubber, "check_no_new_access", "PASS")
    answer(stubber, "check_no_public_access", "PASS")
    result = remediator(world, prover=AccessAnalyzerProver(client)).remediate(violation(arn))
    stubber.assert_no_pending_responses()
    assert result.outcome is Outcome.REMEDIATED
    assert result.proof == (
        "proven by IAM Access Analyzer: CheckNoNewAccess: PASS; CheckNoPublicAccess: PASS"
    )
    stored, _ = get_policy(arn)
    assert stored["Statement"] == remediated_blog(arn)
    assert len(world.backups()) == 1


@pytest.mark.parametrize(
    ("new_access", "public", "named"),
    [("FAIL", "PASS", "CheckNoNewAccess"), ("PASS", "FAIL", "CheckNoPublicAccess")],
)
def test_a_failed_check_writes_nothing_and_says_why(world, analyzer, new_access, public, named):
    client, stubber = analyzer
    arn = blog()
    reason = [
        {"description": "grants new access", "statementIndex": 0, "statementId": "s3-trigger"}
    ]
    answer(stubber, "check_no_new_access", new_access, reason if new_access == "FAIL" else ())
    answer(stubber, "check_no_public_access", public, reason if public == "FAIL" else ())
    result = remediator(world, prover=AccessAnalyzerProver(client)).remediate(violation(arn))
    assert result.outcome is Outcome.PROOF_FAILED
    assert result.detail == f"nothing was written: {named}: FAIL (s3-trigger: grants new access)"
    stored, _ = get_policy(arn)
    assert stored == blog_policy(arn)
    assert world.backups() == []
    assert world.remediations_counted() == 0
    (message,) = notifications(world.inbox)
    assert "NOT written" in message["Subject"]
    assert f"{named}: FAIL (s3-trigger: grants new access)" in message["Message"]
    assert "no backup was made" in message["Message"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 403),
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
    ],
)
def test_unanswered_under_required_writes_nothing(world, analyzer, code, status):
    client, stubber = analyzer
    arn = blog()
    refuse(stubber, "check_no_new_access", code, status)
    result = remediator(world, prover=AccessAnalyzerProver(client)).remediate(violation(arn))
    assert result.outcome is Outcome.PROOF_FAILED
    assert f"CheckNoNewAccess could not be answered: {code}: no" in result.detail
    assert get_policy(arn)[0] == blog_policy(arn)
    assert world.backups() == []
    (message,) = notifications(world.inbox)
    assert code in message["Message"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 403),
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
    ],
)
def test_unanswered_under_best_effort_writes_and_says_so(world, analyzer, code, status):
    client, stubber = analyzer
    arn = blog()
    refuse(stubber, "check_no_new_access", code, status)
    result = remediator(
        world, config=with_proof("best-effort"), prover=AccessAnalyzerProver(client)
    ).remediate(violation(arn))
    assert result.outcome is Outcome.REMEDIATED
    assert result.proof is not None and result.proof.startswith("not proven: CheckNoNewAccess")
    assert get_policy(arn)[0]["Statement"] == remediated_blog(arn)
    (message,) = notifications(world.inbox)
    assert "Proof: not proven: CheckNoNewAccess could not be answered" in message["Message"]
    assert "semantic post-condition alone" in message["Message"]


def test_off_asks_nothing(world, analyzer):
    client, stubber = analyzer
    arn = blog()
    result = remediator(
        world, config=with_proof("off"), prover=AccessAnalyzerProver(client)
    ).remediate(violation(arn))
    stubber.assert_no_pending_responses()
    assert result.outcome is Outcome.REMEDIATED
    assert result.proof == "not proven: limits.proof is off"


def test_no_statement_left_is_proven_as_an_empty_policy(world, analyzer):
    client, stubber = analyzer
    arn = create_function("StrictOnly")
    public = {
        "Sid": "mallory",
        "Effect": "Allow",
        "Principal": {"AWS": USER_ARN},
        "Action": "lambda:InvokeFunction",
        "Resource": arn,
    }
    put_policy(arn, {"Version": "2012-10-17", "Statement": [public]})
    config = load_config(
        f"""
version: 1
rules:
  - name: nobody
    functions: ["StrictOnly"]
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
"""
    )
    answer(stubber, "check_no_new_access", "PASS", new=EMPTY)
    answer(stubber, "check_no_public_access", "PASS", new=EMPTY)
    result = remediator(world, config=config, prover=AccessAnalyzerProver(client)).remediate(
        violation(arn)
    )
    stubber.assert_no_pending_responses()
    assert result.outcome is Outcome.REMEDIATED
    assert get_policy(arn) == (None, None)
    backup = world.backup(world.backups()[0])
    assert backup["policy"]["Statement"] == [public]
    assert json.dumps(backup["new_policy"]) in ("null",)
