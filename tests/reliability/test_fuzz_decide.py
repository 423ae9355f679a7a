"""Fuzzing the decision and `invoke-audit scan`: generated records and mutations of the real
corpus records. Nothing raises, what cannot be judged is `invalid` with a reason, and a
`violation` (the only verdict that leads to a policy change) is only ever given for a record
whose function, rule and caller are all known."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from cli.scan import is_lambda_candidate, judge_bytes
from lambdas.core.decide import Verdict, decide
from tests.support.allowlists import FUZZ_CONFIG, fuzz_config
from tests.support.checks import check_decision
from tests.support.corpus import CORPUS_MISSING, corpus_records
from tests.support.records import OWN_FUNCTIONS
from tests.support.strategies import cloudtrail_records, json_values, mutated_records

pytestmark = [pytest.mark.reliability]

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_FILES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.one_of(json_values, st.lists(json_values), st.text()))
def test_decide_takes_any_json_value(value: Any) -> None:
    decision = check_decision(value)
    if not isinstance(value, dict):
        assert decision.verdict is Verdict.INVALID


@FUZZ
@given(cloudtrail_records())
def test_decide_takes_generated_lambda_records(record: dict[str, Any]) -> None:
    before = json.dumps(record, sort_keys=True, default=str)
    first = check_decision(record)
    assert json.dumps(record, sort_keys=True, default=str) == before, "decide changed its input"
    assert decide(record, fuzz_config(), own_functions=OWN_FUNCTIONS) == first, "not deterministic"


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, Any], ...]:
    records = corpus_records()
    if not records:
        pytest.skip(CORPUS_MISSING)
    return records


def test_every_real_corpus_record_is_judged(corpus: tuple[dict[str, Any], ...]) -> None:
    verdicts = {check_decision(r).verdict for r in corpus}
    assert len(corpus) > 100
    # The corpus holds Invoke, InvokeExecution and other services' records.
    assert Verdict.IGNORED in verdicts


@FUZZ
@given(data=st.data())
def test_decide_takes_mutated_corpus_records(corpus: tuple[dict[str, Any], ...], data: Any) -> None:
    check_decision(data.draw(mutated_records(corpus)))


# --- the unjudgeable is `invalid`, with a reason -------------------------------------------

INVOKE: dict[str, Any] = {
    "eventID": "e-1",
    "eventSource": "lambda.amazonaws.com",
    "eventName": "Invoke",
    "awsRegion": "us-east-1",
    "recipientAccountId": "123456789012",
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
    "requestParameters": {"functionName": "BlogFunction"},
}


def _without(*keys: str, **changes: Any) -> dict[str, Any]:
    record = {k: v for k, v in INVOKE.items() if k not in keys}
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("record", "says"),
    [
        (_without("userIdentity"), "userIdentity"),
        (_without("requestParameters"), "function is unknown"),
        (_without(requestParameters=None), "function is unknown"),
        (_without(requestParameters={"functionName": "a/b c"}), "not a Lambda function name"),
        (_without("awsRegion", "recipientAccountId"), "names no"),
        (_without(userIdentity=["IAMUser"]), "userIdentity"),
        (_without(userIdentity="alice"), "userIdentity"),
        (_without(requestParameters="BlogFunction"), "requestParameters"),
        (_without(resources={"ARN": "x"}, requestParameters=None), "resources"),
        (_without(userIdentity={"type": "Unknown"}), "names no service, principal or account"),
        (_without("eventName"), "no eventName"),
        (_without("eventSource"), "no eventSource"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_unjudgeable_records_are_invalid_with_the_reason(record: dict[str, Any], says: str) -> None:
    decision = decide(record, fuzz_config(), own_functions=OWN_FUNCTIONS)
    assert decision.verdict is Verdict.INVALID
    assert says in decision.reason


def test_the_well_formed_record_those_cases_start_from_is_judged() -> None:
    # The cases above differ from a record that does get a verdict only by what they lack.
    assert decide(INVOKE, fuzz_config(), own_functions=OWN_FUNCTIONS).verdict is Verdict.VIOLATION


# --- scan: judge_bytes and the CLI on damaged files ------------------------------------------


@FUZZ_FILES
@given(st.lists(cloudtrail_records(), max_size=20), st.sampled_from(["log", "jsonl", "gz"]))
def test_scan_judges_every_lambda_record_of_a_file_as_decide_does(
    records: list[dict[str, Any]], shape: str
) -> None:
    if shape == "jsonl":
        data = b"\n".join(json.dumps(r).encode() for r in records)
    else:
        data = json.dumps({"Records": records}).encode()
    if shape == "gz":
        data = gzip.compress(data)
    result = judge_bytes(data, "fuzz.json", fuzz_config(), OWN_FUNCTIONS)
    expected = [
        decide(r, fuzz_config(), own_functions=OWN_FUNCTIONS).verdict.value
        for r in records
        if is_lambda_candidate(r)
    ]
    if shape == "jsonl" and any(not isinstance(r, dict) or not r for r in records):
        # A JSON-lines file is only recognised as such when its first value is an object.
        assert result.error is None or "not valid JSON" in result.error
        return
    if records and all(
        isinstance(r, dict) and "eventSource" not in r and "eventName" not in r for r in records
    ):
        assert result.error is not None and "not CloudTrail" in result.error
        return
    assert result.error is None
    assert [orjson.loads(line)["verdict"] for line in result.lines] == expected
    assert sum(result.counts.values()) == len(result.lines)


@FUZZ_FILES
@given(data=st.data())
def test_scan_survives_damaged_corpus_files(corpus: tuple[dict[str, Any], ...], data: Any) -> None:
    """Mutated records, cut files, flipped bytes, broken gzip: exit 0, 1 or 2, errors on one
    line naming the file, never a traceback."""
    files: dict[str, bytes] = {}
    for index in range(data.draw(st.integers(1, 4))):
        records = data.draw(st.lists(mutated_records(corpus), min_size=1, max_size=8))
        text = json.dumps({"Records": records}).encode()
        damage = data.draw(st.sampled_from(["none", "cut", "flip", "gzip", "bad-gzip", "junk"]))
        if damage == "cut":
            text = text[: data.draw(st.integers(0, len(text)))]
        elif damage == "flip":
            at = data.draw(st.integers(0, len(text) - 1))
            text = text[:at] + bytes([text[at] ^ 0xFF]) + text[at + 1 :]
        elif damage == "gzip":
            text = gzip.compress(text)
        elif damage == "bad-gzip":
            text = gzip.compress(text)[:-9]
        elif damage == "junk":
            text = data.draw(st.binary(max_size=200))
        files[f"f{index}.json{'.gz' if 'gzip' in damage else ''}"] = text
    [(code, out, err)] = _run_scan(files, jobs=(1,))
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    prefixes = ("invoke-audit: error: ", "invoke-audit: note: ")
    assert all(line.startswith(prefixes) for line in err.splitlines())
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(row["verdict"] in {v.value for v in Verdict} for row in rows)
    # Violations always exit 1 (unreadable files listed); else an unreadable file exits 2.
    if any(r["verdict"] == "violation" for r in rows):
        assert code == 1
    else:
        assert code == (2 if "invoke-audit: error: " in err else 0)


def test_scan_in_worker_processes_matches_one_process(corpus: tuple[dict[str, Any], ...]) -> None:
    files = {
        f"part{i}.json": json.dumps({"Records": list(corpus[i::3])}).encode() for i in range(3)
    }
    files["broken.json.gz"] = b"\x1f\x8b\x08\x00broken"
    single, parallel = _run_scan(files, jobs=(1, 2))
    violations = any(json.loads(line)["verdict"] == "violation" for line in single[1].splitlines())
    assert single[0] == parallel[0] == (1 if violations else 2)
    assert sorted(single[1].splitlines()) == sorted(parallel[1].splitlines())
    assert len(single[1].splitlines()) > 10
    assert "broken.json.gz" in parallel[2]


def _run_scan(files: dict[str, bytes], *, jobs: tuple[int, ...]) -> list[tuple[int, str, str]]:
    """Scan the files once per entry of `jobs`; (exit code, stdout, stderr) of each run."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "allowlist.yaml").write_text(yaml.safe_dump(FUZZ_CONFIG))
        logs = root / "logs"
        logs.mkdir()
        for name, content in files.items():
            (logs / name).write_bytes(content)
        argv = ["scan", str(logs), "--config", str(root / "allowlist.yaml"), "--format", "jsonl"]
        for count in jobs:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*argv, "--jobs", str(count)])
            results.append((code, out.getvalue(), err.getvalue()))
    return results
