"""Running a handler as Lambda runs it: the context object, the SQS event of a batch, and
reading back what it printed (Powertools logs, EMF metrics)."""

from __future__ import annotations

import json
import sys
from typing import Any

from emulator.lambda_context import LambdaContext
from tests.support.records import ACCOUNT, REGION

__all__ = ["LambdaContext", "emf_metrics", "log_to_current_stdout", "printed_json", "sqs_event"]


def sqs_event(*messages: tuple[str, str, str]) -> dict[str, Any]:
    """An SQS FIFO event as Lambda delivers it: (message id, group id, body) per record."""
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1735787045000",
                    "SequenceNumber": "1",
                    "MessageGroupId": group,
                    "SenderId": "AIDAEXAMPLE",
                    "MessageDeduplicationId": message_id,
                    "ApproximateFirstReceiveTimestamp": "1735787045000",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:violations.fifo",
                "awsRegion": REGION,
            }
            for message_id, group, body in messages
        ]
    }


def printed_json(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one per line (Powertools logs and EMF metric blobs)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def emf_metrics(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Metric name -> value over the EMF blobs among `lines`."""
    values: dict[str, float] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                values[metric["Name"]] = values.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
    return values


def log_to_current_stdout(logger: Any) -> None:
    """Point a Powertools Logger at the current sys.stdout (pytest's capsys replaces it after
    the handler module bound the original)."""
    # Assigned, not setStream(): that flushes the previous test's stream, closed by now.
    logger.registered_handler.stream = sys.stdout
