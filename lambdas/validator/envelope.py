"""What the validator accepts from EventBridge, and the queue message it sends. Pure: no AWS SDK.

An envelope is judged only when it is what the rule delivers:

- `source` is `aws.lambda` and `detail-type` is "AWS API Call via CloudTrail";
- `account` (the account the event was recorded in) owns the invoked function: a record
  cannot speak for another account's function;
- and that account is trusted: the validator's own account, and in the central-account
  setup also the member accounts listed in env ALLOWED_ACCOUNTS (comma-separated).

Anything else is `invalid`, with the reason, and nothing is queued.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from lambdas.core.decide import Decision, Verdict, decide
from models.allowlist import AllowlistConfig

__all__ = [
    "DETAIL_TYPE",
    "SOURCE",
    "account_problem",
    "envelope_problem",
    "judge_envelope",
    "judge_record",
    "metric_name",
    "reject",
    "violation_message",
]

SOURCE = "aws.lambda"
DETAIL_TYPE = "AWS API Call via CloudTrail"


def envelope_problem(event: Any) -> str | None:
    """Why `event` is not an EventBridge CloudTrail envelope from Lambda, or None."""
    if not isinstance(event, Mapping):
        return f"the event must be a JSON object, not {type(event).__name__}"
    if event.get("source") != SOURCE:
        return f"source is {event.get('source')!r}, expected {SOURCE!r}"
    if event.get("detail-type") != DETAIL_TYPE:
        return f"detail-type is {event.get('detail-type')!r}, expected {DETAIL_TYPE!r}"
    if not isinstance(event.get("detail"), Mapping):
        return "no detail object: the CloudTrail record is missing"
    account = event.get("account")
    if not isinstance(account, str) or not (account.isdigit() and len(account) == 12):
        return f"account is {account!r}, expected 12 digits"
    return None


def account_problem(
    event_account: str | None,
    function_account: str | None,
    trusted_accounts: Collection[str],
) -> str | None:
    """Why the recording account may not speak for the function's account, or None."""
    if event_account is not None and function_account and function_account != event_account:
        return (
            f"the event comes from account {event_account} but the function is in account "
            f"{function_account}"
        )
    account = event_account or function_account
    if account not in trusted_accounts:
        listed = ", ".join(sorted(trusted_accounts)) or "none"
        return f"account {account} is not a monitored account (trusted: {listed})"
    return None


def reject(decision: Decision, reason: str) -> Decision:
    """The decision turned `invalid` for a reason found outside the record."""
    return replace(decision, verdict=Verdict.INVALID, reason=reason)


def judge_record(
    record: Any,
    config: AllowlistConfig,
    *,
    own_prefix: str,
    trusted_accounts: Collection[str],
    event_account: str | None = None,
) -> Decision:
    """The core's decision, made `invalid` when its account is not one to act on."""
    decision = decide(record, config, own_prefix=own_prefix)
    if decision.verdict is Verdict.INVALID or (event_account is None and decision.account is None):
        return decision
    problem = account_problem(event_account, decision.account, trusted_accounts)
    return reject(decision, problem) if problem else decision


def judge_envelope(
    event: Any,
    config: AllowlistConfig,
    *,
    own_prefix: str,
    trusted_accounts: Collection[str],
) -> tuple[Decision, Any]:
    """(decision, CloudTrail record) for one EventBridge event."""
    problem = envelope_problem(event)
    if problem:
        detail = event.get("detail") if isinstance(event, Mapping) else None
        event_id = detail.get("eventID") if isinstance(detail, Mapping) else None
        return Decision(event_id, Verdict.INVALID, f"not accepted: {problem}"), detail
    record = event["detail"]
    decision = judge_record(
        record,
        config,
        own_prefix=own_prefix,
        trusted_accounts=trusted_accounts,
        event_account=event["account"],
    )
    return decision, record


def metric_name(value: str) -> str:
    """`failed-call` -> `FailedCall`: one EMF metric per verdict (or outcome)."""
    return "".join(part.title() for part in str(value).split("-"))


def violation_message(decision: Decision, record: Any) -> dict[str, Any]:
    """The SQS message body for one violation (the remediator trusts none of it blindly)."""
    return {
        "kind": "violation",
        "event_id": decision.event_id,
        "function": decision.function,
        "rule": decision.rule,
        "mode": decision.mode,
        "caller": decision.caller,
        "reason": decision.reason,
        "account": decision.account,
        "region": decision.region,
        "event_time": decision.event_time,
        "record": record,
    }
