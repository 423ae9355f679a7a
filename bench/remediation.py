"""AWS API calls of the remediator Lambda, counted with botocore's `after-call` event.

The remediator handler runs in process against moto plus `emulator` (per-qualifier
policies, the resource-policy API with RevisionId): the blog's function with a public grant,
then SQS FIFO batches (10 messages, as the event source mapping delivers them) of

- one violation: every call it makes, by `service:Operation`;
- 100 duplicate violations of one function (the same caller, 100 CloudTrail events): how
  many times the function's policy is written (PutResourcePolicy, AddPermission,
  RemovePermission, DeleteResourcePolicy).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from emulator.environment import fake_credentials, patched_environ
from emulator.lambda_context import LambdaContext
from tests.support.aws import bucket, rate_table
from tests.support.policies import blog_policy

__all__ = ["run"]

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
BUCKET = "invoke-audit-backups"
TABLE = "invoke-audit-rate"
WRITES = {"PutResourcePolicy", "DeleteResourcePolicy", "AddPermission", "RemovePermission"}
ALLOWLIST = f"""
version: 1
defaults: {{mode: enforce, unmatched: report}}
protect: ["invoke-audit-*"]
limits: {{max_remediations_per_hour: 1000}}
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
        source_account: "{ACCOUNT}"
"""


def _message(function: str, index: int) -> str:
    event_id = f"00000000-0000-4000-8000-{index:012d}"
    record = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory",
            "accountId": ACCOUNT,
        },
        "eventTime": "2025-01-02T03:04:05Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": REGION,
        "requestParameters": {"functionName": function},
        "eventID": event_id,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::Lambda::Function", "ARN": function}],
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
    }
    return json.dumps(
        {
            "kind": "violation",
            "event_id": event_id,
            "function": function,
            "rule": "blog",
            "mode": "enforce",
            "caller": f"arn:aws:iam::{ACCOUNT}:user/mallory",
            "reason": "not on the allowlist",
            "account": ACCOUNT,
            "region": REGION,
            "event_time": "2025-01-02T03:04:05Z",
            "record": record,
        }
    )


def _sqs_event(function: str, indexes: range) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"handle-{i}",
                "body": _message(function, i),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1700000000000",
                    "SequenceNumber": str(10**19 + i),
                    "MessageGroupId": function,
                    "MessageDeduplicationId": f"00000000-0000-4000-8000-{i:012d}",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:violations.fifo",
                "awsRegion": REGION,
            }
            for i in indexes
        ]
    }


def _environment(config_path: Path, topic: str) -> contextlib.AbstractContextManager[None]:
    return patched_environ(
        {
            "ALLOWLIST_PATH": str(config_path),
            "BACKUP_BUCKET": BUCKET,
            "RATE_TABLE": TABLE,
            "TOPIC_ARN": topic,
            "POWERTOOLS_METRICS_NAMESPACE": "InvokeAudit",
        }
    )


def _calls_of(handler: Any, session: boto3.Session, event: dict[str, Any]) -> Counter[str]:
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[f"{model.service_model.service_name}:{model.name}"] += 1

    # after-call: the emulated Access Analyzer answers its checks in a more specific
    # before-call handler, which would hide them from a before-call counter.
    session.events.register("after-call", count)
    logs: Any = handler.logger.registered_handler
    stream, logs.stream = logs.stream, io.StringIO()  # the handler's log lines are not output
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # nor its EMF metrics
            result = handler.lambda_handler(
                event,
                LambdaContext(
                    "invoke-audit-remediator",
                    account=ACCOUNT,
                    region=REGION,
                    memory_limit_in_mb=512,
                    log_stream_name="bench",
                ),
            )
    finally:
        logs.stream = stream
        session.events.unregister("after-call", count)
    assert result == {"batchItemFailures": []}, result
    return calls


def run() -> dict[str, Any]:
    from cli.allowlist_file import parse_allowlist
    from emulator import create_function, emulated_aws
    from lambdas.adapters.clients import ClientFactory
    from lambdas.core.config import allowlist_to_json
    from lambdas.remediator import handler
    from lambdas.runtime.settings import runtime

    with fake_credentials(REGION), emulated_aws(), tempfile.TemporaryDirectory() as work:
        config_path = Path(work) / "allowlist.json"
        config_path.write_text(allowlist_to_json(parse_allowlist(ALLOWLIST, "bench.yaml")))
        bucket(BUCKET)
        rate_table(TABLE)
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="invoke-audit-alerts")[
            "TopicArn"
        ]
        lam = boto3.client("lambda", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        session = boto3.Session(region_name=REGION)
        original_factory = getattr(handler, "ClientFactory")  # noqa: B009
        setattr(handler, "ClientFactory", lambda: ClientFactory(session=session))  # noqa: B010
        runtime.cache_clear()
        handler._remediator.cache_clear()
        try:
            with _environment(config_path, topic):
                one = str(create_function(lam, iam, "BlogFunction"))
                lam.put_resource_policy(ResourceArn=one, Policy=json.dumps(blog_policy(one)))
                single = _calls_of(handler, session, _sqs_event(one, range(1)))
                burst = str(create_function(lam, iam, "BlogFunctionTwo"))
                config_path.write_text(
                    allowlist_to_json(
                        parse_allowlist(
                            ALLOWLIST.replace('["BlogFunction"]', '["BlogFunction*"]'), "b.yaml"
                        )
                    )
                )
                runtime.cache_clear()
                handler._remediator.cache_clear()
                lam.put_resource_policy(ResourceArn=burst, Policy=json.dumps(blog_policy(burst)))
                total: Counter[str] = Counter()
                for start in range(0, 100, 10):  # the event source mapping's batches of 10
                    total += _calls_of(
                        handler, session, _sqs_event(burst, range(start, start + 10))
                    )
        finally:
            setattr(handler, "ClientFactory", original_factory)  # noqa: B010
            runtime.cache_clear()
            handler._remediator.cache_clear()
    lambda_calls = {k: v for k, v in single.items() if k.startswith("lambda:")}
    return {
        "per_violation": sum(single.values()),
        "per_violation_lambda_api": sum(lambda_calls.values()),
        "per_violation_calls": dict(sorted(single.items())),
        "burst_100_writes": sum(v for k, v in total.items() if k.split(":")[1] in WRITES),
        "burst_100_calls": dict(sorted(total.items())),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
