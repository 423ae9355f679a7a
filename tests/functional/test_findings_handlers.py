"""Security Hub findings from the handlers, on moto: the validator's violation findings
(repeats update one finding), the remediator's resolution, the reconcile's archiving, the
refusals Security Hub answers with HTTP 200, and nothing at all when the setting is off."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cli.allowlist_file import parse_allowlist
from lambdas.adapters.clients import ClientFactory
from lambdas.core.findings import GENERATOR_ID, finding_id
from lambdas.remediator import handler as remediator_handler
from lambdas.runtime import findings as runtime_findings
from lambdas.runtime.settings import runtime
from lambdas.validator import handler as validator_handler
from tests.support.allowlists import ALLOWLIST_YAML, write_config
from tests.support.aws import (
    aws,
    bucket,
    client,
    create_function,
    fifo_queue,
    put_policy,
    rate_table,
    topic_with_inbox,
)
from tests.support.lambda_runtime import (
    LambdaContext,
    emf_metrics,
    log_to_current_stdout,
    printed_json,
    sqs_event,
)
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION, envelope, iam_user, invoke_record

pytestmark = pytest.mark.functional

BLOG = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:BlogFunction"
WATCHED = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:WatchedFunction:prod"
PRODUCT = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
MALLORY = iam_user()["arn"]


def clear_caches() -> None:
    runtime.cache_clear()
    validator_handler._reporter.cache_clear()
    validator_handler._publisher.cache_clear()
    remediator_handler._remediator.cache_clear()
    remediator_handler._publisher.cache_clear()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOWLIST_PATH", str(write_config(tmp_path)))
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("SECURITY_HUB_FINDINGS", "on")
    clear_caches()
    with aws():
        monkeypatch.setenv("QUEUE_URL", fifo_queue())
        monkeypatch.setenv("TOPIC_ARN", topic_with_inbox()[0])
        monkeypatch.setenv("RATE_TABLE", rate_table())
        monkeypatch.setenv("BACKUP_BUCKET", bucket())
        yield monkeypatch
    clear_caches()


def findings() -> dict[str, dict[str, Any]]:
    return {f["Id"]: f for f in client("securityhub").get_findings()["Findings"]}


def validate(event, capsys):
    log_to_current_stdout(validator_handler.logger)
    validator_handler.metrics.clear_metrics()
    result = validator_handler.lambda_handler(event, LambdaContext())
    return result, printed_json(capsys.readouterr().out)


def remediate(event, capsys):
    log_to_current_stdout(remediator_handler.logger)
    remediator_handler.metrics.clear_metrics()
    result = remediator_handler.lambda_handler(event, LambdaContext("invoke-audit-remediator"))
    return result, printed_json(capsys.readouterr().out)


def test_repeated_violations_update_one_finding(env, capsys):
    first, lines = validate(envelope(invoke_record(BLOG, event_id="ev-1")), capsys)
    assert first["action"] == "queued"
    assert emf_metrics(lines) == {"Violation": 1, "ViolationQueued": 1, "FindingsImported": 1}
    validate(envelope(invoke_record(BLOG, event_id="ev-2")), capsys)
    stored = findings()
    assert list(stored) == [finding_id(BLOG, MALLORY)]
    (finding,) = stored.values()
    assert finding["ProductFields"]["invoke-audit/Count"] == "2"
    assert finding["ProductFields"]["invoke-audit/LastEventId"] == "ev-2"
    assert finding["Severity"]["Label"] == "HIGH"
    assert finding["Compliance"] == {"Status": "FAILED"}
    assert finding["Resources"][0] == {
        "Type": "AwsLambdaFunction",
        "Id": BLOG,
        "Partition": "aws",
        "Region": REGION,
        "Details": {"AwsLambdaFunction": {"FunctionName": "BlogFunction"}},
    }
    # Both Invokes happened at the record's time: first and last seen are that time.
    assert finding["FirstObservedAt"] == finding["CreatedAt"] == "2025-01-02T03:04:05.000Z"


def test_a_monitor_violation_is_a_medium_finding_of_the_qualified_resource(env, capsys):
    validate(envelope(invoke_record(WATCHED, event_id="ev-m")), capsys)
    (finding,) = findings().values()
    assert finding["Id"] == finding_id(WATCHED, MALLORY)
    assert finding["Severity"] == {"Label": "MEDIUM", "Original": "monitor"}
    assert finding["Resources"][0]["Id"] == WATCHED


def test_off_by_default_sends_nothing(env, capsys):
    env.delenv("SECURITY_HUB_FINDINGS")
    _, lines = validate(envelope(invoke_record(BLOG, event_id="ev-off")), capsys)
    assert findings() == {}
    assert "FindingsImported" not in emf_metrics(lines)


def test_refused_findings_are_logged_and_counted_and_the_violation_still_queued(
    env, capsys, monkeypatch
):
    securityhub = boto3.client("securityhub", region_name=REGION)
    stub = Stubber(securityhub)
    stub.add_response(
        "batch_import_findings",
        {
            "FailedCount": 1,
            "SuccessCount": 0,
            "FailedFindings": [
                {
                    "Id": finding_id(BLOG, MALLORY),
                    "ErrorCode": "InvalidAccessException",
                    "ErrorMessage": "Security Hub is not enabled",
                }
            ],
        },
    )
    stub.activate()

    class Factory(ClientFactory):
        def client(self, service, **kwargs):
            return securityhub if service == "securityhub" else super().client(service, **kwargs)

    monkeypatch.setattr(runtime_findings, "ClientFactory", Factory)
    result, lines = validate(envelope(invoke_record(BLOG, event_id="ev-r")), capsys)
    assert result["action"] == "queued"
    assert emf_metrics(lines) == {"Violation": 1, "ViolationQueued": 1, "FindingsFailed": 1}
    errors = [line for line in lines if line.get("error_code") == "InvalidAccessException"]
    assert errors[0]["finding_id"] == finding_id(BLOG, MALLORY)
    assert "Security Hub is not enabled" in errors[0]["message"]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("expired", [False, True])
def test_the_remediation_resolves_the_finding(env, capsys, tmp_path, expired):
    if expired:
        # mallory's exception ended the day before the Invoke (2025-01-02): a violation that
        # names the exception's owner and ticket, before and after the remediation.
        text = ALLOWLIST_YAML.replace(
            f'        source_account: "{ACCOUNT}"\n',
            f'        source_account: "{ACCOUNT}"\n'
            f'      - principal: "{MALLORY}"\n'
            '        expires: "2025-01-01"\n'
            "        owner: payments-team\n"
            "        ticket: SEC-1234\n",
            1,
        )
        assert "SEC-1234" in text
        env.setenv("ALLOWLIST_PATH", str(write_config(tmp_path, text)))
        clear_caches()
    env.setenv(
        "OWN_FUNCTION_ARNS", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-validator"
    )
    blog = create_function("BlogFunction")
    put_policy(blog, blog_policy(blog))
    record = invoke_record(BLOG, event_id="ev-fix")
    validate(envelope(record), capsys)
    body = json.dumps(
        {
            "kind": "violation",
            "event_id": "ev-fix",
            "function": BLOG,
            "rule": "blog",
            "mode": "enforce",
            "caller": MALLORY,
            "reason": "not on the allowlist",
            "account": ACCOUNT,
            "region": REGION,
            "event_time": "2025-01-02T03:04:05Z",
            "record": record,
        }
    )
    result, lines = remediate(sqs_event(("m1", BLOG, body)), capsys)
    assert result == {"batchItemFailures": []}
    metrics = emf_metrics(lines)
    assert metrics["Remediated"] == 1 and metrics["FindingsImported"] == 1
    (finding,) = findings().values()
    assert finding["Id"] == finding_id(BLOG, MALLORY)
    assert finding["Compliance"] == {"Status": "PASSED"}
    assert finding["ProductFields"]["invoke-audit/Count"] == "1"
    backup = finding["ProductFields"]["invoke-audit/Backup"]
    assert (
        backup.startswith("s3://")
        and f"invoke-audit restore {backup}" in (finding["Remediation"]["Recommendation"]["Text"])
    )
    # Set by BatchUpdateFindings: the import alone cannot change an existing workflow.
    assert finding["Workflow"] == {"Status": "RESOLVED"}
    assert finding["ProductArn"] == PRODUCT
    named = {
        k: v for k, v in finding["ProductFields"].items() if k.startswith("invoke-audit/Exception")
    }
    assert named == (
        {"invoke-audit/ExceptionOwner": "payments-team", "invoke-audit/ExceptionTicket": "SEC-1234"}
        if expired
        else {}
    )


def test_reconcile_archives_the_callers_allowed_now_and_nothing_else(env, capsys):
    eve = iam_user("eve")
    validate(envelope(invoke_record(BLOG, event_id="ev-a")), capsys)
    validate(envelope(invoke_record(BLOG, identity=eve, event_id="ev-b")), capsys)
    foreign = dict(next(iter(findings().values())))
    foreign |= {"Id": "another-product/1", "GeneratorId": "another/generator"}
    client("securityhub").batch_import_findings(Findings=[foreign])
    assert len(findings()) == 3
    config = parse_allowlist(
        f"""
version: 1
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - principal: "{eve["arn"]}"
""",
        "now.yaml",
    )
    publisher = runtime_findings.publisher_from_env(LambdaContext().invoked_function_arn)
    assert publisher is not None
    published = publisher.reconcile(config)
    assert (published.archived, published.kept, published.error) == (1, 1, None)
    stored = findings()
    assert stored[finding_id(BLOG, eve["arn"])]["RecordState"] == "ARCHIVED"
    assert (
        stored[finding_id(BLOG, eve["arn"])]["ProductFields"]["invoke-audit/ArchivedBecause"]
        == f"allowed by rule 'blog' now: principal {eve['arn']}"
    )
    assert stored[finding_id(BLOG, MALLORY)]["RecordState"] == "ACTIVE"
    assert stored["another-product/1"]["RecordState"] == "ACTIVE"
    assert stored["another-product/1"]["GeneratorId"] != GENERATOR_ID


SCHEDULED_EVENT = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2026-12-04T08:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/invoke-audit-daily"],
    "detail": {},
}


def test_the_daily_run_archives_what_the_deployed_allowlist_allows_now(env, capsys, tmp_path):
    validate(envelope(invoke_record(BLOG, event_id="ev-d")), capsys)
    assert [f["RecordState"] for f in findings().values()] == ["ACTIVE"]
    # A new deployment allows mallory on BlogFunction.
    env.setenv(
        "ALLOWLIST_PATH",
        str(
            write_config(
                tmp_path,
                f"""version: 1
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - principal: "{MALLORY}"
""",
            )
        ),
    )
    clear_caches()
    result, _ = validate(SCHEDULED_EVENT, capsys)
    assert result["scheduled"]["security-hub-archive"] == {
        "archived": 1,
        "still_violations": 0,
        "refused": [],
    }
    (finding,) = findings().values()
    assert finding["RecordState"] == "ARCHIVED"
    assert finding["ProductFields"]["invoke-audit/ArchivedBecause"] == (
        f"allowed by rule 'blog' now: principal {MALLORY}"
    )
    # Nothing is active any more: the next run archives nothing.
    again, _ = validate(SCHEDULED_EVENT, capsys)
    assert again["scheduled"]["security-hub-archive"]["archived"] == 0


def test_the_daily_run_skips_findings_when_off(env, capsys):
    env.delenv("SECURITY_HUB_FINDINGS")
    result, _ = validate(SCHEDULED_EVENT, capsys)
    assert result["scheduled"]["security-hub-archive"] == {
        "skipped": "Security Hub findings are off"
    }
