"""The history figure: `history --engine duckdb` (aggregate, then judge each distinct caller)
against `scan` (judge every record), on the same log files, each in a fresh process.

Wall time is the median of RUNS runs, interleaved; peak memory is the largest resident set
of any one process of the run (`wait4`'s ru_maxrss: for scan, the parent or one of its worker
processes, whichever is larger, so not their sum; DuckDB runs in one process with a thread
per core). Both must
give the same verdict counts, or the figure is not written.

`python -m bench.history` measures this figure alone and stores it in bench/results.json
(marked as measured on its own); `make bench` measures it with the others.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"


# A small process runs the command and reports its peak RSS: a child forked straight from
# this (larger) process would start its peak from this process's resident set.
LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure(command: list[str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MB, stdout) of one run."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, cwd=ROOT, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command[3]} exited {done.returncode}")
    return seconds, int(done.stderr.split()[-1]) // 1024, done.stdout


def _verdicts(output: str, counted: bool) -> Counter[str]:
    verdicts: Counter[str] = Counter()
    for line in output.splitlines():
        row = json.loads(line)
        verdicts[row["verdict"]] += row["count"] if counted else 1
    return verdicts


def run(folder: Path, allowlist: Path, runs: int) -> dict[str, Any]:
    python = sys.executable
    common = ["--config", str(allowlist), "--format", "jsonl", str(folder)]
    commands = {
        "history_duckdb": [python, "-m", "cli.main", "history", "--engine", "duckdb", *common],
        "scan": [python, "-m", "cli.main", "scan", *common],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    memory: dict[str, list[int]] = {name: [] for name in commands}
    outputs: dict[str, str] = {}
    for run_number in range(runs):
        for name, command in commands.items():
            took, peak, outputs[name] = measure(command)
            seconds[name].append(took)
            memory[name].append(peak)
        print(
            f"[bench] history run {run_number + 1}/{runs}: "
            + ", ".join(f"{n} {v[-1]:.1f} s" for n, v in seconds.items()),
            file=sys.stderr,
            flush=True,
        )
    load = round(os.getloadavg()[0], 1)  # a busy machine slows both alike, not the ratio
    history = _verdicts(outputs["history_duckdb"], counted=True)
    scan = _verdicts(outputs["scan"], counted=False)
    if history != scan:
        raise RuntimeError(f"history and scan disagree: {dict(history)} != {dict(scan)}")
    return {
        "history_duckdb_s": round(statistics.median(seconds["history_duckdb"]), 2),
        "scan_s": round(statistics.median(seconds["scan"]), 2),
        "history_duckdb_peak_mb": max(memory["history_duckdb"]),
        "scan_peak_mb": max(memory["scan"]),
        "distinct_callers": len(outputs["history_duckdb"].splitlines()),
        "lambda_records": sum(scan.values()),
        "verdicts": dict(sorted(scan.items())),
        "load_average_1m_after": load,
    }


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from bench.generate import ensure_logs
    from bench.records import ALLOWLIST

    files = ensure_logs()
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    figure = run(files[0].parent, ALLOWLIST, runs)
    figure.update(records=1_000_000, files=len(files), runs=runs, measured_separately=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["history"] = figure
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figure, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
