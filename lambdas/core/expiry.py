"""Temporary exceptions: which allow entries expire soon or have expired, and the notice
people get about them. Pure: no AWS SDK, no I/O, no clock (the time is passed in).

An entry's identity is its rule and what it allows (`AllowEntry.describe`); a notice is sent
once per identity, `expires` value and state (`expiring`, then `expired`), so that a changed
date is announced again and an unchanged one is not repeated every day (the scheduled run
records what it announced: `lambdas.adapters.notice_marks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from models.allowlist import AllowEntry, AllowlistConfig
from models.expiry import format_expires
from models.names import PROJECT

__all__ = ["DueException", "exceptions_due", "expiry_notice"]

State = Literal["expiring", "expired"]


@dataclass(frozen=True, slots=True)
class DueException:
    """An allow entry whose `expires` is past (`expired`) or within the window (`expiring`)."""

    rule: str
    index: int  # the entry's position in the rule's allow list
    entry: AllowEntry
    expires_at: datetime
    state: State

    @property
    def identity(self) -> str:
        return f"rule {self.rule}: {self.entry.describe()}"

    @property
    def expires(self) -> str:
        assert self.entry.expires is not None
        return format_expires(self.entry.expires)

    @property
    def mark(self) -> str:
        """What a notice about it is recorded under: identity, `expires` and state."""
        text = f"{self.identity}\n{self.expires}\n{self.state}"
        return f"expiry-notice#{hashlib.sha256(text.encode()).hexdigest()[:40]}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "entry": self.entry.describe(),
            "allow_index": self.index,
            "expires": self.expires,
            "no_longer_allows_from": self.expires_at.isoformat().replace("+00:00", "Z"),
            "state": self.state,
            "owner": self.entry.owner,
            "ticket": self.entry.ticket,
            "reason": self.entry.reason,
        }


def exceptions_due(config: AllowlistConfig, now: datetime, within: timedelta) -> list[DueException]:
    """Entries that no longer allow at `now`, or stop allowing by `now + within`."""
    found = []
    for rule in config.rules:
        for index, entry in enumerate(rule.allow):
            at = entry.expires_at
            if at is None or at > now + within:
                continue
            state: State = "expired" if now >= at else "expiring"
            found.append(DueException(rule.name, index, entry, at, state))
    return found


def _line(due: DueException, now: datetime) -> str:
    who = ", ".join(
        f"{name} {value}"
        for name, value in (("owner", due.entry.owner), ("ticket", due.entry.ticket))
        if value
    )
    if due.state == "expired":
        when = f"expired {due.expires}: no longer allowed since {due.expires_at:%Y-%m-%d %H:%M} UTC"
    else:
        days = (due.expires_at - now).total_seconds() / 86400
        when = (
            f"expires {due.expires}: allowed until {due.expires_at:%Y-%m-%d %H:%M} UTC "
            f"(in {days:.1f} days)"
        )
    reason = f"\n      reason: {due.entry.reason}" if due.entry.reason else ""
    return f"  - {due.identity}\n      {when}\n      {who or 'no owner or ticket given'}{reason}"


def expiry_notice(due: Sequence[DueException], now: datetime) -> tuple[str, str]:
    """(subject, text) of the notice about `due` (not empty)."""
    expired = [d for d in due if d.state == "expired"]
    expiring = [d for d in due if d.state == "expiring"]
    counts = []
    if expired:
        counts.append(f"{len(expired)} expired")
    if expiring:
        counts.append(f"{len(expiring)} expiring soon")
    subject = f"{PROJECT}: temporary allowlist exceptions: {', '.join(counts)}"
    lines = []
    if expired:
        lines += [
            "These allowlist exceptions have expired. Their callers are no longer allowed: "
            "an Invoke by them is a violation (and, in enforce mode, their access is taken "
            "away from the function's resource policy).",
            "",
            *(_line(d, now) for d in expired),
            "",
        ]
    if expiring:
        lines += [
            "These allowlist exceptions expire soon. Extend `expires` (or remove the entry) "
            "in the allowlist and deploy, or let them lapse.",
            "",
            *(_line(d, now) for d in expiring),
            "",
        ]
    lines.append("You are told once per entry and date: a changed `expires` is announced again.")
    return subject, "\n".join(lines)
