"""Fixtures shared by the tiers. Builders, fakes, sample allowlists and policies live in
`tests.support` (test modules import from there, never from one another or a conftest)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from models.allowlist import AllowlistConfig
from tests.support.allowlists import STANDARD_YAML, make_config
from tests.support.aws import use_fake_credentials
from tests.support.files import Writer
from tests.support.memos import clear_memos
from tests.support.synth import Synth, shipped_allowlist_json, synth_variants

# `make mutate` runs the tests once per mutant with `--hypothesis-profile=mutation`: a tenth of
# the examples (tests.support.strategies.examples), the same ones every run.
settings.register_profile("mutation", max_examples=10, derandomize=True, database=None)


def pytest_sessionstart(session: pytest.Session) -> None:
    clear_memos()


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's fake credentials; no profile, config file or endpoint of the machine."""
    use_fake_credentials(monkeypatch)


@pytest.fixture(scope="session")
def server_endpoint() -> Iterator[str]:
    """moto's server with the Lambda policy extension, on 127.0.0.1 (one per session)."""
    from emulator import running_server

    with running_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="session")
def standard() -> AllowlistConfig:
    """`STANDARD_YAML`, validated."""
    return make_config(STANDARD_YAML)


@pytest.fixture()
def write(tmp_path: Path) -> Writer:
    """Write text or bytes to a file under tmp_path; returns its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def allowlist_json() -> str:
    """config/allowlist.yaml as the asset ships it."""
    return shipped_allowlist_json()


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every deployment variant, synthesized once per session with cdk-nag."""
    return synth_variants(tmp_path_factory.mktemp("cdk.out"))
