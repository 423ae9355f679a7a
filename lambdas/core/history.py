"""History: the distinct caller tuples an engine (Athena, DuckDB) aggregated, judged by `decide`.

The engine scans and groups; it knows nothing of verdicts. For every distinct tuple of the
fields `decide` reads (the invoked function and qualifier, the caller's identity fields,
invokedBy, source ARN and account, errorCode, eventName) it returns how many records had it,
when it was first and last seen, and in which accounts and regions. Here each tuple becomes
one CloudTrail record again, with exactly those fields, and the one `decide` judges it: the
verdict of the tuple is the verdict of every record it stands for.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, fields
from typing import Any

from lambdas.core.decide import Decision, decide
from lambdas.core.record import (
    FUNCTION_NAME,
    FUNCTION_VERSION,
    IDENTITY_ACCOUNT,
    IDENTITY_ARN,
    IDENTITY_TYPE,
    INVOKED_BY,
    ISSUER_ARN,
    QUALIFIER,
    SOURCE_ACCOUNT,
    SOURCE_ARN,
    FieldPath,
)
from models.allowlist import AllowlistConfig

__all__ = [
    "TUPLE_FIELDS",
    "CallerTuple",
    "JudgedTuple",
    "TupleStats",
    "judge_tuples",
    "merge_aggregates",
    "tuple_record",
]


@dataclass(frozen=True, slots=True)
class CallerTuple:
    """The fields of a Lambda record that `decide` reads. The session ARN of an assumed role
    (`identity_arn`) is dropped by the engine when the session issuer names the role, as
    `decide` then reads the issuer: sessions would otherwise make every call its own tuple."""

    event_source: str | None
    event_name: str | None
    aws_region: str | None
    recipient_account_id: str | None
    error_code: str | None
    function_name: str | None
    qualifier: str | None
    source_arn: str | None
    source_account: str | None
    function_version: str | None
    resource_arn: str | None
    resource_account: str | None
    no_identity: bool
    identity_type: str | None
    identity_arn: str | None
    identity_account: str | None
    invoked_by: str | None
    issuer_arn: str | None


TUPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CallerTuple))


@dataclass(slots=True)
class TupleStats:
    """How often a tuple was seen, when, and where."""

    records: int
    first_seen: str | None
    last_seen: str | None
    accounts: set[str] = field(default_factory=set)
    regions: set[str] = field(default_factory=set)

    def merge(self, other: TupleStats) -> None:
        self.records += other.records
        self.first_seen = _earliest(self.first_seen, other.first_seen)
        self.last_seen = _latest(self.last_seen, other.last_seen)
        self.accounts |= other.accounts
        self.regions |= other.regions


def _earliest(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else max(a, b)


def merge_aggregates(
    into: dict[CallerTuple, TupleStats], rows: Iterable[tuple[CallerTuple, TupleStats]]
) -> None:
    """Add one engine run's rows (a batch of files, a page of results) to the totals."""
    for key, stats in rows:
        seen = into.get(key)
        if seen is None:
            into[key] = stats
        else:
            seen.merge(stats)


def _put(record: dict[str, Any], path: FieldPath, value: Any) -> None:
    """Set `value` at `path` (creating the objects on the way); None sets nothing."""
    if value is None:
        return
    node = record
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value


def tuple_record(key: CallerTuple, event_time: str | None = None) -> dict[str, Any]:
    """The CloudTrail record a tuple stands for: the fields `decide` reads (at the paths of
    `lambdas.core.record`, the one reader of records), nothing else."""
    record: dict[str, Any] = {}
    for name, value in (
        ("eventSource", key.event_source),
        ("eventName", key.event_name),
        ("awsRegion", key.aws_region),
        ("recipientAccountId", key.recipient_account_id),
        ("errorCode", key.error_code),
        ("eventTime", event_time),
    ):
        _put(record, (name,), value)
    for path, value in (
        (FUNCTION_NAME, key.function_name),
        (QUALIFIER, key.qualifier),
        (SOURCE_ARN, key.source_arn),
        (SOURCE_ACCOUNT, key.source_account),
        (FUNCTION_VERSION, key.function_version),
    ):
        _put(record, path, value)
    if key.resource_arn is not None:
        resource = {"ARN": key.resource_arn}
        _put(resource, ("accountId",), key.resource_account)
        record["resources"] = [resource]
    if not key.no_identity:
        record["userIdentity"] = {}
        for path, value in (
            (IDENTITY_TYPE, key.identity_type),
            (IDENTITY_ARN, key.identity_arn),
            (IDENTITY_ACCOUNT, key.identity_account),
            (INVOKED_BY, key.invoked_by),
            (ISSUER_ARN, key.issuer_arn),
        ):
            _put(record, path, value)
    return record


@dataclass(frozen=True, slots=True)
class JudgedTuple:
    decision: Decision
    stats: TupleStats

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {
            "verdict": d.verdict.value,
            "count": self.stats.records,
            "function": d.function,
            "caller": d.caller,
            "caller_account": d.caller_account,
            "rule": d.rule,
            "mode": d.mode,
            "reason": d.reason,
            "event_name": d.event_name,
            "first_seen": self.stats.first_seen,
            "last_seen": self.stats.last_seen,
            "accounts": sorted(self.stats.accounts),
            "regions": sorted(self.stats.regions),
        }


_ORDER = {"violation": 0, "invalid": 1, "failed-call": 2, "unmonitored": 3, "allowed": 4}


def judge_tuples(
    aggregates: Mapping[CallerTuple, TupleStats],
    config: AllowlistConfig,
    *,
    own_functions: AbstractSet[str] = frozenset(),
) -> list[JudgedTuple]:
    """Every tuple judged by `decide`; violations first, then by count."""
    judged = [
        JudgedTuple(
            decide(tuple_record(key, stats.first_seen), config, own_functions=own_functions), stats
        )
        for key, stats in aggregates.items()
    ]
    judged.sort(
        key=lambda j: (
            _ORDER.get(j.decision.verdict.value, 5),
            -j.stats.records,
            j.decision.function or "",
            j.decision.caller or "",
        )
    )
    return judged
