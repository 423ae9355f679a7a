"""The demo is the end-to-end smoke test: the real handlers against moto's server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.demo import run_demo
from cli.demo_events import events
from cli.main import main

pytestmark = pytest.mark.e2e


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


def test_learned_allowlist_has_no_violation_on_the_demo_events(tmp_path: Path) -> None:
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps({"Records": [event["detail"] for _, event in events()]}))
    learned = tmp_path / "learned.yaml"
    assert main(["learn", str(logs), "-o", str(learned)]) == 0
    assert main(["check-config", str(learned)]) == 0
    assert main(["scan", "--config", str(learned), "--format", "jsonl", str(logs)]) == 0
    # and the demo's own allowlist does find the two violations in the same events
    assert main(["scan", "--format", "jsonl", "--config", "config/allowlist.yaml", str(logs)]) == 1
