"""The SQS FIFO queue of violations between the validator (or ingest) and the remediator."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from lambdas.adapters._calls import call

__all__ = ["ViolationQueue"]

# SQS limits both ids to 128 characters; a longer ARN (long alias names) is hashed, stably.
_MAX_ID = 128


def _fifo_id(value: str) -> str:
    if len(value) <= _MAX_ID:
        return value
    return hashlib.sha256(value.encode()).hexdigest()


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
