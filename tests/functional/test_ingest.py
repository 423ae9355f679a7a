"""The ingest Lambda: a log file lands in the trail bucket, its records are judged like the
validator's, violations are queued (enforce) or notified (monitor)."""

from __future__ import annotations

import gzip
import json

import pytest

from lambdas.ingest import handler
from lambdas.ingest.logfiles import log_objects
from lambdas.runtime.settings import runtime
from models.exceptions import InputError
from tests.support.allowlists import write_config
from tests.support.aws import (
    aws,
    bucket,
    client,
    fifo_queue,
    notifications,
    receive_all,
    topic_with_inbox,
)
from tests.support.lambda_runtime import (
    LambdaContext,
    emf_metrics,
    log_to_current_stdout,
    printed_json,
)
from tests.support.records import ACCOUNT, REGION, aws_service, invoke_record

pytestmark = pytest.mark.functional

BLOG = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:BlogFunction"
WATCHED = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:WatchedFunction"
LOG_KEY = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2025/01/02/{ACCOUNT}_CloudTrail_x.json.gz"


@pytest.fixture
def trail(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("ALLOWLIST_PATH", str(write_config(tmp_path)))
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    runtime.cache_clear()
    handler._aws.cache_clear()
    with aws():
        queue = fifo_queue()
        topic, inbox = topic_with_inbox()
        monkeypatch.setenv("QUEUE_URL", queue)
        monkeypatch.setenv("TOPIC_ARN", topic)
        yield bucket("trail-bucket"), queue, inbox
    runtime.cache_clear()
    handler._aws.cache_clear()


def notification(bucket_name, *keys):
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket_name}, "object": {"key": key, "size": 1}},
            }
            for key in keys
        ]
    }


def upload(bucket_name, key, records):
    body = gzip.compress(json.dumps({"Records": records}).encode())
    client("s3").put_object(Bucket=bucket_name, Key=key, Body=body)


def test_a_log_file_is_judged_and_its_violations_sent_on(trail, capsys):
    trail_bucket, queue, inbox = trail
    allowed = invoke_record(
        BLOG,
        identity=aws_service("s3.amazonaws.com"),
        event_id="ok",
        sourceArn="arn:aws:s3:::examplebucket",
        sourceAccount=ACCOUNT,
    )
    execution = invoke_record(BLOG, identity=aws_service("s3.amazonaws.com"), event_id="exec") | {
        "eventName": "InvokeExecution"
    }
    other = {"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventID": "s3"}
    records = [
        allowed,
        invoke_record(BLOG, event_id="bad"),
        invoke_record(WATCHED, event_id="w"),
        execution,
        other,
    ]
    upload(trail_bucket, LOG_KEY, records)
    log_to_current_stdout(handler.logger)
    summary = handler.lambda_handler(notification(trail_bucket, LOG_KEY), LambdaContext())
    lines = printed_json(capsys.readouterr().out)
    messages = receive_all(queue, attributes=True)
    notes = notifications(inbox)

    assert summary["verdicts"] == {"allowed": 1, "violation": 2, "ignored": 2}
    assert summary["actions"] == {"queued": 1, "notified": 1}
    assert [json.loads(m["Body"])["event_id"] for m in messages] == ["bad"]
    assert messages[0]["Attributes"]["MessageGroupId"] == BLOG
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "bad"
    assert len(notes) == 1
    assert "WatchedFunction" in notes[0]["Subject"]
    violations = [line for line in lines if line.get("verdict") == "violation"]
    assert {line["event_id"] for line in violations} == {"bad", "w"}
    assert all(line["source"] == f"s3://{trail_bucket}/{LOG_KEY}" for line in violations)
    assert emf_metrics(lines) == {
        "Allowed": 1,
        "Violation": 2,
        "Ignored": 2,
        "ViolationQueued": 1,
        "ViolationNotified": 1,
    }


def test_digest_files_are_skipped_and_keys_decoded():
    event = notification(
        "b",
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/x.json.gz",
        f"AWSLogs/o-abc/{ACCOUNT}/CloudTrail/{REGION}/with+space%3A.json.gz",
    )
    assert log_objects(event) == [
        ("b", f"AWSLogs/o-abc/{ACCOUNT}/CloudTrail/{REGION}/with space:.json.gz")
    ]
    assert log_objects({}) == []


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_an_unreadable_log_file_fails_the_invocation(trail):
    trail_bucket, queue, _ = trail
    client("s3").put_object(Bucket=trail_bucket, Key=LOG_KEY, Body=b"\x1f\x8bnot gzip")
    with pytest.raises(InputError, match="not a readable gzip file"):
        handler.lambda_handler(notification(trail_bucket, LOG_KEY), LambdaContext())
    assert receive_all(queue) == []
