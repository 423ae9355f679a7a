"""Faults injected at the adapter boundary, through the remediator Lambda: throttling, 412
races, a function deleted mid-flight, AccessDenied, a policy too long, a backup that cannot be
written, SNS down, a network error, and a Lambda timeout in the middle of a batch.

The emulator's server plays AWS; faults are real error responses inside botocore (see
tests/reliability/faults.py), so the project's retry configuration and error translation are
in the loop. Every test ends with the AWS state checked: what the policy is, which writes
reached the server, what was backed up and who was told."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support.faults import LambdaTimeout
from tests.support.golden import rewritten, who_may_invoke_problems
from tests.support.pipeline import Pipeline, message_body
from tests.support.policies import messy_policy, statement
from tests.support.records import DEPLOYER

pytestmark = [pytest.mark.reliability]


def _assert_remediated(p: Pipeline, resource: str, original: Any) -> None:
    """The stored policy is the hand-written golden rewrite, and lets in exactly whom the
    rule allows; one change, one backup of the policy it replaced."""
    expected = rewritten(resource)
    stored = p.world.policy(resource)
    assert stored == expected
    assert who_may_invoke_problems(resource, stored) == []
    (backup,) = p.world.backup_documents(resource)
    assert backup["policy"] == original
    assert backup["new_policy"] == expected


def _assert_untouched(p: Pipeline, resource: str, original: Any) -> None:
    assert p.world.policy(resource) == original
    assert p.plan.sent["PutResourcePolicy"] == 0


def _budget_spent(p: Pipeline) -> int:
    """Units of the hourly remediation budget spent (the rate table's count over all hours).
    One policy change spends one; a write that lost the compare-and-swap, or was never sent,
    gives its unit back; a write sent and failed otherwise keeps it (it may have landed)."""
    return p.world.remediations_counted()


def _alerts_about(p: Pipeline, resource: str) -> list[dict[str, Any]]:
    return [a for a in p.world.alerts() if resource in a["Message"]]


# --- throttling ----------------------------------------------------------------------------


def test_throttling_within_botocores_retries_is_invisible(pipeline: Pipeline) -> None:
    p = pipeline
    arn = p.resource("app-throttled")
    for operation, code, status in [
        ("GetResourcePolicy", "TooManyRequestsException", 429),
        ("PutResourcePolicy", "TooManyRequestsException", 429),
        ("UpdateItem", "ProvisionedThroughputExceededException", 400),
        ("PutObject", "SlowDown", 503),
        ("Publish", "Throttling", 400),
    ]:
        p.plan.add(operation, code=code, status=status, times=2)
    assert p.run(arn) == {"batchItemFailures": []}
    _assert_remediated(p, arn, messy_policy(arn))
    assert p.plan.injected.total() == 10
    assert p.plan.sent["PutResourcePolicy"] == 1
    assert p.sleeps == []  # botocore absorbed them all
    assert len(_alerts_about(p, arn)) == 1
    assert p.metrics() == {"Remediated": 1}
    assert _budget_spent(p) == 1  # the throttled UpdateItem counted once


def test_throttling_beyond_botocores_retries_is_backed_off_by_the_remediator(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    arn = p.resource("app-throttled")
    p.plan.add("PutResourcePolicy", code="TooManyRequestsException", status=429, times=9)
    assert p.run(arn) == {"batchItemFailures": []}
    _assert_remediated(p, arn, messy_policy(arn))
    assert p.plan.sent["PutResourcePolicy"] == 1
    # botocore: 1 + 3 retries per call; the remediator: 3 calls, backing off in between.
    assert len(p.sleeps) == 2 and p.sleeps[0] < p.sleeps[1]
    assert len(_alerts_about(p, arn)) == 1
    assert _budget_spent(p) == 1


def test_throttling_that_never_ends_parks_the_message_unchanged(pipeline: Pipeline) -> None:
    p = pipeline
    arn = p.resource("app-throttled")
    p.plan.add("PutResourcePolicy", code="TooManyRequestsException", status=429, times=0)
    assert "All records failed" in p.run(arn)["error"]
    _assert_untouched(p, arn, messy_policy(arn))
    assert p.metrics() == {"RemediationFailed": 1}
    assert "TooManyRequestsException" in p.logged("failed")[0]["message"]
    assert _alerts_about(p, arn) == []
    assert _budget_spent(p) == 1  # the write was sent: its unit is kept


# --- compare-and-swap races ------------------------------------------------------------------


def test_412_races_reread_and_recompute(pipeline: Pipeline) -> None:
    """First write: someone adds a stranger's grant just before it (a real 412); second: an
    injected 412; third goes through, judging the stranger's grant too."""
    p = pipeline
    arn = p.resource("app-raced")
    operator = p.world.client("lambda")
    p.plan.add(
        "PutResourcePolicy",
        side_effect=lambda: operator.add_permission(
            FunctionName=arn, StatementId="sneaky", Action="lambda:InvokeFunction",
            Principal="999988887777",
        ),
    )  # fmt: skip
    p.plan.add("PutResourcePolicy", code="PreconditionFailedException", status=412)
    assert p.run(arn) == {"batchItemFailures": []}
    assert p.world.policy(arn) == rewritten(arn)  # "sneaky" removed with the rest
    (backup,) = p.world.backup_documents(arn)  # the two writes that did not happen left none
    assert [s["Sid"] for s in backup["policy"]["Statement"]][-1] == "sneaky"
    done = p.logged("remediated")[0]
    assert done["attempts"] == 3
    assert any(c["sid"] == "sneaky" and c["kind"] == "removed" for c in done["changes"])
    assert p.plan.sent["PutResourcePolicy"] == 2  # one refused by the server, one written
    assert _budget_spent(p) == 1  # three attempts, one change


def test_412_every_time_fails_the_message_and_writes_nothing(pipeline: Pipeline) -> None:
    p = pipeline
    arn = p.resource("app-raced")
    p.plan.add("PutResourcePolicy", code="PreconditionFailedException", status=412, times=0)
    assert "All records failed" in p.run(arn)["error"]
    _assert_untouched(p, arn, messy_policy(arn))
    assert p.plan.injected["PutResourcePolicy"] == 3
    assert "PreconditionFailed" in p.logged("failed")[0]["message"]
    assert _budget_spent(p) == 0  # every write lost the compare-and-swap: given back


# --- resources that disappear ----------------------------------------------------------------


@pytest.mark.parametrize("alias", [None, "live"])
def test_a_function_or_alias_deleted_mid_flight_is_done_and_noted(
    pipeline: Pipeline, alias: str | None
) -> None:
    p = pipeline
    arn = p.resource("app-doomed", alias=alias)
    lam = p.world.client("lambda")
    delete = (
        functools.partial(lam.delete_alias, FunctionName="app-doomed", Name=alias)
        if alias
        else functools.partial(lam.delete_function, FunctionName="app-doomed")
    )
    p.plan.add("PutResourcePolicy", side_effect=delete)
    assert p.run(arn) == {"batchItemFailures": []}  # done: not retried
    assert p.metrics() == {"Gone": 1}
    assert "no longer exists" in p.logged("gone")[0]["detail"]
    assert _alerts_about(p, arn) == []
    assert _budget_spent(p) == 1  # the write was sent


# --- refusals: AccessDenied, a policy AWS will not take, the backup ------------------------


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("GetResourcePolicy", "AccessDeniedException", 403),
        ("PutResourcePolicy", "AccessDeniedException", 403),
        ("UpdateItem", "AccessDeniedException", 400),
        ("PutObject", "AccessDenied", 403),
        ("PutObject", "InternalError", 500),
        ("PutObject", "KMS.DisabledException", 400),
    ],
)
def test_a_refused_call_fails_the_message_with_its_reason_and_changes_nothing(
    pipeline: Pipeline, operation: str, code: str, status: int
) -> None:
    p = pipeline
    arn = p.resource("app-denied")
    other = p.resource("app-fine")
    everywhere = operation == "UpdateItem"  # one rate table for every function
    p.plan.add(operation, code=code, status=status, times=0, match=None if everywhere else "denied")
    result = p.run(arn, other)
    if everywhere:
        assert "All records failed" in result["error"]
        _assert_untouched(p, other, messy_policy(other))
    else:
        assert result == {"batchItemFailures": [{"itemIdentifier": "app-denied"}]}
        _assert_remediated(p, other, messy_policy(other))
        assert p.plan.sent["PutResourcePolicy"] == 1  # the other function's
    assert p.world.policy(arn) == messy_policy(arn)
    failed = p.logged("failed")
    assert failed and code in failed[0]["message"]
    assert p.metrics()["RemediationFailed"] == (2 if everywhere else 1)
    # the other function's change; a refused PutResourcePolicy was sent and keeps its unit;
    # a refused read or backup comes before any write, and gives back what it took
    spent = {"UpdateItem": 0, "PutResourcePolicy": 2}.get(operation, 1)
    assert _budget_spent(p) == spent


def test_a_policy_over_20_kb_is_refused_and_left_as_it_was(pipeline: Pipeline) -> None:
    """A policy just under the limit, whose rule (deny_others) adds a Deny: AWS answers
    PolicyLengthExceededException; the message fails with that reason."""
    p = pipeline
    arn = p.world.function("orders-big")
    allowed = [statement(f"deployer-{i:03}", {"AWS": DEPLOYER}, arn) for i in range(150)]
    document = {"Version": "2012-10-17", "Statement": allowed}
    while len(json.dumps(document, separators=(",", ":"))) > 20_300:
        allowed.pop()
    p.world.put_policy(arn, document)
    assert "All records failed" in p.run(arn)["error"]
    assert p.world.policy(arn) == document
    assert "PolicyLengthExceededException" in p.logged("failed")[0]["message"]
    assert _budget_spent(p) == 1  # the write was sent


# --- people are told, or the failure is recorded -----------------------------------------------


def test_sns_down_the_change_stands_and_the_failure_is_recorded(pipeline: Pipeline) -> None:
    p = pipeline
    arn = p.resource("app-quiet")
    p.plan.add("Publish", code="InternalError", status=500, times=0)
    assert p.run(arn) == {"batchItemFailures": []}  # not redelivered: no second write
    _assert_remediated(p, arn, messy_policy(arn))
    assert p.metrics() == {"Remediated": 1, "NotificationFailed": 1}
    assert _budget_spent(p) == 1
    done = p.logged("remediated")[0]
    assert done["notified"] is False and "InternalError" in done["notification_error"]
    assert done["backup"]  # the change is on record, with its undo
    assert p.plan.injected["Publish"] == 4  # the alert was retried (botocore: 3 retries)


def test_sns_unreachable_the_change_stands_and_the_failure_is_recorded(
    pipeline: Pipeline,
) -> None:
    """A network error is no ClientError: it must not fail a message whose change is made
    (the redelivery would find nothing to change, and nobody would ever be told)."""
    p = pipeline
    arn = p.resource("app-quiet")
    p.plan.add(
        "Publish", raises=EndpointConnectionError(endpoint_url="https://sns.example"), times=0
    )
    assert p.run(arn) == {"batchItemFailures": []}
    _assert_remediated(p, arn, messy_policy(arn))
    assert p.metrics() == {"Remediated": 1, "NotificationFailed": 1}
    assert _budget_spent(p) == 1


def test_a_write_whose_answer_is_lost_is_written_once_and_told(pipeline: Pipeline) -> None:
    """The write reached AWS but its answer was lost (read timeout): botocore retries with
    the old RevisionId and gets a 412; the remediator re-reads and finds nothing left to
    change. The policy was changed once, and people must hear of it."""
    p = pipeline
    arn = p.resource("app-slow")
    p.plan.add("PutResourcePolicy", lose_response=True)
    assert p.run(arn) == {"batchItemFailures": []}
    assert p.world.policy(arn) == rewritten(arn)
    assert p.plan.sent["PutResourcePolicy"] == 2  # the lost one, and botocore's retry (412)
    assert len(p.world.backup_documents(arn)) == 1, "the change must have exactly one backup"
    assert len(_alerts_about(p, arn)) == 1, "the policy was changed and nobody was told"
    assert _budget_spent(p) == 1, "one change, one unit of the budget"


# --- a Lambda timeout in the middle of a batch -------------------------------------------------


@pytest.mark.parametrize("when", ["before-the-write", "after-the-write"])
def test_a_timeout_mid_batch_is_redelivered_without_a_second_write(
    pipeline: Pipeline, when: str
) -> None:
    p = pipeline
    resources = [p.resource(f"app-batch-{i}") for i in range(4)]
    # Writes 1 and 2 go through; the third is stopped by the timeout, before or after it.
    p.plan.add(
        "PutResourcePolicy",
        raises=LambdaTimeout("Task timed out after 60.00 seconds"),
        after_success=when == "after-the-write",
        skip=2,
    )
    with pytest.raises(LambdaTimeout):
        p.run(*resources)
    written = p.plan.sent["PutResourcePolicy"]
    assert written == (3 if when == "after-the-write" else 2)

    p.new_container()  # SQS makes the whole batch visible again, to a new invocation
    assert p.run(*resources, attempt=2) == {"batchItemFailures": []}

    assert p.plan.sent["PutResourcePolicy"] == 4, "a policy was written twice"
    assert p.metrics().get("RemediationFailed", 0) == 0
    for arn in resources:
        assert p.world.policy(arn) == rewritten(arn)
        backups = p.world.backup_documents(arn)
        # A write killed before it was sent leaves its backup behind (nothing can clean up
        # after a killed invocation); every backup holds the policy the change replaced.
        assert backups and all(b["policy"] == messy_policy(arn) for b in backups)
    alerts = p.world.alerts()
    told = {r: sum(r in a["Message"] for a in alerts) for r in resources}
    # At least once per change; at most once per delivery of its message.
    assert all(1 <= n <= 2 for n in told.values()), told
    # One unit per change; a container killed between taking a unit and writing cannot
    # give it back, and the redelivery takes one for the change it then makes.
    assert _budget_spent(p) == (5 if when == "before-the-write" else 4)


# --- a failing message holds back its own group only ----------------------------------------


def test_a_failure_holds_back_later_messages_of_its_group_only(pipeline: Pipeline) -> None:
    p = pipeline
    denied = p.resource("app-denied")
    other = p.resource("app-other")
    p.plan.add("GetResourcePolicy", code="AccessDeniedException", status=403, times=1)
    result = p.deliver(
        [
            ("m1", denied, json.dumps(message_body(denied, "e1"))),
            ("m2", denied, json.dumps(message_body(denied, "e2"))),
            ("m3", other, json.dumps(message_body(other, "e3"))),
            ("m4", denied, json.dumps(message_body(denied, "e4"))),
        ]
    )
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == ["m1", "m2", "m4"]  # m2, m4 skipped behind m1: FIFO order kept
    assert p.world.policy(denied) == messy_policy(denied)
    _assert_remediated(p, other, messy_policy(other))
    assert p.metrics() == {"RemediationFailed": 1, "Remediated": 1}
    assert _budget_spent(p) == 1
