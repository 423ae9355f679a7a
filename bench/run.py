"""`make bench`: invoke-audit measured side by side with what users would otherwise pick.

Every timed figure is the median of RUNS runs, the contenders interleaved run by run so that
a noisy machine slows them alike; the counts (edge filter, API calls) are deterministic.
Prints a table and writes bench/results.json. Bench-only tools: Cloud Custodian in its own
virtualenv (bench/.work/c7n-venv, installed on first use), Debian's jq (not installed here:
its figure is skipped with a note when it is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results.json"
C7N_VENV = WORK / "c7n-venv"
C7N_VERSION = "0.9.53"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
JQ_FILTER = '.Records[] | select(.eventSource=="lambda.amazonaws.com" and .eventName=="Invoke")'
FLOOR = """
import gzip, sys, orjson
records = 0
for path in sys.argv[1:]:
    with open(path, "rb") as handle:
        for record in orjson.loads(gzip.decompress(handle.read()))["Records"]:
            records += 1
print(records)
"""

GOALS = {
    "cold_start_validator_vs_c7n": ("<=", 0.40),
    "decide_per_s": (">=", 100_000),
    "scan_vs_jq": (">=", 3.0),
    "scan_vs_floor": (">=", 0.5),
    # With the proof before every write: read, two Access Analyzer checks, budget, backup,
    # write, notify; of those, two Lambda API calls (read and write).
    "remediation_per_violation": ("<=", 7),
    "remediation_lambda_api_per_violation": ("<=", 2),
    "remediation_burst_100_writes": ("<=", 2),
    "edge_false_negatives": ("<=", 0),
    "edge_allowed_filtered_fraction": (">=", 0.95),
    "edge_allowed_filtered_fraction_20_rules": (">=", 0.9),
    # `report` over 170,000 CloudTrail records (about 104,000 Lambda records)
    "report_100k_s": ("<=", 30.0),
    "report_100k_page_mb": ("<=", 1.0),
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def timed(command: list[str], **kwargs: Any) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    return time.perf_counter() - start


# -- tools ----------------------------------------------------------------------------------


def c7n_python() -> tuple[Path | None, str | None]:
    """Cloud Custodian's interpreter (same Python as ours), installed once; or why not."""
    python = C7N_VENV / "bin" / "python"
    if python.exists():
        return python, None
    log(f"installing c7n=={C7N_VERSION} into {C7N_VENV} (bench only)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(C7N_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"c7n=={C7N_VERSION}"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    except (subprocess.CalledProcessError, OSError) as error:
        shutil.rmtree(C7N_VENV, ignore_errors=True)
        return None, f"could not install c7n=={C7N_VERSION} ({error}); its figure is skipped"
    return python, None


def jq_binary() -> tuple[str | None, str | None]:
    found = shutil.which("jq")
    if found:
        return found, None
    return None, "jq is not installed (Debian: sudo apt-get install jq); its figure is skipped"


# -- figures --------------------------------------------------------------------------------


def cold_start(c7n: Path | None) -> dict[str, Any]:
    """A fresh interpreter (same flags for all: `python -c`) running pass, or one import."""
    ours = sys.executable
    cases: dict[str, list[str]] = {
        "python": [ours, "-c", "pass"],
        "validator": [ours, "-c", "import lambdas.validator.handler"],
        "remediator": [ours, "-c", "import lambdas.remediator.handler"],
    }
    if c7n is not None:
        cases["python_c7n_venv"] = [str(c7n), "-c", "pass"]
        cases["c7n"] = [str(c7n), "-c", "import c7n.policy"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    for command in cases.values():  # warm the page cache and the .pyc files once
        subprocess.run(command, check=True, cwd=ROOT, env=env)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(max(RUNS, 5)):
        for name, command in cases.items():
            samples[name].append(timed(command, cwd=ROOT, env=env))
    return {name: median_ms(values) for name, values in samples.items()}


def decide_rate() -> dict[str, Any]:
    from bench.records import ALLOWLIST, invoke_set
    from cli.allowlist_file import load_allowlist
    from lambdas.core import decide as decide_module

    config = load_allowlist(ALLOWLIST)
    records = invoke_set(100_000, seed=100)
    distinct = invoke_set(20_000, seed=101)
    for index, record in enumerate(distinct):  # every record its own caller: no repeats
        record["requestParameters"] = record.get("requestParameters") or {}
        record["requestParameters"]["sourceAccount"] = f"{index:012d}"

    def rate(batch: list[dict[str, Any]]) -> float:
        decide_module._DECISIONS.clear()  # every run starts cold
        decide = decide_module.decide
        start = time.perf_counter()
        for record in batch:
            decide(record, config)
        return len(batch) / (time.perf_counter() - start)

    mixed = [rate(records) for _ in range(RUNS)]
    unique = [rate(distinct) for _ in range(RUNS)]
    return {
        "decide_per_s": round(statistics.median(mixed)),
        "decide_per_s_no_repeats": round(statistics.median(unique)),
    }


def scan(files: list[Path], jq: str | None) -> dict[str, Any]:
    from bench.records import ALLOWLIST

    names = [str(f) for f in files]
    invoke_audit = [
        str(Path(sys.executable).with_name("invoke-audit")),
        "scan",
        "--config",
        str(ALLOWLIST),
        "--format",
        "jsonl",
        *names,
    ]
    contenders: dict[str, Callable[[], float]] = {}

    def ours() -> float:
        start = time.perf_counter()
        done = subprocess.run(invoke_audit, stdout=subprocess.DEVNULL, cwd=ROOT)
        if done.returncode not in (0, 1):  # 1: violations found
            raise RuntimeError(f"invoke-audit scan exited {done.returncode}")
        return time.perf_counter() - start

    contenders["invoke_audit_s"] = ours
    contenders["orjson_floor_s"] = lambda: timed(
        [sys.executable, "-c", FLOOR, *names], stdout=subprocess.DEVNULL
    )
    if jq:
        pipeline = f"set -o pipefail; zcat -- \"$@\" | {jq} -c '{JQ_FILTER}' > /dev/null"
        contenders["jq_s"] = lambda: timed(["bash", "-c", pipeline, "jq", *names])
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for run in range(RUNS):
        for name, contender in contenders.items():
            samples[name].append(contender())
        log(
            f"scan run {run + 1}/{RUNS}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in samples.items())
        )
    result: dict[str, Any] = {name: round(statistics.median(v), 2) for name, v in samples.items()}
    result["jq_s"] = result.get("jq_s")
    return result


# -- cost -----------------------------------------------------------------------------------

# us-east-1 list prices (USD), the inputs of the cost model; check them against the pricing
# pages before relying on the result.
PRICES = {
    "cloudtrail_data_event": 0.10 / 100_000,
    "eventbridge_data_event_ingested": 1.00 / 1_000_000,  # "AWS opt-in data events"
    "lambda_request": 0.20 / 1_000_000,
    "lambda_arm64_gb_s": 0.0000133334,
    "logs_ingested_gb": 0.50,
    "sqs_fifo_request": 0.50 / 1_000_000,
    "s3_put": 0.005 / 1_000,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "sns_publish": 0.50 / 1_000_000,
}
VALIDATOR_GB = 0.25  # stacks: PipelineFunction's default memory
REMEDIATOR_GB = 0.5
PLATFORM_LOG_BYTES = 300  # START, END and REPORT lines Lambda writes per invocation
REMEDIATOR_MS = 300  # a violation: read, back up, write, notify (network-bound; assumed)


def cost_model(results: dict[str, Any]) -> dict[str, Any]:
    """USD per million monitored Invokes: CloudTrail's fee, and the pipeline's, without and
    with the edge filter. Two traffic shapes: the bench's mixed set (many violations, to test
    the filter), and a steady state where 99% of Invokes come from allowed callers and 100 in
    a million are violations (a remediated caller's next Invokes fail: failed calls)."""
    p = PRICES
    validator = results["validator"]
    billed_s = max(1, -(-validator["warm_invoke_us"] // 1000)) / 1000  # 1 ms granularity
    log_gb = (validator["log_bytes_per_invoke"] + PLATFORM_LOG_BYTES) / 1e9
    per_validation = (
        p["lambda_request"]
        + billed_s * VALIDATOR_GB * p["lambda_arm64_gb_s"]
        + log_gb * p["logs_ingested_gb"]
    )
    per_violation = (
        3 * p["sqs_fifo_request"]  # send, receive, delete
        + p["lambda_request"] / 10  # batches of up to 10
        + REMEDIATOR_MS / 1000 * REMEDIATOR_GB * p["lambda_arm64_gb_s"]
        + p["s3_put"]
        + p["dynamodb_write_unit"]
        + p["sns_publish"]
        + 2 * 1500 / 1e9 * p["logs_ingested_gb"]  # two log lines of about 1.5 KB
    )
    million = 1_000_000

    def pipeline(delivered: float, violations: float) -> dict[str, float]:
        lines = {
            "eventbridge_ingest": p["eventbridge_data_event_ingested"] * million,
            "validator": per_validation * delivered * million,
            "remediation": per_violation * violations * million,
        }
        lines["total"] = sum(lines.values())
        return {k: round(v, 3) for k, v in lines.items()}

    mix = results["edge_filter"]["example"]
    mix_4096 = results["edge_filter_4096"]["example"]
    mix_violations = mix["verdicts"].get("violation", 0) / mix["events"]
    shapes: dict[str, Any] = {
        "bench_mix": {
            "without_edge_filter": pipeline(1.0, mix_violations),
            "with_edge_filter_2048": pipeline(
                1 - sum(mix["dropped"].values()) / mix["events"], mix_violations
            ),
            "with_edge_filter_4096": pipeline(
                1 - sum(mix_4096["dropped"].values()) / mix["events"],
                mix_violations,
            ),
        },
        "steady_state": {},
    }
    allowed, violations = 0.99, 100 / million
    for name, edge in (("2048", mix), ("4096", mix_4096)):
        delivered = 1 - allowed * edge["allowed_filtered_fraction"]
        shapes["steady_state"][f"with_edge_filter_{name}"] = pipeline(delivered, violations)
    shapes["steady_state"]["without_edge_filter"] = pipeline(1.0, violations)
    return {
        "usd_per_million_invokes": {
            "cloudtrail_data_events": round(p["cloudtrail_data_event"] * million, 3),
            **shapes,
        },
        "usd_per_validation": per_validation,
        "usd_per_violation": per_violation,
        "inputs": {
            "prices_usd": p,
            "validator_billed_ms": billed_s * 1000,
            "validator_log_bytes": validator["log_bytes_per_invoke"] + PLATFORM_LOG_BYTES,
            "validator_memory_gb": VALIDATOR_GB,
            "remediator_ms_assumed": REMEDIATOR_MS,
            "remediator_memory_gb": REMEDIATOR_GB,
            "bench_mix_violation_share": round(mix_violations, 4),
            "steady_state_allowed_share": allowed,
            "steady_state_violations_per_million": violations * million,
        },
    }


# -- report ---------------------------------------------------------------------------------


def _met(name: str, value: float | None) -> bool | None:
    if value is None:
        return None
    op, goal = GOALS[name]
    return value <= goal if op == "<=" else value >= goal


def _edge_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    edge = results["edge_filter"]["example"]
    generated = results["edge_filter"]["generated_20_rules"]
    return {
        "edge_false_negatives": edge["false_negatives"] + generated["false_negatives"],
        "edge_allowed_filtered_fraction": edge["allowed_filtered_fraction"],
        "edge_allowed_filtered_fraction_20_rules": generated["allowed_filtered_fraction"],
    }


def _report_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    return {
        "report_100k_s": results["report"]["report_s"],
        "report_100k_page_mb": round(results["report"]["page_bytes"] / 1e6, 3),
    }


def _decide_ratios(results: dict[str, Any]) -> dict[str, float | None]:
    return {"decide_per_s": results["decide_per_s"]}


def _goals(ratios: dict[str, float | None]) -> dict[str, Any]:
    return {
        name: {
            "value": value,
            "goal": f"{GOALS[name][0]} {GOALS[name][1]}",
            "met": _met(name, value),
        }
        for name, value in ratios.items()
    }


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    cold = results["cold_start_ms"]
    scan_ = results["scan"]
    ratios: dict[str, float | None] = {
        "cold_start_validator_vs_c7n": round(cold["validator"] / cold["c7n"], 3)
        if cold.get("c7n")
        else None,
        **_decide_ratios(results),
        "scan_vs_jq": round(scan_["jq_s"] / scan_["invoke_audit_s"], 2)
        if scan_.get("jq_s")
        else None,
        "scan_vs_floor": round(scan_["orjson_floor_s"] / scan_["invoke_audit_s"], 2),
        "remediation_per_violation": results["remediation_calls"]["per_violation"],
        "remediation_lambda_api_per_violation": results["remediation_calls"][
            "per_violation_lambda_api"
        ],
        "remediation_burst_100_writes": results["remediation_calls"]["burst_100_writes"],
        **_edge_ratios(results),
        **_report_ratios(results),
    }
    return _goals(ratios)


def table(results: dict[str, Any]) -> str:
    rows = [("figure", "value", "goal", "met")]
    for name, entry in results["goals"].items():
        met = {True: "yes", False: "NO", None: "skipped"}[entry["met"]]
        rows.append((name, str(entry["value"]), entry["goal"], met))
    cold = results["cold_start_ms"]
    scan_ = results["scan"]
    details = [
        "cold start (ms): " + ", ".join(f"{k} {v}" for k, v in cold.items()),
        f"decide: {results['decide_per_s']:,}/s (records repeating as traffic does), "
        f"{results['decide_per_s_no_repeats']:,}/s (no two alike)",
        f"scan of {scan_['records']:,} records in {scan_['files']} files: invoke-audit "
        f"{scan_['invoke_audit_s']} s, jq {scan_['jq_s']} s, orjson floor {scan_['orjson_floor_s']} s",
        f"history of the same records: DuckDB aggregation + judging "
        f"{results['history']['history_duckdb_s']} s, peak {results['history']['history_duckdb_peak_mb']} MB; "
        f"scan {results['history']['scan_s']} s, peak {results['history']['scan_peak_mb']} MB "
        f"({results['history']['distinct_callers']} distinct callers)",
        f"report of {results['report']['records']:,} records: {results['report']['report_s']} s, "
        f"peak {results['report']['report_peak_mb']} MB, page {results['report']['page_bytes']:,} bytes",
        f"validator warm invocation: {results['validator']['warm_invoke_us']} us, "
        f"{results['validator']['log_bytes_per_invoke']} log bytes",
        "remediation calls: " + json.dumps(results["remediation_calls"]["per_violation_calls"]),
        "USD per million monitored Invokes (steady state; CloudTrail's own fee "
        f"{results['cost']['usd_per_million_invokes']['cloudtrail_data_events']}): "
        + json.dumps(results["cost"]["usd_per_million_invokes"]["steady_state"]),
        *(
            f"edge filter, {name} allowlist at {limit} characters (event-ruler): "
            + json.dumps(
                {
                    k: results[key][name][k]
                    for k in (
                        "false_negatives",
                        "allowed_filtered_fraction",
                        "rules",
                        "largest_pattern_chars",
                    )
                }
            )
            for key, limit in (("edge_filter", 2048), ("edge_filter_4096", 4096))
            for name in ("example", "generated_20_rules")
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([*lines, "", *details, *results["notes"]])


def _commit() -> str:
    """The commit measured (`+dirty` when the tree has changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


def edge_rows() -> dict[str, Any]:
    from bench import edge

    log("edge filter through aws/event-ruler")
    commit = _commit()
    return {
        "edge_filter": {**edge.run(limit=2048), "commit": commit},
        "edge_filter_4096": {**edge.run(limit=4096), "commit": commit},
    }


def _update_only(part: str) -> int:
    """Measure one part and update its rows and goals in the results, keeping the others
    (each updated row records the commit it measured)."""
    kept: dict[str, Any] = json.loads(RESULTS.read_text())
    commit = _commit()
    if part == "edge":
        kept.update(edge_rows())
        kept["cost"] = cost_model(kept)
        ratios = _edge_ratios(kept)
    elif part == "report":
        from bench import report
        from bench.records import ALLOWLIST

        log("report (HTML page) over about 100,000 Lambda records")
        kept["report"] = {**report.run(ALLOWLIST, RUNS), "commit": commit}
        ratios = _report_ratios(kept)
    else:
        log("decide")
        rates = decide_rate()
        kept.update(rates)
        kept["decide_commit"] = commit
        ratios = _decide_ratios(kept)
    # Only this part's goals: the file may predate a part added since its last full run.
    kept["goals"] = {**kept.get("goals", {}), **_goals(ratios)}
    RESULTS.write_text(json.dumps(kept, indent=2) + "\n")
    for name in ratios:
        goal = kept["goals"][name]
        print(f"{name}: {goal['value']} (goal {goal['goal']}, met: {goal['met']})")
    print(f"{part} rows updated in {RESULTS.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Run every benchmark, print the table and write bench/results.json.",
    )
    parser.add_argument(
        "--only",
        choices=["edge", "report", "decide"],
        help="measure only this part and update it (and the cost model and goals) in "
        "bench/results.json, keeping the other figures",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    if args.only:
        return _update_only(args.only)
    from bench import history, remediation, report, validator
    from bench.generate import ensure_logs
    from bench.records import ALLOWLIST

    notes: list[str] = []
    log("generating the log files (reused when present)")
    files = ensure_logs()
    manifest = json.loads((files[0].parent / "manifest.json").read_text())
    c7n, why = c7n_python()
    if why:
        notes.append(why)
    jq, why = jq_binary()
    if why:
        notes.append(why)
    log("cold start")
    cold = cold_start(c7n)
    log("decide")
    rates = decide_rate()
    log("scan (the longest part)")
    scanned = scan(files, jq)
    scanned.update(
        records=manifest["arguments"]["records"], files=len(files), gzip_bytes=manifest["bytes"]
    )
    log("history (DuckDB aggregation + judging) against scan")
    history_figure = history.run(files[0].parent, ALLOWLIST, RUNS)
    history_figure.update(records=manifest["arguments"]["records"], files=len(files))
    log("report (HTML page) over about 100,000 Lambda records")
    report_figure = report.run(ALLOWLIST, RUNS)
    log("validator warm invocations")
    warm = validator.run(runs=RUNS)
    log("remediation calls")
    calls = remediation.run()
    edges = edge_rows()
    results: dict[str, Any] = {
        "cold_start_ms": cold,
        **rates,
        "scan": scanned,
        "history": history_figure,
        "report": report_figure,
        "validator": warm,
        "remediation_calls": calls,
        **edges,
        "runs": RUNS,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "notes": notes,
    }
    results["cost"] = cost_model(results)
    results["goals"] = summarize(results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
