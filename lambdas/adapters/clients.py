"""boto3 clients for the functions and the CLI: built on first use, then reused.

The Lambda asset bundles a boto3/botocore that knows the resource-policy API (see
lambdas/requirements.txt); where an endpoint does not have it yet, LambdaPolicies falls back
to the permission API at run time.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from models.names import PROJECT

__all__ = ["ClientFactory"]

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    user_agent_extra=PROJECT,
    connect_timeout=5,
    read_timeout=20,
)


class ClientFactory:
    """One client per (service, region, credentials), created when first asked for.

    AWS_ENDPOINT_URL (the demo's local emulator) is honoured by boto3 itself."""

    def __init__(self, *, region: str | None = None, session: Any | None = None) -> None:
        self._session = session or boto3.Session(region_name=region)
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}

    @property
    def region(self) -> str | None:
        region: str | None = self._session.region_name
        return region

    def client(
        self, service: str, *, region: str | None = None, credentials: dict[str, str] | None = None
    ) -> Any:
        """A client for `service`; `credentials` are AccessKeyId, SecretAccessKey, SessionToken
        (an assumed role's)."""
        key = (service, region, credentials["AccessKeyId"] if credentials else None)
        if key not in self._clients:
            kwargs: dict[str, Any] = {"region_name": region or self._session.region_name}
            if credentials:
                kwargs |= {
                    "aws_access_key_id": credentials["AccessKeyId"],
                    "aws_secret_access_key": credentials["SecretAccessKey"],
                    "aws_session_token": credentials["SessionToken"],
                }
            self._clients[key] = self._session.client(service, config=_CLIENT_CONFIG, **kwargs)
        return self._clients[key]
