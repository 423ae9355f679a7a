"""Which accounts' records are acted on: one rule for the validator, ingest and `scan`.

A record is judged for its function's account only when

- the account the event was recorded in (the EventBridge envelope's `account`, when there is
  one) owns the invoked function: a record cannot speak for another account's function;
- and that account is trusted: the function's own account, and in the central-account setup
  the member accounts listed in ALLOWED_ACCOUNTS; `scan` takes `--trust-account`.

Otherwise the decision is `invalid`, with the reason. Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import datetime
from typing import Any

from lambdas.core.decide import Decision, Verdict, decide
from models.allowlist import AllowlistConfig

__all__ = ["account_problem", "judge_record", "reject", "trusted_accounts"]


def trusted_accounts(listed: str | Iterable[str], own: str | None = None) -> frozenset[str]:
    """The trusted accounts: `listed` (comma-separated text or a list) and `own` if known."""
    items = listed.split(",") if isinstance(listed, str) else listed
    trusted = {a.strip() for a in items if a.strip()}
    if own:
        trusted.add(own)
    return frozenset(trusted)


def account_problem(
    event_account: str | None,
    function_account: str | None,
    trusted: Collection[str] | None,
) -> str | None:
    """Why the recording account may not speak for the function's account, or None.
    `trusted` None: every account is trusted (scan without --trust-account)."""
    if event_account is not None and function_account and function_account != event_account:
        return (
            f"the event comes from account {event_account} but the function is in account "
            f"{function_account}"
        )
    account = event_account or function_account
    if trusted is not None and account not in trusted:
        listed = ", ".join(sorted(trusted)) or "none"
        return f"account {account} is not a monitored account (trusted: {listed})"
    return None


def reject(decision: Decision, reason: str) -> Decision:
    """The decision turned `invalid` for a reason found outside the record."""
    return replace(decision, verdict=Verdict.INVALID, reason=reason)


def judge_record(
    record: Any,
    config: AllowlistConfig,
    *,
    own_functions: AbstractSet[str],
    trusted: Collection[str] | None,
    event_account: str | None = None,
    now: datetime | None = None,
) -> Decision:
    """The core's decision, made `invalid` when its account is not one to act on; `now`: when
    a record without a readable eventTime is judged (lambdas.core.decide)."""
    decision = decide(record, config, own_functions=own_functions, now=now)
    if decision.verdict is Verdict.INVALID or (event_account is None and decision.account is None):
        return decision
    problem = account_problem(event_account, decision.account, trusted)
    return reject(decision, problem) if problem else decision
