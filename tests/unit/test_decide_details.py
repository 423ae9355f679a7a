"""Details of `decide` a verdict rests on: when a call is judged (`judgment_time`), the
remembered decisions of a record with and without a time, the owner of an exception that
never expires, and how long a quoted record value may be. Expected values by hand."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambdas.core import decide as decide_module
from lambdas.core.decide import Verdict, decide, judgment_time
from models.allowlist import AllowlistConfig
from tests.support.records import aws_account, invoke_record

pytestmark = pytest.mark.unit

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:orders"
PARTNER = "999988887777"
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    decide_module._DECISIONS.clear()
    yield
    decide_module._DECISIONS.clear()


@pytest.fixture
def tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's zone is Asia/Tokyo (UTC+9) for the test."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def config(**entry: Any) -> AllowlistConfig:
    return AllowlistConfig.model_validate(
        {
            "version": 1,
            "rules": [{"name": "orders", "functions": ["orders"], "allow": [entry]}],
        }
    )


def call(at: str | None) -> dict[str, Any]:
    record = invoke_record(FUNCTION, identity=aws_account(PARTNER))
    if at is None:
        del record["eventTime"]
    else:
        record["eventTime"] = at
    return record


# --- judgment_time ----------------------------------------------------------------------------


@pytest.mark.usefixtures("tokyo")
@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        ("2027-03-31T10:00:00Z", datetime(2027, 3, 31, 10, tzinfo=UTC)),
        ("2027-03-31T12:00:00+02:00", datetime(2027, 3, 31, 10, tzinfo=UTC)),
        # no zone: CloudTrail's times are UTC, whatever the machine's zone
        ("2027-03-31T10:00:00", datetime(2027, 3, 31, 10, tzinfo=UTC)),
        (" 2027-03-31T10:00:00Z ", datetime(2027, 3, 31, 10, tzinfo=UTC)),
    ],
)
def test_a_call_is_judged_at_its_event_time_in_utc(event_time, expected):
    moment = judgment_time({"eventTime": event_time}, NOW)
    assert moment == expected
    assert moment is not None and moment.utcoffset() == timedelta(0)
    assert moment.tzinfo is not None


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"eventTime": ""},
        {"eventTime": None},
        {"eventTime": 1700000000},
        {"eventTime": "yesterday"},
        # a time whose zone moves it out of the years a datetime holds
        {"eventTime": "0001-01-01T00:30:00+01:00"},
        {"eventTime": "9999-12-31T23:59:59-01:00"},
        ["eventTime"],
        "2027-03-31T10:00:00Z",
    ],
)
def test_without_a_readable_event_time_the_call_is_judged_now(raw):
    assert judgment_time(raw, NOW) is NOW
    assert judgment_time(raw, None) is None


def test_a_time_outside_utc_s_years_is_judged_now_and_never_raises():
    expiring = config(account=PARTNER, expires="2027-03-31", owner="payments-team")
    record = call("9999-12-31T23:59:59-01:00")
    assert decide(record, expiring, now=NOW).verdict is Verdict.VIOLATION
    assert decide(record, expiring, now=datetime(2027, 3, 1, tzinfo=UTC)).verdict is (
        Verdict.ALLOWED
    )
    unknown = decide(record, expiring)
    assert unknown.verdict is Verdict.VIOLATION
    assert "the time of the call is unknown" in unknown.reason


# --- remembered decisions of a record with and without its time --------------------------------


def test_a_record_without_a_time_and_one_after_the_expiry_are_remembered_apart():
    expiring = config(account=PARTNER, expires="2027-03-31", owner="payments-team")
    unknown = decide(call(None), expiring)
    assert unknown.verdict is Verdict.VIOLATION
    assert unknown.reason.endswith(
        "its exception cannot be applied: the time of the call is unknown"
        " (account 999988887777, expires 2027-03-31, owner payments-team)"
    )
    later = decide(call("2027-04-02T00:00:00Z"), expiring)
    assert later.reason.endswith(
        "its exception expired (account 999988887777, expires 2027-03-31, owner payments-team)"
    )
    earlier = decide(call("2027-03-02T00:00:00Z"), expiring)
    assert earlier.verdict is Verdict.ALLOWED


def test_an_owner_without_an_expiry_is_named_and_nothing_expires():
    decision = decide(call("2027-04-02T00:00:00Z"), config(account=PARTNER, owner="payments"))
    assert decision.verdict is Verdict.ALLOWED
    assert decision.reason == "allowed by rule 'orders': account 999988887777"
    assert (
        decision.exception_expires,
        decision.exception_owner,
        decision.exception_ticket,
    ) == (None, "payments", None)


# --- quoted record values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "quoted"),
    [(199, "s" * 199), (200, "s" * 200), (201, "s" * 200 + "..."), (5000, "s" * 200 + "...")],
)
def test_a_quoted_event_source_is_cut_after_200_characters(length, quoted):
    record = call("2027-03-02T00:00:00Z")
    record["eventSource"] = "s" * length
    decision = decide(record, config(account=PARTNER))
    assert decision.verdict is Verdict.IGNORED
    assert decision.reason == f"not a Lambda record: eventSource is {quoted!r}"


def test_a_denied_call_of_a_caller_an_exception_still_allows_is_a_denied_allowed_call():
    expiring = config(account=PARTNER, expires="2027-03-31")
    record = call("2027-03-02T00:00:00Z")
    record["errorCode"] = "AccessDenied"
    decision = decide(record, expiring)
    assert decision.verdict is Verdict.FAILED_CALL
    assert decision.denied_allowed is True
    assert decision.reason == (
        "the call failed (AccessDenied): nothing was invoked, nothing to remediate;"
        " the caller is allowed by rule 'orders': account 999988887777"
    )
    record["eventTime"] = "2027-04-02T00:00:00Z"
    assert decide(record, expiring).denied_allowed is False


def test_a_denied_call_by_an_account_caller_the_rule_allows_is_a_denied_allowed_call():
    record = call("2027-03-02T00:00:00Z")
    record["errorCode"] = "AccessDeniedException"
    decision = decide(record, config(account=PARTNER))
    assert (decision.verdict, decision.denied_allowed) == (Verdict.FAILED_CALL, True)


def test_a_denied_call_by_a_service_the_rule_allows_is_a_denied_allowed_call():
    record = call("2027-03-02T00:00:00Z")
    record["userIdentity"] = {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}
    record["errorCode"] = "AccessDenied"
    decision = decide(record, config(service="s3.amazonaws.com"))
    assert (decision.verdict, decision.denied_allowed) == (Verdict.FAILED_CALL, True)
    assert decision.reason.endswith(
        "; the caller is allowed by rule 'orders': service s3.amazonaws.com"
    )


@pytest.mark.parametrize(
    ("unmatched", "verdict", "reason"),
    [
        ("ignore", Verdict.IGNORED, "no rule covers it (unmatched: ignore)"),
        ("report", Verdict.UNMONITORED, "no rule covers this function"),
    ],
)
def test_a_function_no_rule_covers(unmatched, verdict, reason):
    other = AllowlistConfig.model_validate(
        {
            "version": 1,
            "defaults": {"unmatched": unmatched},
            "rules": [{"name": "else", "functions": ["else"], "allow": [{"account": PARTNER}]}],
        }
    )
    decision = decide(call("2027-03-02T00:00:00Z"), other)
    assert (decision.verdict, decision.reason) == (verdict, reason)


# --- what cannot be judged, and the decision as a dict ------------------------------------------


@pytest.mark.parametrize(("raw", "kind"), [([1], "list"), ("x", "str"), (None, "NoneType")])
def test_a_record_that_is_no_object_names_its_type(raw, kind):
    decision = decide(raw, config(account=PARTNER))
    assert (decision.verdict, decision.reason) == (
        Verdict.INVALID,
        f"a record must be a JSON object, not {kind}",
    )


def test_a_field_that_cannot_be_read_is_named_by_its_path():
    raw = {
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "eventID": "e-2",
        "userIdentity": {"sessionContext": {"sessionIssuer": [1]}},
    }
    decision = decide(raw, config(account=PARTNER))
    assert decision.event_id == "e-2"
    assert decision.reason.startswith(
        "cannot read the record: field userIdentity.sessionContext.sessionIssuer: "
    )


@pytest.mark.parametrize(("value", "kept"), [("e-9", "e-9"), (9, None), (None, None), ("", None)])
def test_another_services_record_keeps_its_event_id_time_and_name_when_they_are_text(value, kept):
    raw = {"eventSource": "s3.amazonaws.com", "eventID": value, "eventName": value}
    raw["eventTime"] = value
    decision = decide(raw, config(account=PARTNER))
    assert (decision.verdict, decision.event_time, decision.event_name) == (
        Verdict.IGNORED,
        kept,
        kept,
    )
    assert decision.event_id == (value if isinstance(value, str) else None)


def test_a_decision_as_a_dict_names_every_field():
    record = call("2027-03-02T00:00:00Z")
    record["eventID"] = "e-42"
    decision = decide(record, config(account=PARTNER, ticket="SEC-1"))
    assert decision.to_dict() == {
        "event_id": "e-42",
        "verdict": "allowed",
        "function": FUNCTION,
        "caller": "account 999988887777",
        "rule": "orders",
        "mode": "enforce",  # the allowlist's default
        "reason": "allowed by rule 'orders': account 999988887777",
        "event_time": "2027-03-02T00:00:00Z",
        "event_name": "Invoke",
        "account": "123456789012",
        "region": "us-east-1",
        "caller_account": "999988887777",
        "denied_allowed": False,
        "exception_expires": None,
        "exception_owner": None,
        "exception_ticket": "SEC-1",
    }


@pytest.mark.parametrize(
    ("source", "verdict", "reason"),
    [
        (5, Verdict.IGNORED, "not a Lambda record: eventSource is '5'"),
        (None, Verdict.INVALID, "not a Lambda record: no eventSource"),
        ("", Verdict.INVALID, "not a Lambda record: no eventSource"),
    ],
)
def test_a_record_of_no_service_or_a_number_for_one(source, verdict, reason):
    record = call("2027-03-02T00:00:00Z")
    record["eventSource"] = source
    decision = decide(record, config(account=PARTNER))
    assert (decision.verdict, decision.reason) == (verdict, reason)


@pytest.mark.parametrize(
    ("name", "verdict", "reason"),
    [
        (
            "InvokeExecution",
            Verdict.IGNORED,
            "InvokeExecution is the asynchronous run of an Invoke already recorded",
        ),
        (
            "InvokeExecution20150331",
            Verdict.IGNORED,
            "InvokeExecution is the asynchronous run of an Invoke already recorded",
        ),
        (None, Verdict.INVALID, "no eventName"),
        ("", Verdict.INVALID, "no eventName"),
        ("GetFunction20150331v2", Verdict.IGNORED, "not an Invoke (GetFunction)"),
    ],
)
def test_the_reason_of_a_lambda_record_that_is_no_invoke(name, verdict, reason):
    record = call("2027-03-02T00:00:00Z")
    record["eventName"] = name
    decision = decide(record, config(account=PARTNER))
    assert (decision.verdict, decision.reason) == (verdict, reason)


def test_a_record_without_user_identity_has_an_unknown_caller():
    record = call("2027-03-02T00:00:00Z")
    del record["userIdentity"]
    decision = decide(record, config(account=PARTNER))
    assert (decision.verdict, decision.reason) == (
        Verdict.INVALID,
        "no userIdentity: the caller is unknown",
    )


def test_a_remembered_decision_carries_the_id_time_and_name_of_its_own_record():
    first = call("2027-03-02T00:00:00Z")
    second = call("2027-03-03T00:00:00Z")
    second["eventID"] = "e-second"
    allowlist = config(account=PARTNER)
    decide(first, allowlist)
    again = decide(second, allowlist)
    assert (again.event_id, again.event_time, again.event_name) == (
        "e-second",
        "2027-03-03T00:00:00Z",
        "Invoke",
    )


def test_a_record_that_takes_the_full_path_is_judged_at_its_time_too():
    expiring = config(account=PARTNER, expires="2027-03-31", owner="payments-team")
    record = call("2027-03-02T00:00:00Z")
    record["readOnly"] = "false"  # a string the model turns into a boolean: never keyed
    assert decide(record, expiring).verdict is Verdict.ALLOWED
    record["eventTime"] = "2027-04-02T00:00:00Z"
    assert decide(record, expiring).verdict is Verdict.VIOLATION


def test_a_decision_is_made_once_per_key_and_remembered_whole(monkeypatch):
    made: list[Any] = []
    full_path = decide_module._decide

    def counted(*args: Any) -> Any:
        made.append(args[0])
        return full_path(*args)

    monkeypatch.setattr(decide_module, "_decide", counted)
    expiring = config(account=PARTNER, expires="2027-03-31", owner="payments", ticket="SEC-1")
    first = decide(call("2027-03-02T00:00:00Z"), expiring)
    again = decide(call("2027-03-03T00:00:00Z"), expiring)
    assert len(made) == 1
    assert again.to_dict() | {"event_time": None} == first.to_dict() | {"event_time": None}
    assert (
        again.account,
        again.region,
        again.caller_account,
        again.exception_expires,
        again.exception_owner,
        again.exception_ticket,
    ) == ("123456789012", "us-east-1", PARTNER, "2027-03-31", "payments", "SEC-1")
