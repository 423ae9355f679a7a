"""Notifications to the SNS topic people subscribe to (by email, chat, ticketing)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from lambdas.adapters._calls import call

__all__ = ["Notifier"]

_MAX_SUBJECT = 100
_MAX_MESSAGE = 250_000  # SNS takes 256 KiB


def _encodable(text: str) -> str:
    """`text` with what UTF-8 cannot encode (lone surrogates from a record) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _subject(text: str) -> str:
    # SNS subjects: printable ASCII, no line breaks, at most 100 characters.
    flat = " ".join(text.split())
    ascii_only = "".join(c if " " <= c <= "~" else "?" for c in flat)
    return ascii_only if len(ascii_only) <= _MAX_SUBJECT else ascii_only[: _MAX_SUBJECT - 3] + "..."


class Notifier:
    """Publishes a summary a person reads, followed by the same facts as JSON."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("sns:Publish",)

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, subject: str, summary: str, details: dict[str, Any]) -> str:
        """Publish; returns the SNS MessageId."""
        payload = json.dumps(details, indent=2, sort_keys=True, default=str)
        message = _encodable(f"{summary.rstrip()}\n\n--- details (JSON) ---\n{payload}\n")
        if len(message.encode()) > _MAX_MESSAGE:
            message = message.encode()[:_MAX_MESSAGE].decode(errors="ignore") + "\n[truncated]\n"
        response = call(
            "sns",
            "Publish",
            self._topic_arn,
            self._client.publish,
            TopicArn=self._topic_arn,
            Subject=_subject(subject),
            Message=message,
        )
        return str(response.get("MessageId", ""))
