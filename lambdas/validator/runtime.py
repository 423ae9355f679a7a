"""What a function container loads once: the allowlist and its settings from the environment.

The allowlist ships inside the asset as JSON (compiled and validated from
config/allowlist.yaml at synth), read from ALLOWLIST_PATH on the first invocation and
validated again with the same model. Bundling it, rather than reading SSM or AppConfig, keeps
the cold start free of network calls and of boto3, makes every deployed version carry exactly
the config it was tested with, and lets `cdk diff` show a config change; the price is a
deploy per change, which is how changes to access rules should be reviewed anyway.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from lambdas.core.config import load_allowlist_json
from models.allowlist import AllowlistConfig

__all__ = [
    "DEFAULT_ALLOWLIST_PATH",
    "METRICS_NAMESPACE",
    "SERVICE_NAME",
    "Runtime",
    "own_account",
    "runtime",
    "telemetry",
]

DEFAULT_ALLOWLIST_PATH = "/var/task/allowlist.json"
DEFAULT_OWN_PREFIX = "invoke-audit-"
# Powertools reads these too; the defaults make logs and metrics complete without them.
SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "invoke-audit")
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "InvokeAudit")


def telemetry() -> tuple[Logger, Metrics]:
    """A function's Powertools Logger (one JSON line per call) and EMF Metrics.

    The log lines are ASCII JSON: a record can carry strings that Python's json decodes but
    UTF-8 cannot encode (lone surrogates), and Powertools' default serializer would fail to
    write such a line, losing it."""
    serializer = partial(json.dumps, separators=(",", ":"), ensure_ascii=True, default=str)
    logger = Logger(service=SERVICE_NAME, json_serializer=serializer)
    return logger, Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


@dataclass(frozen=True, slots=True)
class Runtime:
    config: AllowlistConfig
    own_prefix: str
    trusted_accounts: frozenset[str]


def own_account(context: Any) -> str | None:
    """The account this function runs in, from the context's invoked function ARN."""
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None


@cache
def runtime(account: str | None) -> Runtime:
    """Loaded on the first invocation of a container, then reused (a ConfigError is raised
    again on every invocation, so a bad deploy fails loudly rather than judging wrongly)."""
    config = load_allowlist_json(os.environ.get("ALLOWLIST_PATH", DEFAULT_ALLOWLIST_PATH))
    members = os.environ.get("ALLOWED_ACCOUNTS", "")
    trusted = {a.strip() for a in members.split(",") if a.strip()}
    if account:
        trusted.add(account)
    return Runtime(
        config=config,
        own_prefix=os.environ.get("OWN_FUNCTION_PREFIX", DEFAULT_OWN_PREFIX),
        trusted_accounts=frozenset(trusted),
    )
