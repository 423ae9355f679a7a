"""The history query, written once in Athena's dialect (Trino) against the CloudTrail table
of `models.athena_table`; DuckDB runs the same text transpiled by sqlglot.

The query only scans and groups: one row per distinct caller tuple (the fields `decide` reads,
`lambdas.core.history.CallerTuple`, in that order) with its count, first and last event time,
and the accounts and regions it was seen in. The filters are the partition keys (`account`,
`region`, `timestamp`: Athena reads only the matching S3 prefixes) and the event time.
Filter values are checked against strict patterns before they become SQL literals.

Per-dialect differences: none in the query text. The table differs: in Athena `account`,
`region` and `timestamp` are projected partition keys (the log file's S3 folder); over local
files DuckDB derives them from each record (`recipientAccountId`, `awsRegion`, the date of
`eventTime`), see `cli.history_duckdb`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from lambdas.core.history import TUPLE_FIELDS
from lambdas.core.record import (
    ASSUMED_ROLE,
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
from models.exceptions import InputError

__all__ = ["DUCKDB_TABLE", "HistoryFilter", "athena_query", "duckdb_query", "trino_query"]

DUCKDB_TABLE = "cloudtrail"


def _json(path: FieldPath) -> str:
    """A field inside a column Athena keeps as JSON text (requestParameters, ...)."""
    return f"json_extract_scalar({path[0].lower()}, '$.{'.'.join(path[1:])}')"


def _struct(path: FieldPath) -> str:
    """A field of a struct column (userIdentity); the table's names are lowercase."""
    return ".".join(name.lower() for name in path)


# One expression per CallerTuple field, in order; the field paths are the record reader's.
_TUPLE_EXPRESSIONS = (
    "eventsource",
    "eventname",
    "awsregion",
    "recipientaccountid",
    "errorcode",
    _json(FUNCTION_NAME),
    _json(QUALIFIER),
    _json(SOURCE_ARN),
    _json(SOURCE_ACCOUNT),
    # decide reads functionVersion only when there is no functionName (Step Functions)
    f"CASE WHEN coalesce({_json(FUNCTION_NAME)}, '') = '' THEN {_json(FUNCTION_VERSION)} END",
    "element_at(filter(resources, r -> r.arn LIKE '%:function:%'), 1).arn",
    "element_at(filter(resources, r -> r.arn LIKE '%:function:%'), 1).accountid",
    "useridentity IS NULL",
    _struct(IDENTITY_TYPE),
    # decide reads the session ARN of an assumed role only when no session issuer names the role
    f"CASE WHEN {_struct(IDENTITY_TYPE)} = '{ASSUMED_ROLE}' AND {_struct(ISSUER_ARN)} <> ''"
    f" THEN NULL ELSE {_struct(IDENTITY_ARN)} END",
    _struct(IDENTITY_ACCOUNT),
    _struct(INVOKED_BY),
    _struct(ISSUER_ARN),
)
assert len(_TUPLE_EXPRESSIONS) == len(TUPLE_FIELDS)

_STATS = (
    "count(*) AS records",
    "min(eventtime) AS first_seen",
    "max(eventtime) AS last_seen",
    "array_join(array_sort(array_agg(DISTINCT account)), ',') AS accounts",
    "array_join(array_sort(array_agg(DISTINCT region)), ',') AS regions",
)

_ACCOUNT = re.compile(r"\d{12}\Z")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d\Z")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_]{1,255}\Z")


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which records to aggregate: event dates (inclusive, UTC), accounts, regions."""

    since: date | None = None
    until: date | None = None
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for account in self.accounts:
            if not _ACCOUNT.match(account):
                raise InputError(f"--accounts: {account!r} is not a 12-digit account id")
        for region in self.regions:
            if not _REGION.match(region):
                raise InputError(f"--regions: {region!r} is not a region name (us-east-1)")
        if self.since and self.until and self.since > self.until:
            raise InputError(f"--since {self.since} is after --until {self.until}")

    def where(self) -> str:
        clauses = [
            "(eventsource = 'lambda.amazonaws.com'"
            " OR (eventsource IS NULL AND eventname IS NOT NULL))"
        ]
        # A log file's date folder is its delivery date: a record of the day before can be in
        # it (delivered after midnight). The partitions get a day of slack either side; the
        # event time decides.
        if self.since:
            day = (self.since - timedelta(days=1)).strftime("%Y/%m/%d")
            clauses.append(f"\"timestamp\" >= '{day}'")
            clauses.append(f"eventtime >= '{self.since.isoformat()}'")
        if self.until:
            day = (self.until + timedelta(days=1)).strftime("%Y/%m/%d")
            clauses.append(f"\"timestamp\" <= '{day}'")
            clauses.append(f"eventtime < '{(self.until + timedelta(days=1)).isoformat()}'")
        if self.accounts:
            clauses.append(f"account IN ({', '.join(repr(a) for a in self.accounts)})")
        if self.regions:
            clauses.append(f"region IN ({', '.join(repr(r) for r in self.regions)})")
        return "\n  AND ".join(clauses)


def trino_query(table: str, where: HistoryFilter) -> str:
    """The aggregation in Athena's (Trino) dialect; `table` is already quoted."""
    selected = ",\n  ".join(
        f"{expression} AS {name}"
        for expression, name in zip(_TUPLE_EXPRESSIONS, TUPLE_FIELDS, strict=True)
    )
    groups = ", ".join(str(i) for i in range(1, len(TUPLE_FIELDS) + 1))
    stats = ",\n  ".join(_STATS)
    return (
        f"SELECT\n  {selected},\n  {stats}\nFROM {table}\nWHERE {where.where()}\nGROUP BY {groups}"
    )


def athena_query(database: str, table: str, where: HistoryFilter) -> str:
    for what, name in (("--database", database), ("--table", table)):
        if not _TABLE_NAME.match(name):
            raise InputError(f"{what} {name!r}: use letters, digits and _")
    return trino_query(f'"{database}"."{table}"', where)


def duckdb_query(where: HistoryFilter) -> str:
    """The same query, transpiled from Trino to DuckDB by sqlglot."""
    import sqlglot  # only when DuckDB runs: keeps the CLI quick to start

    return str(sqlglot.transpile(trino_query(DUCKDB_TABLE, where), read="trino", write="duckdb")[0])
