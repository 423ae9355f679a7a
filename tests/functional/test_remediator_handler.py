"""The remediator Lambda: SQS FIFO batches with partial batch failures, logs and metrics."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from lambdas.remediator import handler
from lambdas.runtime.settings import runtime
from tests.support.allowlists import ALLOWLIST_YAML, write_config
from tests.support.aws import World, aws, create_function, get_policy, put_policy
from tests.support.lambda_runtime import (
    LambdaContext,
    emf_metrics,
    log_to_current_stdout,
    printed_json,
    sqs_event,
)
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION, invoke_record

pytestmark = pytest.mark.functional


class HandlerWorld(World):
    """World, plus a way to deploy another allowlist (a new container's config)."""

    def __init__(self, configure: Callable[[str], None]) -> None:
        super().__init__()
        self.configure = configure


@pytest.fixture
def world(tmp_path, monkeypatch):
    def configure(text=ALLOWLIST_YAML):
        monkeypatch.setenv("ALLOWLIST_PATH", str(write_config(tmp_path, text)))
        runtime.cache_clear()
        handler._remediator.cache_clear()

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv(
        "OWN_FUNCTION_ARNS", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-validator"
    )
    configure()
    with aws():
        world = HandlerWorld(configure)
        monkeypatch.setenv("BACKUP_BUCKET", world.bucket)
        monkeypatch.setenv("RATE_TABLE", world.table)
        monkeypatch.setenv("TOPIC_ARN", world.topic)
        yield world
    runtime.cache_clear()
    handler._remediator.cache_clear()


def message(function, event_id):
    return json.dumps(
        {
            "kind": "violation",
            "event_id": event_id,
            "function": function,
            "rule": "anything: the remediator matches the rule itself",
            "mode": "enforce",
            "caller": f"arn:aws:iam::{ACCOUNT}:user/mallory",
            "reason": "not on the allowlist",
            "account": ACCOUNT,
            "region": REGION,
            "event_time": "2025-01-02T03:04:05Z",
            "record": invoke_record(function, event_id=event_id),
        }
    )


def run(event, capsys):
    log_to_current_stdout(handler.logger)
    result = handler.lambda_handler(event, LambdaContext("invoke-audit-remediator"))
    return result, printed_json(capsys.readouterr().out)


def test_a_failed_message_holds_back_its_group_and_not_the_others(world, capsys):
    blog = create_function("BlogFunction")
    other = create_function("StrictFunction")  # would be rewritten if processed
    put_policy(blog, blog_policy(blog))
    put_policy(other, blog_policy(other))
    event = sqs_event(
        ("m1", other, "not json"),
        ("m2", other, message(other, "ev-2")),
        ("m3", blog, message(blog, "ev-3")),
    )
    result, lines = run(event, capsys)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    # m2 was not processed (FIFO order within the group), m3 was.
    assert get_policy(other)[0] == blog_policy(other)
    assert [s["Sid"] for s in get_policy(blog)[0]["Statement"]] == ["s3-trigger"]
    failed = [line for line in lines if line.get("outcome") == "failed"]
    assert len(failed) == 1
    assert failed[0]["message_id"] == "m1"
    assert "remediation failed" in failed[0]["message"]
    done = [line for line in lines if line.get("outcome") == "remediated"]
    assert done[0]["function"] == blog
    assert done[0]["backup"].startswith(f"s3://{world.bucket}/backups/")
    assert emf_metrics(lines) == {"RemediationFailed": 1, "Remediated": 1}


def test_protected_functions_are_refused_whatever_the_message_says(world, capsys):
    protected = create_function("ProtectedFunction")
    own = create_function("invoke-audit-validator")
    for arn in (protected, own):
        put_policy(arn, blog_policy(arn))
    event = sqs_event(("m1", protected, message(protected, "a")), ("m2", own, message(own, "b")))
    result, lines = run(event, capsys)
    assert result == {"batchItemFailures": []}
    assert get_policy(protected)[0] == blog_policy(protected)
    assert get_policy(own)[0] == blog_policy(own)
    assert emf_metrics(lines) == {"Refused": 2}
    refused = {line["message_id"]: line["detail"] for line in lines if "detail" in line}
    assert refused == {
        "m1": "protected by 'Protected*': never changed",
        "m2": "the pipeline's own function: never changed",
    }


def test_rate_limit_parks_the_message_and_counts_the_trip(world, capsys):
    world.configure(
        ALLOWLIST_YAML.replace("max_remediations_per_hour: 20", "max_remediations_per_hour: 0")
    )
    blog = create_function("BlogFunction")
    put_policy(blog, blog_policy(blog))
    with pytest.raises(BatchProcessingError, match="All records failed"):
        run(sqs_event(("m1", blog, message(blog, "ev"))), capsys)
    lines = printed_json(capsys.readouterr().out)
    assert get_policy(blog)[0] == blog_policy(blog)
    assert emf_metrics(lines) == {"RateLimitTripped": 1}
    tripped = [line for line in lines if line.get("outcome") == "rate-limited"]
    assert tripped[0]["level"] == "ERROR"
    assert "limit of 0 remediations per hour" in tripped[0]["message"]
