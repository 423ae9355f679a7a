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
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from cli import ocsf
from cli.advice import no_invokes, plural
from cli.allowlist_file import load_allowlist
from cli.callers import CallerStats
from cli.sources import Source, expand, read_source
from lambdas.core.config import allowlist_warnings
from lambdas.core.decide import Verdict
from lambdas.core.inputs import records_from_bytes
from lambdas.core.record import INVOKE, LAMBDA_SOURCE, base_event_name
from lambdas.core.trust import judge_record, trusted_accounts
from lambdas.core.watch import Watch, judge_denied, watches_from_backups
from models.allowlist import AllowlistConfig
from models.exceptions import InputError
from models.names import own_function_arns

__all__ = [
    "FileResult",
    "add_own_function_option",
    "judge_bytes",
    "judged_files",
    "own_functions_of",
    "register",
    "run_scan",
    "trusted_of",
]

DEFAULT_CONFIG = "config/allowlist.yaml"
TRUST_ENV = "ALLOWED_ACCOUNTS"  # the functions' variable for the accounts they trust
TABLE_COLUMNS = ("verdict", "mode", "event_time", "function", "caller", "rule", "reason")
# The last column is cut too: a reason quotes record values, which can be long.
TABLE_WIDTHS = (11, 7, 20, 28, 40, 18, 100)
VERDICTS = tuple(v.value for v in Verdict)


@dataclass(slots=True)
class FileResult:
    source: str
    lines: list[bytes] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    records: int = 0  # JSON values read, of any service
    invokes: int = 0  # Lambda Invoke records among them


def is_lambda_candidate(record: Any) -> bool:
    """Other services' records are skipped, and so are JSON objects that are no CloudTrail
    record at all (no eventSource, no eventName); anything else gets a verdict."""
    if isinstance(record, dict):
        source = record.get("eventSource")
        if source is None:
            return "eventName" in record
        return bool(source == LAMBDA_SOURCE)
    return True


def iso_utc(value: Any) -> Any:
    """A record's time as ISO 8601 UTC (`2026-11-22T10:00:00Z`); a value that is no time is
    returned as it is (the record is judged all the same)."""
    moment: datetime | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(ValueError, OverflowError, OSError):
            moment = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    elif isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value.strip())
            if moment.tzinfo is None:  # CloudTrail writes UTC
                moment = moment.replace(tzinfo=UTC)
    if moment is None:
        return value
    moment = moment.astimezone(UTC)
    spec = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.strftime(spec)


def _not_cloudtrail(values: int, source: str) -> str:
    return (
        f"{source}: not CloudTrail: none of its {plural(values, 'JSON object')} has an "
        'eventSource or eventName (a log file is {"Records": [...]})'
    )


def judge_bytes(
    data: bytes,
    source: str,
    config: AllowlistConfig,
    own_functions: AbstractSet[str],
    trusted: frozenset[str] | None = None,
    watches: Sequence[Watch] = (),
) -> FileResult:
    """The rows of one file; `trusted`: the accounts whose functions are judged (None: all);
    `watches`: the rewrites (from backups) under which an allowed caller's denial is `broken`."""
    result = FileResult(source)
    objects = trail_like = 0
    now = datetime.now(UTC)  # for records without a readable eventTime
    try:
        for record in records_from_bytes(data, source):
            result.records += 1
            if isinstance(record, dict):
                objects += 1
                trail_like += "eventSource" in record or "eventName" in record
            if not is_lambda_candidate(record):
                continue
            decision = judge_record(
                record, config, own_functions=own_functions, trusted=trusted, now=now
            )
            if watches and decision.denied_allowed:
                decision = judge_denied(decision, watches)
            row = decision.to_dict()
            row["event_time"] = iso_utc(row["event_time"])
            row["source"] = source
            result.invokes += base_event_name(str(row["event_name"] or "")) == INVOKE
            result.counts[row["verdict"]] += 1
            result.lines.append(orjson.dumps(row))
    except InputError as exc:
        result.error = str(exc)
    if objects and not trail_like and objects == result.records and result.error is None:
        result.error = _not_cloudtrail(objects, source)
    return result


_WORKER: dict[str, Any] = {}


def _init_worker(
    config_path: str,
    own_functions: AbstractSet[str],
    trusted: frozenset[str] | None,
    watches: Sequence[Watch],
) -> None:
    _use(load_allowlist(config_path), own_functions, trusted, watches)


def _use(
    config: AllowlistConfig,
    own_functions: AbstractSet[str],
    trusted: frozenset[str] | None,
    watches: Sequence[Watch] = (),
) -> None:
    _WORKER["config"] = config
    _WORKER["own_functions"] = own_functions
    _WORKER["trusted"] = trusted
    _WORKER["watches"] = watches


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
            data,
            source.name,
            _WORKER["config"],
            _WORKER["own_functions"],
            _WORKER["trusted"],
            _WORKER.get("watches", ()),
        )


def _results(
    sources: list[Source],
    config: AllowlistConfig,
    config_path: str,
    own_functions: AbstractSet[str],
    trusted: frozenset[str] | None,
    jobs: int,
    watches: Sequence[Watch] = (),
) -> Iterator[FileResult]:
    local = [s for s in sources if s.path is not None]
    if jobs > 1 and len(local) == len(sources) and len(sources) > 1:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        setup = (config_path, own_functions, trusted, watches)
        with context.Pool(min(jobs, len(sources)), _init_worker, setup) as pool:
            yield from pool.imap(_judge_source, sources, chunksize=1)
        return
    _use(config, own_functions, trusted, watches)  # in process: the config run_scan already loaded
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

    def clear(self) -> None:
        """Before an error line: the bar is redrawn on the next step."""
        if self.enabled:
            self.stream.write("\r\033[K")

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


def _cell(value: Any, width: int) -> tuple[str, bool]:
    text = " ".join(str(value or "-").split())  # no newline or tab may break a row
    if len(text) <= width:
        return text, False
    return text[: width - 3] + "...", True


def _table_row(row: dict[str, Any]) -> tuple[str, bool]:
    """One table line, and whether a value had to be cut."""
    cells, cut = [], False
    for column, width in zip(TABLE_COLUMNS, TABLE_WIDTHS, strict=True):
        value = row.get(column)
        if column == "function" and value:
            value = str(value).split(":function:")[-1]
        text, shortened = _cell(value, width)
        cells.append(f"{text:<{width}}")
        cut = cut or shortened
    return "  ".join(cells).rstrip(), cut


def _summary(totals: Counter[str], files: int) -> str:
    labels = {"violation": ("violation", "violations"), "failed-call": ("failed call", None)}
    parts = []
    for verdict in VERDICTS:
        if totals[verdict]:
            singular, many = labels.get(verdict, (verdict, verdict))
            parts.append(plural(totals[verdict], singular, many))
    records = plural(sum(totals.values()), "Lambda record")
    return f"{records} from {plural(files, 'file')}: {', '.join(parts) or 'none'}"


@dataclass(slots=True)
class _Table:
    """The table is written after the whole input is read: errors on stderr come first."""

    only: frozenset[str] | None
    rows: list[str] = field(default_factory=list)
    hidden: int = 0
    cut: bool = False

    def add(self, row: dict[str, Any]) -> None:
        if self.only is None and row["verdict"] == Verdict.IGNORED.value:
            self.hidden += 1
            return
        line, cut = _table_row(row)
        self.rows.append(line)
        self.cut = self.cut or cut

    def write(self, out: IO[str], totals: Counter[str], files: int) -> None:
        header = [f"{c.upper():<{w}}" for c, w in zip(TABLE_COLUMNS, TABLE_WIDTHS, strict=True)]
        out.write("  ".join(header).rstrip() + "\n")
        out.writelines(line + "\n" for line in self.rows)
        out.write(f"\n{_summary(totals, files)}\n")
        if self.hidden:
            out.write(
                f"{plural(self.hidden, 'ignored record')} not shown (--only ignored shows them)\n"
            )
        if self.cut:
            out.write("Long values are cut; --format jsonl shows them whole.\n")


@dataclass(slots=True)
class _Rows:
    """Writes the rows of each file in the chosen format, keeping only `only` verdicts."""

    fmt: str
    out: IO[str]
    only: frozenset[str] | None
    table: _Table
    first: bool = True
    findings: CallerStats = field(default_factory=CallerStats)

    def start(self) -> None:
        if self.fmt == "json":
            self.out.write("[")

    def add(self, result: FileResult) -> None:
        if self.fmt == "jsonl" and self.only is None:
            if result.lines:  # one write per file
                self.out.write(b"\n".join(result.lines).decode() + "\n")
            return
        for line in result.lines:
            row = orjson.loads(line)
            if self.only is not None and row["verdict"] not in self.only:
                continue
            if self.fmt == "table":
                self.table.add(row)
            elif self.fmt == "ocsf":
                self.findings.add(row)
            elif self.fmt == "json":
                self.out.write(("" if self.first else ",\n") + line.decode())
                self.first = False
            else:
                self.out.write(line.decode() + "\n")

    def finish(self, totals: Counter[str], files: int) -> None:
        if self.fmt == "json":
            self.out.write("]\n")
        elif self.fmt == "table":
            self.table.write(self.out, totals, files)
        elif self.fmt == "ocsf":
            now = int(datetime.now(UTC).timestamp() * 1000)
            for group in self.findings.of(self.only or ocsf.FINDING_VERDICTS):
                finding = ocsf.detection_finding(group, time_ms=now)
                self.out.write(orjson.dumps(finding).decode() + "\n")


def judged_files(
    paths: list[str],
    config: AllowlistConfig,
    config_path: str,
    *,
    own_functions: AbstractSet[str] = frozenset(),
    jobs: int | None = None,
    trusted: frozenset[str] | None = None,
    watches: Sequence[Watch] = (),
) -> tuple[int, Iterator[FileResult]]:
    """The number of files the paths name, and each file judged (in worker processes when
    there are several); InputError when the paths name no log file."""
    sources = list(expand(paths))
    if not sources:
        raise InputError(f"no log files in {' '.join(paths)} (.json, .jsonl, .ndjson, .gz)")
    cores = jobs or os.cpu_count() or 1
    return len(sources), _results(
        sources, config, config_path, own_functions, trusted, cores, watches
    )


def run_scan(
    paths: list[str],
    config_path: str,
    fmt: str,
    out: IO[str],
    err: IO[str],
    *,
    own_functions: AbstractSet[str] = frozenset(),
    jobs: int | None = None,
    only: frozenset[str] | None = None,
    trusted: frozenset[str] | None = None,
    remediations: list[str] | None = None,
) -> int:
    """Exit 1 when there is a violation (whatever else happened; unreadable files are listed
    on stderr), else 2 when a file could not be read as CloudTrail, else 0."""
    config = load_allowlist(config_path)  # a bad config stops the scan before any file is read
    for warning in allowlist_warnings(config):
        err.write(f"invoke-audit: warning: {warning}\n")
    watches = load_watches(remediations, config.limits.watch_hours) if remediations else []
    count, results = judged_files(
        paths,
        config,
        config_path,
        own_functions=own_functions,
        jobs=jobs,
        trusted=trusted,
        watches=watches,
    )
    totals: Counter[str] = Counter()
    errors = records = invokes = 0
    progress = _Progress(count, err)
    rows = _Rows(fmt, out, only, _Table(only))
    rows.start()
    for result in results:
        progress.step(result)
        if result.error:
            errors += 1
            progress.clear()
            err.write(f"invoke-audit: error: {result.error}\n")
        totals.update(result.counts)
        records += result.records
        invokes += result.invokes
        rows.add(result)
    progress.close()
    readable = count - errors
    if readable and not invokes and records > totals[Verdict.INVALID.value]:
        for line in no_invokes(records, readable):
            err.write(f"invoke-audit: note: {line}\n")
    rows.finish(totals, count)
    if totals[Verdict.VIOLATION.value]:
        if errors:
            err.write(
                f"invoke-audit: error: {plural(errors, 'file')} could not be read (listed above); "
                "the violations found in the others are reported\n"
            )
        return 1
    return 2 if errors else 0


def _only(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    chosen = frozenset(v.strip() for v in text.split(",") if v.strip())
    unknown = sorted(chosen - set(VERDICTS))
    if unknown or not chosen:
        raise InputError(
            f"--only: unknown verdict {', '.join(unknown) or '(none given)'}; "
            f"choose from {','.join(VERDICTS)}"
        )
    return chosen


def _findings_only(only: frozenset[str] | None) -> frozenset[str]:
    """--format ocsf writes violations and broken callers, or the finding verdicts --only
    names (unmonitored: the functions no rule covers)."""
    if only is None:
        return frozenset({Verdict.VIOLATION.value, Verdict.BROKEN.value})
    others = sorted(only - set(ocsf.FINDING_VERDICTS))
    if others:
        raise InputError(
            f"--format ocsf: {', '.join(others)} is no finding; --only chooses from "
            f"{','.join(ocsf.FINDING_VERDICTS)}"
        )
    return only


def trusted_of(args: argparse.Namespace) -> frozenset[str] | None:
    """--trust-account (repeatable, or comma-separated), else $ALLOWED_ACCOUNTS; None: all."""
    listed = args.trust_account or os.environ.get(TRUST_ENV, "")
    trusted = trusted_accounts(",".join(listed) if isinstance(listed, list) else listed)
    return trusted or None


def own_functions_of(args: argparse.Namespace) -> frozenset[str]:
    """--own-function ARN (repeatable), else OWN_FUNCTION_ARNS: the pipeline's own functions."""
    given = getattr(args, "own_functions", None)
    if given:
        return frozenset(given)
    return own_function_arns(os.environ.get("OWN_FUNCTION_ARNS"))


def add_own_function_option(
    parser: argparse.ArgumentParser, *, ignored: bool = False, default: str = "OWN_FUNCTION_ARNS"
) -> None:
    """--own-function ARN (repeatable), which own_functions_of reads."""
    role = "the pipeline's own function" + (", judged `ignored`" if ignored else "")
    parser.add_argument(
        "--own-function",
        dest="own_functions",
        action="append",
        metavar="ARN",
        help=f"{role} (exact unqualified ARN; repeatable); default: {default}",
    )


def _command(args: argparse.Namespace) -> int:
    if not args.paths:
        raise InputError("scan: give at least one PATH (file, folder, s3://bucket/prefix or -)")
    only = _only(args.only)
    if args.format == "ocsf":
        only = _findings_only(only)
    return run_scan(
        args.paths,
        args.config,
        args.format,
        sys.stdout,
        sys.stderr,
        jobs=args.jobs,
        only=only,
        trusted=trusted_of(args),
        own_functions=own_functions_of(args),
        remediations=args.remediations,
    )


def load_watches(paths: list[str], hours: int) -> list[Watch]:
    """The rewrites that remediation backups (files, folders or s3:// prefixes) stand for."""
    backups: list[tuple[str, dict[str, Any]]] = []
    for source in expand(paths):
        try:
            document = orjson.loads(read_source(source))
        except orjson.JSONDecodeError as error:
            raise InputError(f"{source.name}: not a JSON backup: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("function"), str):
            raise InputError(f"{source.name}: not a backup (no field function)")
        backups.append((source.name, document))
    return watches_from_backups(backups, hours=hours)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="judge every Lambda Invoke in CloudTrail files",
        description="Judge every Lambda record in CloudTrail log files (.json, .json.gz, JSON "
        "arrays, JSON lines, EventBridge envelopes), folders or s3://bucket/prefix. "
        "Exit 1: violations were found (files that could not be read are listed on stderr); "
        "2: no violation, but the config is bad or a file could not be read as CloudTrail; "
        "0: every file was read and no violation found.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    parser.add_argument(
        "--remediations",
        action="append",
        metavar="PATH",
        help="the remediator's backups (files, folders or s3://bucket/backups/): an allowed "
        "caller's denied Invoke within limits.watch_hours after a rewrite is judged `broken` "
        "(repeatable)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "jsonl", "json", "ocsf"),
        default="table",
        help="ocsf: OCSF 1.x Detection Findings (class 2004) as JSON lines, one per function, "
        "caller and verdict, for violations and broken callers (--only unmonitored,... for "
        "others)",
    )
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    parser.add_argument(
        "--only",
        metavar="VERDICT,...",
        help=f"show only these verdicts ({','.join(VERDICTS)}); the summary and the exit status "
        "still count every record. Without it the table hides ignored records",
    )
    add_own_function_option(parser, ignored=True)
    parser.add_argument(
        "--trust-account",
        action="append",
        metavar="ACCOUNT",
        help="judge only functions of this account (repeat, or comma-separated), as the "
        "deployed functions do with their own account and ALLOWED_ACCOUNTS; a function of "
        f"another account is invalid. Default: ${TRUST_ENV} if set, else every account",
    )
    parser.set_defaults(func=_command)
