"""Fixtures of the reliability tier: fake credentials (nothing reaches AWS), one emulator server
per test session (per xdist worker), the remediator Lambda wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import running_server
from tests.infra.conftest import allowlist_json, synth  # noqa: F401 - the infra tier's CDK synth
from tests.reliability.pipeline import Pipeline, start_pipeline, stop_pipeline
from tests.reliability.support import REGION


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def server_endpoint() -> Iterator[str]:
    """moto's server with the Lambda policy extension, on 127.0.0.1."""
    with running_server() as endpoint_url:
        yield endpoint_url


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
