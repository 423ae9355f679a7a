"""Where a violation goes: the remediation queue (`enforce`) or a notification (`monitor`).

Imported only when there is a violation to report: it brings in boto3, which allowed events
never pay for. The ingest function uses it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.queue import ViolationQueue
from lambdas.core.decide import Decision
from lambdas.validator.envelope import violation_message
from models.exceptions import ConfigError

__all__ = ["QuietPeriod", "ViolationReporter", "reporter_from_env"]


class QuietPeriod:
    """Yes once per key per period, within one container. A function called again and again
    by the same caller would otherwise send one email per call."""

    def __init__(
        self, seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last: dict[tuple[str | None, ...], float] = {}

    def first(self, *key: str | None) -> bool:
        """Whether `key` was not seen in the last period (and remember it now if so)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._seconds:
            return False
        self._last[key] = now
        return True


def _deduplication_id(decision: Decision, record: Any) -> str:
    if decision.event_id:
        return decision.event_id
    canonical = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()


def _short(arn: str | None) -> str:
    """The readable end of an ARN: a function name (with qualifier) or a user/role name."""
    text = arn or "unknown"
    if ":function:" in text:
        return text.split(":function:", 1)[1]
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


def monitor_summary(decision: Decision) -> str:
    return "\n".join(
        [
            f"{decision.caller} invoked {decision.function}, and is not on the allowlist.",
            "",
            f"Rule:   {decision.rule} (mode: monitor, so nothing was changed)",
            f"Why:    {decision.reason}",
            f"When:   {decision.event_time}",
            f"Event:  {decision.event_id}",
            "",
            "In enforce mode the remediator would take this caller's access away from the "
            "function's resource policy. To allow the caller, add it to the rule's allow list.",
        ]
    )


class ViolationReporter:
    """Queues a violation for the remediator, or in monitor mode tells people about it."""

    def __init__(
        self,
        queue: ViolationQueue | None,
        notifier: Notifier | None,
        *,
        quiet: QuietPeriod | None = None,
    ) -> None:
        self._queue = queue
        self._notifier = notifier
        self._quiet = quiet or QuietPeriod()

    def report(self, decision: Decision, record: Any) -> str:
        """Send it on; returns what was done: "queued", "notified" or "suppressed"."""
        if decision.mode == "monitor":
            return self._notify(decision, record)
        if self._queue is None:
            raise ConfigError(["QUEUE_URL is not set: enforce-mode violations cannot be queued"])
        self._queue.send(
            violation_message(decision, record),
            group_id=decision.function or "unknown-function",
            deduplication_id=_deduplication_id(decision, record),
        )
        return "queued"

    def report_denied(self, decision: Decision, record: Any) -> str:
        """Queue an allowed caller's denied Invoke for the broken-caller watch."""
        if self._queue is None:
            raise ConfigError(["QUEUE_URL is not set: denied calls cannot be checked"])
        self._queue.send(
            violation_message(decision, record) | {"kind": "denied"},
            group_id=decision.function or "unknown-function",
            deduplication_id=_deduplication_id(decision, record),
        )
        return "queued-denied"

    def _notify(self, decision: Decision, record: Any) -> str:
        if self._notifier is None:
            raise ConfigError(["TOPIC_ARN is not set: monitor-mode violations cannot be reported"])
        if not self._quiet.first(decision.function, decision.caller):
            return "suppressed"
        self._notifier.publish(
            f"invoke-audit [monitor]: {_short(decision.function)} invoked by "
            f"{_short(decision.caller)}, not on the allowlist",
            monitor_summary(decision),
            {"decision": decision.to_dict(), "record": record},
        )
        return "notified"


def reporter_from_env(factory: ClientFactory | None = None) -> ViolationReporter:
    """A reporter for QUEUE_URL and TOPIC_ARN (either may be unset if its mode is unused)."""
    clients = factory or ClientFactory()
    queue_url = os.environ.get("QUEUE_URL")
    topic_arn = os.environ.get("TOPIC_ARN")
    return ViolationReporter(
        ViolationQueue(clients.client("sqs"), queue_url) if queue_url else None,
        Notifier(clients.client("sns"), topic_arn) if topic_arn else None,
    )
