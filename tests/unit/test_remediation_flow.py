"""The remediation flow (lambdas.remediation.remediate) on the in-memory fakes of its ports,
step by step as DESIGN.md orders it: guards, read, rewrite, proof, budget, backup, write with
the RevisionId, verify, notify; and what it records and tells people at each outcome.
Expected values are written by hand from DESIGN.md and the notices' wording."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from lambdas.adapters.errors import (
    AwsError,
    PreconditionFailedError,
    ResourceGoneError,
    ThrottledError,
)
from lambdas.core.ports import PolicyState
from lambdas.core.proof import Proof, ProofCheck
from lambdas.remediation.remediate import (
    Outcome,
    RateLimitedError,
    Remediator,
    Violation,
    utcnow,
)
from models.allowlist import AllowlistConfig
from models.arns import FunctionRef
from models.exceptions import InvokeAuditError, PostConditionError
from tests.support.fakes import (
    FakeBackups,
    FakeNotifier,
    FakePolicyStore,
    FakeProver,
    FakeRateLimit,
)

pytestmark = pytest.mark.unit

ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
OTHER = "arn:aws:lambda:us-east-1:123456789012:function:orders-eu"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HOUR = "2026-11-22T10"
CALLER = "arn:aws:iam::999988887777:role/intruder"
RECORD = {"eventID": "e-1", "eventName": "Invoke"}


def grant(sid: str, account: str, resource: str = ARN) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
    }


OURS = grant("ours", "123456789012")
THEIRS = grant("theirs", "999988887777")
BEFORE = {"Version": "2012-10-17", "Statement": [OURS, THEIRS]}
COMPLIANT = {"Version": "2012-10-17", "Statement": [OURS]}
# What the rewrite of BEFORE under the `orders` rule says it did.
KEPT = {
    "kind": "kept",
    "sid": "ours",
    "detail": "every caller it lets invoke is on the allowlist",
    "principals": [],
}
REMOVED = {
    "kind": "removed",
    "sid": "theirs",
    "detail": "no allowed caller invokes through this grant",
    "principals": ["arn:aws:iam::999988887777:root"],
}
PROVEN = "proven by IAM Access Analyzer: CheckNoNewAccess: PASS; CheckNoPublicAccess: PASS"
BACKUP = (
    "s3://fake-backups/backups/123456789012/us-east-1/orders/@unqualified/"
    "2026-11-22T10:00:00.000000Z-e-1.json"
)


def config(**extra: Any) -> AllowlistConfig:
    rule = {"name": "orders", "functions": ["orders*"], "allow": [{"account": "123456789012"}]}
    return AllowlistConfig.model_validate(
        {
            "version": 1,
            "limits": {"max_remediations_per_hour": 1} | extra.pop("limits", {}),
            "rules": [rule | extra.pop("rule", {})],
            **extra,
        }
    )


def remediator(store: FakePolicyStore, **parts: Any) -> Remediator:
    return Remediator(
        config=parts.get("config", config()),
        policies_for=lambda ref: store,
        backups=parts.get("backups", FakeBackups()),
        limiter=parts.get("limiter", FakeRateLimit()),
        notifier=parts.get("notifier", FakeNotifier()),
        clock=parts.get("clock", lambda: NOW),
        sleep=lambda seconds: None,
        prover=parts.get("prover", FakeProver()),
    )


def violation(function: str = ARN, **fields: Any) -> Violation:
    values = {
        "event_id": "e-1",
        "caller": CALLER,
        "reason": "not on the allowlist",
        "event_time": "2026-11-22T09:59:00Z",
        "record": RECORD,
    }
    return Violation(function=function, **(values | fields))


def store_with(policy: dict[str, Any] | None, revision: str = "r-1") -> FakePolicyStore:
    return FakePolicyStore({ARN: policy}, {ARN: revision})


def precondition_failed(retry_attempts: int = 0) -> PreconditionFailedError:
    return PreconditionFailedError(
        service="lambda",
        operation="PutResourcePolicy",
        resource=ARN,
        code="PreconditionFailedException",
        status=412,
        message="the RevisionId does not match",
        retry_attempts=retry_attempts,
    )


def aws_error(kind: type[AwsError], service: str, code: str, status: int) -> AwsError:
    return kind(
        service=service, operation="Call", resource="there", code=code, status=status, message="x"
    )


# --- a remediation: backup, write with the RevisionId, tell people -------------------------


def test_a_remediation_tells_people_everything_it_did():
    store, backups, notifier = store_with(BEFORE), FakeBackups(), FakeNotifier()
    flow = remediator(store, backups=backups, notifier=notifier)
    result = flow.remediate(violation())
    assert store.policies[ARN] == COMPLIANT
    after = store.revisions[ARN]
    assert after != "r-1"
    expected = {
        "outcome": "remediated",
        "function": ARN,
        "detail": "removed theirs: no allowed caller invokes through this grant",
        "event_id": "e-1",
        "caller": CALLER,
        "rule": "orders",
        "api": "resource-policy",
        "changes": [KEPT, REMOVED],
        "revision_before": "r-1",
        "revision_after": after,
        "policy_before": BEFORE,
        "policy_after": COMPLIANT,
        "backup": BACKUP,
        "proof": PROVEN,
        "attempts": 1,
        "notified": False,  # the details are written before the message is sent
        "notification_error": None,
        "cleanup_errors": [],
        "post_condition": None,
    }
    [(subject, text, details)] = notifier.published
    assert details == expected | {"event": RECORD}
    assert result.to_dict() == expected | {"notified": True}
    assert subject == "invoke-audit: resource policy of orders rewritten (1 grant(s) removed)"
    assert "Why: not on the allowlist" in text.splitlines()
    assert f"Proof: {PROVEN}" in text.splitlines()
    assert text.splitlines()[-3:] == [
        "Rule: orders",
        f"Caller: {CALLER}",
        "Event: e-1 at 2026-11-22T09:59:00Z",
    ]


def test_the_backup_holds_what_a_restore_needs_and_the_time_in_utc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the clock in another zone, and the machine in a third: the backup's time is UTC
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        backups = FakeBackups()
        noon_in_paris = datetime(2026, 11, 22, 11, 0, tzinfo=timezone(timedelta(hours=1)))
        remediator(store_with(BEFORE), backups=backups, clock=lambda: noon_in_paris).remediate(
            violation()
        )
    finally:
        monkeypatch.undo()
        time.tzset()
    assert backups.objects == {
        BACKUP: {
            "function": ARN,
            "revision_id": "r-1",
            "policy": BEFORE,
            "api": "resource-policy",
            "event": RECORD,
            "event_id": "e-1",
            "rule": "orders",
            "changes": [KEPT, REMOVED],
            "new_policy": COMPLIANT,
            "time": "2026-11-22T10:00:00+00:00",
        }
    }


def test_the_default_clock_is_utc():
    assert utcnow().utcoffset() == timedelta(0)


def test_without_a_backup_bucket_nothing_is_written_and_the_budget_is_given_back():
    store, limiter = store_with(BEFORE), FakeRateLimit()
    flow = remediator(store, limiter=limiter)
    flow.backups = None
    with pytest.raises(InvokeAuditError) as raised:
        flow.remediate(violation())
    assert str(raised.value) == "no backup bucket: a policy is never changed without a backup"
    assert (store.writes, limiter.used) == (0, {HOUR: 0})


class DownBackups(FakeBackups):
    def put(self, key: str, backup: dict[str, Any]) -> str:
        raise aws_error(AwsError, "s3", "InternalError", 500)


def test_a_backup_that_fails_stops_the_write_and_gives_the_budget_back():
    store, limiter = store_with(BEFORE), FakeRateLimit()
    with pytest.raises(AwsError):
        remediator(store, backups=DownBackups(), limiter=limiter).remediate(violation())
    assert (store.writes, store.policies[ARN], limiter.used) == (0, BEFORE, {HOUR: 0})


def test_a_dry_run_records_the_plan_and_writes_nothing():
    store, backups, notifier = store_with(BEFORE), FakeBackups(), FakeNotifier()
    result = remediator(store, backups=backups, notifier=notifier).remediate(
        violation(), dry_run=True
    )
    assert (result.api, result.revision_before) == ("resource-policy", "r-1")
    assert (result.policy_before, result.policy_after) == (BEFORE, COMPLIANT)
    assert result.changes == [KEPT, REMOVED]
    assert (store.writes, backups.objects, notifier.published) == (0, {}, [])


def test_each_function_is_changed_in_the_store_of_its_own_account_and_region():
    stores = {
        ("123456789012", "us-east-1"): store_with(BEFORE),
        ("123456789012", "eu-west-1"): FakePolicyStore(),
    }

    def policies_for(ref: FunctionRef) -> FakePolicyStore:
        return stores[(ref.account, ref.region)]

    flow = remediator(FakePolicyStore())
    flow.policies_for = policies_for
    assert flow.remediate(violation()).outcome is Outcome.REMEDIATED
    assert stores[("123456789012", "us-east-1")].policies[ARN] == COMPLIANT
    assert stores[("123456789012", "eu-west-1")].writes == 0


def test_an_expired_exception_no_longer_keeps_its_grant():
    expired = {"account": "999988887777", "expires": "2026-11-01"}
    rule = {"allow": [{"account": "123456789012"}, expired]}
    store = store_with(BEFORE)
    result = remediator(store, config=config(rule=rule)).remediate(violation())
    assert result.outcome is Outcome.REMEDIATED
    assert store.policies[ARN] == COMPLIANT


# --- the guards ----------------------------------------------------------------------------


def test_a_refused_function_is_reported_with_the_event_and_caller_it_came_with():
    store = store_with(BEFORE)
    flow = remediator(store, config=config(protect=["orders"]))
    result = flow.remediate(violation())
    assert result.to_dict() | {"changes": None} == {
        "outcome": "refused",
        "function": ARN,
        "detail": "protected by 'orders': never changed",
        "event_id": "e-1",
        "caller": CALLER,
        "rule": None,
        "api": None,
        "changes": None,
        "revision_before": None,
        "revision_after": None,
        "policy_before": None,
        "policy_after": None,
        "backup": None,
        "proof": None,
        "attempts": 0,
        "notified": False,
        "notification_error": None,
        "cleanup_errors": [],
        "post_condition": None,
    }
    assert store.writes == 0


def test_a_function_no_rule_covers_is_left_alone_and_says_so():
    uncovered = "arn:aws:lambda:us-east-1:123456789012:function:billing"
    result = remediator(FakePolicyStore()).remediate(violation(uncovered))
    assert (result.outcome, result.detail, result.rule) == (
        Outcome.REFUSED,
        "no rule of the allowlist covers this function",
        None,
    )


# --- the proof before writing ---------------------------------------------------------------


def test_the_proof_is_asked_about_the_current_and_the_planned_policy_of_the_resource():
    prover = FakeProver()
    result = remediator(store_with(BEFORE), prover=prover).remediate(violation())
    assert prover.calls == [(ARN, BEFORE, COMPLIANT)]
    assert result.proof == PROVEN


def test_with_the_proof_off_no_check_is_asked():
    prover = FakeProver()
    flow = remediator(store_with(BEFORE), prover=prover, config=config(limits={"proof": "off"}))
    result = flow.remediate(violation())
    assert (result.outcome, result.proof) == (
        Outcome.REMEDIATED,
        "not proven: limits.proof is off",
    )
    assert prover.calls == []


def test_a_failed_proof_writes_nothing_costs_nothing_and_says_which_check_failed():
    failed = Proof(
        (
            ProofCheck("CheckNoNewAccess", False, reasons=("grants new access",)),
            ProofCheck("CheckNoPublicAccess", True),
        )
    )
    store, backups, limiter, notifier = (
        store_with(BEFORE),
        FakeBackups(),
        FakeRateLimit(),
        FakeNotifier(),
    )
    flow = remediator(
        store, backups=backups, limiter=limiter, notifier=notifier, prover=FakeProver(failed)
    )
    result = flow.remediate(violation())
    assert (result.outcome, result.detail) == (
        Outcome.PROOF_FAILED,
        "nothing was written: CheckNoNewAccess: FAIL (grants new access)",
    )
    assert (store.writes, backups.objects, limiter.used) == (0, {}, {})
    [(subject, text, details)] = notifier.published
    assert subject == "invoke-audit: rewrite of orders NOT written: the proof before writing failed"
    assert "did NOT write it: nothing was written: CheckNoNewAccess: FAIL" in text
    assert (details["outcome"], details["policy_after"]) == ("proof-failed", COMPLIANT)


# --- a rewrite that fails its post-condition ------------------------------------------------

BLOG = "arn:aws:lambda:us-east-1:123456789012:function:BlogFunction"
BLOG_CONFIG = AllowlistConfig.model_validate(
    {
        "version": 1,
        "rules": [
            {
                "name": "blog",
                "functions": ["BlogFunction"],
                "allow": [
                    {
                        "service": "s3.amazonaws.com",
                        "source_arn": "arn:aws:s3:::examplebucket",
                        "source_account": "123456789012",
                    }
                ],
            }
        ],
    }
)
# S3 from buckets whose names the allowed one shares a prefix with: no narrowing of these
# conditions lets examplebucket in and nothing else.
UNNARROWABLE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "s3-any-account",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": BLOG,
            "Condition": {
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::example*"},
                "ArnEquals": {"AWS:SourceArn": "arn:aws:s3:::examp*"},
                "StringLike": {"AWS:SourceArn": "arn:aws:s3:::ex*"},
            },
        }
    ],
}


def test_a_rewrite_that_fails_its_post_condition_is_not_written_and_people_are_told():
    store, notifier = FakePolicyStore({BLOG: UNNARROWABLE}, {BLOG: "r-9"}), FakeNotifier()
    flow = remediator(store, notifier=notifier, config=BLOG_CONFIG)
    result = flow.remediate(violation(BLOG))
    assert result.outcome is Outcome.REFUSED
    assert result.post_condition is not None
    assert "service s3.amazonaws.com" in result.post_condition
    assert "arn:aws:s3:::examplebucket" in result.post_condition
    assert result.detail == (
        f"the rewrite fails its post-condition, nothing written: {result.post_condition}"
    )
    assert (result.api, result.revision_before, result.policy_before) == (
        "resource-policy",
        "r-9",
        UNNARROWABLE,
    )
    assert store.writes == 0
    [(subject, _, details)] = notifier.published
    assert (
        subject == "invoke-audit: BlogFunction NOT remediated: the rewrite fails its post-condition"
    )
    assert details["post_condition"] == result.post_condition


# --- what AWS answers: gone, races, lost answers -----------------------------------------------


class GoneStore(FakePolicyStore):
    def read(self, ref: FunctionRef) -> PolicyState:
        raise aws_error(ResourceGoneError, "lambda", "ResourceNotFoundException", 404)


def test_a_function_deleted_meanwhile_is_gone_and_nobody_is_told():
    notifier = FakeNotifier()
    result = remediator(GoneStore(), notifier=notifier).remediate(violation())
    assert (result.outcome, result.detail) == (
        Outcome.GONE,
        "the function, version or alias no longer exists (ResourceNotFoundException)",
    )
    assert notifier.published == []


class GoneBucket(FakeBackups):
    def put(self, key: str, backup: dict[str, Any]) -> str:
        raise aws_error(ResourceGoneError, "s3", "NoSuchBucket", 404)


def test_a_missing_backup_bucket_is_an_error_not_a_gone_function():
    store = store_with(BEFORE)
    with pytest.raises(ResourceGoneError):
        remediator(store, backups=GoneBucket()).remediate(violation())
    assert store.writes == 0


class ScriptedWrites(FakePolicyStore):
    """Each write does what the next step says: "ok"; "lost" (the write lands, its answer is
    lost, botocore retries and gets a 412); "other:KEY" (another change, OTHERS[KEY], lands
    first and the retried write gets a 412); "race:KEY" (the same, without a retry: the
    compare-and-swap lost); "reverted" (written, and the outsider's grant put back at once)."""

    def __init__(self, steps: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps = steps
        self.sent: list[dict[str, Any] | None] = []

    def write(
        self, ref: FunctionRef, current: PolicyState, target: dict[str, Any] | None
    ) -> PolicyState:
        self.sent.append(target)
        step = self.steps.pop(0)
        if step == "ok":
            return super().write(ref, current, target)
        if step == "reverted":
            super().write(ref, current, target)
            return super().write(ref, self.read(ref), BEFORE)
        if step == "lost":
            super().write(ref, current, target)
            raise precondition_failed(retry_attempts=1)
        self.policies[ref.arn] = OTHERS[step.split(":")[1]]
        self.revisions[ref.arn] = f"r-{len(self.sent) + 1}"
        raise precondition_failed(retry_attempts=0 if step.startswith("race") else 1)


OTHERS = {
    # someone else made the policy compliant, with another statement
    "fixed": {"Version": "2012-10-17", "Statement": [grant("owner-fix", "123456789012")]},
    # someone else changed the policy, still with the outsider's grant
    "still": {"Version": "2012-10-17", "Statement": [OURS, THEIRS, grant("x", "123456789012")]},
}


def test_a_write_whose_answer_was_lost_counts_as_made_when_the_policy_is_ours():
    store = ScriptedWrites(["lost"], policies={ARN: BEFORE}, revisions={ARN: "r-1"})
    backups, limiter, notifier = FakeBackups(), FakeRateLimit(), FakeNotifier()
    flow = remediator(store, backups=backups, limiter=limiter, notifier=notifier)
    result = flow.remediate(violation())
    assert (result.outcome, result.detail, result.attempts) == (
        Outcome.REMEDIATED,
        "the write landed (its answer was lost)",
        2,
    )
    assert (result.revision_after, result.policy_after) == (store.revisions[ARN], COMPLIANT)
    assert (result.backup, list(backups.objects)) == (BACKUP, [BACKUP])
    assert limiter.used == {HOUR: 1}
    assert len(notifier.published) == 1


def test_a_lost_answer_then_another_change_that_fixed_it_keeps_the_backup_and_the_budget():
    store = ScriptedWrites(["other:fixed"], policies={ARN: BEFORE}, revisions={ARN: "r-1"})
    backups, limiter, notifier = FakeBackups(), FakeRateLimit(), FakeNotifier()
    flow = remediator(store, backups=backups, limiter=limiter, notifier=notifier)
    result = flow.remediate(violation())
    assert (result.outcome, result.detail) == (
        Outcome.UNCHANGED,
        "another change made the policy compliant meanwhile",
    )
    # the 412 came after botocore's retry: the first try may have landed
    assert list(backups.objects) == [BACKUP]
    assert limiter.used == {HOUR: 1}
    assert notifier.published == []


def test_a_write_in_doubt_keeps_its_budget_even_when_a_later_write_loses_the_race():
    store = ScriptedWrites(
        ["other:still", "race:fixed"], policies={ARN: BEFORE}, revisions={ARN: "r-1"}
    )
    limiter = FakeRateLimit()
    result = remediator(store, limiter=limiter).remediate(violation())
    assert (result.outcome, result.attempts) == (Outcome.UNCHANGED, 3)
    assert limiter.used == {HOUR: 1}


def test_three_lost_races_give_up_with_nothing_written_kept_or_spent():
    store = ScriptedWrites(["race:still"] * 3, policies={ARN: BEFORE}, revisions={ARN: "r-1"})
    backups, limiter = FakeBackups(), FakeRateLimit()
    with pytest.raises(PreconditionFailedError):
        remediator(store, backups=backups, limiter=limiter).remediate(violation())
    assert len(store.sent) == 3
    assert (backups.objects, limiter.used) == ({}, {HOUR: 0})


def test_a_stored_policy_that_still_needs_changes_fails_the_post_condition():
    store = ScriptedWrites(["reverted"], policies={ARN: BEFORE}, revisions={ARN: "r-1"})
    with pytest.raises(PostConditionError) as raised:
        remediator(store).remediate(violation())
    assert str(raised.value) == (
        f"{ARN}: the stored policy still needs changes: "
        "removed theirs: no allowed caller invokes through this grant"
    )


# --- the hourly budget -------------------------------------------------------------------------


def test_past_the_budget_the_error_and_the_alert_say_which_limit():
    limiter, notifier = FakeRateLimit(used={HOUR: 1}), FakeNotifier()
    with pytest.raises(RateLimitedError) as raised:
        remediator(store_with(BEFORE), limiter=limiter, notifier=notifier).remediate(violation())
    reason = "the limit of 1 remediations per hour is reached: nothing was changed"
    assert str(raised.value) == reason
    [(_, text, _)] = notifier.published
    assert text.startswith(f"{reason}.\n\nThe remediator changes no policy until the next hour.")
    assert limiter.tripped == {HOUR}


def test_past_the_budget_an_hour_already_alerted_is_not_alerted_again():
    limiter = FakeRateLimit(used={HOUR: 1}, tripped={HOUR})
    notifier = FakeNotifier()
    with pytest.raises(RateLimitedError):
        remediator(store_with(BEFORE), limiter=limiter, notifier=notifier).remediate(violation())
    assert notifier.published == []


# --- who is told -------------------------------------------------------------------------------


def test_a_compliant_policy_tells_nobody():
    notifier = FakeNotifier()
    result = remediator(store_with(COMPLIANT), notifier=notifier).remediate(violation())
    assert (result.outcome, notifier.published) == (Outcome.UNCHANGED, [])


def test_identity_based_access_is_told_once_an_hour_per_function_and_caller():
    notifier = FakeNotifier()
    flow = remediator(FakePolicyStore(), notifier=notifier)
    other_caller = "arn:aws:iam::999988887777:role/other"
    for function, caller in [
        (ARN, CALLER),
        (ARN, CALLER),
        (ARN, other_caller),
        (OTHER, CALLER),
        (OTHER, CALLER),
    ]:
        assert flow.remediate(violation(function, caller=caller)).outcome is (
            Outcome.IDENTITY_BASED
        )
    assert [(d["function"], d["caller"]) for _, _, d in notifier.published] == [
        (ARN, CALLER),
        (ARN, other_caller),
        (OTHER, CALLER),
    ]
    subject, text, _ = notifier.published[0]
    assert subject == "invoke-audit: orders has no resource policy; review the caller's IAM access"
    assert text.splitlines()[:4] == [
        f"{CALLER} invoked {ARN}, which is not allowed by rule 'orders'.",
        "",
        "Nothing was changed: the resource has no resource-based policy: the caller's access"
        " comes from identity-based (IAM) policies, which a resource policy cannot take away"
        " unless the rule sets deny_others: true.",
        "Review the IAM policies of the caller, or set deny_others: true on the rule to add an"
        " explicit Deny.",
    ]


class BrokenNotifier(FakeNotifier):
    def publish(self, subject: str, summary: str, details: dict[str, Any]) -> str:
        raise ConnectionError("the topic did not answer")


def test_a_notification_that_fails_leaves_the_change_standing_and_says_why():
    store = store_with(BEFORE)
    result = remediator(store, notifier=BrokenNotifier()).remediate(violation())
    assert (result.outcome, store.policies[ARN]) == (Outcome.REMEDIATED, COMPLIANT)
    assert (result.notified, result.notification_error) == (False, "the topic did not answer")


def test_a_redelivery_reports_the_revision_its_backup_replaced():
    backups = FakeBackups(
        {
            BACKUP: {
                "policy": BEFORE,
                "revision_id": "r-0",
                "new_policy": COMPLIANT,
                "changes": [KEPT, REMOVED],
            }
        }
    )
    flow = remediator(store_with(COMPLIANT), backups=backups)
    result = flow.remediate(violation(redelivered=True))
    assert (result.outcome, result.backup, result.revision_before) == (
        Outcome.REMEDIATED,
        BACKUP,
        "r-0",
    )
    assert result.changes == [KEPT, REMOVED]
    assert result.detail == (
        "an earlier delivery of this message made the change and stopped before telling"
        " anyone: removed theirs: no allowed caller invokes through this grant"
    )


class ThrottledBudget(FakeRateLimit):
    """The budget table throttles the first three tries to take from it."""

    def __init__(self) -> None:
        super().__init__()
        self.throttled = 3

    def try_acquire(self, limit: int, *, now: datetime | None = None) -> bool:
        if self.throttled:
            self.throttled -= 1
            raise aws_error(ThrottledError, "dynamodb", "ThrottlingException", 400)
        return super().try_acquire(limit, now=now)


def test_a_throttled_budget_is_taken_on_the_last_try_for_the_hour_of_the_violation():
    limiter = ThrottledBudget()
    result = remediator(store_with(BEFORE), limiter=limiter).remediate(violation())
    assert result.outcome is Outcome.REMEDIATED
    assert (limiter.throttled, limiter.used) == (0, {HOUR: 1})


def test_with_deny_others_a_function_without_a_policy_gets_the_explicit_deny():
    store = FakePolicyStore()
    flow = remediator(store, config=config(rule={"deny_others": True}))
    result = flow.remediate(violation())
    assert result.outcome is Outcome.REMEDIATED
    assert [c["kind"] for c in result.changes] == ["added"]
    written = store.policies[ARN]
    assert written is not None
    [statement] = written["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Deny", ARN)
