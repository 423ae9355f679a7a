"""Fixtures of the reliability tier: fake credentials (nothing reaches AWS), one emulator server
per test session (per xdist worker, tests/conftest.py), the remediator Lambda wired to it, the validator in moto
with its AWS calls recorded, and a World on the server for the races."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import reset_server
from lambdas.core.config import allowlist_to_json
from lambdas.runtime import report
from lambdas.runtime.settings import runtime
from lambdas.validator import handler
from tests.support.allowlists import fuzz_config
from tests.support.aws import World, aws, fifo_queue, topic_with_inbox
from tests.support.checks import RecordingFactory
from tests.support.pipeline import Pipeline, start_pipeline, stop_pipeline
from tests.support.records import OWN_FUNCTIONS


@pytest.fixture(autouse=True)
def _fake_credentials(fake_credentials: None) -> None:
    """Every reliability test runs on moto's fake credentials."""


@pytest.fixture
def pipeline(
    server_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Pipeline]:
    """The remediator Lambda against the emulator's server, faults injectable."""
    piped = start_pipeline(server_endpoint, tmp_path, monkeypatch, capsys)
    yield piped
    stop_pipeline(piped, server_endpoint)


@pytest.fixture
def validator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """The validator under the fuzzing allowlist, its queue and topic in moto; yields the
    list its AWS calls are recorded in."""
    config = tmp_path / "allowlist.json"
    config.write_text(allowlist_to_json(fuzz_config()))
    monkeypatch.setenv("ALLOWLIST_PATH", str(config))
    monkeypatch.setenv("OWN_FUNCTION_ARNS", ",".join(sorted(OWN_FUNCTIONS)))
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    monkeypatch.setattr(report, "ClientFactory", RecordingFactory)
    RecordingFactory.calls = []
    runtime.cache_clear()
    handler._reporter.cache_clear()
    with aws():
        monkeypatch.setenv("QUEUE_URL", fifo_queue())
        monkeypatch.setenv("TOPIC_ARN", topic_with_inbox()[0])
        yield RecordingFactory.calls
    runtime.cache_clear()
    handler._reporter.cache_clear()


@pytest.fixture
def world(server_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The remediation's AWS side on the emulator's server (reset before and after)."""
    reset_server(server_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server_endpoint)
    yield World(server_endpoint)
    reset_server(server_endpoint)
