"""The blog scenario, end to end: a function anyone may invoke, with an S3 trigger grant that
lacks SourceAccount; an IAM user invokes it; the validator queues the violation, the remediator
rewrites the policy; restore brings the original back."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from cli.remediation import register
from lambdas.remediator import handler as remediator
from lambdas.runtime.settings import runtime
from lambdas.validator import handler as validator
from tests.support.allowlists import write_config
from tests.support.aws import (
    World,
    aws,
    create_function,
    fifo_queue,
    get_policy,
    hmac_key,
    notifications,
    put_policy,
    receive_all,
)
from tests.support.lambda_runtime import LambdaContext
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION, envelope, invoke_record

pytestmark = pytest.mark.functional

BLOG_ALLOWLIST = f"""
version: 1
rules:
  - name: blog-s3-trigger
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
        source_account: "{ACCOUNT}"
"""


def lambda_sqs_event(messages):
    """SQS messages as the Lambda event source mapping hands them to the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:violations.fifo",
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def restore(capsys, backup):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    # A script: no terminal, so --yes; the original lets anyone invoke, so --force.
    config = os.environ["ALLOWLIST_PATH"]
    args = parser.parse_args(["restore", backup, "--config", config, "--yes", "--force"])
    capsys.readouterr()  # the handlers' logs and metrics so far
    code = args.func(args)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("ALLOWLIST_PATH", str(write_config(tmp_path, BLOG_ALLOWLIST)))
    caches = (runtime, validator._reporter, remediator._remediator)
    for cache in caches:
        cache.cache_clear()
    yield monkeypatch
    for cache in caches:
        cache.cache_clear()


def test_blog_scenario(env, capsys):
    with aws():
        world = World()
        key = hmac_key(world.client("kms"))
        queue = fifo_queue()
        for name, value in (
            ("QUEUE_URL", queue),
            ("TOPIC_ARN", world.topic),
            ("BACKUP_BUCKET", world.bucket),
            ("RATE_TABLE", world.table),
            # The remediator signs each backup with the HMAC key; restore verifies it.
            ("BACKUP_MAC_KEY_ARN", key),
            ("BACKUP_MAC_KEY", key),
        ):
            env.setenv(name, value)
        function = create_function("BlogFunction")
        original = blog_policy(function)
        put_policy(function, original)
        event = envelope(invoke_record(function, event_id="e7c1f8a2-0000-4000-8000-blog00000001"))

        # 1. The IAM user's Invoke reaches the validator: one message on the FIFO queue.
        decision = validator.lambda_handler(event, LambdaContext("invoke-audit-validator"))
        assert (decision["verdict"], decision["action"]) == ("violation", "queued")
        messages = receive_all(queue, attributes=True)
        assert len(messages) == 1

        # 2. The remediator rewrites the policy.
        context = LambdaContext("invoke-audit-remediator")
        assert remediator.lambda_handler(lambda_sqs_event(messages), context) == {
            "batchItemFailures": []
        }
        rewritten, revision = get_policy(function)
        assert all(s.get("Principal") != "*" for s in rewritten["Statement"])
        (s3_grant,) = rewritten["Statement"]
        assert s3_grant["Principal"] == {"Service": "s3.amazonaws.com"}
        assert s3_grant["Condition"]["StringEquals"]["AWS:SourceAccount"] == ACCOUNT
        assert s3_grant["Condition"]["ArnLike"]["AWS:SourceArn"] == "arn:aws:s3:::examplebucket"
        (backup_key,) = world.backups()
        assert world.backup(backup_key)["policy"] == original
        assert world.backup(backup_key)["signature"]["key"] == key

        # 3. A second identical event changes nothing. SQS drops the duplicate within five
        #    minutes (moto forgets deleted messages' ids, so it may let it through); later the
        #    same message can arrive again: the remediator finds nothing left to do either way.
        second = validator.lambda_handler(event, LambdaContext("invoke-audit-validator"))
        assert second["action"] == "queued"
        again = lambda_sqs_event(messages + receive_all(queue, attributes=True))
        assert remediator.lambda_handler(again, context) == {"batchItemFailures": []}
        assert get_policy(function) == (rewritten, revision)
        assert world.backups() == [backup_key]

        # 4. People were told once.
        (note,) = notifications(world.inbox)
        assert "Removed statement public" in note["Message"]
        assert f"s3://{world.bucket}/{backup_key}" in note["Message"]

        # 5. The operator's undo brings the original back.
        code, restored = restore(capsys, f"s3://{world.bucket}/{backup_key}")
        assert code == 0
        assert restored["outcome"] == "restored"
        assert get_policy(function)[0] == original
