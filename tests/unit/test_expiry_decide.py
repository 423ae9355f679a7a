"""Past `expires`, an allow entry no longer allows: the decision (at the call's time, or the
injected `now`), the remembered decisions across an expiry, and the remediator's rewrite.
Expected verdicts are written by hand from the boundary: allowed iff the call is before the
first instant no longer allowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas.core import decide as decide_module
from lambdas.core.decide import Verdict, decide
from lambdas.remediation.remediate import Outcome, Remediator, Violation
from models.allowlist import AllowlistConfig
from tests.support.fakes import (
    FakeBackups,
    FakeNotifier,
    FakePolicyStore,
    FakeProver,
    FakeRateLimit,
)
from tests.support.records import aws_account, invoke_record

pytestmark = pytest.mark.unit

PARTNER = "999988887777"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:orders"
CONFIG = AllowlistConfig.model_validate(
    {
        "version": 1,
        "rules": [
            {
                "name": "orders",
                "functions": ["orders"],
                "allow": [
                    {"account": "123456789012"},
                    {
                        "account": PARTNER,
                        "expires": "2027-03-31",
                        "owner": "payments-team",
                        "ticket": "SEC-1234",
                        "reason": "vendor migration",
                    },
                    {"account": "444455556666", "expires": "2027-03-31T18:00:00+02:00"},
                ],
            }
        ],
    }
)
# Written by hand: 2027-03-31 is allowed through that day in UTC; 18:00+02:00 is 16:00Z.
PARTNER_ENDS = datetime(2027, 4, 1, tzinfo=UTC)
OTHER_ENDS = datetime(2027, 3, 31, 16, tzinfo=UTC)


def call(account: str, at: str | None, event_id: str = "e-1") -> dict[str, Any]:
    record = invoke_record(FUNCTION, identity=aws_account(account), event_id=event_id)
    if at is None:
        del record["eventTime"]
    else:
        record["eventTime"] = at
    return record


@pytest.fixture(autouse=True)
def fresh_cache():
    decide_module._DECISIONS.clear()
    yield
    decide_module._DECISIONS.clear()


@pytest.mark.parametrize(
    ("at", "verdict"),
    [
        ("2027-03-31T00:00:00Z", Verdict.ALLOWED),
        ("2027-03-31T23:59:59Z", Verdict.ALLOWED),
        ("2027-03-31T23:59:59.999999Z", Verdict.ALLOWED),
        ("2027-04-01T00:00:00Z", Verdict.VIOLATION),
        ("2027-04-01T00:00:00.000001Z", Verdict.VIOLATION),
        ("2027-04-01T08:59:00+09:00", Verdict.ALLOWED),  # 23:59 UTC on 03-31
        ("2027-04-01T09:00:00+09:00", Verdict.VIOLATION),
        ("2027-07-01T00:00:00Z", Verdict.VIOLATION),
    ],
)
def test_a_date_exception_allows_calls_made_through_that_day_in_utc(at, verdict):
    assert decide(call(PARTNER, at), CONFIG).verdict is verdict


@pytest.mark.parametrize(
    ("at", "verdict"),
    [
        ("2027-03-31T15:59:59Z", Verdict.ALLOWED),
        ("2027-03-31T17:59:59+02:00", Verdict.ALLOWED),
        ("2027-03-31T16:00:00Z", Verdict.VIOLATION),
        ("2027-03-31T18:00:00+02:00", Verdict.VIOLATION),
    ],
)
def test_a_date_and_time_exception_ends_at_that_instant_in_any_zone(at, verdict):
    assert decide(call("444455556666", at), CONFIG).verdict is verdict


def test_an_expired_exception_is_a_violation_naming_the_exception_its_owner_and_ticket():
    decision = decide(call(PARTNER, "2027-04-02T10:00:00Z"), CONFIG)
    assert decision.verdict is Verdict.VIOLATION
    assert decision.reason == (
        "account 999988887777 is not on the allowlist of rule 'orders': its exception expired "
        "(account 999988887777, expires 2027-03-31, owner payments-team, ticket SEC-1234)"
    )
    assert (
        decision.exception_expires,
        decision.exception_owner,
        decision.exception_ticket,
    ) == ("2027-03-31", "payments-team", "SEC-1234")
    assert decision.to_dict()["exception_owner"] == "payments-team"


def test_a_call_allowed_by_an_exception_says_so_and_names_it():
    decision = decide(call(PARTNER, "2027-03-30T10:00:00Z"), CONFIG)
    assert decision.verdict is Verdict.ALLOWED
    assert decision.reason == (
        "allowed by rule 'orders': account 999988887777 (temporary exception: "
        "expires 2027-03-31, owner payments-team, ticket SEC-1234)"
    )
    assert decision.exception_ticket == "SEC-1234"


def test_entries_without_expires_and_strangers_are_unchanged():
    own = decide(call("123456789012", "2099-01-01T00:00:00Z"), CONFIG)
    assert own.verdict is Verdict.ALLOWED
    assert own.reason == "allowed by rule 'orders': account 123456789012"
    assert own.exception_owner is None and own.exception_expires is None
    stranger = decide(call("555566667777", "2027-03-30T00:00:00Z"), CONFIG)
    assert stranger.verdict is Verdict.VIOLATION
    assert "exception" not in stranger.reason and stranger.exception_ticket is None


def test_without_an_event_time_the_injected_now_decides():
    before = PARTNER_ENDS - timedelta(seconds=1)
    assert decide(call(PARTNER, None), CONFIG, now=before).verdict is Verdict.ALLOWED
    assert decide(call(PARTNER, None), CONFIG, now=PARTNER_ENDS).verdict is Verdict.VIOLATION
    unreadable = call(PARTNER, "yesterday-ish")
    assert decide(unreadable, CONFIG, now=before).verdict is Verdict.ALLOWED
    assert decide(unreadable, CONFIG, now=PARTNER_ENDS).verdict is Verdict.VIOLATION


def test_with_no_time_at_all_an_exception_that_expires_does_not_allow():
    decision = decide(call(PARTNER, None), CONFIG)
    assert decision.verdict is Verdict.VIOLATION
    assert "its exception cannot be applied: the time of the call is unknown" in decision.reason
    assert decide(call("123456789012", None), CONFIG).verdict is Verdict.ALLOWED


def test_a_remembered_allowed_does_not_survive_the_expiry():
    # The same caller and function: one decision key, remembered between calls.
    times = [
        ("2027-03-31T23:00:00Z", Verdict.ALLOWED),
        ("2027-03-31T23:59:59Z", Verdict.ALLOWED),
        ("2027-04-01T00:00:00Z", Verdict.VIOLATION),
        ("2027-04-01T00:00:01Z", Verdict.VIOLATION),
        ("2027-03-31T22:00:00Z", Verdict.ALLOWED),  # a late record of an earlier call
        ("2027-04-05T00:00:00Z", Verdict.VIOLATION),
    ]
    for index, (at, verdict) in enumerate(times):
        decision = decide(call(PARTNER, at, event_id=f"e-{index}"), CONFIG)
        assert (decision.verdict, decision.event_id, decision.event_time) == (
            verdict,
            f"e-{index}",
            at,
        )
    # ... and they were remembered: one decision per side of the boundary, not one per call.
    (table,) = [values for _, values in decide_module._DECISIONS._tables.values()]
    assert len(table) == 2


def test_the_remembered_decisions_equal_fresh_ones_around_every_boundary():
    start = datetime(2027, 3, 31, 15, tzinfo=UTC)
    for minutes in range(0, 24 * 60 + 120, 7):
        at = start + timedelta(minutes=minutes)
        text = at.isoformat().replace("+00:00", "Z")
        for account, ends in ((PARTNER, PARTNER_ENDS), ("444455556666", OTHER_ENDS)):
            expected = Verdict.ALLOWED if at < ends else Verdict.VIOLATION
            assert decide(call(account, text), CONFIG).verdict is expected, (account, text)


# --- the rewrite -----------------------------------------------------------------------------

OURS = {
    "Sid": "ours",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "lambda:InvokeFunction",
    "Resource": FUNCTION,
}
PARTNERS = {
    "Sid": "partner",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
    "Action": "lambda:InvokeFunction",
    "Resource": FUNCTION,
}


def remediator(store: FakePolicyStore, now: datetime) -> Remediator:
    return Remediator(
        config=CONFIG,
        policies_for=lambda ref: store,
        backups=FakeBackups(),
        limiter=FakeRateLimit(),
        notifier=FakeNotifier(),
        clock=lambda: now,
        sleep=lambda seconds: None,
        prover=FakeProver(),
    )


def test_the_remediator_keeps_an_exceptions_grant_until_it_expires_then_removes_it():
    policy = {"Version": "2012-10-17", "Statement": [OURS, PARTNERS]}
    before = FakePolicyStore({FUNCTION: policy})
    result = remediator(before, PARTNER_ENDS - timedelta(minutes=1)).remediate(
        Violation(function=FUNCTION, event_id="e-1", caller="someone")
    )
    assert result.outcome is Outcome.UNCHANGED and before.writes == 0
    after = FakePolicyStore({FUNCTION: policy})
    result = remediator(after, PARTNER_ENDS).remediate(
        Violation(function=FUNCTION, event_id="e-2", caller=f"account {PARTNER}")
    )
    assert result.outcome is Outcome.REMEDIATED
    assert after.policies[FUNCTION] == {"Version": "2012-10-17", "Statement": [OURS]}


def test_a_rule_in_force_drops_only_the_expired_entries():
    (rule,) = CONFIG.rules
    assert rule.in_force(OTHER_ENDS - timedelta(seconds=1)) is rule
    assert [e.account for e in rule.in_force(OTHER_ENDS).allow] == ["123456789012", PARTNER]
    assert [e.account for e in rule.in_force(PARTNER_ENDS).allow] == ["123456789012"]
    assert len(rule.allow) == 3  # the allowlist itself is unchanged


# --- the edge ----------------------------------------------------------------------------------


def test_the_edge_rules_never_leave_out_a_caller_whose_exception_expires():
    import json

    from stacks.edge_filter import compile_edge_rules
    from stacks.pattern import event_pattern

    base = event_pattern(own_function_arns=["arn:aws:lambda:r:1:function:ia-validator"])

    def first_rule(entry: dict[str, Any]) -> Any:
        config = AllowlistConfig.model_validate(
            {"version": 1, "rules": [{"name": "r", "functions": ["orders"], "allow": [entry]}]}
        )
        return compile_edge_rules(base, config).rules[0]

    lasting = first_rule({"account": PARTNER})
    assert lasting.filtering and PARTNER in json.dumps(lasting.pattern)
    temporary = first_rule({"account": PARTNER, "expires": "2099-01-01"})
    assert not temporary.filtering and PARTNER not in json.dumps(temporary.pattern)


# --- notifications -------------------------------------------------------------------------------


def test_notifications_name_the_expired_exceptions_owner_and_ticket():
    from lambdas.core.notices import monitor_summary

    decision = decide(call(PARTNER, "2027-04-02T10:00:00Z"), CONFIG)
    text = monitor_summary(decision)
    assert "Exception: expires 2027-03-31, owner payments-team, ticket SEC-1234" in text
    assert "its exception expired" in text
    # The remediator's notice quotes the validator's reason: owner and ticket included.
    store = FakePolicyStore({FUNCTION: {"Version": "2012-10-17", "Statement": [OURS, PARTNERS]}})
    flow = remediator(store, PARTNER_ENDS + timedelta(days=1))
    notifier = flow.notifier
    assert isinstance(notifier, FakeNotifier)
    flow.remediate(
        Violation(function=FUNCTION, event_id="e-3", caller=decision.caller, reason=decision.reason)
    )
    ((_, summary, _),) = notifier.published
    assert "owner payments-team, ticket SEC-1234" in summary


def test_a_monitor_notice_without_an_exception_has_no_exception_line():
    from lambdas.core.notices import monitor_summary

    decision = decide(call("555566667777", "2027-03-30T00:00:00Z"), CONFIG)
    assert "Exception:" not in monitor_summary(decision)


# --- Security Hub: the daily reconcile ------------------------------------------------------------


def test_the_daily_reconcile_does_not_archive_a_finding_whose_exception_expired():
    from lambdas.core.findings import (
        HubLocation,
        Sightings,
        no_longer_violating,
        subject_from_decision,
        violation_finding,
    )

    record = call(PARTNER, "2027-04-02T10:00:00Z")
    decision = decide(record, CONFIG)
    seen = Sightings(1, "2027-04-02T10:00:00.000Z", "2027-04-02T10:00:00.000Z")
    hub = HubLocation(account="123456789012", region="us-east-1", partition="aws")
    finding = violation_finding(
        subject_from_decision(decision, record), hub, seen, PARTNER_ENDS + timedelta(days=1)
    )
    # After the expiry, the expired entry does not make the caller allowed: the finding stays.
    assert no_longer_violating(finding, CONFIG, now=PARTNER_ENDS + timedelta(days=2)) is None
    assert no_longer_violating(finding, CONFIG) is None  # no time: an expiring entry allows not
    # Extended (the entry in force again at the run's time), it is archived.
    assert no_longer_violating(finding, CONFIG, now=PARTNER_ENDS - timedelta(hours=1)) == (
        f"allowed by rule 'orders' now: account {PARTNER}"
    )
