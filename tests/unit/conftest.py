"""Shared helpers of the unit tier: allowlists from YAML text, the standard test allowlist."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.allowlist_file import parse_allowlist
from models.allowlist import AllowlistConfig, Rule
from tests.records import ACCOUNT, BUCKET_ARN, PARTNER_ACCOUNT, REGION

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / ".." / "shared" / "corpus"

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


Writer = Callable[[str, str | bytes], Path]


def make_config(text: str, source: str = "test.yaml") -> AllowlistConfig:
    return parse_allowlist(textwrap.dedent(text), source)


def make_rule(text: str) -> Rule:
    """The first rule of an allowlist written as YAML (only `rules:` needed)."""
    return make_config(text).rules[0]


@pytest.fixture(scope="session")
def standard() -> AllowlistConfig:
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
