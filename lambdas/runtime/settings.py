"""What a function container loads once: the allowlist and its settings from the environment.

The allowlist ships inside the asset as JSON (compiled and validated from
config/allowlist.yaml at synth), read from ALLOWLIST_PATH on the first invocation and
validated again with the same model. Bundling it, rather than reading SSM or AppConfig, keeps
the cold start free of network calls and of boto3, makes every deployed version carry exactly
the config it was tested with, and lets `cdk diff` show a config change; the price is a
deploy per change, which is how changes to access rules should be reviewed anyway.
"""

from __future__ import annotations

import os
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from lambdas.core.config import allowlist_from_json
from lambdas.core.trust import trusted_accounts
from models.allowlist import AllowlistConfig
from models.exceptions import ConfigError
from models.names import own_function_arns

__all__ = [
    "DEFAULT_ALLOWLIST_PATH",
    "FINDINGS_FLAG",
    "Runtime",
    "findings_enabled",
    "load_allowlist_json",
    "own_account",
    "runtime",
    "watched_regions",
]

DEFAULT_ALLOWLIST_PATH = "/var/task/allowlist.json"
# "on": Security Hub findings (lambdas.runtime.findings), set by the context key
# invoke-audit:securityhub. Read here, without boto3, so that a function with findings off
# never loads the Security Hub code.
FINDINGS_FLAG = "SECURITY_HUB_FINDINGS"


def findings_enabled() -> bool:
    return os.environ.get(FINDINGS_FLAG, "").strip().lower() == "on"


def load_allowlist_json(path: str | Path) -> AllowlistConfig:
    """Load the config the function ships with (validated again: the same rules apply)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return allowlist_from_json(data, str(path))


@dataclass(frozen=True, slots=True)
class Runtime:
    config: AllowlistConfig
    own_functions: AbstractSet[str]
    trusted_accounts: frozenset[str]
    watched_regions: frozenset[str] | None  # None: every region (WATCHED_REGIONS unset)


def watched_regions(listed: str | None) -> frozenset[str] | None:
    """The regions whose events are judged (WATCHED_REGIONS, comma-separated), None: all."""
    regions = frozenset(r.strip() for r in (listed or "").split(",") if r.strip())
    return regions or None


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
    return Runtime(
        config=config,
        own_functions=own_function_arns(os.environ.get("OWN_FUNCTION_ARNS")),
        trusted_accounts=trusted_accounts(os.environ.get("ALLOWED_ACCOUNTS", ""), account),
        watched_regions=watched_regions(os.environ.get("WATCHED_REGIONS")),
    )
