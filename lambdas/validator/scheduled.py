"""The validator's daily scheduled run: an EventBridge schedule rule invokes the validator with
its standard "Scheduled Event" (source `aws.events`, which only EventBridge itself can send),
and the handler hands it here instead of judging it as an Invoke.

The run is a list of tasks (`SCHEDULED_TASKS`), each a function of the `ScheduledRun` (the
allowlist, the time of the run, AWS clients) returning a summary that is logged. Tasks run in
order; one that fails does not stop the others, and the run then fails (the function's error
alarm and asynchronous retries apply), so every task must be safe to run again. To add a
daily task, write such a function and add it to `SCHEDULED_TASKS`.

This module imports boto3 (through the adapters): the handler imports it only for a
scheduled event.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.notice_marks import NoticeMarks
from lambdas.adapters.notifier import Notifier
from lambdas.core.expiry import exceptions_due, expiry_notice
from lambdas.core.ports import NoticeMarksPort, NotifierPort
from lambdas.runtime.settings import FINDINGS_FLAG
from lambdas.validator.envelope import is_scheduled
from models.allowlist import AllowlistConfig
from models.exceptions import ConfigError

__all__ = [
    "NOTICE_WINDOW",
    "SCHEDULED_TASKS",
    "ScheduledRun",
    "ScheduledRunError",
    "ScheduledTask",
    "announce_exceptions",
    "archive_allowed_findings",
    "is_scheduled",
    "run_scheduled",
]

# Entries expiring within this window are announced (once), as are expired ones.
NOTICE_WINDOW = timedelta(days=7)
# How long a notice is remembered after the entry's expiry: an expired entry still in the
# allowlist that long after is announced again, as a reminder.
NOTICE_MEMORY = timedelta(days=90)


@dataclass
class ScheduledRun:
    """What a scheduled task is given: the deployed allowlist, the time of the run (every
    task judges at this one instant), AWS clients and the function's environment."""

    config: AllowlistConfig
    now: datetime
    clients: ClientFactory = field(default_factory=ClientFactory)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    function_arn: str = ""  # the validator's own ARN (its account, region and partition)
    own_functions: AbstractSet[str] = frozenset()

    def setting(self, name: str) -> str:
        value = self.environ.get(name)
        if not value:
            raise ConfigError([f"{name} is not set: the scheduled run needs it"])
        return value

    def notifier(self) -> Notifier:
        return Notifier(self.clients.client("sns"), self.setting("TOPIC_ARN"))

    def notice_marks(self) -> NoticeMarks:
        return NoticeMarks(self.clients.client("dynamodb"), self.setting("RATE_TABLE"))


ScheduledTask = Callable[[ScheduledRun], dict[str, Any]]


class ScheduledRunError(Exception):
    """One or more scheduled tasks failed (each is named, with its error, in the log)."""


def announce_exceptions(
    config: AllowlistConfig,
    now: datetime,
    *,
    marks: NoticeMarksPort,
    notifier: NotifierPort,
    window: timedelta = NOTICE_WINDOW,
) -> dict[str, Any]:
    """One notice about the temporary exceptions that expired or expire within `window` and
    were not announced before (in that state, with that `expires`); none when there is
    nothing new. A notice that cannot be sent is not recorded: the next run sends it."""
    due = exceptions_due(config, now, window)
    new = [
        d
        for d in due
        if marks.claim(
            d.mark,
            now=now,
            keep_until=d.expires_at + NOTICE_MEMORY,
            about=f"{d.identity} ({d.state})",
        )
    ]
    if new:
        subject, text = expiry_notice(new, now)
        try:
            notifier.publish(subject, text, {"exceptions": [d.to_dict() for d in new]})
        except Exception:
            for d in new:
                marks.release(d.mark)
            raise
    return {
        "due": len(due),
        "announced": [d.to_dict() for d in new],
        "already_announced": len(due) - len(new),
    }


def _expiring_exceptions(run: ScheduledRun) -> dict[str, Any]:
    return announce_exceptions(
        run.config, run.now, marks=run.notice_marks(), notifier=run.notifier()
    )


def archive_allowed_findings(run: ScheduledRun) -> dict[str, Any]:
    """With Security Hub findings on: archive the active findings whose caller the deployed
    allowlist no longer makes a violation (allowed now, or the function no longer judged).
    A finding Security Hub refuses, or a call that fails, fails the task (the run is retried;
    archiving again is harmless)."""
    if run.environ.get(FINDINGS_FLAG, "").strip().lower() != "on":
        return {"skipped": "Security Hub findings are off"}
    from lambdas.runtime.findings import publisher_from_env

    publisher = publisher_from_env(run.function_arn, run.clients, environ=run.environ)
    if publisher is None:
        return {"skipped": "Security Hub findings are off"}
    published = publisher.reconcile(run.config, run.own_functions)
    summary = {
        "archived": published.archived,
        "still_violations": published.kept,
        "refused": published.failed,
    }
    if published.error or published.failed_count:
        raise RuntimeError(f"findings not archived: {published.error or ''} {summary}".strip())
    return summary


# name -> task, run in this order.
SCHEDULED_TASKS: dict[str, ScheduledTask] = {
    "expiring-exceptions": _expiring_exceptions,
    "security-hub-archive": archive_allowed_findings,
}


def run_scheduled(
    run: ScheduledRun,
    tasks: Mapping[str, ScheduledTask] | None = None,
    *,
    on_error: Callable[[str, Exception], None] | None = None,
) -> dict[str, Any]:
    """Run every task; {task name: its summary}. Raises ScheduledRunError after all ran when
    any failed (`on_error` is told about each failure first)."""
    results: dict[str, Any] = {}
    failed: list[str] = []
    for name, task in (SCHEDULED_TASKS if tasks is None else tasks).items():
        try:
            results[name] = task(run)
        except Exception as error:
            failed.append(name)
            results[name] = {"failed": f"{type(error).__name__}: {error}"}
            if on_error is not None:
                on_error(name, error)
    if failed:
        raise ScheduledRunError(f"scheduled task(s) failed: {', '.join(failed)}: {results}")
    return results
