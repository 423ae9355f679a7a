"""`invoke-audit scan`: the decision core over CloudTrail files, offline.

Files are judged in worker processes (one per core) when there are several; each worker
reads, decodes and judges one file at a time, so memory stays at one file per worker.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from cli.sources import Source, expand, read_source
from lambdas.core.config import load_allowlist
from lambdas.core.decide import Verdict
from lambdas.core.inputs import records_from_bytes
from lambdas.core.record import LAMBDA_SOURCE
from lambdas.core.trust import judge_record, trusted_accounts
from models.allowlist import AllowlistConfig
from models.exceptions import InputError
from models.names import DEFAULT_PREFIX

__all__ = ["FileResult", "judge_bytes", "register", "run_scan"]

DEFAULT_CONFIG = "config/allowlist.yaml"
TRUST_ENV = "ALLOWED_ACCOUNTS"  # the functions' variable for the accounts they trust
TABLE_COLUMNS = ("verdict", "event_time", "function", "caller", "rule", "reason")
TABLE_WIDTHS = (12, 21, 28, 40, 18, 0)


@dataclass(slots=True)
class FileResult:
    source: str
    lines: list[bytes] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    error: str | None = None


def is_lambda_candidate(record: Any) -> bool:
    """Other services' records are skipped, and so are JSON objects that are no CloudTrail
    record at all (no eventSource, no eventName); anything else gets a verdict."""
    if isinstance(record, dict):
        source = record.get("eventSource")
        if source is None:
            return "eventName" in record
        return bool(source == LAMBDA_SOURCE)
    return True


def judge_records(
    records: Iterable[Any],
    config: AllowlistConfig,
    own_prefix: str,
    trusted: frozenset[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each Lambda record's decision, as the functions judge it (`lambdas.core.trust`)."""
    for record in records:
        if is_lambda_candidate(record):
            yield judge_record(record, config, own_prefix=own_prefix, trusted=trusted).to_dict()


def judge_bytes(
    data: bytes,
    source: str,
    config: AllowlistConfig,
    own_prefix: str,
    trusted: frozenset[str] | None = None,
) -> FileResult:
    result = FileResult(source)
    try:
        for row in judge_records(records_from_bytes(data, source), config, own_prefix, trusted):
            row["source"] = source
            result.counts[row["verdict"]] += 1
            result.lines.append(orjson.dumps(row))
    except InputError as exc:
        result.error = str(exc)
    return result


_WORKER: dict[str, Any] = {}


def _init_worker(config_path: str, own_prefix: str, trusted: frozenset[str] | None) -> None:
    _use(load_allowlist(config_path), own_prefix, trusted)


def _use(config: AllowlistConfig, own_prefix: str, trusted: frozenset[str] | None) -> None:
    _WORKER["config"] = config
    _WORKER["own_prefix"] = own_prefix
    _WORKER["trusted"] = trusted


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """A log file's records hold no reference cycles, and a collection pass over the many
    objects of a parsed file costs a third of the parse: collect between files instead."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _judge_source(source: Source) -> FileResult:
    try:
        data = read_source(source)
    except InputError as exc:
        return FileResult(source.name, error=str(exc))
    with _without_cyclic_gc():
        return judge_bytes(
            data, source.name, _WORKER["config"], _WORKER["own_prefix"], _WORKER["trusted"]
        )


def _results(
    sources: list[Source],
    config: AllowlistConfig,
    config_path: str,
    own_prefix: str,
    trusted: frozenset[str] | None,
    jobs: int,
) -> Iterator[FileResult]:
    local = [s for s in sources if s.path is not None]
    if jobs > 1 and len(local) == len(sources) and len(sources) > 1:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        setup = (config_path, own_prefix, trusted)
        with context.Pool(min(jobs, len(sources)), _init_worker, setup) as pool:
            yield from pool.imap(_judge_source, sources, chunksize=1)
        return
    _use(config, own_prefix, trusted)  # in process: the config run_scan already loaded
    for source in sources:
        yield _judge_source(source)


class _Progress:
    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total, self.stream, self.done, self.records = total, stream, 0, 0
        self.enabled = stream.isatty()

    def step(self, result: FileResult) -> None:
        self.done += 1
        self.records += sum(result.counts.values())
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files, "
                f"{self.records} Lambda records"
            )
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _table_row(row: dict[str, Any]) -> str:
    cells = [str(row.get(c) or "-") for c in TABLE_COLUMNS]
    cells[2] = cells[2].split(":function:")[-1] if cells[2] != "-" else "-"
    return "  ".join(f"{c:<{w}}" for c, w in zip(cells, TABLE_WIDTHS, strict=True)).rstrip()


def run_scan(
    paths: list[str],
    config_path: str,
    fmt: str,
    out: IO[str],
    err: IO[str],
    *,
    own_prefix: str = DEFAULT_PREFIX,
    jobs: int | None = None,
    trusted: frozenset[str] | None = None,
) -> int:
    """Judge the files; `trusted`: the accounts whose functions are judged (None: all)."""
    config = load_allowlist(config_path)  # a bad config stops the scan before any file is read
    sources = list(expand(paths))
    totals: Counter[str] = Counter()
    errors = 0
    progress = _Progress(len(sources), err)
    if fmt == "table":
        out.write(
            "  ".join(
                f"{c.upper():<{w}}" for c, w in zip(TABLE_COLUMNS, TABLE_WIDTHS, strict=True)
            ).rstrip()
            + "\n"
        )
    elif fmt == "json":
        out.write("[")
    first = True
    cores = jobs or os.cpu_count() or 1
    for result in _results(sources, config, config_path, own_prefix, trusted, cores):
        progress.step(result)
        if result.error:
            errors += 1
            err.write(f"invoke-audit: error: {result.error}\n")
        totals.update(result.counts)
        if fmt == "jsonl" and result.lines:  # one write per file
            out.write(b"\n".join(result.lines).decode() + "\n")
            continue
        for line in result.lines:
            if fmt == "json":
                out.write(("" if first else ",\n") + line.decode())
                first = False
            else:
                out.write(_table_row(orjson.loads(line)) + "\n")
    progress.close()
    if fmt == "json":
        out.write("]\n")
    elif fmt == "table":
        summary = ", ".join(f"{totals[v.value]} {v.value}" for v in Verdict if totals[v.value])
        out.write(
            f"\n{sum(totals.values())} Lambda records from {len(sources)} files: {summary or 'none'}\n"
        )
    if errors:
        return 2
    return 1 if totals[Verdict.VIOLATION.value] else 0


def _command(args: argparse.Namespace) -> int:
    if not args.paths:
        raise InputError("scan: give at least one PATH (file, folder, s3://bucket/prefix or -)")
    listed = args.trust_account or os.environ.get(TRUST_ENV, "")
    trusted = trusted_accounts(",".join(listed) if isinstance(listed, list) else listed)
    return run_scan(
        args.paths,
        args.config,
        args.format,
        sys.stdout,
        sys.stderr,
        jobs=args.jobs,
        trusted=trusted or None,
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="judge every Lambda Invoke in CloudTrail files",
        description="Judge every Lambda record in CloudTrail log files (.json, .json.gz, JSON "
        "arrays, JSON lines, EventBridge envelopes), folders or s3://bucket/prefix. "
        "Exit 0: no violation, 1: violations, 2: bad config or unreadable input.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    parser.add_argument("--format", choices=("table", "jsonl", "json"), default="table")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    parser.add_argument(
        "--trust-account",
        action="append",
        metavar="ACCOUNT",
        help="judge only functions of this account (repeat, or comma-separated), as the "
        "deployed functions do with their own account and ALLOWED_ACCOUNTS; a function of "
        f"another account is invalid. Default: ${TRUST_ENV} if set, else every account",
    )
    parser.set_defaults(func=_command)
