"""`history --engine duckdb` against `scan`: the same verdicts, record for record.

The engine aggregates caller tuples and `decide` judges each tuple once; `scan` judges every
record. Counted per (function, caller, verdict), both must agree exactly, on the shared corpus
and on a generated organization trail (several accounts and regions, every identity type,
qualifiers, Step Functions, failed calls, InvokeExecution). A difference fails naming the tuple.

The generated trail is written once per session. The 200k-record variant runs in `make soak`
(it takes over a minute on two busy cores); `make test` runs a 30k-record one.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from bench.history_records import write_history_logs
from cli.main import main
from cli.scan import run_scan

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[2]
TRAILS = REPO / ".." / "shared" / "corpus" / "cloudtrail"
BENCH_ALLOWLIST = REPO / "bench" / "allowlist.yaml"
STANDARD_ALLOWLIST = REPO / "config" / "allowlist.yaml"

Key = tuple[str | None, str | None, str]


def scan_counts(path: Path, config: Path) -> Counter[Key]:
    out = io.StringIO()
    run_scan([str(path)], str(config), "jsonl", out, io.StringIO(), jobs=1)
    counts: Counter[Key] = Counter()
    for line in out.getvalue().splitlines():
        row = json.loads(line)
        counts[(row["function"], row["caller"], row["verdict"])] += 1
    return counts


def history_counts(path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> Counter[Key]:
    status = main(
        ["history", "--engine", "duckdb", "--config", str(config), "--format", "jsonl", str(path)]
    )
    captured = capsys.readouterr()
    assert status in (0, 1), captured.err
    counts: Counter[Key] = Counter()
    for line in captured.out.splitlines():
        row = json.loads(line)
        counts[(row["function"], row["caller"], row["verdict"])] += row["count"]
    return counts


def assert_same(history: Counter[Key], scan: Counter[Key]) -> None:
    differences = {
        key: {"history": history[key], "scan": scan[key]}
        for key in set(history) | set(scan)
        if history[key] != scan[key]
    }
    assert not differences, "verdict counts differ per (function, caller, verdict):\n" + "\n".join(
        f"  {key}: {counts}" for key, counts in sorted(differences.items(), key=str)[:20]
    )


@pytest.mark.skipif(not TRAILS.is_dir(), reason=f"the shared CloudTrail corpus is not at {TRAILS}")
@pytest.mark.parametrize("config", [STANDARD_ALLOWLIST, BENCH_ALLOWLIST], ids=["standard", "bench"])
def test_history_matches_scan_on_the_corpus(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = scan_counts(TRAILS, config)
    assert sum(scan.values()) > 20  # the corpus holds Lambda records to compare
    assert_same(history_counts(TRAILS, config, capsys), scan)


@pytest.fixture(scope="session")
def trail_30k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trail-30k")
    write_history_logs(out, records=30_000, files=24)
    return out


@pytest.fixture(scope="session")
def trail_200k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trail-200k")
    write_history_logs(out, records=200_000, files=48)
    return out


def _check_generated(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = scan_counts(path, BENCH_ALLOWLIST)
    verdicts: Counter[str] = Counter()
    for (_, _, verdict), count in scan.items():
        verdicts[verdict] += count
    # the set exercises every verdict
    assert set(verdicts) == {
        "allowed",
        "violation",
        "unmonitored",
        "ignored",
        "failed-call",
        "invalid",
    }
    assert_same(history_counts(path, BENCH_ALLOWLIST, capsys), scan)


def test_history_matches_scan_on_a_generated_trail(
    trail_30k: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_generated(trail_30k, capsys)


@pytest.mark.soak
def test_history_matches_scan_on_200k_generated_records(
    trail_200k: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_generated(trail_200k, capsys)


def test_the_generated_trail_covers_what_the_comparison_is_about(trail_30k: Path) -> None:
    import gzip

    accounts, regions, kinds, names, step_functions = set(), set(), set(), set(), 0
    for path in trail_30k.rglob("*.json.gz"):
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            if record.get("eventSource", "lambda.amazonaws.com") != "lambda.amazonaws.com":
                continue
            accounts.add(record["recipientAccountId"])
            regions.add(record["awsRegion"])
            names.add(record["eventName"])
            kinds.add((record.get("userIdentity") or {}).get("type"))
            step_functions += record.get("requestParameters") is None
    assert len(accounts) >= 3 and len(regions) >= 3
    assert {
        "AssumedRole",
        "IAMUser",
        "Root",
        "AWSAccount",
        "AWSService",
        "FederatedUser",
        "IdentityCenterUser",
        "Unknown",
        None,
    } <= kinds
    assert {"Invoke", "InvokeExecution", "InvokeAsync"} <= names
    assert step_functions > 0


def test_a_difference_names_the_tuple() -> None:
    key = ("arn:aws:lambda:us-east-1:111111111111:function:f", "s3.amazonaws.com", "allowed")
    with pytest.raises(AssertionError, match="function:f"):
        assert_same(Counter({key: 2}), Counter({key: 3}))


def test_learn_from_duckdb_aggregates_writes_the_allowlist_learn_writes_from_records(
    trail_30k: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["learn", str(trail_30k)]) == 0
    from_records = capsys.readouterr().out.splitlines()
    assert main(["learn", "--engine", "duckdb", str(trail_30k)]) == 0
    from_tuples = capsys.readouterr().out.splitlines()
    assert from_records[0].startswith("# Learned by `invoke-audit learn` from ")
    assert from_tuples[0].split(" in ")[0] == from_records[0].split(" in ")[0]  # same count
    assert from_tuples[1:] == from_records[1:]
    assert sum(line.strip().startswith("- name:") for line in from_records) > 10
