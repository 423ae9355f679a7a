"""`make mutate`: mutation testing of the code that decides and writes, with mutmut.

mutmut copies the sources to `mutants/`, rewrites every function of the listed modules so
that each small change (a flipped comparison, a dropped argument, a changed constant, ...)
can be switched on alone, and runs the tests against each change. A mutant is *killed* when
a test fails, *survived* when every test passes: a change no test notices.

How the tests of one mutant are chosen:

1. mutmut runs the unit tier and the functional tests of the remediation flow and the adapters
   once (pyproject.toml, [tool.mutmut]) recording which test calls which function, directly
   or through other code. Tests that reach the mutated modules only on the way to something
   else (the flow tests that drive the whole pipeline or the CLI, restore, findings, the
   report, the validator) are not part of mutation runs: their checks repeat the module tests'
   at ten to a hundred times the cost;
2. a mutant runs the recorded tests of the function it changes, fastest first, stopping at
   the first failure (`-x`), narrowed by the folder of its module (SELECTED_TESTS, applied to
   mutmut's record before the mutants run: `select_tests`): for the pure core
   (`lambdas/core/`), only the unit tier's, where the core is specified with hand-written
   expectations; for the remediation flow and the adapters, the unit tier's (the flow on
   in-memory fakes, the adapters on botocore's Stubber) and the functional tests of the flow
   and the adapters on moto;
3. property tests run hypothesis' `mutation` profile (a tenth of the examples, the same ones
   every run; tests/conftest.py);
4. each mutant's session runs in a process forked from mutmut's after the sessions that
   recorded the tests; it starts with the code's memos emptied (tests/support/memos.py), so
   a memo filled by the unmutated code cannot answer for the mutant.

Writes `bench/mutation.json` (per module: killed, survived, timed out, score; every
surviving mutant with its change; the commit measured; the wall time) and prints the scores.

    python -m bench.mutate                      # every module, 2 workers
    python -m bench.mutate --modules decide rewrite
    python -m bench.mutate --report-only        # results of the last run, no new run
    python -m bench.mutate --stop-after 44      # stop after 44 minutes, report what it measured
    python -m bench.mutate --check tests/unit/test_rewrite.py --survivors rewrite
                                                # re-check the last run's survivors (or
                                                # --mutants NAME...) against some tests

Score = killed / (killed + survived); "no tests" mutants (no selected test calls the
function) count as survived; timeouts are reported apart and not counted; a mutant listed
in bench/mutation-equivalent.txt (reviewed, one reason each) is not run and is left out of
the score (the results file shows its change beside the reason).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "mutation.json"
EQUIVALENT = ROOT / "bench" / "mutation-equivalent.txt"
MUTANTS = ROOT / "mutants"
GOAL = 0.90

# module name -> source file: the decision core, the remediation flow, the Lambda policy
# adapter, backups and the rate limit.
MODULES = {
    "decide": "lambdas/core/decide.py",
    "decision_cache": "lambdas/core/decision_cache.py",
    "record": "lambdas/core/record.py",
    "inputs": "lambdas/core/inputs.py",
    "rewrite": "lambdas/core/rewrite.py",
    "evaluate": "lambdas/core/evaluate.py",
    "remediate": "lambdas/remediation/remediate.py",
    "policy": "lambdas/core/policy.py",
    "lambda_policy": "lambdas/adapters/lambda_policy.py",
    "backup": "lambdas/adapters/backup.py",
    "rate_limit": "lambdas/adapters/rate_limit.py",
}

# mutmut's exit codes per mutant -> what they mean here
_KILLED = {1, 3}
_SURVIVED = {0}
_NO_TESTS = {5, 33}
_TIMEOUT = {36, 24, -24, 152, 255}


@dataclass
class Tally:
    killed: int = 0
    survived: int = 0
    no_tests: int = 0
    timeout: int = 0
    equivalent: int = 0
    not_checked: int = 0  # the run stopped before it came to them
    other: int = 0

    @property
    def score(self) -> float | None:
        judged = self.killed + self.survived + self.no_tests
        return round(self.killed / judged, 4) if judged else None


def _module_prefix(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".") + "."


def equivalents() -> dict[str, str]:
    """Reviewed equivalent mutants: `name  reason` per line (# comments)."""
    found: dict[str, str] = {}
    if not EQUIVALENT.is_file():
        return found
    for number, line in enumerate(EQUIVALENT.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not text:
            continue
        name, _, reason = text.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{EQUIVALENT.name}:{number}: {name}: no reason given")
        found[name] = reason.strip()
    return found


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-m", "mutmut", *args]
    return subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, check=False)


def _check_config() -> None:
    """pyproject.toml's [tool.mutmut] must mutate exactly MODULES and collect exactly the tests
    SELECTED_TESTS keeps."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        config = tomllib.load(file)["tool"]["mutmut"]
    if sorted(config["only_mutate"]) != sorted(MODULES.values()):
        raise SystemExit("pyproject.toml [tool.mutmut] only_mutate differs from bench/mutate.py")
    kept = {p.removesuffix("::").removesuffix("/") for t in SELECTED_TESTS.values() for p in t}
    if set(config["pytest_add_cli_args_test_selection"]) != kept:
        raise SystemExit(
            "pyproject.toml [tool.mutmut] pytest_add_cli_args_test_selection differs from"
            " bench/mutate.py's SELECTED_TESTS"
        )


# Which of mutmut's recorded tests a mutant runs, by the folder of the module it changes:
# the pure core is specified by the unit tier; the remediation flow and the adapters by the unit
# tier (the flow on in-memory fakes, the adapters on botocore's Stubber) and the functional tests
# of the flow and the adapters on moto. Tests that reach these modules only on the way to
# something else (restore, findings, the report, the validator) are left to `make test`.
SELECTED_TESTS: dict[str, tuple[str, ...]] = {
    "lambdas/core/": ("tests/unit/",),
    "lambdas/remediation/": (
        "tests/unit/",
        *(
            f"tests/functional/{name}.py::"
            for name in (
                "test_remediator",
                "test_remediator_guards",
                "test_remediator_handler",
                "test_permission_fallback",
                "test_proof_gate",
                "test_adapters",
                "test_adapters_stubbed",
                "test_backup_store",
                "test_adapter_messages",
            )
        ),
    ),
}
SELECTED_TESTS["lambdas/adapters/"] = SELECTED_TESTS["lambdas/remediation/"]


def select_tests(tests_by_function: dict[str, set[str]]) -> None:
    """Narrow mutmut's record (mangled function name -> tests calling it) in place to the
    tests SELECTED_TESTS names for the function's module."""
    for folder, kept in SELECTED_TESTS.items():
        prefix = folder.replace("/", ".")
        for function, tests in tests_by_function.items():
            if function.startswith(prefix):
                tests_by_function[function] = {t for t in tests if t.startswith(kept)}


def _mutmut_run(names: list[str], workers: int) -> None:
    """mutmut's `run`, in this process (mutmut 3.8.1, pinned), with `select_tests` applied to
    its record of which test calls which function once it is collected or loaded, and without
    the reviewed equivalent mutants (they are not run: they count apart whatever they do)."""
    import mutmut.__main__ as tool
    from mutmut.state import state

    collect_or_load = tool.collect_or_load_stats
    mutants_of = tool.collect_source_file_mutation_data
    known = equivalents()

    def collect_then_select(*args: Any, **kwargs: Any) -> None:
        collect_or_load(*args, **kwargs)
        select_tests(state().tests_by_mangled_function_name)

    def without_equivalents(*args: Any, **kwargs: Any) -> Any:
        mutants, by_path = mutants_of(*args, **kwargs)
        return [m for m in mutants if m[1] not in known], by_path

    tool.collect_or_load_stats = collect_then_select
    tool.collect_source_file_mutation_data = without_equivalents
    tool._run(names, workers)


def run(modules: list[str], workers: int, stop_after: float | None = None) -> tuple[float, bool]:
    """One mutmut run over `modules`: its wall time in seconds, and whether it was stopped
    after `stop_after` seconds (the mutants it had not come to stay `not_checked`)."""
    _check_config()
    MUTANTS.mkdir(exist_ok=True)
    venv = MUTANTS / ".venv"  # tests that run the console script look for it in the copy
    if not venv.exists():
        venv.symlink_to(ROOT / ".venv")
    names = [_module_prefix(MODULES[m]) + "*" for m in modules]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.monotonic()
    command = [sys.executable, "-m", "bench.mutate", "--mutmut-run", str(workers), *names]
    # its own process group: a stop ends mutmut and the test processes it forked, no other
    with subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True) as child:
        try:
            code = child.wait(timeout=stop_after)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            return time.monotonic() - started, True
    if code != 0:
        raise SystemExit(f"mutmut stopped with exit code {code}")
    return time.monotonic() - started, False


def _functions(path: str) -> dict[str, str]:
    """The source of every function in mutmut's copy of `path`, by name."""
    source = (MUTANTS / path).read_text(encoding="utf-8")
    lines = source.splitlines()
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno:
            found[node.name] = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return found


def _diff(functions: dict[str, str], name: str) -> str:
    """The mutant's change as `-old` / `+new` lines (from mutmut's copy of the module)."""
    mutant = name.rsplit(".", 1)[-1]
    original = mutant.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    old = functions.get(original, "").splitlines()[1:]
    new = functions.get(mutant, "").splitlines()[1:]
    head = [
        functions.get(original, "").partition("\n")[0],
        functions.get(mutant, "").partition("\n")[0],
    ]
    lines = [f"-{a.strip()}" for a in old if a not in new] + [
        f"+{b.strip()}" for b in new if b not in old
    ]
    if head[0] != head[1].replace(mutant, original):
        lines = [f"-{head[0].strip()}", f"+{head[1].strip()}", *lines]
    return "\n".join(lines)


def _measured_commit() -> str:
    """The commit mutmut copied and measured (its stats record it), else HEAD."""
    stats = MUTANTS / "mutmut-stats.json"
    if stats.is_file():
        recorded = json.loads(stats.read_text()).get("git_commit")
        if isinstance(recorded, str) and recorded:
            return recorded
    return _git("rev-parse", "HEAD")


def report(modules: list[str], seconds: float | None, workers: int) -> dict[str, Any]:
    known = equivalents()
    tallies: dict[str, Tally] = {}
    survivors: list[dict[str, Any]] = []
    changes = {module: _functions(MODULES[module]) for module in modules}
    for module in modules:
        path = MODULES[module]
        meta = MUTANTS / f"{path}.meta"
        if not meta.is_file():
            raise SystemExit(f"{meta}: no results for {module}: run `make mutate` first")
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        functions = changes[module]
        tally = tallies[module] = Tally()
        for name, code in sorted(codes.items()):
            if name in known:
                tally.equivalent += 1
            elif code in _KILLED:
                tally.killed += 1
            elif code in _SURVIVED or code in _NO_TESTS:
                if code in _SURVIVED:
                    tally.survived += 1
                else:
                    tally.no_tests += 1
                status = "survived" if code in _SURVIVED else "no tests"
                survivors.append(
                    {
                        "module": module,
                        "mutant": name,
                        "status": status,
                        "change": _diff(functions, name),
                    }
                )
            elif code in _TIMEOUT:
                tally.timeout += 1
            elif code is None:
                tally.not_checked += 1
            else:
                tally.other += 1
    totals = Counter[str]()
    for tally in tallies.values():
        totals.update({k: v for k, v in vars(tally).items()})
    return {
        "tool": f"mutmut {_mutmut('--version').stdout.strip().split()[-1]}",
        "commit": _measured_commit(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "workers": workers,
        "seconds": None if seconds is None else round(seconds),
        "tests": (
            "per mutant, the tests that call its function (mutmut's record) of tests/unit and"
            " tests/functional without the flow tests; for lambdas/core, tests/unit only;"
            " hypothesis profile `mutation`"
        ),
        "score": "killed / (killed + survived + no tests); timeouts and reviewed equivalents apart",
        "goal": GOAL,
        "modules": {
            m: {"path": MODULES[m], **vars(t), "score": t.score} for m, t in tallies.items()
        },
        "total": dict(totals),
        "survivors": survivors,
        "equivalent": [
            {"mutant": name, "reason": reason, "change": _diff(changes[module], name)}
            for name, reason in known.items()
            for module in modules
            if name.startswith(_module_prefix(MODULES[module]))
        ],
    }


def _print(results: dict[str, Any]) -> None:
    print(
        f"{'MODULE':16} {'KILLED':>7} {'SURVIVED':>9} {'NO TESTS':>9} {'TIMEOUT':>8} "
        f"{'EQUIV':>6} {'UNCHECKED':>9} {'SCORE':>7}"
    )
    for module, row in results["modules"].items():
        score = "-" if row["score"] is None else f"{row['score']:.1%}"
        flag = "" if row["score"] is None or row["score"] >= GOAL else "  below the goal"
        print(
            f"{module:16} {row['killed']:7} {row['survived']:9} {row['no_tests']:9} "
            f"{row['timeout']:8} {row['equivalent']:6} {row['not_checked']:9} {score:>7}{flag}"
        )
    for survivor in results["survivors"]:
        print(f"\n{survivor['status']}: {survivor['mutant']}\n{survivor['change']}")
    seconds = results["seconds"]
    if seconds is not None:
        print(f"\n{seconds // 60} min {seconds % 60} s with {results['workers']} workers")
    if "stopped" in results:
        print(f"stopped {results['stopped']}: the mutants it had not come to are not checked")
    print(f"results: {RESULTS.relative_to(ROOT)} (commit {results['commit'][:12]})")


def check(tests: list[str], mutants: list[str]) -> dict[str, bool]:
    """Run `tests` against each mutant of an earlier run's copy (`mutants/`), after copying
    the current tests into it: whether each mutant is killed. For reviewing survivors while
    writing tests; `make mutate` is the measurement."""
    if not (MUTANTS / "mutmut-stats.json").is_file():
        raise SystemExit("mutants/: no earlier run: run `make mutate` first")
    shutil.rmtree(MUTANTS / "tests", ignore_errors=True)
    shutil.copytree(ROOT / "tests", MUTANTS / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    killed: dict[str, bool] = {}
    for name in mutants:
        env["MUTANT_UNDER_TEST"] = name
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "--hypothesis-profile=mutation",
                *tests,
            ],
            cwd=MUTANTS,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in (0, 1):
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise SystemExit(f"{name}: pytest exit {done.returncode}: {' / '.join(tail)}")
        killed[name] = done.returncode == 1
        print(f"{'killed  ' if killed[name] else 'SURVIVED'} {name}", flush=True)
    print(f"{sum(killed.values())} of {len(killed)} killed")
    return killed


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--mutmut-run"]:  # the child process of `run`
        _mutmut_run(arguments[2:], int(arguments[1]))
        return 0
    parser = argparse.ArgumentParser(prog="make mutate", description=__doc__.split("\n")[0])
    parser.add_argument("--modules", nargs="+", choices=sorted(MODULES), default=list(MODULES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--note", help="a remark stored with the results (e.g. how the run went)")
    parser.add_argument(
        "--stop-after",
        type=float,
        metavar="MINUTES",
        help="stop the run after this long and report what it measured",
    )
    parser.add_argument(
        "--check", nargs="+", metavar="TEST", help="re-check mutants with these tests"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--mutants", nargs="+", metavar="NAME", help="mutants to --check")
    which.add_argument(
        "--survivors", nargs="+", choices=sorted(MODULES), help="--check these modules' survivors"
    )
    args = parser.parse_args(argv)
    if args.check:
        names = args.mutants or [
            s["mutant"]
            for s in json.loads(RESULTS.read_text())["survivors"]
            if s["module"] in (args.survivors or MODULES)
        ]
        check(args.check, names)
        return 0
    seconds, stopped = None, False
    if not args.report_only:
        limit = None if args.stop_after is None else args.stop_after * 60
        seconds, stopped = run(args.modules, args.workers, limit)
    results = report(args.modules, seconds, args.workers)
    if stopped:
        results["stopped"] = f"after {args.stop_after:g} minutes (--stop-after)"
    if args.note:
        results["note"] = args.note
    if RESULTS.is_file() and args.modules != list(MODULES):
        # a run over some modules updates their rows and keeps the others'
        previous = json.loads(RESULTS.read_text())
        kept = {m: r for m, r in previous.get("modules", {}).items() if m not in args.modules}
        results["modules"] = kept | results["modules"]
        results["survivors"] = [
            s for s in previous.get("survivors", []) if s["module"] not in args.modules
        ] + results["survivors"]
        ours = tuple(_module_prefix(MODULES[m]) for m in args.modules)
        earlier = previous.get("equivalent", [])
        results["equivalent"] = [
            e for e in earlier if isinstance(e, dict) and not e["mutant"].startswith(ours)
        ] + results["equivalent"]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _print(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
