"""The fallback write path (GetPolicy / AddPermission / RemovePermission) against the emulator,
which enforces every call's RevisionId as Lambda does: a statement kept beside the one
removed, so that each AddPermission meets an existing policy whose revision it must name,
and a concurrent change between two calls, which must stop the sequence with a 412.

Expected policies are written out by hand, in the shape Lambda stores AddPermission grants.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.adapters.backup import BackupStore
from lambdas.adapters.errors import PreconditionFailedError
from lambdas.adapters.lambda_policy import LambdaPermissions, LambdaPolicies
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.remediation.remediate import Outcome, Remediator, Violation
from models.arns import parse_function_arn
from tests.support.allowlists import load_config
from tests.support.aws import World, aws, client, create_function, old_botocore_lambda_client
from tests.support.records import ACCOUNT

pytestmark = pytest.mark.functional

BUCKET = "arn:aws:s3:::examplebucket"
STRANGER = "999988887777"


def _grant(lam: Any, sid: str, principal: str, **conditions: str) -> None:
    lam.add_permission(
        FunctionName="BlogFunction",
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal=principal,
        **conditions,
    )


def _s3(sid: str, resource: str, *, account: bool) -> dict[str, Any]:
    """An S3 grant as Lambda stores it (AddPermission with SourceArn [and SourceAccount])."""
    condition: dict[str, Any] = {"ArnLike": {"AWS:SourceArn": BUCKET}}
    if account:
        condition["StringEquals"] = {"AWS:SourceAccount": ACCOUNT}
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
        "Condition": condition,
    }


def _by_sid(document: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    assert document is not None, "expected a policy"
    return {s["Sid"]: s for s in document["Statement"]}


def _blog_function(*, keep: bool = True) -> str:
    """BlogFunction with a compliant S3 grant to keep, a public grant to remove and an S3
    grant without SourceAccount to tighten (removed and added again)."""
    arn = create_function("BlogFunction")
    lam = client("lambda")
    if keep:
        _grant(lam, "keep", "s3.amazonaws.com", SourceArn=BUCKET, SourceAccount=ACCOUNT)
    _grant(lam, "public", "*")
    _grant(lam, "loose", "s3.amazonaws.com", SourceArn=BUCKET)
    return arn


def _sent(lam: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call the client makes, as given."""
    calls: list[dict[str, Any]] = []
    lam.meta.events.register(
        f"provide-client-params.lambda.{operation}",
        lambda params, **_: calls.append(dict(params)),
    )
    return calls


def _after_removals(lam: Any, count: int, action: Any) -> None:
    """Run `action` once, right after the policy is read back after the `count`-th
    RemovePermission (between that read and the next write)."""
    state = {"removals": 0, "done": False}

    def count_removal(**_: Any) -> None:
        state["removals"] += 1

    def fire(**_: Any) -> None:
        if state["removals"] == count and not state["done"]:
            state["done"] = True
            action()

    lam.meta.events.register("after-call.lambda.RemovePermission", count_removal)
    lam.meta.events.register("after-call.lambda.GetPolicy", fire)


def test_each_call_names_the_revision_it_read_when_a_statement_stays_beside() -> None:
    with aws():
        arn = _blog_function()
        lam = client("lambda")
        permissions = LambdaPermissions(lam)
        ref = parse_function_arn(arn)
        current = permissions.read(ref)
        removals = _sent(lam, "RemovePermission")
        additions = _sent(lam, "AddPermission")
        target = {
            "Version": "2012-10-17",
            "Statement": [_s3("keep", arn, account=True), _s3("loose", arn, account=True)],
        }
        stored = permissions.write(ref, current, target)
        final = permissions.read(ref)
    assert [c["StatementId"] for c in removals] == ["public", "loose"]
    assert removals[0]["RevisionId"] == current.revision_id
    assert removals[1]["RevisionId"] not in (None, current.revision_id)
    (added,) = additions
    assert added["StatementId"] == "loose"
    assert added["SourceAccount"] == ACCOUNT and added["SourceArn"] == BUCKET
    assert added["RevisionId"], "AddPermission onto an existing policy must name its revision"
    assert added["RevisionId"] not in (current.revision_id, removals[1]["RevisionId"])
    assert _by_sid(final.document) == {
        "keep": _s3("keep", arn, account=True),
        "loose": _s3("loose", arn, account=True),
    }
    assert stored.revision_id == final.revision_id


def test_a_change_between_two_calls_stops_the_sequence_with_a_412() -> None:
    """Someone grants a stranger after our last RemovePermission was read back: our
    AddPermission names the revision before that grant, and Lambda refuses it."""
    with aws():
        arn = _blog_function()
        lam = client("lambda")
        operator = client("lambda")
        permissions = LambdaPermissions(lam)
        ref = parse_function_arn(arn)
        current = permissions.read(ref)
        _after_removals(lam, 2, lambda: _grant(operator, "x", STRANGER))
        target = {
            "Version": "2012-10-17",
            "Statement": [_s3("keep", arn, account=True), _s3("loose", arn, account=True)],
        }
        with pytest.raises(PreconditionFailedError):
            permissions.write(ref, current, target)
        after = permissions.read(ref)
    # The removals before the race happened; the addition after it did not, and the
    # concurrent grant is there for the next read to judge.
    assert sorted(_by_sid(after.document)) == ["keep", "x"]


def test_the_remediator_on_the_fallback_api_rereads_after_a_412_and_judges_the_new_grant(
    tmp_path: Any,
) -> None:
    with aws():
        arn = _blog_function(keep=False)
        world = World()
        old = old_botocore_lambda_client(tmp_path)
        operator = client("lambda")
        _after_removals(old, 1, lambda: _grant(operator, "x", STRANGER))
        policies = LambdaPolicies(old)
        engine = Remediator(
            load_config(),
            policies_for=lambda _ref: policies,
            backups=BackupStore(client("s3"), world.bucket),
            limiter=HourlyRateLimiter(client("dynamodb"), world.table),
            notifier=None,
            sleep=lambda _s: None,
            # Access Analyzer's two checks, answered by the emulator.
            prover=AccessAnalyzerProver(client("accessanalyzer")),
        )
        result = engine.remediate(Violation(function=arn, event_id="ev-1"))
        final = policies.read(parse_function_arn(arn))
        backups = world.backups()
        counted = world.remediations_counted()
    assert result.outcome is Outcome.REMEDIATED
    assert result.api == "permission"
    assert result.attempts == 2
    # The first attempt removed `public`, then lost the race on `loose`; the second judges
    # what it reads: the stranger's grant goes, `loose` gains the SourceAccount.
    assert _by_sid(final.document) == {"loose": _s3("loose", arn, account=True)}
    assert len(backups) == 1, "the write that lost the race leaves no backup"
    assert counted == 1, "one change, one unit of the hourly budget"
