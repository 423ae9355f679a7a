"""The remediation flow against moto (SQS, S3, SNS, DynamoDB) and the Lambda policy emulator:
what is written, what is backed up, what people are told, and every way it stops."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.errors import (
    AccessDeniedError,
    PreconditionFailedError,
    ResourceGoneError,
    ThrottledError,
)
from lambdas.adapters.lambda_policy import LambdaPolicies
from lambdas.core.rewrite import DENY_SID
from lambdas.remediation.remediate import Outcome, RateLimitedError, Violation, backup_key
from lambdas.remediation.wiring import PolicyStores
from models.arns import parse_function_arn
from models.exceptions import InvokeAuditError
from tests.support.allowlists import ALLOWLIST_YAML, load_config
from tests.support.aws import (
    CallRecorder,
    World,
    aws,
    client,
    create_function,
    get_policy,
    notifications,
    old_botocore_lambda_client,
    put_policy,
    remediator,
)
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, OTHER_ACCOUNT, REGION, USER_ARN, invoke_record

pytestmark = pytest.mark.functional

S3_ARN = "arn:aws:s3:::examplebucket"


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with aws():
        yield World()


def violation(function, event_id="ev-1"):
    return Violation(
        function=function,
        event_id=event_id,
        caller=USER_ARN,
        reason=f"{USER_ARN} is not on the allowlist of rule 'blog'",
        event_time="2025-01-02T03:04:05Z",
        record=invoke_record(function, event_id=event_id),
    )


def blog_function(name="BlogFunction"):
    arn = create_function(name)
    revision = put_policy(arn, blog_policy(arn))
    return arn, revision


def test_remediation_removes_the_wildcard_tightens_s3_backs_up_and_notifies(world):
    arn, revision = blog_function()
    result = remediator(world).remediate(violation(arn))
    stored, stored_revision = get_policy(arn)
    (key,) = world.backups()
    backup = world.backup(key)
    (note,) = notifications(world.inbox)

    assert result.outcome is Outcome.REMEDIATED
    assert result.revision_before == revision
    assert result.revision_after == stored_revision != revision
    assert [s["Sid"] for s in stored["Statement"]] == ["s3-trigger"]
    assert stored["Statement"][0]["Condition"] == {
        "ArnLike": {"AWS:SourceArn": S3_ARN},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }
    # The backup: contract key and fields, written before the policy changed.
    assert key.startswith(f"backups/{ACCOUNT}/{REGION}/BlogFunction/@unqualified/")
    assert "$" not in key
    assert key.endswith("-ev-1.json")
    assert result.backup == f"s3://{world.bucket}/{key}"
    assert backup["function"] == arn
    assert backup["revision_id"] == revision
    assert backup["policy"] == blog_policy(arn)
    assert backup["api"] == "resource-policy"
    assert backup["event"]["eventID"] == "ev-1"
    assert backup["new_policy"] == stored
    assert {c["kind"] for c in backup["changes"]} == {"removed", "tightened"}
    assert datetime.fromisoformat(backup["time"]).tzinfo is not None
    # The email: what was removed from which resource, why, where the backup is.
    message = note["Message"]
    assert "BlogFunction" in note["Subject"]
    assert f"rewrote the resource-based policy of {arn}" in message
    assert "Removed statement public" in message
    assert "Tightened statement s3-trigger" in message
    assert "not on the allowlist of rule 'blog'" in message
    assert f"invoke-audit restore {result.backup}" in message
    assert "the caller is in the function's own account" in message
    details = json.loads(message.split("--- details (JSON) ---", 1)[1])
    assert details["outcome"] == "remediated"
    assert details["backup"] == result.backup


class RecordingFactory(ClientFactory):
    """Clients as the Lambda builds them, each call recorded as its IAM action."""

    def __init__(self, recorder):
        super().__init__(region=REGION)
        self.recorder = recorder
        self.seen = set()

    def client(self, service, **kwargs):
        built = super().client(service, **kwargs)
        if id(built) not in self.seen:
            self.seen.add(id(built))
            self.recorder.attach(built)
        return built


def test_one_violation_costs_seven_api_calls_two_of_them_lambda(world):
    arn, _ = blog_function()
    recorder = CallRecorder()
    remediator(world, factory=RecordingFactory(recorder)).remediate(violation(arn))
    assert recorder.actions == [
        "lambda:GetResourcePolicy",
        "access-analyzer:CheckNoNewAccess",
        "access-analyzer:CheckNoPublicAccess",
        "dynamodb:UpdateItem",
        "s3:PutObject",
        "lambda:PutResourcePolicy",
        "sns:Publish",
    ]


def test_an_already_clean_policy_is_not_written_backed_up_or_notified(world):
    arn, _ = blog_function()
    engine = remediator(world)
    engine.remediate(violation(arn, "ev-1"))
    notifications(world.inbox)
    _, revision = get_policy(arn)
    again = engine.remediate(violation(arn, "ev-2"))
    assert again.outcome is Outcome.UNCHANGED
    assert "identity-based" in again.detail
    assert get_policy(arn)[1] == revision
    assert len(world.backups()) == 1
    assert notifications(world.inbox) == []


def test_the_alias_policy_is_rewritten_and_the_function_policy_left_alone(world):
    arn = create_function("BlogFunction")
    lam = client("lambda")
    lam.publish_version(FunctionName="BlogFunction")
    lam.create_alias(FunctionName="BlogFunction", Name="prod", FunctionVersion="1")
    alias = f"{arn}:prod"
    put_policy(alias, blog_policy(alias))
    put_policy(arn, blog_policy(arn))
    result = remediator(world).remediate(violation(alias))
    assert result.outcome is Outcome.REMEDIATED
    assert [s["Sid"] for s in get_policy(alias)[0]["Statement"]] == ["s3-trigger"]
    assert get_policy(arn)[0] == blog_policy(arn)
    assert world.backups()[0].startswith(f"backups/{ACCOUNT}/{REGION}/BlogFunction/prod/")


def test_no_policy_is_reported_as_identity_based_access_once_an_hour(world):
    arn = create_function("BlogFunction")
    engine = remediator(world)
    result = engine.remediate(violation(arn))
    again = engine.remediate(violation(arn, "ev-2"))
    (note,) = notifications(world.inbox)
    assert again.outcome is Outcome.IDENTITY_BASED
    assert again.notified is False
    assert result.outcome is Outcome.IDENTITY_BASED
    assert get_policy(arn) == (None, None)
    assert world.backups() == []
    assert "no resource-based policy" in note["Message"]
    assert "deny_others" in note["Message"]


def test_no_policy_with_deny_others_gets_a_deny_only_policy(world):
    arn = create_function("StrictFunction")
    result = remediator(world).remediate(violation(arn))
    stored, _ = get_policy(arn)
    (key,) = world.backups()
    assert result.outcome is Outcome.REMEDIATED
    assert [(s["Sid"], s["Effect"]) for s in stored["Statement"]] == [(DENY_SID, "Deny")]
    assert world.backup(key)["policy"] is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("ProtectedFunction", "protected by 'Protected*'"),
        ("invoke-audit-validator", "the pipeline's own function"),
        ("UnknownFunction", "no rule"),
        ("WatchedFunction", "monitor mode"),
    ],
)
def test_protected_own_unruled_and_monitored_functions_are_refused(world, name, why):
    arn = create_function(name)
    put_policy(arn, blog_policy(arn))
    result = remediator(world).remediate(violation(arn))
    assert result.outcome is Outcome.REFUSED
    assert why in result.detail
    assert get_policy(arn)[0] == blog_policy(arn)
    assert world.backups() == []


def test_past_the_hourly_limit_nothing_changes_and_one_alert_goes_out(world):
    config = load_config(
        ALLOWLIST_YAML.replace("max_remediations_per_hour: 20", "max_remediations_per_hour: 1")
    )
    first, _ = blog_function("BlogFunction")
    engine = remediator(world, config)
    engine.remediate(violation(first))
    notifications(world.inbox)
    client("lambda").delete_resource_policy(ResourceArn=first)
    put_policy(first, blog_policy(first))
    for event_id in ("ev-2", "ev-3"):
        with pytest.raises(RateLimitedError, match="limit of 1 remediations per hour"):
            engine.remediate(violation(first, event_id))
    alerts = notifications(world.inbox)
    assert get_policy(first)[0] == blog_policy(first)
    assert len(world.backups()) == 1
    assert len(alerts) == 1
    assert "rate limit reached" in alerts[0]["Subject"]


def test_a_failed_backup_means_no_write(world):
    arn, revision = blog_function()
    engine = remediator(world)
    client("s3").delete_bucket(Bucket=world.bucket)
    with pytest.raises(ResourceGoneError, match="NoSuchBucket"):
        engine.remediate(violation(arn))
    assert get_policy(arn) == (blog_policy(arn), revision)


@dataclass
class Racing:
    """A policy store whose writes lose a race `times` times: someone changes the policy just
    before each of them."""

    inner: LambdaPolicies
    times: int
    writes: int = 0
    reads: list[str | None] = field(default_factory=list)

    def read(self, ref):
        state = self.inner.read(ref)
        self.reads.append(state.revision_id)
        return state

    def write(self, ref, current, target):
        self.writes += 1
        if self.writes <= self.times:
            client("lambda").add_permission(
                FunctionName=ref.unqualified_arn, StatementId=f"sneaky-{self.writes}",
                Action="lambda:InvokeFunction", Principal="111122223333",
            )  # fmt: skip
        return self.inner.write(ref, current, target)


def test_a_412_rereads_and_recomputes_with_the_concurrent_change(world):
    arn, _ = blog_function()
    engine = remediator(world)
    store = Racing(engine.policies_for(parse_function_arn(arn)), times=1)
    engine.policies_for = lambda ref: store
    result = engine.remediate(violation(arn))
    stored, _ = get_policy(arn)
    assert result.outcome is Outcome.REMEDIATED
    assert result.attempts == 2
    assert len(set(store.reads)) == 2
    # The concurrent grant (an account outside the allowlist) was judged too: removed.
    assert [s["Sid"] for s in stored["Statement"]] == ["s3-trigger"]
    # The backup of the lost attempt is gone; the one left holds the policy replaced.
    (key,) = world.backups()
    assert len(world.backup(key)["policy"]["Statement"]) == 3
    assert result.backup == f"s3://{world.bucket}/{key}"
    assert world.remediations_counted() == 1


def test_losing_the_race_to_another_remediator_gives_back_budget_and_backup(world):
    arn, _ = blog_function()
    loser = remediator(world)
    winner = remediator(world)
    inner = loser.policies_for(parse_function_arn(arn))

    class LosesToWinner:
        def read(self, ref):
            return inner.read(ref)

        def write(self, ref, current, target):
            winner.remediate(violation(arn, "ev-winner"))
            return inner.write(ref, current, target)

    loser.policies_for = lambda ref: LosesToWinner()
    result = loser.remediate(violation(arn, "ev-loser"))
    (key,) = world.backups()
    assert result.outcome is Outcome.UNCHANGED
    assert result.backup is None
    assert result.cleanup_errors == []
    assert key.endswith("-ev-winner.json")
    assert world.remediations_counted() == 1
    assert len(notifications(world.inbox)) == 1


def test_three_lost_races_fail_the_message(world):
    arn, _ = blog_function()
    engine = remediator(world)
    store = Racing(engine.policies_for(parse_function_arn(arn)), times=3)
    engine.policies_for = lambda ref: store
    with pytest.raises(PreconditionFailedError):
        engine.remediate(violation(arn))
    assert store.writes == 3


def test_a_write_whose_answer_was_lost_counts_as_made_once(world):
    """botocore's retry of a write that landed gets a 412 about our own revision."""
    arn, _ = blog_function()
    engine = remediator(world)
    inner = engine.policies_for(parse_function_arn(arn))

    class AnswerLost:
        def read(self, ref):
            return inner.read(ref)

        def write(self, ref, current, target):
            inner.write(ref, current, target)
            raise PreconditionFailedError(
                service="lambda", operation="PutResourcePolicy", resource=ref.arn,
                code="PreconditionFailedException", status=412, message="m", retry_attempts=1,
            )  # fmt: skip

    engine.policies_for = lambda ref: AnswerLost()
    result = engine.remediate(violation(arn))
    (key,) = world.backups()
    assert result.outcome is Outcome.REMEDIATED
    assert "answer was lost" in result.detail
    assert result.backup == f"s3://{world.bucket}/{key}"
    assert world.backup(key)["policy"] == blog_policy(arn)
    assert world.remediations_counted() == 1
    assert len(notifications(world.inbox)) == 1


def test_a_redelivered_message_tells_of_the_change_its_first_delivery_made(world):
    arn, _ = blog_function()
    remediator(world, topic_arn=None).remediate(violation(arn))  # died before telling
    assert notifications(world.inbox) == []
    engine = remediator(world)
    unrelated = engine.remediate(violation(arn, "ev-other"))
    again = engine.remediate(replace(violation(arn), redelivered=True))
    (note,) = notifications(world.inbox)
    (key,) = world.backups()
    assert unrelated.outcome is Outcome.UNCHANGED
    assert again.outcome is Outcome.REMEDIATED
    assert "earlier delivery" in again.detail
    assert again.backup == f"s3://{world.bucket}/{key}"
    assert "Removed statement public" in note["Message"]
    assert world.remediations_counted() == 1


@dataclass
class Flaky:
    """A policy store that raises `error` on the first `times` calls of each of `failing`."""

    inner: LambdaPolicies
    error: Exception
    times: int
    failing: tuple[str, ...] = ("read", "write")
    calls: dict[str, int] = field(default_factory=dict)

    def _maybe_fail(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.failing and self.calls[name] <= self.times:
            raise self.error

    def read(self, ref):
        self._maybe_fail("read")
        return self.inner.read(ref)

    def write(self, ref, current, target):
        self._maybe_fail("write")
        return self.inner.write(ref, current, target)


def aws_error(cls, code, status):
    return cls(
        service="lambda",
        operation="PutResourcePolicy",
        resource="r",
        code=code,
        status=status,
        message="m",
    )


def test_throttling_backs_off_and_retries(world):
    arn, _ = blog_function()
    sleeps: list[float] = []
    engine = remediator(world, sleep=sleeps.append)
    store = Flaky(
        engine.policies_for(parse_function_arn(arn)),
        aws_error(ThrottledError, "TooManyRequestsException", 429),
        2,
    )
    engine.policies_for = lambda ref: store
    result = engine.remediate(violation(arn))
    assert result.outcome is Outcome.REMEDIATED
    assert len(sleeps) == 4  # two for the read, two for the write
    assert sleeps[0] < sleeps[1]
    assert all(0 < s <= 12 for s in sleeps)


def test_throttling_that_does_not_stop_fails_the_message(world):
    arn, revision = blog_function()
    engine = remediator(world, sleep=lambda _: None)
    store = Flaky(
        engine.policies_for(parse_function_arn(arn)),
        aws_error(ThrottledError, "TooManyRequestsException", 429),
        99,
    )
    engine.policies_for = lambda ref: store
    with pytest.raises(ThrottledError):
        engine.remediate(violation(arn))
    assert store.calls == {"read": 4}
    assert get_policy(arn)[1] == revision


def test_access_denied_fails_the_message_after_the_backup_and_without_a_change(world):
    arn, revision = blog_function()
    engine = remediator(world)
    store = Flaky(
        engine.policies_for(parse_function_arn(arn)),
        aws_error(AccessDeniedError, "AccessDeniedException", 403),
        99,
        failing=("write",),
    )
    engine.policies_for = lambda ref: store
    with pytest.raises(AccessDeniedError):
        engine.remediate(violation(arn))
    assert store.calls == {"read": 1, "write": 1}
    assert len(world.backups()) == 1  # backed up before the write was refused
    assert get_policy(arn)[1] == revision


def test_a_deleted_function_is_done_and_noted(world):
    arn, _ = blog_function()
    client("lambda").delete_function(FunctionName="BlogFunction")
    result = remediator(world).remediate(violation(arn))
    assert result.outcome is Outcome.GONE
    assert "no longer exists" in result.detail
    assert notifications(world.inbox) == []


def test_dry_run_plans_and_changes_nothing(world):
    arn, revision = blog_function()
    result = remediator(world).remediate(violation(arn), dry_run=True)
    assert result.outcome is Outcome.WOULD_REMEDIATE
    assert [s["Sid"] for s in result.policy_after["Statement"]] == ["s3-trigger"]
    assert get_policy(arn)[1] == revision
    assert world.backups() == []
    assert notifications(world.inbox) == []


def test_without_the_resource_policy_api_it_writes_with_add_and_remove_permission(world, tmp_path):
    arn = create_function("BlogFunction")
    lam = client("lambda")
    lam.add_permission(
        FunctionName=arn, StatementId="public", Action="lambda:InvokeFunction", Principal="*"
    )
    lam.add_permission(
        FunctionName=arn, StatementId="s3-trigger", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn=S3_ARN,
    )  # fmt: skip
    engine = remediator(world)
    old = LambdaPolicies(old_botocore_lambda_client(tmp_path))
    engine.policies_for = lambda ref: old
    result = engine.remediate(violation(arn))
    stored = json.loads(lam.get_policy(FunctionName=arn)["Policy"])
    (key,) = world.backups()
    assert result.outcome is Outcome.REMEDIATED
    assert result.api == "permission"
    assert world.backup(key)["api"] == "permission"
    assert [s["Sid"] for s in stored["Statement"]] == ["s3-trigger"]
    condition = stored["Statement"][0]["Condition"]
    assert condition["StringEquals"]["AWS:SourceAccount"] == ACCOUNT
    assert condition["ArnLike"]["AWS:SourceArn"] == S3_ARN


def test_a_message_is_read_strictly():
    with pytest.raises(InvokeAuditError, match="kind must be one of violation, denied"):
        Violation.from_message({"function": "x"})
    with pytest.raises(InvokeAuditError, match="names no function"):
        Violation.from_message({"kind": "violation", "function": 7})
    parsed = Violation.from_message({"kind": "violation", "function": "arn", "caller": 5})
    assert parsed.function == "arn"
    assert parsed.caller is None


def test_backup_key_follows_the_contract():
    ref = parse_function_arn(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f:7")
    moment = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert backup_key(ref, moment, "ev") == (
        f"backups/{ACCOUNT}/{REGION}/f/7/2025-01-02T03:04:05.678901Z-ev.json"
    )


def test_member_account_functions_are_reached_through_the_remediation_role(world):
    recorder = CallRecorder()
    stores = PolicyStores(RecordingFactory(recorder), ACCOUNT, "invoke-audit-remediation")
    member = parse_function_arn(f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:f")
    member_alias = parse_function_arn(f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:f:prod")
    own = parse_function_arn(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f")
    first, second, mine = stores(member), stores(member_alias), stores(own)
    assert first is second  # one store (and one fallback decision) per account and region
    assert mine is not first
    assert recorder.actions == ["sts:AssumeRole"]


# A grant the rewrite cannot narrow without taking S3 from the allowed bucket away: the
# source ARN key is taken under every operator an added condition could use.
UNNARROWABLE = {
    "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::example*"},
    "ArnEquals": {"AWS:SourceArn": "arn:aws:s3:::examp*"},
    "StringLike": {"AWS:SourceArn": "arn:aws:s3:::ex*"},
}


def unnarrowable_function():
    arn = create_function("BlogFunction")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "s3-any-account",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": arn,
                "Condition": UNNARROWABLE,
            }
        ],
    }
    return arn, put_policy(arn, policy)


def test_a_rewrite_that_fails_its_post_condition_is_not_written_and_alerts(world):
    arn, revision = unnarrowable_function()
    result = remediator(world).remediate(violation(arn))
    assert result.outcome is Outcome.REFUSED
    # the failing request is named
    assert "service s3.amazonaws.com" in result.post_condition
    assert "arn:aws:s3:::examplebucket" in result.post_condition
    assert result.post_condition in result.detail
    assert get_policy(arn)[1] == revision
    assert world.backups() == []
    (alert,) = notifications(world.inbox)
    assert "post-condition" in json.dumps(alert)


def test_a_dry_run_shows_the_failing_request(world):
    arn, revision = unnarrowable_function()
    result = remediator(world).remediate(violation(arn), dry_run=True)
    assert result.outcome is Outcome.REFUSED
    assert "would be not allowed" in result.detail
    assert get_policy(arn)[1] == revision
    assert notifications(world.inbox) == []
