"""The decision: one CloudTrail record + the allowlist -> a verdict a person understands.

Pure: no AWS SDK, no I/O, no clock. Used by the validator Lambda, the S3 ingest Lambda and
`invoke-audit scan`, so that there is exactly one place where a verdict is made.

Time matters only for temporary exceptions (allow entries with `expires`): a call is judged
at the time CloudTrail recorded it (`eventTime`), or, for a record without a readable one, at
the `now` its caller passes in; with neither, an entry that expires does not allow (its
expiry cannot be checked).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from lambdas.core.decision_cache import DecisionCache
from lambdas.core.guard import Standing, guard
from lambdas.core.record import (
    INVOCATIONS,
    LAMBDA_SOURCE,
    Caller,
    base_event_name,
    decision_key,
    resolve_caller,
    resolve_function,
    text,
)
from models.allowlist import AllowEntry, AllowlistConfig, Rule
from models.arns import FunctionRef
from models.cloudtrail import CloudTrailRecordModel
from models.exceptions import InputError
from models.expiry import format_expires
from models.globs import matches

__all__ = ["Decision", "Verdict", "decide", "entry_allows", "judgment_time"]


class Verdict(StrEnum):
    ALLOWED = "allowed"
    VIOLATION = "violation"
    UNMONITORED = "unmonitored"
    IGNORED = "ignored"
    FAILED_CALL = "failed-call"
    INVALID = "invalid"
    BROKEN = "broken"  # an allowed caller denied after a rewrite (lambdas.core.watch)


@dataclass(frozen=True, slots=True)
class Decision:
    event_id: str | None
    verdict: Verdict
    reason: str
    function: str | None = None
    caller: str | None = None
    rule: str | None = None
    mode: str | None = None
    event_time: str | None = None
    event_name: str | None = None
    account: str | None = None
    region: str | None = None
    caller_account: str | None = None
    # A failed call (AccessDenied*) by a caller the rule allows: a rewrite may have broken it.
    denied_allowed: bool = False
    # The temporary exception (allow entry with expires, owner, ticket) that allowed the
    # caller, or that no longer does because it expired (the verdict says which).
    exception_expires: str | None = None
    exception_owner: str | None = None
    exception_ticket: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "verdict": self.verdict.value,
            "function": self.function,
            "caller": self.caller,
            "rule": self.rule,
            "mode": self.mode,
            "reason": self.reason,
            "event_time": self.event_time,
            "event_name": self.event_name,
            "account": self.account,
            "region": self.region,
            "caller_account": self.caller_account,
            "denied_allowed": self.denied_allowed,
            "exception_expires": self.exception_expires,
            "exception_owner": self.exception_owner,
            "exception_ticket": self.exception_ticket,
        }


def _short(text: str, limit: int = 200) -> str:
    """Record values quoted in a reason are cut: a huge field must not make a huge line."""
    return text if len(text) <= limit else text[:limit] + "..."


def entry_allows(entry: AllowEntry, caller: Caller) -> bool:
    if entry.service is not None:
        if entry.service != caller.service:
            return False
        if (
            entry.source_arn
            and caller.source_arn
            and not matches(entry.source_arn, caller.source_arn)
        ):
            return False
        return not (
            entry.source_account
            and caller.source_account
            and entry.source_account != caller.source_account
        )
    if entry.principal is not None:
        return caller.principal is not None and matches(entry.principal, caller.principal)
    return caller.account is not None and entry.account == caller.account


def _allowing_entry(rule: Rule, caller: Caller, at: datetime | None) -> AllowEntry | None:
    """The first entry that allows `caller` at `at` (None: an unknown time, at which only
    entries without `expires` allow)."""
    return next(
        (
            e
            for e in rule.allow
            if entry_allows(e, caller)
            and (e.expires is None or (at is not None and e.in_force(at)))
        ),
        None,
    )


def _lapsed_entry(rule: Rule, caller: Caller) -> AllowEntry | None:
    """The first entry with `expires` that would allow `caller` but for its expiry."""
    return next((e for e in rule.allow if e.expires is not None and entry_allows(e, caller)), None)


def _with_exception(decision: Decision, entry: AllowEntry) -> Decision:
    return replace(
        decision,
        exception_expires=format_expires(entry.expires) if entry.expires is not None else None,
        exception_owner=entry.owner,
        exception_ticket=entry.ticket,
    )


def judgment_time(raw: Any, now: datetime | None) -> datetime | None:
    """When a record's call is judged: its `eventTime` (UTC), else `now`."""
    value = raw.get("eventTime") if isinstance(raw, Mapping) else None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.strip())
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):  # not a time, or one that falls outside UTC's years
            return now
    return now


def _epoch(instants: tuple[datetime, ...], at: datetime | None) -> int:
    """How many of the allowlist's expiry instants have passed at `at` (-1: time unknown).
    Decisions differ only between epochs: it is part of the cache key."""
    return -1 if at is None else bisect_right(instants, at)


def _field_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"field {where}: {first['msg']}"


_DECISIONS: DecisionCache[Decision] = DecisionCache()


def decide(
    raw: Any,
    config: AllowlistConfig,
    *,
    own_functions: AbstractSet[str] = frozenset(),
    now: datetime | None = None,
) -> Decision:
    """Judge one CloudTrail record. Never raises: what cannot be judged is `invalid`.

    `now` (aware) is when a record without a readable `eventTime` is judged: the caller's
    clock. A record whose deciding fields were judged before under this allowlist, between
    the same two expiry instants, gets that decision again, with its own event id, time and
    name (see lambdas.core.decision_cache): a remembered "allowed" never outlives the
    exception that allowed it.
    """
    # The time is read only where an entry expires: most allowlists have none.
    instants = config.expiry_instants
    at = judgment_time(raw, now) if instants else now
    key = decision_key(raw)
    if key is None:
        return _decide(raw, config, own_functions, at)
    slot = (key, _epoch(instants, at)) if instants else key
    known = _DECISIONS.table(config, own_functions)
    seen = known.get(slot)
    if seen is None:
        seen = _decide(raw, config, own_functions, at)
        if not seen.reason.startswith("cannot read the record"):
            known[slot] = seen
        return seen
    return Decision(
        raw.get("eventID"),
        seen.verdict,
        seen.reason,
        seen.function,
        seen.caller,
        seen.rule,
        seen.mode,
        raw.get("eventTime"),
        raw.get("eventName"),
        seen.account,
        seen.region,
        seen.caller_account,
        seen.denied_allowed,
        seen.exception_expires,
        seen.exception_owner,
        seen.exception_ticket,
    )


def _decide(
    raw: Any, config: AllowlistConfig, own_functions: AbstractSet[str], at: datetime | None = None
) -> Decision:
    if not isinstance(raw, Mapping):
        kind = type(raw).__name__
        return Decision(None, Verdict.INVALID, f"a record must be a JSON object, not {kind}")
    event_id = raw.get("eventID") if isinstance(raw.get("eventID"), str) else None
    source = raw.get("eventSource")
    if isinstance(source, str) and source and source != LAMBDA_SOURCE:
        # Other services' records are not read further: their odd fields are not ours to judge.
        reason = f"not a Lambda record: eventSource is {_short(source)!r}"
        return Decision(
            event_id,
            Verdict.IGNORED,
            reason,
            event_time=text(raw.get("eventTime")),
            event_name=text(raw.get("eventName")),
        )
    try:
        record = CloudTrailRecordModel.model_validate(raw)
    except ValidationError as exc:
        return Decision(event_id, Verdict.INVALID, f"cannot read the record: {_field_problem(exc)}")
    found = Decision(
        record.eventID,
        Verdict.INVALID,
        "",
        event_time=record.eventTime,
        event_name=record.eventName,
    )
    if record.eventSource != LAMBDA_SOURCE:
        why = (
            f"eventSource is {_short(record.eventSource)!r}"
            if record.eventSource
            else "no eventSource"
        )
        verdict = Verdict.IGNORED if record.eventSource else Verdict.INVALID
        return replace(found, verdict=verdict, reason=f"not a Lambda record: {why}")
    name = base_event_name(record.eventName or "")
    if name not in INVOCATIONS:
        reason = {
            "": "no eventName",
            "InvokeExecution": "InvokeExecution is the asynchronous run of an Invoke already recorded",
        }.get(name, f"not an Invoke ({_short(name)})")
        return replace(found, verdict=Verdict.IGNORED if name else Verdict.INVALID, reason=reason)
    try:
        ref = resolve_function(record)
    except InputError as exc:
        return replace(found, reason=str(exc))
    found = replace(found, function=ref.arn, account=ref.account, region=ref.region)
    if record.userIdentity is None:
        return replace(found, reason="no userIdentity: the caller is unknown")
    caller = resolve_caller(record.userIdentity, record.requestParameters or {})
    found = replace(found, caller=caller.describe(), caller_account=caller.account)
    return _judge(found, ref, caller, record.errorCode, config, own_functions, at)


def _judge(
    found: Decision,
    ref: FunctionRef,
    caller: Caller,
    error_code: str | None,
    config: AllowlistConfig,
    own_functions: AbstractSet[str],
    at: datetime | None,
) -> Decision:
    place = guard(ref, config, own_functions)
    if place.standing in (Standing.OWN, Standing.PROTECTED):
        return replace(found, verdict=Verdict.IGNORED, reason=place.reason())
    rule = place.rule
    if rule is not None:
        found = replace(found, rule=rule.name, mode=place.mode)
    if error_code:
        reason = f"the call failed ({error_code}): nothing was invoked, nothing to remediate"
        allowed_by = (
            _allowing_entry(rule, caller, at)
            if rule is not None
            and error_code.startswith("AccessDenied")
            and (caller.service or caller.principal or caller.account)
            else None
        )
        if rule is not None and allowed_by is not None:
            reason += f"; the caller is allowed by rule {rule.name!r}: {allowed_by.describe()}"
        return replace(
            found,
            verdict=Verdict.FAILED_CALL,
            reason=reason,
            denied_allowed=allowed_by is not None,
        )
    if rule is None:
        if config.defaults.unmatched == "ignore":
            return replace(
                found, verdict=Verdict.IGNORED, reason="no rule covers it (unmatched: ignore)"
            )
        return replace(found, verdict=Verdict.UNMONITORED, reason="no rule covers this function")
    if not (caller.service or caller.principal or caller.account):
        kind = caller.identity_type
        return replace(
            found, reason=f"userIdentity of type {kind!r} names no service, principal or account"
        )
    entry = _allowing_entry(rule, caller, at)
    if entry is not None:
        note = entry.exception_note()
        reason = f"allowed by rule {rule.name!r}: {entry.describe()}" + (
            f" (temporary exception: {note})" if entry.expires is not None else ""
        )
        allowed = replace(found, verdict=Verdict.ALLOWED, reason=reason)
        return _with_exception(allowed, entry) if note else allowed
    foreign = (
        f" from another account ({caller.account})"
        if caller.account and caller.account != ref.account and (caller.principal or caller.service)
        else ""
    )
    reason = f"{caller.describe()}{foreign} is not on the allowlist of rule {rule.name!r}"
    lapsed = _lapsed_entry(rule, caller)
    if lapsed is None:
        return replace(found, verdict=Verdict.VIOLATION, reason=reason)
    why = "expired" if at is not None else "cannot be applied: the time of the call is unknown"
    reason += f": its exception {why} ({lapsed.describe()}, {lapsed.exception_note()})"
    return _with_exception(replace(found, verdict=Verdict.VIOLATION, reason=reason), lapsed)
