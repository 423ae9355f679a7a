"""Where a violation goes: the remediation queue (`enforce`) or a notification (`monitor`).

Imported only when there is a violation to report: it brings in boto3, which allowed events
never pay for. The validator and the ingest function use it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from typing import Any

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.queue import ViolationQueue
from lambdas.core.decide import Decision
from lambdas.core.notices import monitor_subject, monitor_summary
from lambdas.core.ports import NotifierPort, QueuePort
from lambdas.runtime.quiet import QuietPeriod
from models.exceptions import ConfigError
from models.messages import DENIED, ViolationMessage

__all__ = ["ViolationReporter", "reporter_from_env", "violation_message"]


def violation_message(decision: Decision, record: Any) -> ViolationMessage:
    """The queue message for one violation (the remediator trusts none of it blindly)."""
    return ViolationMessage(
        function=decision.function or "",
        event_id=decision.event_id,
        rule=decision.rule,
        mode=decision.mode,
        caller=decision.caller,
        reason=decision.reason,
        account=decision.account,
        region=decision.region,
        event_time=decision.event_time,
        record=record,
    )


def _deduplication_id(decision: Decision, record: Any) -> str:
    if decision.event_id:
        return decision.event_id
    canonical = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.sha256(canonical).hexdigest()


class ViolationReporter:
    """Queues a violation for the remediator, or in monitor mode tells people about it."""

    def __init__(
        self,
        queue: QueuePort | None,
        notifier: NotifierPort | None,
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
            violation_message(decision, record).to_body(),
            group_id=decision.function or "unknown-function",
            deduplication_id=_deduplication_id(decision, record),
        )
        return "queued"

    def report_denied(self, decision: Decision, record: Any) -> str:
        """Queue an allowed caller's denied Invoke for the broken-caller watch."""
        if self._queue is None:
            raise ConfigError(["QUEUE_URL is not set: denied calls cannot be checked"])
        self._queue.send(
            replace(violation_message(decision, record), kind=DENIED).to_body(),
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
            monitor_subject(decision.function, decision.caller),
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
