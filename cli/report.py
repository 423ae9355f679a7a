"""`invoke-audit report PATH... -o report.html`: one self-contained HTML page about who calls
what, judged by the allowlist.

The records are judged by `scan`'s code (the decision core, in worker processes) and folded
as they stream by into one entry per function, caller and verdict (`cli.callers`), so memory
follows the distinct callers, not the records. For each function with violations the page
shows what the remediator's rewrite would change in the function's policy when `--policies`
holds it (the `rewrite` command's code, and the demo's diff). The page loads nothing: its
style, script and picture (an SVG drawn here) are inline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from cli.advice import plural
from cli.allowlist_file import load_allowlist
from cli.callers import CallerGroup, CallerStats
from cli.html import template
from cli.policy_diff import policy_diff
from cli.scan import (
    DEFAULT_CONFIG,
    TRUST_ENV,
    add_own_function_option,
    judged_files,
    own_functions_of,
    trusted_of,
)
from lambdas.core.config import allowlist_warnings
from lambdas.core.decide import Verdict
from lambdas.core.guard import is_own
from lambdas.core.rewrite import parse_policy, rewrite_policy
from models.allowlist import AllowlistConfig
from models.arns import parse_function_arn
from models.exceptions import InputError, InvokeAuditError

__all__ = ["build_report", "register", "run_report"]

# Worst first: a cell of the picture, and a function, take the colour of the worst verdict.
SEVERITY = ("violation", "broken", "failed-call", "invalid", "unmonitored", "allowed", "ignored")
MATRIX_FUNCTIONS = 60  # rows of the picture: the functions with the most violations, then calls
MATRIX_CALLERS = 60  # its columns, chosen alike
CALLERS_SHOWN = 200  # per function; the rest is counted
OPEN_FUNCTIONS = 10  # functions with violations whose section starts open


@dataclass(slots=True)
class Rewrite:
    """What the remediator would write for one function, or why the report cannot say."""

    note: str
    diff: list[tuple[str, str]] = field(default_factory=list)  # (css class, line)
    changes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class FunctionView:
    arn: str
    name: str
    callers: list[CallerGroup] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    hidden: int = 0
    rewrite: Rewrite | None = None

    @property
    def worst(self) -> str:
        return next(v for v in SEVERITY if self.counts[v] or v == SEVERITY[-1])

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def rule(self) -> str:
        return next((c.rule for c in self.callers if c.rule), "") or ""

    @property
    def mode(self) -> str:
        return next((c.mode for c in self.callers if c.mode), "") or ""


@dataclass(slots=True)
class Matrix:
    functions: list[str]
    callers: list[str]
    cells: list[tuple[int, int, str, int]]  # row, column, worst verdict, records
    total_functions: int
    total_callers: int


def _short_name(arn: str) -> str:
    return arn.split(":function:", 1)[-1]


def _worst(verdicts: Iterable[str]) -> str:
    chosen = set(verdicts)
    return next((v for v in SEVERITY if v in chosen), SEVERITY[-1])


def _rank(group: CallerGroup) -> tuple[int, int, str]:
    return (SEVERITY.index(group.verdict), -group.count, group.caller or "")


def _policy_file(folder: Path, arn: str) -> Path | None:
    ref = parse_function_arn(arn)
    names = [ref.name] if ref.policy_qualifier is None else [f"{ref.name}:{ref.qualifier}"]
    for name in names:
        for suffix in (".policy.json", ".json"):
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def _diff_lines(lines: list[str]) -> list[tuple[str, str]]:
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    return [(kinds.get(line[:1], "ctx"), line) for line in lines[2:]]


def rewrite_view(
    arn: str,
    config: AllowlistConfig,
    policies: Path | None,
    own_functions: AbstractSet[str],
) -> Rewrite:
    """The rewrite of one function's policy under its rule, as `invoke-audit rewrite` does it."""
    try:
        ref = parse_function_arn(arn)
    except InvokeAuditError as exc:
        return Rewrite(f"no rewrite: {exc}")
    if is_own(ref, own_functions) or config.is_protected(ref):
        return Rewrite("protected: the remediator never changes this function's policy")
    rule = config.rule_for(ref)
    if rule is None:
        return Rewrite("no rule covers this function: nothing to rewrite")
    path = _policy_file(policies, arn) if policies is not None else None
    if path is None:
        name = ref.name if ref.policy_qualifier is None else f"{ref.name}:{ref.qualifier}"
        return Rewrite(
            f"no policy given: put {name}.policy.json in the folder of --policies "
            f"(aws lambda get-policy --function-name {ref.arn}) to see the rewrite"
        )
    try:
        text = path.read_text(encoding="utf-8")
        before, _ = parse_policy(text)
        result = rewrite_policy(text, rule, ref.arn)
    except (OSError, UnicodeDecodeError) as exc:
        return Rewrite(f"{path}: cannot read: {exc}")
    except InvokeAuditError as exc:
        return Rewrite(f"{path.name}: no rewrite: {exc}")
    lines = policy_diff(before.dump() if before else None, result.policy)
    mode = config.mode_of(rule)
    note = f"{path.name} under rule {rule.name}"
    if mode == "monitor":
        note += " (monitor mode: the remediator only reports; this is what enforce would write)"
    if not lines:
        note += ": the policy already gives no caller outside the allowlist access"
    return Rewrite(note, _diff_lines(lines), [c.to_dict() for c in result.changes])


def _matrix(functions: list[FunctionView]) -> Matrix:
    rows = functions[:MATRIX_FUNCTIONS]
    weight: dict[str, tuple[int, int]] = {}
    for view in functions:
        for group in view.callers:
            caller = group.caller or "(unidentified)"
            bad, calls = weight.get(caller, (0, 0))
            weight[caller] = (
                bad + (group.verdict in ("violation", "broken")) * group.count,
                calls + group.count,
            )
    columns = sorted(weight, key=lambda c: (-weight[c][0], -weight[c][1], c))[:MATRIX_CALLERS]
    index = {caller: i for i, caller in enumerate(columns)}
    cells: list[tuple[int, int, str, int]] = []
    for row, view in enumerate(rows):
        verdicts: dict[int, list[str]] = {}
        counts: Counter[int] = Counter()
        for group in view.callers:
            column = index.get(group.caller or "(unidentified)")
            if column is not None:
                verdicts.setdefault(column, []).append(group.verdict)
                counts[column] += group.count
        cells += [(row, col, _worst(v), counts[col]) for col, v in sorted(verdicts.items())]
    return Matrix(
        [view.name for view in rows],
        columns,
        cells,
        total_functions=len(functions),
        total_callers=len(weight),
    )


def build_report(
    stats: CallerStats,
    config: AllowlistConfig,
    *,
    policies: Path | None = None,
    own_functions: AbstractSet[str] = frozenset(),
) -> dict[str, Any]:
    """The values the template shows."""
    views: dict[str, FunctionView] = {}
    unjudged: list[CallerGroup] = []
    for group in stats.groups.values():
        if group.verdict == Verdict.IGNORED.value:
            continue
        if group.function is None:
            unjudged.append(group)
            continue
        view = views.get(group.function)
        if view is None:
            view = views[group.function] = FunctionView(group.function, _short_name(group.function))
        view.callers.append(group)
        view.counts[group.verdict] += group.count
    functions = sorted(
        views.values(),
        key=lambda v: (SEVERITY.index(v.worst), -v.counts["violation"], -v.records, v.arn),
    )
    for view in functions:
        view.callers.sort(key=_rank)
        view.hidden = max(0, len(view.callers) - CALLERS_SHOWN)
        if view.counts["violation"]:
            view.rewrite = rewrite_view(view.arn, config, policies, own_functions)
    unjudged.sort(key=lambda g: -g.count)
    return {
        "totals": [(v, stats.totals[v]) for v in SEVERITY if stats.totals[v]],
        "records": sum(stats.totals.values()),
        "functions": functions,
        "with_violations": sum(1 for f in functions if f.counts["violation"]),
        "unjudged": unjudged[:CALLERS_SHOWN],
        "matrix": _matrix(functions),
        "callers_shown": CALLERS_SHOWN,
        "open_functions": OPEN_FUNCTIONS,
    }


def render_report(values: dict[str, Any], out: IO[str]) -> None:
    for chunk in template("report.html").generate(**values):
        out.write(chunk)


def run_report(
    paths: list[str],
    config_path: str,
    output: Path,
    err: IO[str],
    *,
    policies: Path | None = None,
    own_functions: AbstractSet[str] = frozenset(),
    jobs: int | None = None,
    trusted: frozenset[str] | None = None,
) -> int:
    """Exit 1 when there are violations (the page is written), 0 when none, 2 on bad input
    (a file that cannot be read as CloudTrail: nothing is written)."""
    config = load_allowlist(config_path)
    for warning in allowlist_warnings(config):
        err.write(f"invoke-audit: warning: {warning}\n")
    if policies is not None and not policies.is_dir():
        raise InputError(f"--policies {policies}: not a folder")
    count, results = judged_files(
        paths, config, config_path, own_functions=own_functions, jobs=jobs, trusted=trusted
    )
    stats = CallerStats()
    errors = 0
    for result in results:
        if result.error:
            errors += 1
            err.write(f"invoke-audit: error: {result.error} (no report written)\n")
            continue
        for line in result.lines:
            stats.add(orjson.loads(line))
    if errors:
        return 2
    values = build_report(stats, config, policies=policies, own_functions=own_functions)
    values["sources"] = plural(count, "file")
    values["config"] = config_path
    values["generated"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    _write_atomically(output, values)
    violations = stats.totals[Verdict.VIOLATION.value]
    err.write(
        f"{output}: {plural(values['records'], 'Lambda record')}, "
        f"{plural(len(values['functions']), 'function')}, "
        f"{plural(violations, 'violation')}\n"
    )
    return 1 if violations else 0


def _write_atomically(output: Path, values: dict[str, Any]) -> None:
    """The page appears whole or not at all; a half-written file is never left behind."""
    folder = output.parent if str(output.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            render_report(values, handle)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)  # as open() would have made it
        os.replace(name, output)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _command(args: argparse.Namespace) -> int:
    if not args.paths:
        raise InputError("report: give at least one PATH (file, folder, s3://bucket/prefix or -)")
    return run_report(
        args.paths,
        args.config,
        args.output,
        sys.stderr,
        policies=args.policies,
        own_functions=own_functions_of(args),
        jobs=args.jobs,
        trusted=trusted_of(args),
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page: who calls what, violations, rewrites",
        description="Judge every Lambda record in CloudTrail files (as scan does) and write one "
        "HTML page that needs no network: the records by verdict, each function's callers with "
        "counts and first/last seen, a functions x callers picture, and for each function with "
        "violations the change a rewrite would make to its policy (--policies). Exit 1: "
        "violations (the page is written); 2: bad config or input (nothing written); 0: none.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    parser.add_argument(
        "--policies",
        type=Path,
        metavar="DIR",
        help="a folder of the functions' current policies, NAME.policy.json or NAME.json "
        "(NAME:QUALIFIER.policy.json for an alias or version), as `aws lambda get-policy` "
        "or `invoke-audit demo --keep` writes them",
    )
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    add_own_function_option(parser, ignored=True)
    parser.add_argument(
        "--trust-account",
        action="append",
        metavar="ACCOUNT",
        help=f"judge only functions of this account, as scan does; default: ${TRUST_ENV}",
    )
    parser.set_defaults(func=_command)
