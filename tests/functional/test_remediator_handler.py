"""The remediator Lambda: SQS FIFO batches with partial batch failures, logs and metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from emulator import public_policies_blocked
from lambdas.remediator import handler
from lambdas.runtime.settings import runtime
from tests.support.allowlists import ALLOWLIST_YAML, write_config
from tests.support.aws import (
    World,
    aws,
    client,
    create_function,
    fifo_queue,
    get_policy,
    notifications,
    put_policy,
)
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
    handler.metrics.clear_metrics()  # metrics are per process: none from earlier tests
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


def received_event(queue_url):
    """The queue's visible messages as the Lambda event source delivers them."""
    sqs = client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    records = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            break
        for m in got:
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
            )
    return {"Records": records}


def delete_done(queue_url, event, result):
    """What the event source mapping does: delete every message not reported failed."""
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for record in event["Records"]:
        if record["messageId"] not in failed:
            client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])


def test_a_spent_budget_delays_the_21st_violation_to_the_next_hour(world, capsys, monkeypatch):
    queue = fifo_queue("violations.fifo")
    names = [f"Blog{i:02d}" for i in range(21)]
    world.configure(ALLOWLIST_YAML.replace('functions: ["BlogFunction"]', 'functions: ["Blog*"]'))
    sqs = client("sqs")
    for name in names:
        arn = create_function(name)
        put_policy(arn, blog_policy(arn))
        sqs.send_message(
            QueueUrl=queue,
            MessageBody=message(arn, f"ev-{name}"),
            MessageGroupId=arn,
            MessageDeduplicationId=f"ev-{name}",
        )
    hour = datetime(2025, 1, 2, 10, 15, 0, tzinfo=UTC)
    clock = {"now": hour}
    monkeypatch.setattr(handler._remediator(ACCOUNT), "clock", lambda: clock["now"])
    remediated = 0
    for _ in range(3):  # the event source mapping's batches: at most 10 a batch
        event = received_event(queue)
        if not event["Records"]:
            break
        log_to_current_stdout(handler.logger)
        try:
            result = handler.lambda_handler(event, LambdaContext("invoke-audit-remediator"))
        except Exception as error:  # Powertools raises when every record of a batch failed
            assert "All records failed" in str(error)
            result = {
                "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
            }
        delete_done(queue, event, result)
        remediated += len(event["Records"]) - len(result["batchItemFailures"])
    lines = printed_json(capsys.readouterr().out)
    assert remediated == 20
    assert world.remediations_counted() == 20
    delayed = [line for line in lines if "to the next hour's budget" in line.get("message", "")]
    # 10:15:00 -> 11:00:05, hand-computed: 45 minutes and 5 seconds.
    assert [line["message"] for line in delayed] == ["delayed 2705 s, to the next hour's budget"]
    assert received_event(queue) == {"Records": []}  # out of sight until then
    # One alert for the spent budget, not one per parked message.
    alerts = [n for n in notifications(world.inbox) if "rate limit" in n["Subject"]]
    assert len(alerts) == 1
    # The next hour: the parked message comes back and is remediated.
    (left,) = [
        n
        for n in names
        if [s["Sid"] for s in get_policy(arn_of(n))[0]["Statement"]] != ["s3-trigger"]
    ]
    clock["now"] = hour + timedelta(hours=1)
    again = sqs_event(("m21", arn_of(left), message(arn_of(left), f"ev-{left}")))
    result, _ = run(again, capsys)
    assert result == {"batchItemFailures": []}
    assert [s["Sid"] for s in get_policy(arn_of(left))[0]["Statement"]] == ["s3-trigger"]


def arn_of(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def test_a_policy_lambda_refuses_as_public_goes_straight_to_the_dlq(world, capsys, monkeypatch):
    dlq = fifo_queue("violations-dlq.fifo")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq)
    world.configure(
        ALLOWLIST_YAML.replace(
            "max_remediations_per_hour: 20", 'max_remediations_per_hour: 20\n  proof: "off"'
        )
    )
    arn = create_function("BlogFunction")
    describe = {
        "Sid": "anyone-may-describe",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetFunction",
        "Resource": arn,
    }
    policy = blog_policy(arn)
    policy["Statement"].append(describe)
    put_policy(arn, policy)
    with public_policies_blocked():
        result, lines = run(sqs_event(("m1", arn, message(arn, "ev-public"))), capsys)
    assert result == {"batchItemFailures": []}  # consumed: never retried
    assert get_policy(arn)[0] == policy
    (dead,) = client("sqs").receive_message(
        QueueUrl=dlq, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    assert json.loads(dead["Body"])["event_id"] == "ev-public"
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith("PublicPolicyException")
    (notice,) = notifications(world.inbox)
    assert "refused the rewritten policy of BlogFunction as public" in notice["Subject"]
    assert "What to change" in notice["Message"]
    assert "not retried" in notice["Message"]
    assert emf_metrics(lines) == {"PublicPolicyRefused": 1}
