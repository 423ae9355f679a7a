"""What the validator accepts from EventBridge. Pure: no AWS SDK.

An envelope is judged only when it is what the rule delivers: a `models.cloudtrail`
`CloudTrailEnvelope` from `aws.lambda`, whose recording account is one to act on
(`lambdas.core.trust`: it owns the invoked function and is trusted: the validator's own
account, and in the central-account setup the member accounts in ALLOWED_ACCOUNTS).

Anything else is `invalid`, with the reason, and nothing is queued; except the daily
schedule rule's event (`is_scheduled`), which starts the scheduled run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any

from lambdas.core.decide import Decision, Verdict
from lambdas.core.trust import judge_record, reject
from models.allowlist import AllowlistConfig
from models.cloudtrail import CloudTrailEnvelope
from models.exceptions import InputError

__all__ = ["SCHEDULE_DETAIL_TYPE", "SCHEDULE_SOURCE", "is_scheduled", "judge_envelope"]

SCHEDULE_SOURCE = "aws.events"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"


def is_scheduled(event: Any) -> bool:
    """Is `event` the schedule rule's event? Source `aws.events` is EventBridge's own: no
    one else can put an event with it on a bus."""
    return (
        isinstance(event, Mapping)
        and event.get("source") == SCHEDULE_SOURCE
        and event.get("detail-type") == SCHEDULE_DETAIL_TYPE
    )


def judge_envelope(
    event: Any,
    config: AllowlistConfig,
    *,
    own_functions: AbstractSet[str],
    trusted_accounts: Collection[str],
    watched_regions: Collection[str] | None = None,
    now: datetime | None = None,
) -> tuple[Decision, Any]:
    """(decision, CloudTrail record) for one EventBridge event; an event of a region not in
    `watched_regions` (when given) is `invalid`: only the deployment's listed regions are
    forwarded to it, so another region's event did not come the way it should."""
    try:
        envelope = CloudTrailEnvelope.parse(event)
    except InputError as problem:
        detail = event.get("detail") if isinstance(event, Mapping) else None
        event_id = detail.get("eventID") if isinstance(detail, Mapping) else None
        return Decision(event_id, Verdict.INVALID, f"not accepted: {problem}"), detail
    decision = judge_record(
        envelope.detail,
        config,
        own_functions=own_functions,
        trusted=trusted_accounts,
        event_account=envelope.account,
        now=now,
    )
    if watched_regions is not None and envelope.region not in watched_regions:
        watched = ", ".join(sorted(watched_regions))
        decision = reject(
            decision, f"region {envelope.region} is not a watched region (watched: {watched})"
        )
    return decision, envelope.detail
