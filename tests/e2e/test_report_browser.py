"""The report as a person sees it: opened in headless Chromium from the file, with no network,
it shows the violations, runs its script without a console error, and filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.support.browser import CHROMIUM, FLAGS, ensure_chromium
from tests.support.demo_logs import write_demo_files
from tests.support.report_records import SCRIPT_NAME, user_invoke

pytestmark = pytest.mark.e2e

ALICE = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture(scope="module")
def chromium() -> str:
    problem = ensure_chromium()
    if problem:
        pytest.skip(f"headless Chromium unavailable: {problem}")
    pytest.importorskip("playwright.sync_api", reason="playwright (requirements-dev.txt)")
    return str(CHROMIUM)


def test_the_page_shows_the_violations_without_console_errors(chromium, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    log, allowlist, policies = write_demo_files(tmp_path)
    hostile = tmp_path / "hostile.json"
    hostile.write_text(
        json.dumps({"Records": [user_invoke("BlogFunction", SCRIPT_NAME, "2026-11-22T11:00:00Z")]})
    )
    page_file = tmp_path / "report.html"
    args = ["--config", str(allowlist), "--policies", str(policies), str(log), str(hostile)]
    assert main(["report", *args, "-o", str(page_file)]) == 1
    capsys.readouterr()

    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=list(FLAGS),
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

            violations = page.locator("tr.violation td.caller").all_inner_texts()
            assert sorted(violations) == sorted(
                [ALICE, f"arn:aws:iam::123456789012:user/{SCRIPT_NAME}", "account 444455556666"]
            )
            assert page.locator("#verdict-summary .violation b").inner_text() == "3"
            assert page.locator("svg#matrix rect.violation").count() == 3
            assert page.locator("pre.diff .del").count() > 0
            assert page.locator("#shown").inner_text() == "3 of 3 functions shown"
            page.fill("#filter", "partner")
            assert page.locator("#shown").inner_text() == "1 of 3 functions shown"
            assert (
                page.locator("details.fn:not(.hidden) summary")
                .inner_text()
                .startswith("PartnerFunction")
            )
            page.fill("#filter", "")
            page.check("#only-violations")
            assert page.locator("#shown").inner_text() == "2 of 3 functions shown"
        finally:
            browser.close()
    assert problems == []
    assert requests == [page_file.as_uri()]  # the page fetched nothing
    assert Path(tmp_path / "report.png").stat().st_size > 10_000
