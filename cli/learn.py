"""`invoke-audit learn`: write an allowlist that allows all observed traffic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.advice import no_invokes, plural
from cli.history import add_engine_arguments, aggregate
from cli.sources import expand, read_source
from lambdas.core.history import tuple_record
from lambdas.core.inputs import records_from_bytes
from lambdas.core.learn import Observations, render_yaml
from models.exceptions import InputError

__all__ = ["register"]


def _from_aggregates(args: argparse.Namespace) -> tuple[Observations, str]:
    """Learn from the distinct caller tuples an engine aggregated (Athena or DuckDB)."""
    found = aggregate(args, sys.stderr)
    if found.errors:
        raise InputError("\n".join(found.errors))
    observations = Observations()
    for key, stats in found.aggregates.items():
        observations.add(tuple_record(key), count=stats.records)
    sys.stderr.write(found.summary + "\n")
    return observations, "the " + {"duckdb": "DuckDB", "athena": "Athena"}[
        args.engine
    ] + " aggregates"


def _read_files(args: argparse.Namespace) -> tuple[Observations, int]:
    observations = Observations()
    count = 0
    for source in expand(args.paths):
        observations.add_all(records_from_bytes(read_source(source), source.name))
        count += 1
    return observations, count


def _learn(args: argparse.Namespace) -> int:
    if args.engine == "scan" and not args.paths:
        raise InputError("learn: give at least one PATH (file, folder, s3://bucket/prefix or -)")
    if args.min_count < 1:
        raise InputError("--min-count must be at least 1")
    output = None if args.output == "-" else Path(args.output)
    if output is not None and output.exists() and not args.force:
        raise InputError(
            f"{args.output}: exists; learn does not overwrite it (review what is there, then "
            "use --force, or write elsewhere with -o)"
        )
    origin = ""
    if args.engine == "scan":
        observations, count = _read_files(args)
    else:
        observations, origin = _from_aggregates(args)
        count = 0
    if not observations.invokes:
        raise InputError("\n".join(no_invokes(observations.records, count)))
    text = render_yaml(observations, min_count=args.min_count, sources=count, origin=origin)
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    entries = sum(len(c) for c in observations.callers.values())
    print(
        f"wrote {args.output}: {plural(len(observations.callers), 'function')}, "
        f"{plural(entries, 'allow entry', 'allow entries')} from "
        f"{plural(observations.invokes, 'Invoke')} in {origin or plural(count, 'file')}; "
        "defaults.mode is monitor"
    )
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "learn",
        help="write an allowlist that allows all observed traffic",
        description="Read CloudTrail logs (same inputs as scan) and write an allowlist that "
        "allows every caller seen, per function, with counts as comments; defaults.mode is "
        "monitor. Exit 2 when the input holds no Lambda Invoke data events. "
        "--engine duckdb or athena learns from the distinct callers those engines aggregate "
        "(see history).",
    )
    add_engine_arguments(parser, engines=("scan", "duckdb", "athena"))
    parser.add_argument(
        "--min-count",
        type=int,
        default=1,
        metavar="N",
        help="only allow callers seen at least N times (default 1)",
    )
    parser.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="where to write the YAML (default: standard output)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the output file if it exists"
    )
    parser.set_defaults(func=_learn)
