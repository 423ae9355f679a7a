"""The remediation of one violation: shared by the remediator Lambda and `invoke-audit remediate`.

The message that asks for it is trusted for nothing but the function's ARN and the event to
quote; everything else is decided again here, in this order (DESIGN.md, "Safety rules"):

1. refuse protected functions and the pipeline's own; re-match the rule from our own config;
   a rule in `monitor` mode changes nothing;
2. read the invoked resource's policy (its own: alias, version or function) with its RevisionId;
3. rewrite it with the core: unchanged -> done, nothing written; no policy and nothing to add
   -> the caller's access is identity-based: reported;
4. take one remediation from the hourly budget; past it -> RateLimitedError, nothing changed;
5. back up {original policy, RevisionId, event, planned changes, time} to S3: no backup, no write;
6. write with the RevisionId (compare-and-swap); a 412 -> read again, rewrite again, at most
   three times; throttling -> back off and retry, at most four tries;
7. verify what is stored (the write's own answer) passes the post-condition;
8. notify people: what was removed from which resource, why, where the backup is.

Errors it does not handle (AccessDenied, a policy AWS refuses, anything unknown) propagate:
the remediator fails the message, which ends in the dead-letter queue with its reason logged.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from lambdas.adapters.backup import BackupWriter
from lambdas.adapters.errors import (
    AwsError,
    PreconditionFailedError,
    ResourceGoneError,
    ThrottledError,
)
from lambdas.adapters.lambda_policy import PolicyState
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.core.arns import FunctionRef, parse_function_arn
from lambdas.core.exceptions import InputError, InvokeAuditError, PostConditionError
from lambdas.core.rewrite import PolicyRewrite, rewrite_policy
from models.allowlist import AllowlistConfig, Rule

__all__ = [
    "Outcome",
    "PolicyStore",
    "RateLimitedError",
    "RemediationResult",
    "Remediator",
    "Violation",
    "backup_key",
    "summary",
    "utcnow",
]

T = TypeVar("T")

MAX_WRITE_ATTEMPTS = 3
MAX_THROTTLE_TRIES = 4


class Outcome(StrEnum):
    REMEDIATED = "remediated"
    WOULD_REMEDIATE = "would-remediate"  # --dry-run
    UNCHANGED = "unchanged"
    IDENTITY_BASED = "identity-based"  # no resource policy: nothing to take away
    REFUSED = "refused"
    GONE = "gone"


class RateLimitedError(InvokeAuditError):
    """The hourly remediation budget is spent: nothing was changed."""


class PolicyStore(Protocol):
    """Reads and writes one resource's policy (lambdas.adapters.LambdaPolicies)."""

    def read(self, ref: FunctionRef) -> PolicyState: ...

    def write(
        self, ref: FunctionRef, current: PolicyState, target: dict[str, Any] | None
    ) -> PolicyState: ...


@dataclass(frozen=True, slots=True)
class Violation:
    """What the queue message (or the CLI) asks to remediate."""

    function: str
    event_id: str | None = None
    caller: str | None = None
    reason: str | None = None
    event_time: str | None = None
    record: Any = None

    @classmethod
    def from_message(cls, body: Any) -> Violation:
        """Read a queue message body (see the contract); InputError if it is not one."""
        if not isinstance(body, Mapping) or body.get("kind") != "violation":
            raise InputError("not a violation message (kind must be 'violation')")
        function = body.get("function")
        if not isinstance(function, str) or not function:
            raise InputError("the violation message names no function")

        def text(key: str) -> str | None:
            value = body.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            function=function,
            event_id=text("event_id"),
            caller=text("caller"),
            reason=text("reason"),
            event_time=text("event_time"),
            record=body.get("record"),
        )


@dataclass(slots=True)
class RemediationResult:
    outcome: Outcome
    function: str
    detail: str
    event_id: str | None = None
    caller: str | None = None
    rule: str | None = None
    api: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    revision_before: str | None = None
    revision_after: str | None = None
    policy_before: dict[str, Any] | None = None
    policy_after: dict[str, Any] | None = None
    backup: str | None = None
    attempts: int = 0
    notified: bool = False
    notification_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "function": self.function,
            "detail": self.detail,
            "event_id": self.event_id,
            "caller": self.caller,
            "rule": self.rule,
            "api": self.api,
            "changes": self.changes,
            "revision_before": self.revision_before,
            "revision_after": self.revision_after,
            "policy_before": self.policy_before,
            "policy_after": self.policy_after,
            "backup": self.backup,
            "attempts": self.attempts,
            "notified": self.notified,
            "notification_error": self.notification_error,
        }


def backup_key(ref: FunctionRef, moment: datetime, event_id: str) -> str:
    """`backups/{account}/{region}/{function}/{qualifier or $UNQUALIFIED}/{time}-{event}.json`"""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    qualifier = ref.policy_qualifier or "$UNQUALIFIED"
    return f"backups/{ref.account}/{ref.region}/{ref.name}/{qualifier}/{stamp}-{event_id}.json"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Remediator:
    """Remediates violations under one allowlist. `policies_for` gives the policy store for a
    function's account and region; `backups`, `limiter` and `notifier` may be None only where
    nothing is written (dry run) or on purpose (the CLI without a rate table or topic)."""

    config: AllowlistConfig
    policies_for: Callable[[FunctionRef], PolicyStore]
    backups: BackupWriter | None
    limiter: HourlyRateLimiter | None
    notifier: Notifier | None
    own_prefix: str = "invoke-audit-"
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep

    def remediate(self, violation: Violation, *, dry_run: bool = False) -> RemediationResult:
        ref = parse_function_arn(violation.function)
        result = RemediationResult(
            Outcome.REFUSED, ref.arn, "", event_id=violation.event_id, caller=violation.caller
        )
        rule = self._rule(ref, result)
        if rule is None:
            return result
        result.rule = rule.name
        store = self.policies_for(ref)
        try:
            self._remediate(ref, rule, store, violation, result, dry_run=dry_run)
        except ResourceGoneError as error:
            if error.service != "lambda":
                raise
            result.outcome = Outcome.GONE
            result.detail = f"the function, version or alias no longer exists ({error.code})"
        if result.outcome in (Outcome.REMEDIATED, Outcome.IDENTITY_BASED) and not dry_run:
            self._notify(violation, result)
        return result

    def _rule(self, ref: FunctionRef, result: RemediationResult) -> Rule | None:
        if ref.name.startswith(self.own_prefix):
            result.detail = "the pipeline's own function: never changed"
            return None
        pattern = self.config.is_protected(ref)
        if pattern:
            result.detail = f"protected by {pattern!r}: never changed"
            return None
        rule = self.config.rule_for(ref)
        if rule is None:
            result.detail = "no rule of the allowlist covers this function"
            return None
        if self.config.mode_of(rule) != "enforce":
            result.rule = rule.name
            result.detail = f"rule {rule.name!r} is in monitor mode: nothing is changed"
            return None
        return rule

    def _remediate(
        self,
        ref: FunctionRef,
        rule: Rule,
        store: PolicyStore,
        violation: Violation,
        result: RemediationResult,
        *,
        dry_run: bool,
    ) -> None:
        budget_taken = False
        for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
            result.attempts = attempt
            current = self._retrying(store.read, ref)
            rewrite = rewrite_policy(current.document, rule, ref.arn)
            self._record_plan(result, current, rewrite)
            if not rewrite.changed:
                self._nothing_to_write(result, current, rule)
                return
            if dry_run:
                result.outcome = Outcome.WOULD_REMEDIATE
                result.detail = "dry run: the policy would be rewritten as shown"
                return
            if not budget_taken:
                self._take_budget()
                budget_taken = True
            result.backup = self._backup(ref, current, rewrite, violation)
            try:
                stored = self._retrying(store.write, ref, current, rewrite.policy)
            except PreconditionFailedError:
                if attempt == MAX_WRITE_ATTEMPTS:
                    raise
                continue
            self._verify(stored, rule, ref)
            result.outcome = Outcome.REMEDIATED
            result.revision_after = stored.revision_id
            result.policy_after = stored.document
            result.detail = _what_changed(result.changes)
            return

    @staticmethod
    def _record_plan(
        result: RemediationResult, current: PolicyState, rewrite: PolicyRewrite
    ) -> None:
        result.api = current.api
        result.revision_before = current.revision_id
        result.policy_before = current.document
        result.policy_after = rewrite.policy
        result.changes = [c.to_dict() for c in rewrite.changes]

    @staticmethod
    def _nothing_to_write(result: RemediationResult, current: PolicyState, rule: Rule) -> None:
        if current.document is None:
            result.outcome = Outcome.IDENTITY_BASED
            result.detail = (
                "the resource has no resource-based policy: the caller's access comes from "
                "identity-based (IAM) policies, which a resource policy cannot take away "
                + ("" if rule.deny_others else "unless the rule sets deny_others: true")
            ).strip()
        else:
            result.outcome = Outcome.UNCHANGED
            result.detail = (
                "the policy grants invoke to no caller outside the allowlist; a caller that "
                "still gets in does so through its identity-based (IAM) policies"
            )

    def _take_budget(self) -> None:
        limiter = self.limiter
        if limiter is None:
            return
        limit = self.config.limits.max_remediations_per_hour
        if self._retrying(limiter.try_acquire, limit):
            return
        error = RateLimitedError(
            f"the limit of {limit} remediations per hour is reached: nothing was changed"
        )
        if self.notifier is not None and self._retrying(limiter.first_trip):
            self.notifier.publish(
                "invoke-audit: remediation rate limit reached, remediations paused",
                f"{error}.\n\nThe remediator changes no policy until the next hour. Messages "
                "stay in the queue and are retried; those retried too often go to the "
                "dead-letter queue. Many violations at once can mean an attack, or an allowlist "
                "that misses a legitimate caller: check before raising limits."
                "max_remediations_per_hour.",
                {"limit": limit, "window": limiter.window(self.clock())},
            )
        raise error

    def _backup(
        self, ref: FunctionRef, current: PolicyState, rewrite: PolicyRewrite, violation: Violation
    ) -> str:
        if self.backups is None:
            raise InvokeAuditError("no backup bucket: a policy is never changed without a backup")
        moment = self.clock()
        event_id = violation.event_id or f"manual-{uuid.uuid4()}"
        backup = {
            "function": ref.arn,
            "revision_id": current.revision_id,
            "policy": current.document,
            "api": current.api,
            "event": violation.record,
            "event_id": violation.event_id,
            "changes": [c.to_dict() for c in rewrite.changes],
            "new_policy": rewrite.policy,
            "time": moment.astimezone(UTC).isoformat(),
        }
        writer = self.backups
        return self._retrying(writer.put, backup_key(ref, moment, event_id), backup)

    @staticmethod
    def _verify(stored: PolicyState, rule: Rule, ref: FunctionRef) -> None:
        """The stored policy must pass the post-condition and need no further change."""
        again = rewrite_policy(stored.document, rule, ref.arn)
        if again.changed:
            pending = _what_changed([c.to_dict() for c in again.changes])
            raise PostConditionError(f"{ref.arn}: the stored policy still needs changes: {pending}")

    def _retrying(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, backing off and trying again while AWS throttles (bounded)."""
        for attempt in range(1, MAX_THROTTLE_TRIES + 1):
            try:
                return call(*args)
            except ThrottledError:
                if attempt == MAX_THROTTLE_TRIES:
                    raise
                self.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)) * (1 + random.random() / 2))
        raise AssertionError("unreachable")

    def _notify(self, violation: Violation, result: RemediationResult) -> None:
        if self.notifier is None:
            return
        try:
            self.notifier.publish(
                _subject(result),
                summary(violation, result),
                result.to_dict() | {"event": violation.record},
            )
        except AwsError as error:
            result.notification_error = str(error)
        else:
            result.notified = True


def _what_changed(changes: list[dict[str, Any]]) -> str:
    done = [c for c in changes if c["kind"] not in ("kept",)]
    return "; ".join(f"{c['kind']} {c['sid'] or '(no Sid)'}: {c['detail']}" for c in done) or "-"


def _subject(result: RemediationResult) -> str:
    name = result.function.split(":function:", 1)[-1]
    if result.outcome is Outcome.IDENTITY_BASED:
        return f"invoke-audit: {name} has no resource policy; review the caller's IAM access"
    removed = sum(1 for c in result.changes if c["kind"] in ("removed", "narrowed"))
    return f"invoke-audit: resource policy of {name} rewritten ({removed} grant(s) removed)"


_VERBS = {
    "removed": "Removed",
    "narrowed": "Narrowed",
    "tightened": "Tightened",
    "added": "Added",
    "reported": "Left for review",
}


def summary(violation: Violation, result: RemediationResult) -> str:
    """The email a person reads: what changed on which resource, why, and how to undo it."""
    lines = []
    if result.outcome is Outcome.IDENTITY_BASED:
        lines += [
            f"{violation.caller or 'A caller'} invoked {result.function}, which is not allowed by "
            f"rule {result.rule!r}.",
            "",
            f"Nothing was changed: {result.detail}.",
            "Review the IAM policies of the caller, or set deny_others: true on the rule to add "
            "an explicit Deny.",
        ]
    else:
        lines += [
            f"invoke-audit rewrote the resource-based policy of {result.function}.",
            "",
            f"Why: {violation.reason or 'a caller outside the allowlist invoked it'}",
        ]
        lines += ["", "What changed:"]
        for change in result.changes:
            verb = _VERBS.get(change["kind"])
            if verb is None:
                continue
            who = (
                f" (principals: {', '.join(change['principals'])})" if change["principals"] else ""
            )
            lines.append(
                f"  - {verb} statement {change['sid'] or '(no Sid)'}: {change['detail']}{who}"
            )
        lines += [
            "",
            f"Backup of the original policy: {result.backup}",
            f"To undo: invoke-audit restore {result.backup}",
        ]
    lines += [
        "",
        f"Rule: {result.rule}",
        f"Caller: {violation.caller}",
        f"Event: {violation.event_id} at {violation.event_time}",
    ]
    return "\n".join(lines)
