"""`invoke-audit history`: who has been calling what, judged by today's allowlist.

An engine next to the data aggregates the distinct caller tuples (`cli.history_query`):
Amazon Athena over the trail's bucket (`--engine athena`), or DuckDB in process over log
files, folders or s3:// (`--engine duckdb`). Each tuple is judged by `decide`
(`lambdas.core.history`); the output has one entry per tuple with its count and first and
last time seen. Exit 0: no violation, 1: violations, 2: bad config, input or query.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

import orjson

from cli.advice import plural
from cli.allowlist_file import load_allowlist
from cli.history_query import HistoryFilter, athena_query
from lambdas.core.decide import Verdict
from lambdas.core.history import (
    TUPLE_FIELDS,
    CallerTuple,
    JudgedTuple,
    TupleStats,
    judge_tuples,
    merge_aggregates,
)
from models.athena_table import TrailLocation, create_table_ddl
from models.exceptions import InputError

__all__ = [
    "OUTPUT_DATABASE",
    "OUTPUT_TABLE",
    "OUTPUT_WORKGROUP",
    "Aggregation",
    "add_engine_arguments",
    "aggregate",
    "register",
    "run_history",
]

DEFAULT_CONFIG = "config/allowlist.yaml"
DEFAULT_STACK = "InvokeAudit-dev"
DEFAULT_DATABASE = "invoke_audit"
DEFAULT_TABLE = "cloudtrail"
# The stack outputs the CDK app writes with the context invoke-audit:athena (stacks/athena.py).
OUTPUT_DATABASE = "HistoryDatabase"
OUTPUT_TABLE = "HistoryTable"
OUTPUT_WORKGROUP = "HistoryWorkgroup"

COLUMNS = ("verdict", "count", "function", "caller", "rule", "first_seen", "last_seen", "reason")
WIDTHS = (12, 8, 28, 40, 16, 21, 21, 0)


@dataclass(slots=True)
class Aggregation:
    """What an engine returned: the tuples, and what it read or what went wrong."""

    aggregates: dict[CallerTuple, TupleStats] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    summary: str = ""


# -- engines --------------------------------------------------------------------------------


def _bool(value: str | None) -> bool:
    return value == "true"


def athena_rows(rows: list[tuple[str | None, ...]]) -> list[tuple[CallerTuple, TupleStats]]:
    """Athena's result rows (every value a string, or None for NULL) as tuples."""
    width = len(TUPLE_FIELDS)
    flag = TUPLE_FIELDS.index("no_identity")
    found: list[tuple[CallerTuple, TupleStats]] = []
    for row in rows:
        if len(row) != width + 5:
            raise InputError(f"Athena returned {len(row)} columns, the query has {width + 5}")
        values: list[Any] = list(row[:width])
        values[flag] = _bool(row[flag])
        count, first, last, accounts, regions = row[width:]
        found.append(
            (
                CallerTuple(*values),
                TupleStats(
                    int(count or 0),
                    first,
                    last,
                    set(filter(None, (accounts or "").split(","))),
                    set(filter(None, (regions or "").split(","))),
                ),
            )
        )
    return found


def _athena_names(args: argparse.Namespace, cloudformation: Any) -> tuple[str, str, str]:
    names = (args.database, args.table, args.workgroup)
    if all(names):
        return args.database, args.table, args.workgroup
    from lambdas.adapters.athena import StackOutputs

    outputs = StackOutputs(cloudformation).read(args.stack)
    chosen = (
        args.database or outputs.get(OUTPUT_DATABASE),
        args.table or outputs.get(OUTPUT_TABLE),
        args.workgroup or outputs.get(OUTPUT_WORKGROUP),
    )
    if not all(chosen):
        raise InputError(
            f"stack {args.stack} has no Athena outputs (deploy with -c invoke-audit:athena=...) "
            "and --database, --table, --workgroup were not all given"
        )
    return chosen[0] or "", chosen[1] or "", chosen[2] or ""


def _megabytes(count: int) -> str:
    return f"{count / 1024**2:,.1f} MB"


def run_athena(
    args: argparse.Namespace, where: HistoryFilter, err: IO[str], clients: Callable[[str], Any]
) -> Aggregation:
    from lambdas.adapters.athena import AthenaQuery

    database, table, workgroup = _athena_names(args, clients("cloudformation"))
    sql = athena_query(database, table, where)
    live = err.isatty()

    def progress(state: str, scanned: int) -> None:
        if live:
            err.write(f"\rAthena: {state.lower()}, {_megabytes(scanned)} scanned   ")
            err.flush()

    outcome = AthenaQuery(clients("athena")).run(
        sql,
        database=database,
        workgroup=workgroup,
        output_location=args.output_location,
        on_progress=progress,
    )
    if live:
        err.write("\n")
    found = Aggregation()
    merge_aggregates(found.aggregates, athena_rows(outcome.rows))
    found.summary = (
        f"Athena query {outcome.execution_id}: {_megabytes(outcome.bytes_scanned)} scanned, "
        f"${outcome.cost_usd:.4f} at $5/TB"
    )
    return found


def run_duckdb(args: argparse.Namespace, where: HistoryFilter, err: IO[str]) -> Aggregation:
    from cli.history_duckdb import DuckDBHistory

    if not args.paths:
        raise InputError("--engine duckdb: give at least one PATH (file, folder, s3://, -)")
    result = DuckDBHistory(progress=err).run(args.paths, where)
    return Aggregation(
        result.aggregates,
        result.errors,
        f"DuckDB read {plural(result.files, 'file')}: {plural(result.records, 'Lambda record')}",
    )


def _boto3_client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def aggregate(
    args: argparse.Namespace,
    err: IO[str],
    clients: Callable[[str], Any] = _boto3_client,
) -> Aggregation:
    """Run the engine the arguments name; InputError for bad arguments."""
    where = HistoryFilter(
        since=args.since, until=args.until, accounts=args.accounts, regions=args.regions
    )
    if args.engine == "athena":
        if args.paths:
            raise InputError(
                "--engine athena reads the Athena table; PATH arguments are for duckdb"
            )
        return run_athena(args, where, err, clients)
    return run_duckdb(args, where, err)


# -- output ---------------------------------------------------------------------------------


def _totals(judged: list[JudgedTuple]) -> list[tuple[str, int]]:
    counts = {v.value: 0 for v in Verdict}
    for item in judged:
        counts[item.decision.verdict.value] += item.stats.records
    return [(v, n) for v, n in counts.items() if n]


_SAME = ("verdict", "function", "caller", "rule", "reason")


def _merged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For people: tuples judged alike (the function named by name or ARN, say) in one row."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in _SAME)
        seen = merged.get(key)
        if seen is None:
            merged[key] = dict(row)
            continue
        seen["count"] += row["count"]
        for name, pick in (("first_seen", min), ("last_seen", max)):
            values = [v for v in (seen[name], row[name]) if v]
            seen[name] = pick(values) if values else None
    return list(merged.values())


def render(judged: list[JudgedTuple], fmt: str, summary: str, out: IO[str]) -> None:
    """jsonl and json: one object per tuple; table and html: tuples judged alike merged."""
    rows = [j.to_dict() for j in judged]
    if fmt in ("table", "html"):
        rows = _merged(rows)
    if fmt == "jsonl":
        for row in rows:
            out.write(orjson.dumps(row).decode() + "\n")
    elif fmt == "json":
        out.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "html":
        from cli.html import template

        page = template("history.html")
        out.write(page.render(rows=rows, columns=COLUMNS, summary=summary, totals=_totals(judged)))
    else:
        out.write(
            "  ".join(f"{c.upper():<{w}}" for c, w in zip(COLUMNS, WIDTHS, strict=True)).rstrip()
            + "\n"
        )
        for row in rows:
            cells = [str(row.get(c) or "-") for c in COLUMNS]
            if row["function"]:
                cells[2] = row["function"].split(":function:")[-1]
            out.write(
                "  ".join(f"{c:<{w}}" for c, w in zip(cells, WIDTHS, strict=True)).rstrip() + "\n"
            )
        totals = ", ".join(f"{n} {v}" for v, n in _totals(judged))
        out.write(f"\n{plural(len(rows), 'distinct caller')}: {totals or 'none'}\n")


def run_history(
    args: argparse.Namespace,
    out: IO[str],
    err: IO[str],
    clients: Callable[[str], Any] = _boto3_client,
) -> int:
    if args.print_ddl:
        out.write(print_ddl(args))
        return 0
    config = load_allowlist(args.config)  # a bad config stops before any query runs
    found = aggregate(args, err, clients)
    judged = judge_tuples(found.aggregates, config)
    for error in found.errors:
        err.write(f"invoke-audit: error: {error}\n")
    render(judged, args.format, found.summary, out)
    if found.summary:
        err.write(found.summary + "\n")
    if found.errors:
        return 2
    return 1 if any(j.decision.verdict is Verdict.VIOLATION for j in judged) else 0


def print_ddl(args: argparse.Namespace) -> str:
    if not args.bucket:
        raise InputError("--print-ddl: give --bucket (the trail's S3 bucket)")
    location = TrailLocation(
        bucket=args.bucket,
        accounts=args.accounts,
        regions=args.regions,
        start_date=args.start_date,
        key_prefix=args.trail_prefix,
        organization_id=args.organization_id,
    )
    return create_table_ddl(
        args.database or DEFAULT_DATABASE, args.table or DEFAULT_TABLE, location
    )


# -- arguments ------------------------------------------------------------------------------


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def add_engine_arguments(
    parser: argparse.ArgumentParser, engines: tuple[str, ...] = ("duckdb", "athena")
) -> None:
    """The engine and filter options `history` and `learn --engine` share."""
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument(
        "--engine", choices=engines, default=engines[0], help=f"default {engines[0]}"
    )
    parser.add_argument("--since", type=_date, metavar="DATE", help="first day (UTC), YYYY-MM-DD")
    parser.add_argument("--until", type=_date, metavar="DATE", help="last day (UTC), inclusive")
    parser.add_argument("--accounts", type=_list, default=(), metavar="ID,...")
    parser.add_argument("--regions", type=_list, default=(), metavar="REGION,...")
    athena = parser.add_argument_group("Athena (defaults: the stack's outputs)")
    athena.add_argument("--stack", default=DEFAULT_STACK, help=f"default {DEFAULT_STACK}")
    athena.add_argument("--database")
    athena.add_argument("--table")
    athena.add_argument("--workgroup")
    athena.add_argument(
        "--output-location", metavar="S3URL", help="query results (the workgroup's by default)"
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help="judge who has been invoking what, from Athena or DuckDB aggregates",
        description="Aggregate the distinct callers of Lambda functions with Amazon Athena "
        "(over the trail's bucket) or DuckDB (over log files, folders or s3://), and judge "
        "each with the allowlist. Exit 0: no violation, 1: violations, 2: bad config, "
        "input or query.",
    )
    add_engine_arguments(parser)
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    parser.add_argument("--format", choices=("table", "jsonl", "json", "html"), default="table")
    ddl = parser.add_argument_group("--print-ddl: the CREATE TABLE for a trail bucket")
    ddl.add_argument("--print-ddl", action="store_true")
    ddl.add_argument("--bucket", help="the trail's S3 bucket")
    ddl.add_argument("--organization-id", metavar="o-...", help="for an organization trail")
    ddl.add_argument("--trail-prefix", default="", metavar="PREFIX", help="the trail's key prefix")
    ddl.add_argument("--start-date", default="2020/01/01", metavar="YYYY/MM/DD")
    parser.set_defaults(func=lambda args: run_history(args, sys.stdout, sys.stderr))
