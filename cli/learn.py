"""`invoke-audit learn`: write an allowlist that allows all observed traffic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
    return observations, found.summary


def _learn(args: argparse.Namespace) -> int:
    if args.min_count < 1:
        raise InputError("--min-count must be at least 1")
    if args.engine != "scan":
        observations, summary = _from_aggregates(args)
        text = render_yaml(observations, min_count=args.min_count, origin=summary)
    else:
        if not args.paths:
            raise InputError(
                "learn: give at least one PATH (file, folder, s3://bucket/prefix or -)"
            )
        observations = Observations()
        count = 0
        for source in expand(args.paths):
            observations.add_all(records_from_bytes(read_source(source), source.name))
            count += 1
        text = render_yaml(observations, min_count=args.min_count, sources=count)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
        rules = sum(len(c) for c in observations.callers.values())
        print(f"wrote {args.output}: {len(observations.callers)} functions, {rules} allow entries")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "learn",
        help="write an allowlist that allows all observed traffic",
        description="Read CloudTrail logs (same inputs as scan) and write an allowlist that "
        "allows every caller seen, per function, in monitor mode, with counts as comments. "
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
    parser.set_defaults(func=_learn)
