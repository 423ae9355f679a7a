"""The SQS FIFO queue of violations between the validator (or ingest) and the remediator."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

from lambdas.adapters._calls import call

__all__ = ["ViolationQueue"]

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
