"""The demo's world: an allowlist, sample functions with realistic policies, and real-shaped
CloudTrail Invoke records in EventBridge envelopes (shaped like the records in DESIGN.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["ACCOUNT", "ALLOWLIST_YAML", "FUNCTIONS", "REGION", "envelope", "events"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTNER = "111122223333"
STRANGER = "444455556666"

ALLOWLIST_YAML = f"""\
version: 1
defaults:
  mode: enforce
  unmatched: report
protect:
  - "invoke-audit-*"
limits:
  max_remediations_per_hour: 20
rules:
  - name: blog-s3-trigger
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
        source_account: "{ACCOUNT}"
  - name: partner-api
    functions: ["PartnerFunction"]
    allow:
      - account: "{PARTNER}"
      - principal: "arn:aws:iam::{ACCOUNT}:role/partner-gateway"
"""


def _arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _statement(
    sid: str, principal: Any, name: str, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": _arn(name),
    }
    if condition:
        statement["Condition"] = condition
    return statement


# Policies as they are found in real accounts: a leftover public grant and an S3 grant made
# without SourceAccount (the blog function), a grant shared with two accounts (the partner).
FUNCTIONS: dict[str, dict[str, Any]] = {
    "BlogFunction": {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            _statement("public-test-access", "*", "BlogFunction"),
            _statement(
                "s3-invoke",
                {"Service": "s3.amazonaws.com"},
                "BlogFunction",
                {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"}},
            ),
        ],
    },
    "PartnerFunction": {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            _statement(
                "partners",
                {"AWS": [f"arn:aws:iam::{PARTNER}:root", f"arn:aws:iam::{STRANGER}:root"]},
                "PartnerFunction",
            ),
        ],
    },
    "ReportsFunction": {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            _statement("scheduler", {"Service": "events.amazonaws.com"}, "ReportsFunction")
        ],
    },
}


def _record(
    event_id: str, identity: dict[str, Any], params: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": "2026-11-22T10:00:00Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": REGION,
        "sourceIPAddress": identity.get("invokedBy", "203.0.113.7"),
        "userAgent": "aws-sdk-go-v2/1.30.0",
        "requestParameters": params,
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": False,
        "resources": [
            {
                "accountId": ACCOUNT,
                "type": "AWS::Lambda::Function",
                "ARN": _arn((params or {}).get("functionName", "BlogFunction").split(":")[-1]),
            }
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
    }
    record.update(extra)
    return record


def envelope(record: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "AWS API Call via CloudTrail" envelope the rule delivers."""
    return {
        "version": "0",
        "id": f"eb-{record['eventID']}",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": REGION,
        "resources": [],
        "detail": record,
    }


def events() -> list[tuple[str, dict[str, Any]]]:
    """(what happened, CloudTrail record), in the order the demo plays them."""
    s3 = {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}
    alice = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEALICE",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLEALICE",
        "userName": "alice",
    }
    return [
        (
            "S3 delivers an object-created event from examplebucket to BlogFunction",
            _record(
                "0001-s3",
                s3,
                {
                    "functionName": _arn("BlogFunction"),
                    "invocationType": "Event",
                    "sourceArn": "arn:aws:s3:::examplebucket",
                    "sourceAccount": ACCOUNT,
                },
            ),
        ),
        (
            "IAM user alice invokes BlogFunction directly",
            _record("0002-alice", alice, {"functionName": "BlogFunction"}),
        ),
        (
            "Partner account 111122223333 invokes PartnerFunction",
            _record(
                "0003-partner",
                {
                    "type": "AWSAccount",
                    "principalId": "AROAEXAMPLEPARTNER:svc",
                    "accountId": PARTNER,
                },
                {"functionName": _arn("PartnerFunction")},
            ),
        ),
        (
            "Unknown account 444455556666 invokes PartnerFunction",
            _record(
                "0004-stranger",
                {
                    "type": "AWSAccount",
                    "principalId": "AROAEXAMPLESTRANGER:x",
                    "accountId": STRANGER,
                },
                {"functionName": _arn("PartnerFunction")},
            ),
        ),
        (
            "Lambda runs BlogFunction's queued event (InvokeExecution)",
            _record(
                "0005-execution",
                {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
                None,
                eventName="InvokeExecution",
                additionalEventData={"functionVersion": _arn("BlogFunction") + ":$LATEST"},
            ),
        ),
        (
            "EventBridge invokes ReportsFunction, which no rule covers",
            _record(
                "0006-reports",
                {"type": "AWSService", "invokedBy": "events.amazonaws.com"},
                {
                    "functionName": _arn("ReportsFunction"),
                    "sourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly",
                    "sourceAccount": ACCOUNT,
                },
            ),
        ),
    ]
