"""The report as a person sees it: opened in headless Chromium from the file, with no network,
it shows the violations, runs its script without a console error, filters and folds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cli.main import main
from tests.support.browser import CHROMIUM, FLAGS, ensure_chromium
from tests.support.demo_logs import write_demo_files
from tests.support.report_records import SCRIPT_NAME, user_invoke

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

ALICE = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture(scope="module")
def chromium() -> str:
    problem = ensure_chromium()
    if problem:
        pytest.skip(f"headless Chromium unavailable: {problem}")
    pytest.importorskip("playwright.sync_api", reason="playwright (requirements-dev.txt)")
    return str(CHROMIUM)


@contextmanager
def _opened(
    chromium: str, profile: Path, page_file: Path
) -> Iterator[tuple[Page, list[str], list[str]]]:
    """The page in a fresh headless Chromium: (page, console errors, requested URLs)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
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
            yield page, problems, requests
        finally:
            browser.close()


def test_the_page_shows_the_violations_without_console_errors(chromium, tmp_path, capsys):
    log, allowlist, policies = write_demo_files(tmp_path)
    hostile = tmp_path / "hostile.json"
    hostile.write_text(
        json.dumps({"Records": [user_invoke("BlogFunction", SCRIPT_NAME, "2026-11-22T11:00:00Z")]})
    )
    page_file = tmp_path / "report.html"
    args = ["--config", str(allowlist), "--policies", str(policies), str(log), str(hostile)]
    assert main(["report", *args, "-o", str(page_file)]) == 1
    capsys.readouterr()
    with _opened(chromium, tmp_path / "profile", page_file) as (page, problems, requests):
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
        summary = page.locator("details.fn:not(.hidden) summary").inner_text()
        assert summary.startswith("PartnerFunction")
        page.fill("#filter", "")
        page.check("#only-violations")
        assert page.locator("#shown").inner_text() == "2 of 3 functions shown"
    assert problems == []
    assert requests == [page_file.as_uri()]  # the page fetched nothing
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_two_hundred_functions_filter_and_fold(chromium, tmp_path, capsys):
    _, allowlist, _ = write_demo_files(tmp_path)
    items = [
        user_invoke(f"fn-{i:03d}", f"user-{i % 7}", "2026-11-22T10:00:00Z") for i in range(200)
    ]
    items.append(user_invoke("BlogFunction", "intruder", "2026-11-22T10:00:00Z"))
    log = tmp_path / "many.json"
    log.write_text(json.dumps({"Records": items}))
    page_file = tmp_path / "report.html"
    assert main(["report", "--config", str(allowlist), str(log), "-o", str(page_file)]) == 1
    capsys.readouterr()
    with _opened(chromium, tmp_path / "profile", page_file) as (page, problems, _):
        assert page.locator("#shown").inner_text() == "201 of 201 functions shown"
        assert page.locator("details.fn[open]").count() == 1
        assert page.locator("svg#matrix text").count() == 60 + 8  # 60 functions, 8 callers
        page.fill("#filter", "fn-19")
        assert page.locator("#shown").inner_text() == "10 of 201 functions shown"
        page.click("#expand")
        assert page.locator("details.fn[open]:not(.hidden)").count() == 10
        page.fill("#filter", "")
        page.check("#only-violations")
        assert page.locator("#shown").inner_text() == "1 of 201 functions shown"
        caller = page.locator("details.fn:not(.hidden) tr.violation td.caller").inner_text()
        assert caller == "arn:aws:iam::123456789012:user/intruder"
    assert problems == []
