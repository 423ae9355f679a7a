"""The validator Lambda: envelope in, one decision out (logged, counted), violations queued in
enforce mode and notified in monitor mode; allowed events never import boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambdas.adapters.errors import AwsError
from lambdas.runtime.settings import runtime
from lambdas.validator import handler
from models.exceptions import ConfigError
from tests.support.allowlists import write_config
from tests.support.aws import aws, fifo_queue, notifications, receive_all, topic_with_inbox
from tests.support.lambda_runtime import (
    LambdaContext,
    emf_metrics,
    log_to_current_stdout,
    printed_json,
)
from tests.support.records import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    aws_service,
    envelope,
    iam_user,
    invoke_record,
)

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[2]
BLOG = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:BlogFunction"
WATCHED = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:WatchedFunction:prod"
S3_CALL = {"sourceArn": "arn:aws:s3:::examplebucket", "sourceAccount": ACCOUNT}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOWLIST_PATH", str(write_config(tmp_path)))
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    runtime.cache_clear()
    handler._reporter.cache_clear()
    yield monkeypatch
    runtime.cache_clear()
    handler._reporter.cache_clear()


@pytest.fixture
def pipeline(env):
    """moto with the queue and the topic the validator sends to."""
    with aws():
        queue = fifo_queue()
        topic, inbox = topic_with_inbox()
        env.setenv("QUEUE_URL", queue)
        env.setenv("TOPIC_ARN", topic)
        yield queue, inbox


def run(event, capsys, account=ACCOUNT):
    log_to_current_stdout(handler.logger)
    # Powertools keeps metrics per process, shared by every Metrics object: start from none,
    # whatever ran earlier in this process (the demo runs the same handlers).
    handler.metrics.clear_metrics()
    result = handler.lambda_handler(event, LambdaContext(account=account))
    return result, printed_json(capsys.readouterr().out)


def test_allowed_invoke_is_logged_once_and_counted(env, capsys):
    record = invoke_record(BLOG, identity=aws_service("s3.amazonaws.com"), **S3_CALL)
    result, lines = run(envelope(record), capsys)
    logs = [line for line in lines if "_aws" not in line]
    assert result["verdict"] == "allowed"
    assert result["action"] is None
    assert len(logs) == 1
    assert logs[0]["verdict"] == "allowed"
    assert logs[0]["function"] == BLOG
    assert logs[0]["rule"] == "blog"
    assert logs[0]["message"].startswith("allowed by rule 'blog'")
    assert logs[0]["function_name"] == "invoke-audit-validator"  # Lambda context injected
    assert emf_metrics(lines) == {"Allowed": 1}


def test_enforce_violation_sends_one_fifo_message(pipeline, capsys):
    queue, inbox = pipeline
    record = invoke_record(BLOG, event_id="ev-1")
    result, lines = run(envelope(record), capsys)
    messages = receive_all(queue, attributes=True)
    assert result["verdict"] == "violation"
    assert result["action"] == "queued"
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body == {
        "kind": "violation",
        "event_id": "ev-1",
        "function": BLOG,
        "rule": "blog",
        "mode": "enforce",
        "caller": iam_user()["arn"],
        "reason": result["reason"],
        "account": ACCOUNT,
        "region": REGION,
        "event_time": "2025-01-02T03:04:05Z",
        "record": record,
    }
    assert messages[0]["Attributes"]["MessageGroupId"] == BLOG
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "ev-1"
    assert notifications(inbox) == []
    assert emf_metrics(lines) == {"Violation": 1, "ViolationQueued": 1}


def test_the_same_event_twice_is_one_message(pipeline, capsys):
    queue, _ = pipeline
    event = envelope(invoke_record(BLOG, event_id="ev-dup"))
    run(event, capsys)
    run(event, capsys)
    assert len(receive_all(queue)) == 1


def test_monitor_violation_only_notifies_once_per_caller(pipeline, capsys):
    queue, inbox = pipeline
    first, _ = run(envelope(invoke_record(WATCHED, event_id="ev-a")), capsys)
    second, _ = run(envelope(invoke_record(WATCHED, event_id="ev-b")), capsys)
    notes = notifications(inbox)
    assert (first["action"], second["action"]) == ("notified", "suppressed")
    assert receive_all(queue) == []
    assert len(notes) == 1
    assert "monitor" in notes[0]["Subject"]
    assert WATCHED in notes[0]["Message"]
    assert "nothing was changed" in notes[0]["Message"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"source": "aws.s3"}, "source is 'aws.s3'"),
        ({"detail-type": "Object Created"}, "detail-type is 'Object Created'"),
        ({"account": "12345"}, "expected 12 digits"),
        ({"detail": None}, "no detail object"),
    ],
)
def test_envelopes_that_do_not_fit_are_invalid(pipeline, capsys, overrides, reason):
    queue, _ = pipeline
    event = envelope(invoke_record(BLOG), **overrides)
    result, lines = run(event, capsys)
    assert result["verdict"] == "invalid"
    assert reason in result["reason"]
    assert receive_all(queue) == []
    assert emf_metrics(lines) == {"Invalid": 1}


def test_a_record_may_not_speak_for_another_accounts_function(pipeline, capsys):
    queue, _ = pipeline
    event = envelope(invoke_record(BLOG), account=OTHER_ACCOUNT)
    result, _ = run(event, capsys)
    assert result["verdict"] == "invalid"
    assert f"comes from account {OTHER_ACCOUNT}" in result["reason"]
    assert receive_all(queue) == []


def test_an_untrusted_account_is_refused_and_a_listed_member_accepted(pipeline, capsys):
    queue, _ = pipeline
    member_function = BLOG.replace(ACCOUNT, OTHER_ACCOUNT)
    record = invoke_record(member_function) | {"recipientAccountId": OTHER_ACCOUNT}
    event = envelope(record, account=OTHER_ACCOUNT)
    refused, _ = run(event, capsys)
    pipeline_env = os.environ.copy()
    assert "ALLOWED_ACCOUNTS" not in pipeline_env
    os.environ["ALLOWED_ACCOUNTS"] = f"{OTHER_ACCOUNT}, 444455556666"
    try:
        runtime.cache_clear()
        accepted, _ = run(event, capsys)
    finally:
        del os.environ["ALLOWED_ACCOUNTS"]
    assert refused["verdict"] == "invalid"
    assert "not a monitored account" in refused["reason"]
    assert accepted["verdict"] == "violation"
    assert len(receive_all(queue)) == 1


def test_the_config_is_loaded_once_per_container(env, capsys, tmp_path):
    record = invoke_record(BLOG, identity=aws_service("s3.amazonaws.com"), **S3_CALL)
    first, _ = run(envelope(record), capsys)
    Path(os.environ["ALLOWLIST_PATH"]).write_text("not json")
    second, _ = run(envelope(record), capsys)
    assert first["verdict"] == second["verdict"] == "allowed"


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_a_bad_config_fails_every_invocation_loudly(env, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "rules": [{"name": "x", "functionz": []}]}))
    env.setenv("ALLOWLIST_PATH", str(bad))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"bad\.json"):
            run(envelope(invoke_record(BLOG)), capsys)


def test_queue_failure_is_logged_and_raised_for_a_retry(env, capsys):
    with aws():
        env.setenv("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing.fifo")
        log_to_current_stdout(handler.logger)
        with pytest.raises(AwsError, match="SendMessage"):
            handler.lambda_handler(envelope(invoke_record(BLOG)), LambdaContext())
    logs = printed_json(capsys.readouterr().out)
    failed = [line for line in logs if line.get("action") == "failed"]
    assert len(failed) == 1
    assert failed[0]["level"] == "ERROR"


ALLOWED_RUN = """
import json, sys, types
from lambdas.validator.handler import lambda_handler
context = types.SimpleNamespace(**json.loads(sys.argv[2]))
context.get_remaining_time_in_millis = lambda: 60_000
result = lambda_handler(json.loads(sys.argv[1]), context)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "s3transfer")
                or m.startswith(("botocore.", "lambdas.adapters", "lambdas.runtime.report")))
print(json.dumps({"verdict": result["verdict"], "loaded": loaded}), file=sys.stderr)
"""


def test_an_allowed_event_does_not_import_boto3(env):
    # A fresh interpreter, as in a new Lambda container; nothing of the tests imported.
    event = envelope(invoke_record(BLOG, identity=aws_service("s3.amazonaws.com"), **S3_CALL))
    context = {k: v for k, v in vars(LambdaContext()).items()}
    done = subprocess.run(
        [sys.executable, "-c", ALLOWED_RUN, json.dumps(event), json.dumps(context)],
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome = json.loads(done.stderr.strip().splitlines()[-1])
    assert outcome == {"verdict": "allowed", "loaded": []}
