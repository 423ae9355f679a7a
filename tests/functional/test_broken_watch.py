"""The broken-caller watch: after a rewrite, an allowed caller that is denied is `broken`.
moto and the emulator underneath; every expected value is written here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from lambdas.adapters.clients import ClientFactory
from lambdas.remediation.remediate import Outcome, Violation
from lambdas.remediation.wiring import build_broken_watch
from tests.support.allowlists import ALLOWLIST_YAML, load_config
from tests.support.aws import (
    World,
    aws,
    create_function,
    get_policy,
    notifications,
    put_policy,
    remediator,
)
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION, USER_ARN, aws_service, iam_user, invoke_record

# Functional (moto) and part of the reliability suite: alert once, undo once under races.
pytestmark = [pytest.mark.functional, pytest.mark.reliability]

REWRITTEN_AT = datetime(2025, 1, 2, 3, 0, 0, tzinfo=UTC)
BUCKET = "arn:aws:s3:::examplebucket"


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with aws():
        yield World()


def rewritten(world, config):
    """BlogFunction with the blog policy, remediated at REWRITTEN_AT."""
    arn = create_function("BlogFunction")
    put_policy(arn, blog_policy(arn))
    outcome = remediator(world, config=config, clock=lambda: REWRITTEN_AT).remediate(
        Violation(
            function=arn,
            event_id="ev-mallory",
            caller=USER_ARN,
            record=invoke_record(arn, event_id="ev-mallory"),
        )
    )
    assert outcome.outcome is Outcome.REMEDIATED
    return arn, outcome.backup


def denied(arn, event_id, *, when="2025-01-02T05:00:00Z", identity=None, **parameters):
    record = invoke_record(
        arn,
        identity=identity or aws_service("s3.amazonaws.com"),
        event_id=event_id,
        **(parameters or {"sourceArn": BUCKET, "sourceAccount": ACCOUNT}),
    )
    record["errorCode"] = "AccessDeniedException"
    record["errorMessage"] = "not authorized"
    record["eventTime"] = when
    return Violation(function=arn, event_id=event_id, record=record, kind="denied")


def watch(world, config):
    return build_broken_watch(
        config,
        factory=ClientFactory(region=REGION),
        rate_table=world.table,
        backup_bucket=world.bucket,
        topic_arn=world.topic,
        own_account=ACCOUNT,
    )


def broken_alerts(world):
    return [n for n in notifications(world.inbox) if "denied after a rewrite" in n["Subject"]]


def test_an_allowed_caller_denied_after_a_rewrite_is_broken_and_alerted_once(world):
    config = load_config()
    arn, backup = rewritten(world, config)
    notifications(world.inbox)  # the remediation's own notice
    checker = watch(world, config)
    results = [checker.check(denied(arn, f"ev-{n}")) for n in range(3)]
    assert [r.verdict for r in results] == ["broken", "broken", "broken"]
    assert [r.alerted for r in results] == [True, False, False]
    (alert,) = broken_alerts(world)
    text = alert["Message"]
    assert "s3.amazonaws.com" in text
    assert f"backup {backup}" in text
    assert f"invoke-audit restore '{backup}'" in text or f"invoke-audit restore {backup}" in text
    assert results[0].backup == backup
    # alert only: the rewrite stays
    assert [s["Sid"] for s in get_policy(arn)[0]["Statement"]] == ["s3-trigger"]


def test_outside_the_watch_it_stays_a_failed_call(world):
    config = load_config()
    arn, _ = rewritten(world, config)
    checker = watch(world, config)
    before = checker.check(denied(arn, "ev-before", when="2025-01-02T02:59:59Z"))
    after = checker.check(denied(arn, "ev-after", when="2025-01-03T03:00:01Z"))
    at_the_edge = checker.check(denied(arn, "ev-edge", when="2025-01-03T03:00:00Z"))
    assert (before.verdict, after.verdict, at_the_edge.verdict) == (
        "failed-call",
        "failed-call",
        "broken",
    )


def test_a_caller_off_the_allowlist_is_never_broken(world):
    config = load_config()
    arn, _ = rewritten(world, config)
    checker = watch(world, config)
    stranger = checker.check(denied(arn, "ev-1", identity=iam_user(), functionName=arn))
    wrong_bucket = checker.check(
        denied(arn, "ev-2", sourceArn="arn:aws:s3:::otherbucket", sourceAccount=ACCOUNT)
    )
    assert (stranger.verdict, wrong_bucket.verdict) == ("failed-call", "failed-call")
    assert broken_alerts(world) == []


def test_no_rewrite_no_watch(world):
    config = load_config()
    arn = create_function("BlogFunction")
    put_policy(arn, blog_policy(arn))
    result = watch(world, config).check(denied(arn, "ev-1"))
    assert result.verdict == "failed-call"
    assert result.detail == "an allowed caller was denied, but no rewrite is being watched"


def test_on_broken_restore_undoes_the_rewrite_once_even_when_denials_race(world):
    config = load_config(
        ALLOWLIST_YAML.replace(
            '    functions: ["BlogFunction"]\n',
            '    functions: ["BlogFunction"]\n    on_broken: restore\n',
        )
    )
    arn, _ = rewritten(world, config)
    notifications(world.inbox)
    checkers = [watch(world, config) for _ in range(4)]
    results = []
    barrier = threading.Barrier(len(checkers))

    def check(index):
        barrier.wait()
        results.append(checkers[index].check(denied(arn, f"ev-{index}")))

    threads = [threading.Thread(target=check, args=(i,)) for i in range(len(checkers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.verdict for r in results) == ["broken"] * 4
    undone = [r for r in results if r.restored]
    assert len(undone) == 1
    assert undone[0].restored == "the original policy is back"
    assert get_policy(arn)[0] == blog_policy(arn)
    (alert,) = broken_alerts(world)
    assert "the rewrite was undone: the original policy is back" in alert["Message"]
    # the undo left its own safety copy: no watch on a rewrite that is undone
    assert watch(world, config).check(denied(arn, "ev-later")).verdict == "failed-call"
