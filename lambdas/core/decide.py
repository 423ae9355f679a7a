"""The decision: one CloudTrail record + the allowlist -> a verdict a person understands.

Pure: no AWS SDK, no I/O. Used by the validator Lambda, the S3 ingest Lambda and
`invoke-audit scan`, so that there is exactly one place where a verdict is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from lambdas.core.decision_cache import DecisionCache, decision_key
from models.allowlist import AllowEntry, AllowlistConfig, Rule
from models.arns import FunctionRef, parse_function_arn
from models.cloudtrail import CloudTrailRecordModel, UserIdentityModel
from models.exceptions import InputError
from models.globs import matches
from models.regions import partition_of_region

__all__ = [
    "LAMBDA_SOURCE",
    "Caller",
    "Decision",
    "Verdict",
    "base_event_name",
    "decide",
    "resolve_caller",
    "resolve_function",
]

LAMBDA_SOURCE = "lambda.amazonaws.com"
DEFAULT_OWN_PREFIX = "invoke-audit-"
_SUFFIX = re.compile(r"\d{8}(v\d+)?\Z")
_ASSUMED_ROLE = re.compile(r"arn:(?P<p>[^:]+):sts::(?P<a>[^:]+):assumed-role/(?P<role>[^/]+)/")


class Verdict(StrEnum):
    ALLOWED = "allowed"
    VIOLATION = "violation"
    UNMONITORED = "unmonitored"
    IGNORED = "ignored"
    FAILED_CALL = "failed-call"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called: any of a service (invokedBy), a principal ARN and an account."""

    service: str | None = None
    principal: str | None = None
    account: str | None = None
    source_arn: str | None = None
    source_account: str | None = None
    identity_type: str | None = None

    def describe(self) -> str:
        if self.service:
            via = f" (as {self.principal})" if self.principal else ""
            source = f" for {self.source_arn}" if self.source_arn else ""
            return f"{self.service}{source}{via}"
        if self.principal:
            return self.principal
        return f"account {self.account}" if self.account else "unknown caller"


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
        }


def base_event_name(name: str) -> str:
    """`GetFunction20150331` -> `GetFunction`; `AddPermission20150331v2` -> `AddPermission`."""
    return _SUFFIX.sub("", name)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _short(text: str, limit: int = 200) -> str:
    """Record values quoted in a reason are cut: a huge field must not make a huge line."""
    return text if len(text) <= limit else text[:limit] + "..."


def resolve_function(record: CloudTrailRecordModel) -> FunctionRef:
    """The invoked resource: the function, version or alias whose policy governs the call."""
    params = record.requestParameters or {}
    extra = record.additionalEventData or {}
    region = record.awsRegion
    account = record.recipientAccountId
    partition: str | None = None  # a bare name's partition: the resource ARN's, else the region's
    for resource in record.resources or []:
        if resource.ARN and ":function:" in resource.ARN:
            account = account or resource.accountId
            partition = partition or resource.ARN.split(":")[1] or None
    partition = partition or (partition_of_region(region) if region else "aws")
    name = _text(params.get("functionName"))
    if name:
        ref = parse_function_arn(
            name, default_region=region, default_account=account, default_partition=partition
        )
        qualifier = _text(params.get("qualifier"))
        return ref if ref.qualifier or not qualifier else ref.with_qualifier(qualifier)
    version = _text(extra.get("functionVersion"))
    if version:
        return parse_function_arn(
            version, default_region=region, default_account=account, default_partition=partition
        )
    for resource in record.resources or []:
        if resource.ARN and ":function:" in resource.ARN:
            return parse_function_arn(resource.ARN, default_region=region, default_account=account)
    raise InputError(
        "no functionName, functionVersion or function resource: the function is unknown"
    )


def resolve_caller(identity: UserIdentityModel, params: Mapping[str, Any]) -> Caller:
    principal: str | None = None
    kind = identity.type
    issuer = identity.sessionContext.sessionIssuer if identity.sessionContext else None
    account = identity.accountId
    if kind == "AssumedRole":
        if issuer and issuer.arn:
            principal = issuer.arn
        elif identity.arn and (m := _ASSUMED_ROLE.match(identity.arn)):
            principal = f"arn:{m['p']}:iam::{m['a']}:role/{m['role']}"
    elif kind == "Root":
        principal = identity.arn or (f"arn:aws:iam::{account}:root" if account else None)
    elif kind in ("IAMUser", "FederatedUser", "IdentityCenterUser"):
        principal = identity.arn
    if account is None and principal and principal.count(":") >= 5:
        account = principal.split(":")[4] or None
    return Caller(
        service=identity.invokedBy,
        principal=principal,
        account=account,
        source_arn=_text(params.get("sourceArn")),
        source_account=_text(params.get("sourceAccount")),
        identity_type=kind,
    )


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


def _allowing_entry(rule: Rule, caller: Caller) -> AllowEntry | None:
    return next((e for e in rule.allow if entry_allows(e, caller)), None)


def _field_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"field {where}: {first['msg']}"


_DECISIONS: DecisionCache[Decision] = DecisionCache()


def decide(raw: Any, config: AllowlistConfig, *, own_prefix: str = DEFAULT_OWN_PREFIX) -> Decision:
    """Judge one CloudTrail record. Never raises: what cannot be judged is `invalid`.

    A record whose deciding fields were judged before under this allowlist gets that
    decision again, with its own event id, time and name (see lambdas.core.decision_cache).
    """
    key = decision_key(raw)
    if key is None:
        return _decide(raw, config, own_prefix)
    known = _DECISIONS.table(config, own_prefix)
    seen = known.get(key)
    if seen is None:
        seen = _decide(raw, config, own_prefix)
        if not seen.reason.startswith("cannot read the record"):
            known[key] = seen
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
    )


def _decide(raw: Any, config: AllowlistConfig, own_prefix: str) -> Decision:
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
            event_time=_text(raw.get("eventTime")),
            event_name=_text(raw.get("eventName")),
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
    if name != "Invoke":
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
    return _judge(found, ref, caller, record.errorCode, config, own_prefix)


def _judge(
    found: Decision,
    ref: FunctionRef,
    caller: Caller,
    error_code: str | None,
    config: AllowlistConfig,
    own_prefix: str,
) -> Decision:
    if ref.name.startswith(own_prefix):
        return replace(found, verdict=Verdict.IGNORED, reason="the pipeline's own function")
    protected = config.is_protected(ref)
    if protected:
        return replace(found, verdict=Verdict.IGNORED, reason=f"protected by {protected!r}")
    rule = config.rule_for(ref)
    if rule is not None:
        found = replace(found, rule=rule.name, mode=config.mode_of(rule))
    if error_code:
        reason = f"the call failed ({error_code}): nothing was invoked, nothing to remediate"
        return replace(found, verdict=Verdict.FAILED_CALL, reason=reason)
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
    entry = _allowing_entry(rule, caller)
    if entry is not None:
        reason = f"allowed by rule {rule.name!r}: {entry.describe()}"
        return replace(found, verdict=Verdict.ALLOWED, reason=reason)
    foreign = (
        f" from another account ({caller.account})"
        if caller.account and caller.account != ref.account and (caller.principal or caller.service)
        else ""
    )
    reason = f"{caller.describe()}{foreign} is not on the allowlist of rule {rule.name!r}"
    return replace(found, verdict=Verdict.VIOLATION, reason=reason)
