"""The remediation of one violation: shared by the remediator Lambda and `invoke-audit remediate`.

The message that asks for it is trusted for nothing but the function's ARN and the event to
quote; everything else is decided again here, in this order (DESIGN.md, "Safety rules"):

1. refuse protected functions and the pipeline's own; re-match the rule from our own config;
   a rule in `monitor` mode changes nothing;
2. read the invoked resource's policy (its own: alias, version or function) with its RevisionId;
3. rewrite it with the core: unchanged -> done, nothing written; no policy and nothing to add
   -> the caller's access is identity-based: reported;
4. prove it (lambdas.core.proof): IAM Access Analyzer's CheckNoNewAccess and
   CheckNoPublicAccess under `limits.proof`; a FAIL -> nothing backed up or written, people
   are told which check failed and why (outcome `proof-failed`);
4b. take one remediation from the hourly budget; past it -> RateLimitedError, nothing changed;
5. back up {original policy, RevisionId, event, planned changes, time} to S3: no backup, no write;
6. write with the RevisionId (compare-and-swap); a 412 -> read again, rewrite again, at most
   three times; throttling -> back off and retry, at most four tries;
7. verify what is stored (the write's own answer) passes the post-condition;
8. notify people: what was removed from which resource, why, where the backup is.

Races and lost answers. A remediation that loses the compare-and-swap wrote nothing: it
deletes the backup it made and, if the policy needs nothing more, gives its remediation back
to the hourly budget, so that one change costs one backup, one unit of budget, one email. A
412 that follows botocore's own retry may be about our own write (its answer was lost):
the backup stays, and a re-read that finds exactly our policy counts the change as made.
A redelivered message (an earlier attempt died after writing) that finds the policy already
compliant looks for the backup of its own event; if that backup's new policy is what is
stored, the change was its own and people are told now.

Errors it does not handle (AccessDenied, a policy AWS refuses, anything unknown) propagate:
the remediator fails the message, which ends in the dead-letter queue with its reason logged.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from lambdas.adapters.errors import (
    AwsError,
    PreconditionFailedError,
    ResourceGoneError,
    ThrottledError,
)
from lambdas.core.backups import OLD_UNQUALIFIED, UNQUALIFIED, backup_key, backup_prefix
from lambdas.core.guard import Standing, guard
from lambdas.core.notices import (
    rate_limit_notice,
    remediation_subject,
    remediation_summary,
    what_changed,
)
from lambdas.core.policy import same_policy
from lambdas.core.ports import (
    BackupPort,
    NotifierPort,
    PolicyState,
    PolicyStore,
    RateLimitPort,
)
from lambdas.core.proof import ProofFailedError, Prover, gate
from lambdas.core.rewrite import PolicyRewrite, rewrite_policy
from lambdas.runtime.quiet import QuietPeriod
from models.allowlist import AllowlistConfig, Rule
from models.arns import FunctionRef, parse_function_arn
from models.exceptions import InvokeAuditError, PostConditionError
from models.messages import ViolationMessage

__all__ = [
    "Outcome",
    "RateLimitedError",
    "RemediationResult",
    "Remediator",
    "Violation",
    "backup_key",
    "backup_prefix",
    "seconds_to_next_window",
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
    PROOF_FAILED = "proof-failed"  # the proof before writing failed: nothing was written


class RateLimitedError(InvokeAuditError):
    """The hourly remediation budget is spent: nothing was changed."""


@dataclass(frozen=True, slots=True)
class Violation:
    """What the queue message (or the CLI) asks to remediate."""

    function: str
    event_id: str | None = None
    caller: str | None = None
    reason: str | None = None
    event_time: str | None = None
    record: Any = None
    redelivered: bool = False  # SQS delivered this message before (an earlier attempt died)
    kind: str = "violation"  # or "denied": an allowed caller's denied Invoke (broken watch)

    @classmethod
    def from_message(cls, body: Any, *, receive_count: int = 1) -> Violation:
        """Read a queue message body (`models.messages`); InputError if it is not one."""
        message = ViolationMessage.from_body(body)
        return cls(
            function=message.function,
            event_id=message.event_id,
            caller=message.caller,
            reason=message.reason,
            event_time=message.event_time,
            record=message.record,
            redelivered=receive_count > 1,
            kind=message.kind,
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
    proof: str | None = None
    attempts: int = 0
    notified: bool = False
    notification_error: str | None = None
    cleanup_errors: list[str] = field(default_factory=list)
    # The request a refused rewrite would decide wrongly (lambdas.core.access).
    post_condition: str | None = None

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
            "proof": self.proof,
            "attempts": self.attempts,
            "notified": self.notified,
            "notification_error": self.notification_error,
            "cleanup_errors": self.cleanup_errors,
            "post_condition": self.post_condition,
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Remediator:
    """Remediates violations under one allowlist. `policies_for` gives the policy store for a
    function's account and region; `backups`, `limiter` and `notifier` may be None only where
    nothing is written (dry run) or on purpose (the CLI without a rate table or topic)."""

    config: AllowlistConfig
    policies_for: Callable[[FunctionRef], PolicyStore]
    backups: BackupPort | None
    limiter: RateLimitPort | None
    notifier: NotifierPort | None
    own_functions: AbstractSet[str] = frozenset()
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    quiet: QuietPeriod = field(default_factory=QuietPeriod)
    prover: Prover | None = None

    def remediate(self, violation: Violation, *, dry_run: bool = False) -> RemediationResult:
        ref = parse_function_arn(violation.function)
        result = RemediationResult(
            Outcome.REFUSED, ref.arn, "", event_id=violation.event_id, caller=violation.caller
        )
        rule = self._rule(ref, result)
        if rule is None:
            return result
        result.rule = rule.name
        # Expired exceptions allow nothing any more: the rewrite keeps no grant for them.
        rule = rule.in_force(self.clock())
        store = self.policies_for(ref)
        try:
            self._remediate(ref, rule, store, violation, result, dry_run=dry_run)
        except ResourceGoneError as error:
            if error.service != "lambda":
                raise
            result.outcome = Outcome.GONE
            result.detail = f"the function, version or alias no longer exists ({error.code})"
        except ProofFailedError as error:
            result.outcome = Outcome.PROOF_FAILED
            result.detail = f"nothing was written: {error.detail}"
        if dry_run:
            return result
        if (
            result.outcome in (Outcome.REMEDIATED, Outcome.PROOF_FAILED)
            or result.post_condition is not None
            or (
                result.outcome is Outcome.IDENTITY_BASED
                and self.quiet.first(result.function, violation.caller)
            )
        ):
            self._notify(violation, result)
        return result

    def _rule(self, ref: FunctionRef, result: RemediationResult) -> Rule | None:
        """The enforcing rule of a function that may be changed; None, with the reason, else."""
        place = guard(ref, self.config, self.own_functions)
        if place.may_change:
            return place.rule
        if place.rule is not None:
            result.rule = place.rule.name
        end = {
            Standing.OWN: ": never changed",
            Standing.PROTECTED: ": never changed",
            Standing.MONITOR: ": nothing is changed",
        }
        result.detail = place.reason() + end.get(place.standing, "")
        return None

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
        budget: datetime | None = None  # when a remediation was taken from the hourly budget
        in_doubt: dict[str, Any] | None = None  # a write that may have landed: {"policy": ...}
        sent = False  # a write was sent and not refused outright
        try:
            for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
                result.attempts = attempt
                current = self._retrying(store.read, ref)
                if in_doubt is not None and same_policy(current.document, in_doubt["policy"]):
                    self._done(result, current, "the write landed (its answer was lost)")
                    return
                try:
                    rewrite = rewrite_policy(current.document, rule, ref.arn)
                except PostConditionError as error:
                    # Nothing is written: the rewrite would decide a request wrongly.
                    result.api = current.api
                    result.revision_before = current.revision_id
                    result.policy_before = current.document
                    result.outcome = Outcome.REFUSED
                    result.detail = (
                        f"the rewrite fails its post-condition, nothing written: {error}"
                    )
                    result.post_condition = str(error)
                    return
                if not rewrite.changed:
                    if in_doubt is None:
                        self._record_plan(result, current, rewrite)
                        self._nothing_to_write(result, current)
                        self._recover(ref, violation, result, current)
                    else:
                        result.outcome = Outcome.UNCHANGED
                        result.detail = "another change made the policy compliant meanwhile"
                    return
                self._record_plan(result, current, rewrite)
                if dry_run:
                    result.outcome = Outcome.WOULD_REMEDIATE
                    result.detail = "dry run: the policy would be rewritten as shown"
                    return
                # The proof comes before the budget, the backup and the write: a change it
                # refuses costs none of them.
                result.proof = self._retrying(
                    gate,
                    self.prover,
                    self.config.limits.proof,
                    ref.arn,
                    current.document,
                    rewrite.policy,
                )
                budget = budget or self._take_budget()
                result.backup = self._backup(ref, rule, current, rewrite, violation)
                sent = True
                try:
                    stored = self._retrying(store.write, ref, current, rewrite.policy)
                except PreconditionFailedError as error:
                    if error.retry_attempts:
                        # botocore retried: an earlier try may have written before its answer
                        # was lost, and the 412 may be about our own write. Keep the backup.
                        in_doubt = {"policy": rewrite.policy}
                    else:
                        # Lost the compare-and-swap: nothing was written, so the backup of
                        # the policy we did not replace goes; the next round reads anew.
                        sent = in_doubt is not None
                        self._discard_backup(result)
                    if attempt == MAX_WRITE_ATTEMPTS:
                        raise
                    continue
                self._verify(stored, rule, ref)
                self._done(result, stored, what_changed(result.changes))
                return
        finally:
            if budget is not None and not sent:
                self._release_budget(budget, result)

    @staticmethod
    def _done(result: RemediationResult, stored: PolicyState, detail: str) -> None:
        result.outcome = Outcome.REMEDIATED
        result.revision_after = stored.revision_id
        result.policy_after = stored.document
        result.detail = detail

    def _recover(
        self,
        ref: FunctionRef,
        violation: Violation,
        result: RemediationResult,
        current: PolicyState,
    ) -> None:
        """A redelivered message finds the policy already compliant: if an earlier attempt of
        this very message backed it up and wrote what is there now, that attempt made the
        change and died before telling anyone. Report it as its change."""
        if not violation.redelivered or not violation.event_id or self.backups is None:
            return
        suffix = f"-{violation.event_id}.json"
        found = self._retrying(self.backups.latest, backup_prefix(ref), suffix)
        if found is None and ref.policy_qualifier is None:  # written before the key change
            old_prefix = backup_prefix(ref).removesuffix(f"{UNQUALIFIED}/") + OLD_UNQUALIFIED + "/"
            found = self._retrying(self.backups.latest, old_prefix, suffix)
        if found is None or not same_policy(found[1].get("new_policy"), current.document):
            return
        result.backup, backup = found
        result.changes = list(backup.get("changes") or [])
        result.policy_before = backup.get("policy")
        result.revision_before = backup.get("revision_id")
        self._done(
            result,
            current,
            "an earlier delivery of this message made the change and stopped before "
            f"telling anyone: {what_changed(result.changes)}",
        )

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
    def _nothing_to_write(result: RemediationResult, current: PolicyState) -> None:
        # No policy and nothing to write: the rule has no deny_others (with it the rewrite
        # always adds its Deny statement).
        if current.document is None:
            result.outcome = Outcome.IDENTITY_BASED
            result.detail = (
                "the resource has no resource-based policy: the caller's access comes from "
                "identity-based (IAM) policies, which a resource policy cannot take away "
                "unless the rule sets deny_others: true"
            )
        else:
            result.outcome = Outcome.UNCHANGED
            result.detail = (
                "the policy grants invoke to no caller outside the allowlist; a caller that "
                "still gets in does so through its identity-based (IAM) policies"
            )

    def _take_budget(self) -> datetime:
        """One remediation from this hour's budget (RateLimitedError past it); returns the
        moment it was taken, which names the hour to give it back to."""
        moment = self.clock()
        limiter = self.limiter
        if limiter is None:
            return moment
        limit = self.config.limits.max_remediations_per_hour
        if self._retrying(limiter.try_acquire, limit, now=moment):
            return moment
        error = RateLimitedError(
            f"the limit of {limit} remediations per hour is reached: nothing was changed"
        )
        if self.notifier is not None and self._retrying(limiter.first_trip, now=moment):
            subject, text = rate_limit_notice(str(error))
            self.notifier.publish(subject, text, {"limit": limit, "window": limiter.window(moment)})
        raise error

    def _release_budget(self, moment: datetime, result: RemediationResult) -> None:
        """Give back a remediation that changed nothing (another remediator won the race)."""
        if self.limiter is None:
            return
        try:
            self._retrying(self.limiter.release, now=moment)
        except AwsError as error:
            result.cleanup_errors.append(f"the hourly budget was not given back: {error}")

    def _discard_backup(self, result: RemediationResult) -> None:
        """Delete the backup of a write that did not happen."""
        uri, result.backup = result.backup, None
        if uri is None or self.backups is None:
            return
        try:
            self._retrying(self.backups.delete, uri)
        except AwsError as error:
            result.cleanup_errors.append(f"backup {uri} of a write that lost a race stays: {error}")

    def _backup(
        self,
        ref: FunctionRef,
        rule: Rule,
        current: PolicyState,
        rewrite: PolicyRewrite,
        violation: Violation,
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
            "rule": rule.name,
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
            pending = what_changed([c.to_dict() for c in again.changes])
            raise PostConditionError(f"{ref.arn}: the stored policy still needs changes: {pending}")

    def _retrying(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call(*args, **kwargs)`, backing off and trying again while AWS throttles (bounded)."""
        for attempt in range(1, MAX_THROTTLE_TRIES):
            try:
                return call(*args, **kwargs)
            except ThrottledError:
                self.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)) * (1 + random.random() / 2))
        return call(*args, **kwargs)  # the last try: a throttle now propagates

    def _notify(self, violation: Violation, result: RemediationResult) -> None:
        if self.notifier is None:
            return
        try:
            self.notifier.publish(
                remediation_subject(
                    result.function,
                    result.changes,
                    identity_based=result.outcome is Outcome.IDENTITY_BASED,
                    refused=result.post_condition is not None,
                    proof_failed=result.outcome is Outcome.PROOF_FAILED,
                ),
                summary(violation, result),
                result.to_dict() | {"event": violation.record},
            )
        except Exception as error:  # a network error too: the change is made, it must stand
            result.notification_error = str(error)
        else:
            result.notified = True


def summary(violation: Violation, result: RemediationResult) -> str:
    """The email a person reads (`lambdas.core.notices`)."""
    return remediation_summary(
        identity_based=result.outcome is Outcome.IDENTITY_BASED,
        function=result.function,
        rule=result.rule,
        detail=result.detail,
        changes=result.changes,
        backup=result.backup,
        caller=violation.caller,
        reason=violation.reason,
        event_id=violation.event_id,
        event_time=violation.event_time,
        proof=result.proof,
        proof_failed=result.outcome is Outcome.PROOF_FAILED,
    )


def seconds_to_next_window(now: datetime) -> int:
    """Seconds from `now` to the start of the next UTC hour (the rate limit's next budget),
    plus a few seconds so the message does not come back on the boundary."""
    moment = now.astimezone(UTC)
    start = moment.replace(minute=0, second=0, microsecond=0)
    return int((start - moment).total_seconds()) + 3600 + 5
