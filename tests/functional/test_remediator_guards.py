"""The remediation's own guards, tested on `Remediator` itself (the CLI and the handler check
some of them first, which would hide a guard that is gone): no backup store, no write; a
protected or own function is refused even when an enforce rule covers it; a dry run
changes nothing and spends nothing. Expected policies are written out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.adapters.backup import BackupStore
from lambdas.adapters.lambda_policy import LambdaPolicies
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.remediation.remediate import Outcome, Remediator, Violation
from models.exceptions import InvokeAuditError
from tests.support.allowlists import load_config
from tests.support.aws import (
    CallRecorder,
    World,
    aws,
    client,
    create_function,
    get_policy,
    put_policy,
)
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION

pytestmark = pytest.mark.functional

# `blog` as in the shared fixtures; `vault` covers protected and own functions in enforce
# mode with an empty allow list, so that only the guards keep them unchanged.
CONFIG = f"""
version: 1
protect: ["Vault*"]
limits:
  max_remediations_per_hour: 5
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
        source_account: "{ACCOUNT}"
  - name: vault
    functions: ["Vault*", "invoke-audit-*"]
    mode: enforce
    allow: []
"""


def blog_rewritten(resource: str) -> dict[str, Any]:
    """`blog_policy` under rule `blog`, by hand: the public grant goes, the S3 grant gains
    the SourceAccount its allow entry names."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            {
                "Sid": "s3-trigger",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": resource,
                "Condition": {
                    "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"},
                    "StringEquals": {"AWS:SourceAccount": ACCOUNT},
                },
            }
        ],
    }


def engine(world: World, recorder: CallRecorder, *, backups: bool = True) -> Remediator:
    policies = LambdaPolicies(recorder.attach(client("lambda")))
    return Remediator(
        load_config(CONFIG),
        policies_for=lambda _ref: policies,
        backups=BackupStore(client("s3"), world.bucket) if backups else None,
        limiter=HourlyRateLimiter(client("dynamodb"), world.table),
        notifier=None,
        sleep=lambda _s: None,
        # Access Analyzer's checks, answered by the emulator: the guard under test comes after.
        prover=AccessAnalyzerProver(client("accessanalyzer")),
        own_functions=frozenset(
            {f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-remediator"}
        ),
    )


def test_without_a_backup_store_nothing_is_written_and_no_budget_is_spent() -> None:
    with aws():
        world = World()
        arn = create_function("BlogFunction")
        revision = put_policy(arn, blog_policy(arn))
        recorder = CallRecorder()
        with pytest.raises(InvokeAuditError, match="no backup bucket"):
            engine(world, recorder, backups=False).remediate(Violation(arn, "ev-1"))
        assert get_policy(arn) == (blog_policy(arn), revision)
        assert recorder.actions == ["lambda:GetResourcePolicy"]
        assert world.remediations_counted() == 0


def test_with_a_backup_store_the_same_violation_is_remediated() -> None:
    """The control for the test above: the policy does need the change."""
    with aws():
        world = World()
        arn = create_function("BlogFunction")
        put_policy(arn, blog_policy(arn))
        result = engine(world, CallRecorder()).remediate(Violation(arn, "ev-1"))
        stored, _ = get_policy(arn)
        (key,) = world.backups()
        backup = world.backup(key)
        assert world.remediations_counted() == 1
    assert result.outcome is Outcome.REMEDIATED
    assert stored == blog_rewritten(arn)
    assert backup["policy"] == blog_policy(arn)
    assert backup["new_policy"] == blog_rewritten(arn)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("VaultKeys", "protected by 'Vault*': never changed"),
        ("invoke-audit-remediator", "the pipeline's own function: never changed"),
    ],
)
@pytest.mark.parametrize("qualifier", [None, "live"])
def test_protected_and_own_functions_are_refused_though_an_enforce_rule_covers_them(
    name: str, why: str, qualifier: str | None
) -> None:
    with aws():
        world = World()
        arn = create_function(name)
        revision = put_policy(arn, blog_policy(arn))
        recorder = CallRecorder()
        target = f"{arn}:{qualifier}" if qualifier else arn
        result = engine(world, recorder).remediate(Violation(target, "ev-1"))
        assert get_policy(arn) == (blog_policy(arn), revision)
        assert recorder.actions == [], "a refused function's policy is not even read"
        assert world.backups() == []
        assert world.remediations_counted() == 0
    assert result.outcome is Outcome.REFUSED
    assert result.detail == why


def test_a_dry_run_shows_the_change_and_makes_none() -> None:
    with aws():
        world = World()
        arn = create_function("BlogFunction")
        revision = put_policy(arn, blog_policy(arn))
        recorder = CallRecorder()
        result = engine(world, recorder).remediate(Violation(arn, "ev-1"), dry_run=True)
        assert get_policy(arn) == (blog_policy(arn), revision)
        assert recorder.actions == ["lambda:GetResourcePolicy"]
        assert world.backups() == []
        assert world.remediations_counted() == 0
    assert result.outcome is Outcome.WOULD_REMEDIATE
    assert result.policy_before == blog_policy(arn)
    assert result.policy_after == blog_rewritten(arn)
    assert [(c["kind"], c["sid"]) for c in result.changes] == [
        ("removed", "public"),
        ("tightened", "s3-trigger"),
    ]
