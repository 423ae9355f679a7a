"""Security Hub findings (ASFF), mapped by lambdas.core.findings: expected findings written by
hand; the Id checked against an independent digest; the reconcile's verdicts on small
allowlists."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from cli.allowlist_file import parse_allowlist
from lambdas.core.decide import Decision, Verdict, decide
from lambdas.core.findings import (
    REQUIRED_FIELDS,
    HubLocation,
    Sightings,
    archived_finding,
    finding_id,
    no_longer_violating,
    resolved_finding,
    subject_from_decision,
    subject_from_finding,
    violation_finding,
)
from lambdas.core.record import Caller
from models.allowlist import AllowlistConfig
from tests.support.records import ACCOUNT, iam_user, invoke, s3_invoke

pytestmark = pytest.mark.unit

FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders:prod"
MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"
HUB = HubLocation(account=ACCOUNT, region="us-east-1", partition="aws")
NOW = datetime(2026, 12, 3, 13, 0, 0, 123000, tzinfo=UTC)
SEEN = Sightings(
    count=3, first_seen="2026-12-01T08:00:00.000Z", last_seen="2026-12-03T12:59:00.000Z"
)


def config(mode: str, allow: str = "") -> AllowlistConfig:
    return parse_allowlist(
        f"""
version: 1
rules:
  - name: orders
    functions: ["orders"]
    mode: {mode}
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
{allow}""",
        "test.yaml",
    )


def violation(mode: str) -> tuple[Decision, dict[str, Any]]:
    record = invoke("orders", iam_user(), qualifier="prod", event_id="ev-1")
    decision = decide(record, config(mode))
    assert decision.verdict is Verdict.VIOLATION
    return decision, record


def expected_digest(function: str, caller: str) -> str:
    return hashlib.sha256(f"{function}\n{caller}".encode()).hexdigest()


def test_enforce_violation_is_the_hand_written_finding():
    decision, record = violation("enforce")
    subject = subject_from_decision(decision, record, owner="payments-team", ticket="SEC-1")
    got = violation_finding(subject, HUB, SEEN, NOW)
    assert got == {
        "SchemaVersion": "2018-10-08",
        "Id": "invoke-audit/invoke/" + expected_digest(FUNCTION, MALLORY),
        "ProductArn": f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default",
        "ProductName": "invoke-audit",
        "GeneratorId": "invoke-audit/lambda-invoke-allowlist",
        "AwsAccountId": ACCOUNT,
        "Types": [
            "Unusual Behaviors/Application/Lambda Invoke by a caller not on the allowlist",
            "Effects/Data Exposure",
        ],
        "FirstObservedAt": "2026-12-01T08:00:00.000Z",
        "LastObservedAt": "2026-12-03T12:59:00.000Z",
        "CreatedAt": "2026-12-01T08:00:00.000Z",
        "UpdatedAt": "2026-12-03T13:00:00.123Z",
        "Severity": {"Label": "HIGH", "Original": "enforce"},
        "FindingProviderFields": {
            "Severity": {"Label": "HIGH", "Original": "enforce"},
            "Types": [
                "Unusual Behaviors/Application/Lambda Invoke by a caller not on the allowlist",
                "Effects/Data Exposure",
            ],
        },
        "Title": (
            "Lambda orders:prod invoked by a caller not on the allowlist: "
            f"arn:aws:iam::{ACCOUNT}:user/mallory"
        ),
        "Description": (
            f"arn:aws:iam::{ACCOUNT}:user/mallory is not on the allowlist of rule 'orders'. "
            "Seen 3 times, first 2026-12-01T08:00:00.000Z, last 2026-12-03T12:59:00.000Z; "
            "judged by rule 'orders' (enforce mode). The allow entry concerned: owner "
            "payments-team, ticket SEC-1."
        ),
        "Remediation": {
            "Recommendation": {
                "Text": (
                    "invoke-audit rewrites the resource policy of this function so that the "
                    "caller loses the access it grants (backup first). If the caller should "
                    "invoke it, add it to the allow list of rule 'orders' and deploy."
                )
            }
        },
        "ProductFields": {
            "invoke-audit/Function": FUNCTION,
            "invoke-audit/Caller": MALLORY,
            "invoke-audit/CallerPrincipal": MALLORY,
            "invoke-audit/CallerAccount": ACCOUNT,
            "invoke-audit/CallerIdentityType": "IAMUser",
            "invoke-audit/Rule": "orders",
            "invoke-audit/Mode": "enforce",
            "invoke-audit/Count": "3",
            "invoke-audit/LastEventId": "ev-1",
            "invoke-audit/Outcome": "violation",
            "invoke-audit/ExceptionOwner": "payments-team",
            "invoke-audit/ExceptionTicket": "SEC-1",
        },
        "Resources": [
            {
                "Type": "AwsLambdaFunction",
                "Id": FUNCTION,
                "Partition": "aws",
                "Region": "us-east-1",
                "Details": {"AwsLambdaFunction": {"FunctionName": "orders"}},
            }
        ],
        "Compliance": {"Status": "FAILED"},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }
    assert set(REQUIRED_FIELDS) <= set(got)


def test_monitor_violation_is_medium_and_says_nothing_changes():
    decision, record = violation("monitor")
    got = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    assert got["Severity"] == {"Label": "MEDIUM", "Original": "monitor"}
    assert got["FindingProviderFields"]["Severity"]["Label"] == "MEDIUM"
    assert got["Remediation"]["Recommendation"]["Text"].startswith(
        "Rule 'orders' is in monitor mode: nothing is changed."
    )
    assert got["Remediation"]["Recommendation"]["Text"].endswith(
        "otherwise set the rule to enforce. What enforce would write: `aws lambda get-policy "
        f"--function-name {FUNCTION} > policy.json` then `invoke-audit rewrite --function "
        f"{FUNCTION} policy.json`."
    )
    assert (got["Compliance"], got["Workflow"]) == ({"Status": "FAILED"}, {"Status": "NEW"})


def test_repeats_keep_the_id_and_creation_time_and_update_the_rest():
    decision, record = violation("enforce")
    subject = subject_from_decision(decision, record)
    first = violation_finding(
        subject, HUB, Sightings(1, "2026-12-01T08:00:00.000Z", "2026-12-01T08:00:00.000Z"), NOW
    )
    later = datetime(2026, 12, 4, tzinfo=UTC)
    again = violation_finding(subject, HUB, SEEN, later)
    assert first["Id"] == again["Id"]
    assert first["CreatedAt"] == again["CreatedAt"] == "2026-12-01T08:00:00.000Z"
    assert (first["UpdatedAt"], again["UpdatedAt"]) == (
        "2026-12-03T13:00:00.123Z",
        "2026-12-04T00:00:00.000Z",
    )
    assert (
        first["ProductFields"]["invoke-audit/Count"],
        again["ProductFields"]["invoke-audit/Count"],
    ) == ("1", "3")
    assert "Seen once" in first["Description"]


def test_the_id_is_per_resource_and_caller():
    base = finding_id(FUNCTION, MALLORY)
    assert base == "invoke-audit/invoke/" + expected_digest(FUNCTION, MALLORY)
    assert finding_id(FUNCTION.rsplit(":", 1)[0], MALLORY) != base  # the unqualified function
    assert finding_id(FUNCTION, MALLORY.replace("mallory", "eve")) != base


def test_resolved_finding_passes_and_names_the_restore_command():
    decision, record = violation("enforce")
    subject = subject_from_decision(decision, record)
    backup = "s3://bucket/backups/123456789012/us-east-1/orders/prod/2026-12-03T13:00:00.000000Z-ev-1.json"
    got = resolved_finding(subject, HUB, SEEN, NOW, backup=backup, detail="Removed 1 grant")
    assert got["Id"] == violation_finding(subject, HUB, SEEN, NOW)["Id"]
    assert (got["Compliance"], got["Workflow"], got["RecordState"]) == (
        {"Status": "PASSED"},
        {"Status": "RESOLVED"},
        "ACTIVE",
    )
    assert got["Remediation"]["Recommendation"]["Text"] == (
        "Resolved: the caller no longer has the access this function's policy gave it. "
        f"To undo the rewrite: invoke-audit restore {backup}"
    )
    assert got["ProductFields"]["invoke-audit/Backup"] == backup
    assert got["ProductFields"]["invoke-audit/Outcome"] == "remediated"


def test_long_values_are_cut_to_the_asff_limits():
    decision, record = violation("enforce")
    subject = subject_from_decision(decision, record)
    long = type(subject)(
        **{
            **{f: getattr(subject, f) for f in subject.__slots__},
            "reason": "x" * 5000,
            "caller": "c" * 900,
        }
    )
    got = violation_finding(long, HUB, SEEN, NOW)
    assert len(got["Title"]) == 256 and got["Title"].endswith("...")
    assert len(got["Description"]) == 1024
    assert len(got["Remediation"]["Recommendation"]["Text"]) <= 512


def test_archived_keeps_the_providers_fields_only():
    decision, record = violation("enforce")
    stored = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW) | {
        "Workflow": {"Status": "NOTIFIED"},
        "Note": {"Text": "looking", "UpdatedBy": "analyst", "UpdatedAt": "2026-12-03T13:00:00Z"},
        "ProcessedAt": "2026-12-03T13:00:01.000Z",
        "Region": "us-east-1",
    }
    stored["ProductFields"] = stored["ProductFields"] | {"aws/securityhub/FindingId": "arn:..."}
    later = datetime(2026, 12, 5, tzinfo=UTC)
    got = archived_finding(stored, later, "allowed by rule 'orders' now")
    assert got["RecordState"] == "ARCHIVED"
    assert got["UpdatedAt"] == "2026-12-05T00:00:00.000Z"
    assert got["ProductFields"]["invoke-audit/ArchivedBecause"] == "allowed by rule 'orders' now"
    assert "aws/securityhub/FindingId" not in got["ProductFields"]
    for customer in ("Workflow", "Note", "ProcessedAt", "Region"):
        assert customer not in got
    assert got["CreatedAt"] == stored["CreatedAt"] and got["Id"] == stored["Id"]


def test_reconcile_archives_only_callers_allowed_now():
    decision, record = violation("enforce")
    stored = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    assert subject_from_finding(stored) == (
        FUNCTION,
        Caller(principal=MALLORY, account=ACCOUNT, identity_type="IAMUser"),
    )
    assert no_longer_violating(stored, config("enforce")) is None
    allowed = config("enforce", f'      - principal: "{MALLORY}"\n')
    assert no_longer_violating(stored, allowed) == (
        f"allowed by rule 'orders' now: principal {MALLORY}"
    )
    by_account = config("enforce", f'      - account: "{ACCOUNT}"\n')
    assert no_longer_violating(stored, by_account) == (
        f"allowed by rule 'orders' now: account {ACCOUNT}"
    )
    uncovered = parse_allowlist("version: 1\nrules: []\n", "empty.yaml")
    assert no_longer_violating(stored, uncovered) == (
        "no rule of the allowlist covers this function any more"
    )


def test_reconcile_reads_a_service_caller_with_its_source():
    record = s3_invoke()
    decision = decide(
        record,
        parse_allowlist(
            "version: 1\nrules:\n  - name: any\n    functions: ['*']\n    allow:\n"
            "      - service: sns.amazonaws.com\n",
            "t.yaml",
        ),
    )
    assert decision.verdict is Verdict.VIOLATION
    stored = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    read = subject_from_finding(stored)
    assert read is not None
    function, caller = read
    assert function == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:BlogFunction"
    assert caller.service == "s3.amazonaws.com" and caller.source_arn
    other_bucket = parse_allowlist(
        "version: 1\nrules:\n  - name: any\n    functions: ['*']\n    allow:\n"
        "      - service: s3.amazonaws.com\n        source_arn: 'arn:aws:s3:::other'\n",
        "t.yaml",
    )
    assert no_longer_violating(stored, other_bucket) is None


def test_a_finding_without_our_fields_is_left_alone():
    assert no_longer_violating({"Id": "x", "ProductFields": {}}, config("enforce")) is None
    assert subject_from_finding({"ProductFields": {"invoke-audit/Function": FUNCTION}}) is None


def test_an_expired_exception_for_the_caller_names_its_owner_and_ticket():
    expired = config(
        "enforce",
        f'      - principal: "{MALLORY}"\n'
        '        expires: "2026-01-31"\n'
        "        owner: payments-team\n"
        "        ticket: SEC-1234\n",
    )
    # Invoked on 2026-02-01, after the exception's last day.
    record = invoke(
        "orders", iam_user(), qualifier="prod", event_id="ev-x", event_time="2026-02-01T10:00:00Z"
    )
    decision = decide(record, expired)
    assert decision.verdict is Verdict.VIOLATION
    got = violation_finding(subject_from_decision(decision, record), HUB, SEEN, NOW)
    assert got["ProductFields"]["invoke-audit/ExceptionOwner"] == "payments-team"
    assert got["ProductFields"]["invoke-audit/ExceptionTicket"] == "SEC-1234"
    assert got["Description"].endswith(
        "The allow entry concerned: owner payments-team, ticket SEC-1234."
    )
    # While the exception holds, the caller is allowed: no finding is made for it.
    before = invoke("orders", iam_user(), qualifier="prod", event_time="2026-01-31T10:00:00Z")
    assert decide(before, expired).verdict is Verdict.ALLOWED


def test_a_central_account_reports_a_members_function_as_its_own_finding():
    member = "222233334444"
    record = invoke("orders", iam_user(account=member), account=member, event_id="ev-c")
    decision = decide(record, config("enforce"))
    assert decision.verdict is Verdict.VIOLATION
    central = HubLocation(account="999999999999", region="eu-west-1", partition="aws")
    got = violation_finding(subject_from_decision(decision, record), central, SEEN, NOW)
    assert got["AwsAccountId"] == "999999999999"
    assert got["ProductArn"] == (
        "arn:aws:securityhub:eu-west-1:999999999999:product/999999999999/default"
    )
    assert got["Resources"][0]["Id"] == f"arn:aws:lambda:us-east-1:{member}:function:orders"
    assert got["Resources"][0]["Region"] == "us-east-1"
