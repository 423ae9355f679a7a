"""The SQS FIFO queue of violations between the validator (or ingest) and the remediator."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

from lambdas.adapters._calls import call

__all__ = ["DeadLetters", "MessageDelays", "ViolationQueue", "queue_url_of"]

# SQS takes 1-128 characters of a-z, A-Z, 0-9 and punctuation for both ids. Anything else (a
# long alias ARN, an odd eventID) is replaced by its SHA-256, so the same value keeps the
# same id.
_FIFO_ID = re.compile(r"[!-~]{1,128}\Z")


def _fifo_id(value: str) -> str:
    if _FIFO_ID.match(value):
        return value
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class ViolationQueue:
    """Sends one message per violation; ordered per invoked resource, deduplicated per event."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("sqs:SendMessage",)

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, message: dict[str, Any], *, group_id: str, deduplication_id: str) -> str:
        """Send `message` as JSON; returns the SQS MessageId."""
        response = call(
            "sqs",
            "SendMessage",
            self._queue_url,
            self._client.send_message,
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(message, separators=(",", ":"), default=str),
            MessageGroupId=_fifo_id(group_id),
            MessageDeduplicationId=_fifo_id(deduplication_id),
        )
        return str(response.get("MessageId", ""))


class MessageDelays:
    """Puts a received message back out of sight until a given time (SQS's visibility
    timeout, at most 12 hours): a message that must wait is delayed, not failed over and over."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("sqs:ChangeMessageVisibility",)
    MAX_SECONDS: ClassVar[int] = 12 * 60 * 60

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def delay(self, receipt_handle: str, seconds: int) -> int:
        """Hide the message for `seconds` (clamped to 0..12 h); returns the seconds set."""
        seconds = max(0, min(int(seconds), self.MAX_SECONDS))
        call(
            "sqs",
            "ChangeMessageVisibility",
            self._queue_url,
            self._client.change_message_visibility,
            QueueUrl=self._queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )
        return seconds


class DeadLetters:
    """Sends a message that must never be retried straight to the dead-letter queue, with
    the reason as a message attribute (a FIFO DLQ: same group and deduplication ids)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("sqs:SendMessage",)

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, body: str, *, reason: str, group_id: str, deduplication_id: str) -> str:
        response = call(
            "sqs",
            "SendMessage",
            self._queue_url,
            self._client.send_message,
            QueueUrl=self._queue_url,
            MessageBody=body,
            MessageGroupId=_fifo_id(group_id),
            MessageDeduplicationId=_fifo_id(deduplication_id),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:1000]}},
        )
        return str(response.get("MessageId", ""))


def queue_url_of(queue_arn: str) -> str:
    """`arn:aws:sqs:REGION:ACCOUNT:NAME` -> its queue URL (the SQS endpoint of that region)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
    partition, region, account, name = parts[1], parts[3], parts[4], parts[5]
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"
