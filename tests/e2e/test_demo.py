"""The demo is the end-to-end smoke test: the real handlers against moto's server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.demo import run_demo
from cli.demo_events import ALLOWLIST_YAML, events
from cli.main import main

pytestmark = pytest.mark.e2e

_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:"
BLOG, PARTNER, REPORTS = (f"{_FUNCTION}{n}Function" for n in ("Blog", "Partner", "Reports"))


def test_demo_runs_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(synth=False) == 0
    out = capsys.readouterr().out
    assert "VIOLATION: arn:aws:iam::123456789012:user/alice" in out
    assert '-      "Principal": "*",' in out  # the public grant is gone in the diff
    assert '+          "AWS:SourceAccount": "123456789012"' in out
    assert (
        "backup: s3://invoke-audit-demo-backups/backups/123456789012/us-east-1/BlogFunction/" in out
    )
    assert "To undo: invoke-audit restore s3://" in out
    assert "BlogFunction's original policy is back" in out
    assert "demo: OK" in out


def _verdicts(out: str) -> list[tuple[str, str | None, str | None]]:
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [(d["verdict"], d["function"], d["rule"]) for d in lines]


def test_learned_allowlist_has_no_violation_on_the_demo_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps({"Records": [event["detail"] for _, event in events()]}))
    learned = tmp_path / "learned.yaml"
    assert main(["learn", str(logs), "-o", str(learned)]) == 0
    capsys.readouterr()
    assert main(["check-config", str(learned)]) == 0
    assert ": ok (3 rules, default mode monitor)" in capsys.readouterr().out
    # Under the learned allowlist every invoke seen is allowed, each by its function's rule.
    assert main(["scan", "--config", str(learned), "--format", "jsonl", str(logs)]) == 0
    assert _verdicts(capsys.readouterr().out) == [
        ("allowed", BLOG, "BlogFunction"),
        ("allowed", BLOG, "BlogFunction"),
        ("allowed", PARTNER, "PartnerFunction"),
        ("allowed", PARTNER, "PartnerFunction"),
        ("ignored", None, None),
        ("allowed", REPORTS, "ReportsFunction"),
    ]
    # ...while the demo's own allowlist finds the two violations in the same events.
    own = tmp_path / "allowlist.yaml"
    own.write_text(ALLOWLIST_YAML)
    assert main(["scan", "--format", "jsonl", "--config", str(own), str(logs)]) == 1
    assert _verdicts(capsys.readouterr().out) == [
        ("allowed", BLOG, "blog-s3-trigger"),
        ("violation", BLOG, "blog-s3-trigger"),
        ("allowed", PARTNER, "partner-api"),
        ("violation", PARTNER, "partner-api"),
        ("ignored", None, None),
        ("unmonitored", REPORTS, None),
    ]
