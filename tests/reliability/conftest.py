"""Fixtures of the reliability tier: fake credentials (nothing reaches AWS), one emulator server
per test session (per xdist worker), a Lambda context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lambdas.emulator import running_server
from tests.reliability.support import ACCOUNT, REGION


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


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "invoke-audit-validator"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-validator"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/invoke-audit-validator"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()
