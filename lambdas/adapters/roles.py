"""Credentials for a member account in the multi-account setup: the central remediator assumes
a remediation role of the same name in the account that owns the function."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from lambdas.adapters._calls import call
from models.names import PROJECT

__all__ = ["CallerIdentity", "RoleAssumer"]

_REFRESH_BEFORE = 300  # seconds before expiry at which credentials are renewed


class RoleAssumer:
    """Assumes `arn:{partition}:iam::{account}:role/{role_name}` and caches the credentials."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("sts:AssumeRole",)

    def __init__(self, client: Any, role_name: str, *, session_name: str = PROJECT) -> None:
        self._client = client
        self._role_name = role_name
        self._session_name = session_name
        self._cache: dict[str, dict[str, Any]] = {}

    def role_arn(self, account: str, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{account}:role/{self._role_name}"

    def credentials(self, account: str, partition: str = "aws") -> dict[str, str]:
        """AccessKeyId, SecretAccessKey and SessionToken for the member account."""
        cached = self._cache.get(account)
        if cached and cached["Expiration"].timestamp() - time.time() > _REFRESH_BEFORE:
            return {k: str(v) for k, v in cached.items() if k != "Expiration"}
        role_arn = self.role_arn(account, partition)
        response = call(
            "sts",
            "AssumeRole",
            role_arn,
            self._client.assume_role,
            RoleArn=role_arn,
            RoleSessionName=self._session_name,
        )
        credentials: dict[str, Any] = response["Credentials"]
        self._cache[account] = credentials
        return {k: str(v) for k, v in credentials.items() if k != "Expiration"}


class CallerIdentity:
    """The account of the credentials in use (GetCallerIdentity needs no grant, but is
    declared like every call)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("sts:GetCallerIdentity",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def account(self) -> str:
        response = call("sts", "GetCallerIdentity", "caller", self._client.get_caller_identity)
        return str(response["Account"])
