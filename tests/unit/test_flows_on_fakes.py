"""The remediation flow and the violation reporter on the in-memory fakes of their ports:
what the flow asks of AWS, checked without an emulator. Expected values are written by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lambdas.adapters import (
    BackupReader,
    BackupStore,
    HourlyRateLimiter,
    LambdaPolicies,
    Notifier,
    ViolationQueue,
)
from lambdas.adapters.errors import AwsError, PreconditionFailedError, ThrottledError
from lambdas.core.decide import Decision, Verdict
from lambdas.core.ports import (
    BackupPort,
    BackupSource,
    NotifierPort,
    PolicyStore,
    QueuePort,
    RateLimitPort,
)
from lambdas.remediation.remediate import (
    Outcome,
    RateLimitedError,
    Remediator,
    Violation,
    seconds_to_next_window,
)
from lambdas.runtime.report import ViolationReporter
from models.allowlist import AllowlistConfig
from models.arns import parse_function_arn
from models.messages import ViolationMessage
from tests.support.fakes import (
    FakeBackups,
    FakeNotifier,
    FakePolicyStore,
    FakeProver,
    FakeQueue,
    FakeRateLimit,
)

pytestmark = pytest.mark.unit

ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
OURS = {
    "Sid": "ours",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "lambda:InvokeFunction",
    "Resource": ARN,
}
THEIRS = {
    "Sid": "theirs",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
    "Action": "lambda:InvokeFunction",
    "Resource": ARN,
}
CONFIG = AllowlistConfig.model_validate(
    {
        "version": 1,
        "limits": {"max_remediations_per_hour": 1},
        "rules": [
            {"name": "orders", "functions": ["orders"], "allow": [{"account": "123456789012"}]}
        ],
    }
)

# The boto3 adapters are what the ports say (checked by mypy).
_ADAPTERS: tuple[
    type[PolicyStore],
    type[BackupPort],
    type[BackupSource],
    type[RateLimitPort],
    type[NotifierPort],
    type[QueuePort],
] = (LambdaPolicies, BackupStore, BackupReader, HourlyRateLimiter, Notifier, ViolationQueue)


def remediator(store: FakePolicyStore, **parts: Any) -> Remediator:
    return Remediator(
        config=CONFIG,
        policies_for=lambda ref: store,
        backups=parts.get("backups", FakeBackups()),
        limiter=parts.get("limiter", FakeRateLimit()),
        notifier=parts.get("notifier", FakeNotifier()),
        clock=lambda: NOW,
        sleep=lambda seconds: None,
        prover=parts.get("prover", FakeProver()),
        own_functions=parts.get("own_functions", frozenset()),
    )


def test_a_violation_takes_the_outsiders_grant_away_after_a_backup():
    store = FakePolicyStore({ARN: {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}})
    backups, limiter, notifier = FakeBackups(), FakeRateLimit(), FakeNotifier()
    flow = remediator(store, backups=backups, limiter=limiter, notifier=notifier)
    result = flow.remediate(Violation(function=ARN, event_id="e-1", caller="someone"))
    assert result.outcome is Outcome.REMEDIATED
    assert store.policies[ARN] == {"Version": "2012-10-17", "Statement": [OURS]}
    assert store.writes == 1
    [(uri, backup)] = backups.objects.items()
    assert uri.startswith("s3://fake-backups/backups/123456789012/us-east-1/orders/")
    assert uri.endswith("-e-1.json")
    assert backup["policy"] == {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}
    assert limiter.used == {"2026-11-22T10": 1}
    [(subject, summary, _)] = notifier.published
    assert subject == "invoke-audit: resource policy of orders rewritten (1 grant(s) removed)"
    assert f"To undo: invoke-audit restore {uri}" in summary


def test_a_compliant_policy_is_not_written_and_costs_no_budget():
    store = FakePolicyStore({ARN: {"Version": "2012-10-17", "Statement": [OURS]}})
    limiter = FakeRateLimit()
    result = remediator(store, limiter=limiter).remediate(Violation(function=ARN))
    assert result.outcome is Outcome.UNCHANGED
    assert store.writes == 0
    assert limiter.used == {}


def test_past_the_hourly_budget_nothing_is_written_and_people_are_told_once():
    notifier = FakeNotifier()
    limiter = FakeRateLimit(used={"2026-11-22T10": 1})
    for _ in range(2):
        store = FakePolicyStore({ARN: {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}})
        with pytest.raises(RateLimitedError):
            remediator(store, limiter=limiter, notifier=notifier).remediate(Violation(function=ARN))
        assert store.writes == 0
    [(subject, _, details)] = notifier.published
    assert subject == "invoke-audit: remediation rate limit reached, remediations paused"
    assert details == {"limit": 1, "window": "2026-11-22T10"}


def test_the_pipelines_own_function_is_refused():
    own = "arn:aws:lambda:us-east-1:123456789012:function:invoke-audit-remediator"
    store = FakePolicyStore({own: {"Version": "2012-10-17", "Statement": [THEIRS]}})
    result = remediator(store, own_functions=frozenset({own})).remediate(Violation(function=own))
    assert result.outcome is Outcome.REFUSED
    assert result.detail == "the pipeline's own function: never changed"
    assert store.writes == 0


def test_a_function_named_like_the_pipelines_is_not_refused_for_its_name():
    # not one of the deployment's own ARNs: no rule covers it here, so it is left alone for
    # that reason, not for its name
    named = "arn:aws:lambda:us-east-1:123456789012:function:invoke-audit-anything"
    own = frozenset({"arn:aws:lambda:us-east-1:123456789012:function:invoke-audit-remediator"})
    store = FakePolicyStore({named: {"Version": "2012-10-17", "Statement": [THEIRS]}})
    result = remediator(store, own_functions=own).remediate(Violation(function=named))
    assert result.detail != "the pipeline's own function: never changed"


def test_the_reporter_queues_the_message_the_remediator_reads():
    queue = FakeQueue()
    decision = Decision(
        "e-7", Verdict.VIOLATION, "not allowed", function=ARN, caller="x", rule="orders",
        mode="enforce", event_time="2026-11-22T10:00:00Z", account="123456789012",
        region="us-east-1",
    )  # fmt: skip
    record = {"eventID": "e-7"}
    assert ViolationReporter(queue, None).report(decision, record) == "queued"
    [(body, group, dedup)] = queue.sent
    assert (group, dedup) == (ARN, "e-7")
    assert ViolationMessage.from_body(body) == ViolationMessage(
        function=ARN, event_id="e-7", rule="orders", mode="enforce", caller="x",
        reason="not allowed", account="123456789012", region="us-east-1",
        event_time="2026-11-22T10:00:00Z", record=record,
    )  # fmt: skip
    violation = Violation.from_message(body, receive_count=2)
    assert (violation.function, violation.event_id, violation.redelivered) == (ARN, "e-7", True)
    assert parse_function_arn(violation.function).name == "orders"


def test_monitor_mode_notifies_once_per_caller_and_function():
    notifier = FakeNotifier()
    decision = Decision("e-8", Verdict.VIOLATION, "why", function=ARN, caller="x", mode="monitor")
    reporter = ViolationReporter(None, notifier)
    assert [reporter.report(decision, {}) for _ in range(2)] == ["notified", "suppressed"]
    [(subject, _, _)] = notifier.published
    assert subject == "invoke-audit [monitor]: orders invoked by x, not on the allowlist"


class ThrottledReads(FakePolicyStore):
    """Answers the first `throttled` reads with AWS's throttling error."""

    def __init__(self, throttled: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.throttled = throttled

    def read(self, ref: Any) -> Any:
        if self.throttled:
            self.throttled -= 1
            raise ThrottledError(
                service="lambda",
                operation="GetResourcePolicy",
                resource=ref.arn,
                code="TooManyRequestsException",
                status=429,
                message="slow down",
            )
        return super().read(ref)


def _sleeps(store: FakePolicyStore, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[float]]:
    monkeypatch.setattr("lambdas.remediation.remediate.random.random", lambda: 0.5)
    sleeps: list[float] = []
    flow = remediator(store)
    flow.sleep = sleeps.append
    return flow, sleeps


def test_throttled_calls_back_off_half_a_second_doubling_with_up_to_half_again_of_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ThrottledReads(3, policies={ARN: {"Version": "2012-10-17", "Statement": [OURS]}})
    flow, sleeps = _sleeps(store, monkeypatch)
    assert flow.remediate(Violation(function=ARN)).outcome is Outcome.UNCHANGED
    # 0.5, 1 and 2 seconds, each times 1 + random() / 2 = 1.25
    assert sleeps == [0.625, 1.25, 2.5]


def test_the_fourth_throttled_try_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    store = ThrottledReads(4, policies={ARN: {"Version": "2012-10-17", "Statement": [OURS]}})
    flow, sleeps = _sleeps(store, monkeypatch)
    with pytest.raises(ThrottledError):
        flow.remediate(Violation(function=ARN))
    assert sleeps == [0.625, 1.25, 2.5]
    assert store.throttled == 0


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 11, 22, 10, 59, 30, tzinfo=UTC), 35),
        (datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC), 3605),
        (datetime(2026, 11, 22, 10, 0, 0, 999_999, tzinfo=UTC), 3605),
        # 12:15 at UTC+2 is 10:15 UTC: 45 minutes to 11:00 UTC, and 5 seconds
        (datetime(2026, 11, 22, 12, 15, tzinfo=timezone(timedelta(hours=2))), 2705),
        # 12:15:45 at UTC-0:30 is 12:45:45 UTC: 14 min 15 s to 13:00 UTC, and 5 seconds
        (datetime(2026, 11, 22, 12, 15, 45, tzinfo=timezone(timedelta(minutes=-30))), 860),
    ],
)
def test_a_parked_message_comes_back_five_seconds_into_the_next_utc_hour(now, seconds):
    assert seconds_to_next_window(now) == seconds


def _aws_error(operation: str) -> AwsError:
    return AwsError(
        service="s3",
        operation=operation,
        resource="there",
        code="InternalError",
        status=500,
        message="down",
    )


class RaceLostToAFix(FakePolicyStore):
    """The first write loses the compare-and-swap to another change that makes the policy
    compliant."""

    def write(self, ref: Any, current: Any, target: Any) -> Any:
        self.policies[ref.arn] = {"Version": "2012-10-17", "Statement": [OURS]}
        self.revisions[ref.arn] = "changed"
        raise PreconditionFailedError(
            service="lambda",
            operation="PutResourcePolicy",
            resource=ref.arn,
            code="PreconditionFailedException",
            status=412,
            message="the RevisionId does not match",
        )


class UndeletableBackups(FakeBackups):
    def delete(self, uri: str) -> None:
        raise _aws_error("DeleteObject")


class UnreleasableBudget(FakeRateLimit):
    def release(self, *, now: datetime) -> bool:
        raise _aws_error("UpdateItem")


def test_a_race_lost_to_a_fix_writes_nothing_and_says_what_it_could_not_clean_up():
    store = RaceLostToAFix({ARN: {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}})
    backups = UndeletableBackups()
    flow = remediator(store, backups=backups, limiter=UnreleasableBudget())
    result = flow.remediate(Violation(function=ARN, event_id="e-1"))
    assert result.outcome is Outcome.UNCHANGED
    assert result.attempts == 2
    assert result.backup is None
    [uri] = backups.objects
    assert result.cleanup_errors == [
        f"backup {uri} of a write that lost a race stays: s3 DeleteObject on there:"
        " InternalError (500): down",
        "the hourly budget was not given back: s3 UpdateItem on there: InternalError (500): down",
    ]


def test_a_race_lost_to_a_fix_gives_back_the_budget_and_the_backup():
    store = RaceLostToAFix({ARN: {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}})
    backups, limiter = FakeBackups(), FakeRateLimit()
    result = remediator(store, backups=backups, limiter=limiter).remediate(
        Violation(function=ARN, event_id="e-1")
    )
    assert (result.outcome, result.cleanup_errors) == (Outcome.UNCHANGED, [])
    assert backups.objects == {}
    assert limiter.used == {"2026-11-22T10": 0}


MONITORED = AllowlistConfig.model_validate(
    {
        "version": 1,
        "rules": [
            {
                "name": "orders",
                "functions": ["orders"],
                "mode": "monitor",
                "allow": [{"account": "123456789012"}],
            }
        ],
    }
)


def test_each_outcome_says_what_happened_in_words():
    compliant = FakePolicyStore({ARN: {"Version": "2012-10-17", "Statement": [OURS]}})
    assert remediator(compliant).remediate(Violation(function=ARN)).detail == (
        "the policy grants invoke to no caller outside the allowlist; a caller that still gets"
        " in does so through its identity-based (IAM) policies"
    )
    nothing = FakePolicyStore({})
    result = remediator(nothing).remediate(Violation(function=ARN))
    assert (result.outcome, result.detail) == (
        Outcome.IDENTITY_BASED,
        "the resource has no resource-based policy: the caller's access comes from"
        " identity-based (IAM) policies, which a resource policy cannot take away unless the"
        " rule sets deny_others: true",
    )
    outsider = FakePolicyStore({ARN: {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}})
    dry = remediator(outsider).remediate(Violation(function=ARN), dry_run=True)
    assert (dry.outcome, dry.detail) == (
        Outcome.WOULD_REMEDIATE,
        "dry run: the policy would be rewritten as shown",
    )
    assert outsider.writes == 0


def test_a_monitored_function_is_refused_with_its_rule_named():
    store = FakePolicyStore({ARN: {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}})
    flow = remediator(store)
    flow.config = MONITORED
    result = flow.remediate(Violation(function=ARN))
    assert (result.outcome, result.rule) == (Outcome.REFUSED, "orders")
    assert result.detail.endswith(": nothing is changed")
    assert store.writes == 0


COMPLIANT = {"Version": "2012-10-17", "Statement": [OURS]}
BEFORE = {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}


def test_a_redelivery_finds_its_change_in_a_backup_kept_under_the_old_folder_name():
    old = (
        "s3://fake-backups/backups/123456789012/us-east-1/orders/$UNQUALIFIED/"
        "2026-11-22T09:00:00.000000Z-e-1.json"
    )
    backups = FakeBackups({old: {"policy": BEFORE, "new_policy": COMPLIANT, "changes": []}})
    notifier = FakeNotifier()
    flow = remediator(FakePolicyStore({ARN: COMPLIANT}), backups=backups, notifier=notifier)
    result = flow.remediate(Violation(function=ARN, event_id="e-1", redelivered=True))
    assert (result.outcome, result.backup, result.policy_before) == (
        Outcome.REMEDIATED,
        old,
        BEFORE,
    )
    assert result.detail.startswith(
        "an earlier delivery of this message made the change and stopped before telling anyone"
    )
    assert len(notifier.published) == 1


@pytest.mark.parametrize(
    ("backups", "redelivered"),
    [(FakeBackups(), True), (None, True), (FakeBackups(), False)],
)
def test_a_compliant_policy_without_a_backup_of_this_message_is_unchanged(backups, redelivered):
    old = (
        "s3://fake-backups/backups/123456789012/us-east-1/orders/$UNQUALIFIED/"
        "2026-11-22T09:00:00.000000Z-e-1.json"
    )
    if backups is not None and not redelivered:
        backups.objects[old] = {"policy": BEFORE, "new_policy": COMPLIANT}
    flow = remediator(FakePolicyStore({ARN: COMPLIANT}), backups=backups)
    result = flow.remediate(Violation(function=ARN, event_id="e-1", redelivered=redelivered))
    assert (result.outcome, result.backup) == (Outcome.UNCHANGED, None)


def test_a_backup_of_another_policy_is_not_taken_for_this_messages_change():
    key = (
        "s3://fake-backups/backups/123456789012/us-east-1/orders/@unqualified/"
        "2026-11-22T09:00:00.000000Z-e-1.json"
    )
    backups = FakeBackups({key: {"policy": BEFORE, "new_policy": BEFORE}})
    flow = remediator(FakePolicyStore({ARN: COMPLIANT}), backups=backups)
    result = flow.remediate(Violation(function=ARN, event_id="e-1", redelivered=True))
    assert result.outcome is Outcome.UNCHANGED


def test_a_queue_message_is_read_into_the_violation_it_asks_to_remediate():
    body = ViolationMessage(
        function=ARN, event_id="e-8", caller="x", reason="not allowed",
        event_time="2026-11-22T10:00:00Z", record={"eventID": "e-8"}, kind="denied",
    ).to_body()  # fmt: skip
    expected = Violation(
        function=ARN, event_id="e-8", caller="x", reason="not allowed",
        event_time="2026-11-22T10:00:00Z", record={"eventID": "e-8"}, redelivered=False,
        kind="denied",
    )  # fmt: skip
    assert Violation.from_message(body) == expected
    assert Violation.from_message(body, receive_count=1) == expected
    assert Violation.from_message(body, receive_count=2).redelivered is True


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 11, 22, 10, 15, tzinfo=UTC), 2705),
        # 10:45 UTC is 16:15 in Kolkata, whose hours start at :30 UTC: the budget's do not
        (datetime(2026, 11, 22, 10, 45, tzinfo=UTC), 905),
    ],
)
def test_the_next_window_is_the_next_utc_hour_whatever_the_machines_zone(
    now: datetime, seconds: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert seconds_to_next_window(now) == seconds
    finally:
        monkeypatch.undo()
        time.tzset()
