"""The broken-caller watch: after a rewrite, an allowed caller that is denied is `broken`.

A rewrite that took away access an allowed caller needed shows up in the pipeline's own
input: that caller's next Invoke of the rewritten resource is recorded with an
`AccessDenied*` errorCode. `decide` marks such a failed call (`denied_allowed`); within
`limits.watch_hours` after a rewrite of that very resource it becomes the verdict `broken`,
which names the caller, the rewrite that most likely caused it, and the command that undoes
it. Pure: no AWS SDK, no I/O; the watch itself is stored by an adapter (RewriteWatches) and
read back from backups by `scan --remediations`.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.core.decide import Decision, Verdict

__all__ = ["Watch", "broken_notice", "judge_denied", "parse_time", "watches_from_backups"]


@dataclass(frozen=True, slots=True)
class Watch:
    """One rewrite of one resource, watched until `until`."""

    resource: str
    rewritten_at: datetime
    until: datetime
    backup: str
    rule: str | None = None

    @classmethod
    def after(
        cls, resource: str, rewritten_at: datetime, backup: str, rule: str | None, hours: int
    ) -> Watch:
        return cls(resource, rewritten_at, rewritten_at + timedelta(hours=hours), backup, rule)

    def covers(self, moment: datetime) -> bool:
        return self.rewritten_at <= moment <= self.until


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (`Z` or an offset; naive = UTC), or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def judge_denied(
    decision: Decision, watches: Iterable[Watch], *, now: datetime | None = None
) -> Decision:
    """`decision` as `broken` when it is an allowed caller's denied call of a resource under
    a watch at the time of the call (the record's eventTime, else `now`); else unchanged."""
    if decision.verdict is not Verdict.FAILED_CALL or not decision.denied_allowed:
        return decision
    moment = parse_time(decision.event_time) or now or datetime.now(UTC)
    covering = [w for w in watches if w.resource == decision.function and w.covers(moment)]
    if not covering:
        return decision
    watch = max(covering, key=lambda w: w.rewritten_at)
    reason = (
        f"{decision.caller} is allowed by rule {decision.rule!r} but was denied after the "
        f"rewrite of {watch.resource} at {watch.rewritten_at.isoformat()}; undo it with: "
        f"{restore_command(watch.backup)}"
    )
    return replace(decision, verdict=Verdict.BROKEN, reason=reason)


def restore_command(backup: str) -> str:
    return f"invoke-audit restore {shlex.quote(backup)}"


def broken_notice(decision: Decision, watch: Watch, *, restored: str | None) -> tuple[str, str]:
    """Subject and text of the alert for a broken caller (`restored`: what the undo did)."""
    name = (decision.function or watch.resource).split(":function:", 1)[-1]
    subject = f"invoke-audit: an allowed caller of {name} is denied after a rewrite"
    lines = [
        f"{decision.caller} is allowed by rule {decision.rule!r} to invoke {decision.function},",
        f"but its Invoke at {decision.event_time} was denied (event {decision.event_id}).",
        "",
        f"The most likely cause: invoke-audit rewrote the resource policy at "
        f"{watch.rewritten_at.isoformat()} (backup {watch.backup}).",
    ]
    if restored:
        lines += ["", f"The rule sets on_broken: restore, so the rewrite was undone: {restored}"]
    else:
        lines += [
            "",
            "To undo the rewrite:",
            f"  {restore_command(watch.backup)}",
            "Then add what the caller needs to the allowlist, or set on_broken: restore on the "
            "rule to undo such rewrites automatically.",
        ]
    return subject, "\n".join(lines)


def watches_from_backups(
    backups: Iterable[tuple[str, Mapping[str, Any]]], *, hours: int
) -> list[Watch]:
    """The watches that remediation backups (uri, document) stand for; a backup that is no
    rewrite (a restore's safety copy) or has no time is skipped."""
    found: list[Watch] = []
    for uri, backup in backups:
        resource = backup.get("function")
        moment = parse_time(backup.get("time"))
        event = backup.get("event")
        if not isinstance(resource, str) or moment is None:
            continue
        if isinstance(event, Mapping) and "restore_of" in event:
            continue
        rule = backup.get("rule") if isinstance(backup.get("rule"), str) else None
        found.append(Watch.after(resource, moment, uri, rule, hours))
    return found
