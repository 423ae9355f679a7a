"""The broken-caller verdict: decide marks an allowed caller's denied call; within a watch of
the same resource it is `broken`. Times and expected values written by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cli.allowlist_file import parse_allowlist
from lambdas.core.decide import Verdict, decide
from lambdas.core.watch import Watch, judge_denied, parse_time, watches_from_backups

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
CONFIG = parse_allowlist(
    f"""
version: 1
rules:
  - name: orders
    functions: ["orders"]
    allow:
      - principal: "{DEPLOYER}"
""",
    "test.yaml",
)
AT = datetime(2025, 1, 2, 3, 0, tzinfo=UTC)
WATCH = Watch(FUNCTION, AT, AT + timedelta(hours=24), "s3://b/backups/x.json", "orders")


def record(principal, error="AccessDeniedException", when="2025-01-02T04:00:00Z"):
    account = principal.split(":")[4]
    identity = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{principal.rsplit('/', 1)[-1]}/s",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": principal}},
    }
    raw = {
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "eventID": "e1",
        "eventTime": when,
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": identity,
        "requestParameters": {"functionName": FUNCTION},
    }
    if error:
        raw["errorCode"] = error
    return raw


def test_an_allowed_callers_denied_call_is_marked():
    decision = decide(record(DEPLOYER), CONFIG)
    assert decision.verdict is Verdict.FAILED_CALL
    assert decision.denied_allowed


@pytest.mark.parametrize(
    ("principal", "error"),
    [
        (f"arn:aws:iam::{ACCOUNT}:role/other", "AccessDeniedException"),
        (DEPLOYER, "ResourceNotFoundException"),
        (DEPLOYER, "TooManyRequestsException"),
    ],
)
def test_other_failed_calls_are_not_marked(principal, error):
    decision = decide(record(principal, error), CONFIG)
    assert decision.verdict is Verdict.FAILED_CALL
    assert not decision.denied_allowed


@pytest.mark.parametrize(
    ("when", "verdict"),
    [
        ("2025-01-02T02:59:59Z", Verdict.FAILED_CALL),
        ("2025-01-02T03:00:00Z", Verdict.BROKEN),
        ("2025-01-03T03:00:00Z", Verdict.BROKEN),
        ("2025-01-03T03:00:01Z", Verdict.FAILED_CALL),
        ("2025-01-02T05:00:00+02:00", Verdict.BROKEN),  # 03:00 UTC
    ],
)
def test_broken_only_within_the_watch(when, verdict):
    judged = judge_denied(decide(record(DEPLOYER, when=when), CONFIG), [WATCH])
    assert judged.verdict is verdict


def test_broken_names_the_rewrite_and_a_pasteable_undo():
    judged = judge_denied(decide(record(DEPLOYER), CONFIG), [WATCH])
    assert judged.reason == (
        f"{DEPLOYER} is allowed by rule 'orders' but was denied after the rewrite of "
        f"{FUNCTION} at 2025-01-02T03:00:00+00:00; undo it with: "
        "invoke-audit restore s3://b/backups/x.json"
    )


def test_a_watch_of_another_resource_does_not_count():
    other = Watch(FUNCTION + ":prod", AT, AT + timedelta(hours=24), "s3://b/y.json")
    assert judge_denied(decide(record(DEPLOYER), CONFIG), [other]).verdict is Verdict.FAILED_CALL


def test_a_stranger_is_never_broken():
    stranger = f"arn:aws:iam::{ACCOUNT}:role/other"
    assert judge_denied(decide(record(stranger), CONFIG), [WATCH]).verdict is Verdict.FAILED_CALL


def test_watches_from_backups_skip_restore_copies_and_timeless_ones():
    backups: list[tuple[str, dict[str, Any]]] = [
        (
            "s3://b/1.json",
            {"function": FUNCTION, "time": "2025-01-02T03:00:00+00:00", "rule": "orders"},
        ),
        (
            "s3://b/2.json",
            {
                "function": FUNCTION,
                "time": "2025-01-02T04:00:00Z",
                "event": {"restore_of": "s3://b/1.json"},
            },
        ),
        ("s3://b/3.json", {"function": FUNCTION}),
    ]
    assert watches_from_backups(backups, hours=2) == [
        Watch(FUNCTION, AT, AT + timedelta(hours=2), "s3://b/1.json", "orders")
    ]


@pytest.mark.parametrize("text", ["", "yesterday", None, 5])
def test_times_that_are_not_times(text):
    assert parse_time(text) is None
