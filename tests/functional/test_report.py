"""`invoke-audit report`: the page for the demo's records, a caller name that is markup, 200
functions, a generated set of 100k+ Lambda records, and bad input."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bench.generate import ensure_logs
from bench.records import ALLOWLIST as BENCH_ALLOWLIST
from cli.main import main
from tests.support import records
from tests.support.demo_logs import write_demo_files
from tests.support.report_records import SCRIPT_NAME, user_invoke

pytestmark = pytest.mark.functional

ALICE = "arn:aws:iam::123456789012:user/alice"


def _report(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main(["report", *map(str, args)])
    return code, capsys.readouterr().err


def _summary_counts(page: str) -> dict[str, int]:
    """The summary cards: {verdict: records}."""
    cards = re.findall(r'<div class="card ([\w-]+)"><b>(\d+)</b>', page)
    return {verdict: int(count) for verdict, count in cards}


def test_the_demo_page_shows_the_violations_and_what_a_rewrite_changes(tmp_path, capsys):
    log, allowlist, policies = write_demo_files(tmp_path)
    out = tmp_path / "report.html"
    code, err = _report(capsys, "--config", allowlist, "--policies", policies, log, "-o", out)
    assert code == 1  # violations: the page is written all the same
    assert err == f"{out}: 6 Lambda records, 3 functions, 2 violations\n"
    page = out.read_text()
    # The demo's records, judged by hand: 2 allowed, 2 violations, 1 unmonitored, 1 ignored
    assert _summary_counts(page) == {"violation": 2, "unmonitored": 1, "allowed": 2, "ignored": 1}
    rows = re.findall(r'<tr class="violation"><td>violation</td><td class="caller">([^<]+)<', page)
    assert rows == [ALICE, "account 444455556666"]
    # BlogFunction loses its public grant, its S3 grant gains SourceAccount; PartnerFunction
    # loses the unknown account (the rewrites the README's tour shows for `rewrite`).
    assert '<span class="del">-      &#34;Sid&#34;: &#34;public-test-access&#34;</span>' in page
    assert (
        '<span class="add">+          &#34;AWS:SourceAccount&#34;: &#34;123456789012&#34;</span>'
        in page
    )
    assert '<span class="del">-          &#34;arn:aws:iam::444455556666:root&#34;</span>' in page
    # Self-contained: nothing to fetch when it is opened.
    assert re.findall(r"\b(?:src|href)\s*=", page) == []
    assert "<link" not in page
    assert "@import" not in page


def test_without_policies_the_page_says_how_to_see_the_rewrite(tmp_path, capsys):
    log, allowlist, _ = write_demo_files(tmp_path)
    out = tmp_path / "report.html"
    _report(capsys, "--config", allowlist, log, "-o", out)
    page = out.read_text()
    assert "no policy given: put BlogFunction.policy.json in the folder of --policies" in page
    assert '<span class="del">' not in page


def test_a_caller_name_that_is_markup_is_shown_as_text(tmp_path, capsys):
    log, allowlist, _ = write_demo_files(tmp_path)
    hostile = tmp_path / "hostile.json"
    hostile.write_text(
        json.dumps({"Records": [user_invoke("BlogFunction", SCRIPT_NAME, "2026-11-22T11:00:00Z")]})
    )
    out = tmp_path / "report.html"
    code, _ = _report(capsys, "--config", allowlist, log, hostile, "-o", out)
    assert code == 1
    page = out.read_text()
    assert "<script>alert" not in page
    assert "user/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own


def test_two_hundred_functions_stay_readable(tmp_path, capsys):
    _, allowlist, _ = write_demo_files(tmp_path)
    # 200 functions no rule covers (unmonitored), each called by one role, and 12 callers
    # calling BlogFunction without an allowlist entry.
    items = [
        user_invoke(f"fn-{i:03d}", f"user-{i % 7}", f"2026-11-2{i % 9}T10:00:00Z")
        for i in range(200)
    ]
    items += [
        user_invoke("BlogFunction", f"intruder-{i}", "2026-11-22T10:00:00Z") for i in range(12)
    ]
    log = tmp_path / "many.json"
    log.write_text(json.dumps(records.log_file(items)))
    out = tmp_path / "report.html"
    code, err = _report(capsys, "--config", allowlist, log, "-o", out)
    assert code == 1
    assert "201 functions, 12 violations" in err
    page = out.read_text()
    assert page.count('<details class="fn') == 201
    assert page.count('<details class="fn has-violation"') == 1
    assert page.count(" open>") == 1  # only the function with violations starts open
    assert "Showing 60 of 201 functions and 19 of 19 callers" in page
    assert page.index("BlogFunction") < page.index("fn-000")  # violations first
    assert 'id="filter"' in page


@pytest.fixture(scope="module")
def generated_logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """bench's generator: 170,000 CloudTrail records, 104k of them Lambda's."""
    return ensure_logs(tmp_path_factory.mktemp("logs"), records=170_000, files=4, jobs=2)


def test_a_generated_set_of_100k_lambda_records(generated_logs, tmp_path, capsys):
    # The oracle: scan's rows for the same files, counted here.
    assert (
        main(
            [
                "scan",
                "--config",
                str(BENCH_ALLOWLIST),
                "--format",
                "jsonl",
                *map(str, generated_logs),
            ]
        )
        == 1
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) > 100_000
    verdicts = Counter(row["verdict"] for row in rows)
    functions = {r["function"] for r in rows if r["function"] and r["verdict"] != "ignored"}
    out = tmp_path / "report.html"
    code, err = _report(capsys, "--config", BENCH_ALLOWLIST, *generated_logs, "-o", out)
    assert code == 1
    assert err.startswith(f"{out}: {len(rows):,} Lambda records".replace(",", ""))
    page = out.read_text()
    assert _summary_counts(page) == dict(verdicts)
    assert page.count('<details class="fn') == len(functions)
    assert out.stat().st_size < 2_000_000


def test_a_file_that_is_not_json_is_one_line_naming_its_line(tmp_path, capsys):
    _, allowlist, _ = write_demo_files(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"eventSource": "lambda.amazonaws.com", "eventName": "Invoke"}\n{oops\n')
    out = tmp_path / "report.html"
    code, err = _report(capsys, "--config", allowlist, bad, "-o", out)
    assert code == 2
    assert err.splitlines() == [
        f"invoke-audit: error: {bad}:2: not valid JSON (unexpected character, expected a string key) (no report written)"
    ]
    assert not out.exists()


def test_a_policies_option_that_is_no_folder_is_an_error(tmp_path, capsys):
    log, allowlist, _ = write_demo_files(tmp_path)
    code, err = _report(
        capsys,
        "--config",
        allowlist,
        "--policies",
        tmp_path / "nope",
        log,
        "-o",
        tmp_path / "r.html",
    )
    assert code == 2
    assert err == f"invoke-audit: error: --policies {tmp_path / 'nope'}: not a folder\n"
