"""The allowlists the tests judge under, as YAML text or validated models.

- `STANDARD_YAML`: most decision tests (each rule's comment says what it exercises).
- `ALLOWLIST_YAML`: the handler tests (blog S3 trigger, a monitored and a deny_others rule).
- `FUZZ_CONFIG`: the fuzzers (rules for the names the strategies draw, protected patterns).
- `REMEDIATION_CONFIG`: the remediation races, faults and blast-radius tests.
"""

from __future__ import annotations

import json
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

from cli.allowlist_file import parse_allowlist
from lambdas.core.config import allowlist_to_json
from models.allowlist import AllowlistConfig, Rule
from tests.support.records import (
    ACCOUNT,
    BUCKET_ARN,
    DEPLOYER,
    OTHER_ACCOUNT,
    PARTNER_ACCOUNT,
    REGION,
)

# The allowlist most decision tests judge under. Comments name what each rule exercises.
STANDARD_YAML = f"""
version: 1
defaults:
  mode: enforce
  unmatched: report
protect:
  - "protected-*"
  - "arn:aws:lambda:*:{ACCOUNT}:function:vault"
rules:
  # qualifier-aware: only the `prod` alias of `orders`; other qualifiers fall through
  - name: orders-prod
    functions: ["orders"]
    qualifiers: ["prod"]
    allow:
      - account: "{PARTNER_ACCOUNT}"
  # the blog scenario: S3 from examplebucket only
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "{BUCKET_ARN}"
        source_account: "{ACCOUNT}"
  # the real records' function: its Step Functions role and one EventBridge rule family
  - name: sfn
    functions: ["my-function-name"]
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/My-RoleName-*"
      - service: events.amazonaws.com
        source_arn: "arn:aws:events:{REGION}:{ACCOUNT}:rule/my-rule-*"
        source_account: "{ACCOUNT}"
  # ARN patterns with globs, and every other qualifier of `orders`
  - name: team
    functions:
      - "arn:aws:lambda:*:{ACCOUNT}:function:team-*"
      - "arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders"
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:user/alice"
      - principal: "arn:aws:iam::{ACCOUNT}:root"
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
      - account: "{PARTNER_ACCOUNT}"
  - name: watch
    functions: ["watch-?", "watch-*-*"]
    mode: monitor
    allow: []
"""


def make_config(text: str, source: str = "test.yaml") -> AllowlistConfig:
    return parse_allowlist(textwrap.dedent(text), source)


def make_rule(text: str) -> Rule:
    """The first rule of an allowlist written as YAML (only `rules:` needed)."""
    return make_config(text).rules[0]


# --- the handler tests ---------------------------------------------------------------------

ALLOWLIST_YAML = f"""
version: 1
defaults:
  mode: enforce
  unmatched: report
protect:
  - "Protected*"
limits:
  max_remediations_per_hour: 20
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
        source_account: "{ACCOUNT}"
  - name: watched
    functions: ["Watched*"]
    mode: monitor
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
  - name: strict
    functions: ["Strict*"]
    deny_others: true
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
"""


def write_config(directory: Path, text: str = ALLOWLIST_YAML) -> Path:
    """The allowlist as the asset ships it: validated YAML compiled to JSON."""
    path = directory / "allowlist.json"
    path.write_text(allowlist_to_json(parse_allowlist(text, "test.yaml")))
    return path


def load_config(text: str = ALLOWLIST_YAML) -> AllowlistConfig:
    return parse_allowlist(text, "test.yaml")


# --- the fuzzers ---------------------------------------------------------------------------

# Rules for the names the strategies draw (and the corpus's one invoked function), a
# protected pattern, monitor and deny_others rules.
FUZZ_CONFIG: dict[str, Any] = {
    "version": 1,
    "defaults": {"mode": "enforce", "unmatched": "report"},
    "protect": ["invoke-audit-*", "protected-*"],
    "limits": {"max_remediations_per_hour": 20},
    "rules": [
        {
            "name": "blog",
            "functions": ["BlogFunction", "my-function-name"],
            "allow": [
                {
                    "service": "s3.amazonaws.com",
                    "source_arn": BUCKET_ARN,
                    "source_account": ACCOUNT,
                },
                {"principal": DEPLOYER},
            ],
        },
        {
            "name": "orders",
            "functions": [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-*"],
            "qualifiers": ["prod", "$LATEST"],
            "deny_others": True,
            "allow": [{"account": OTHER_ACCOUNT}, {"service": "events.amazonaws.com"}],
        },
        {"name": "watch", "functions": ["watch-*"], "mode": "monitor", "allow": []},
    ],
}


@cache
def fuzz_config() -> AllowlistConfig:
    return AllowlistConfig.model_validate(FUZZ_CONFIG)


# --- the remediation tests -----------------------------------------------------------------

# `app-*` keeps the deployer and the S3 trigger of the example bucket, `orders-*` also adds
# the explicit Deny (deny_others), `watch-*` is monitored.
REMEDIATION_CONFIG: dict[str, Any] = {
    "version": 1,
    "protect": ["invoke-audit-*", "protected-*"],
    "limits": {"max_remediations_per_hour": 1000},
    "rules": [
        {
            "name": "app",
            "functions": ["app-*", "BlogFunction"],
            "allow": [
                {
                    "service": "s3.amazonaws.com",
                    "source_arn": BUCKET_ARN,
                    "source_account": ACCOUNT,
                },
                {"principal": DEPLOYER},
            ],
        },
        {
            "name": "orders",
            "functions": ["orders-*"],
            "deny_others": True,
            "allow": [{"account": OTHER_ACCOUNT}, {"principal": DEPLOYER}],
        },
        {"name": "protected-too", "functions": ["protected-*", "invoke-audit-*"], "allow": []},
        {"name": "watch", "functions": ["watch-*"], "mode": "monitor", "allow": []},
    ],
}


def remediation_config(**limits: int) -> AllowlistConfig:
    """`REMEDIATION_CONFIG` with these limits."""
    data = json.loads(json.dumps(REMEDIATION_CONFIG))
    data["limits"].update(limits)
    return AllowlistConfig.model_validate(data)
