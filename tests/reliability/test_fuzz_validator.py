"""Fuzzing the validator Lambda with generated records, mutated corpus records and mangled
EventBridge envelopes, against moto's SQS and SNS. The handler never raises; what it cannot
judge, and any envelope whose `source`, `detail-type` or `account` does not fit, is `invalid`
and sends nothing; the only AWS calls it ever makes are SendMessage and Publish (a violation's
message, or its monitor-mode notification), never a Lambda policy call."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.core.decide import decide
from lambdas.runtime.settings import runtime
from lambdas.validator import handler
from models.allowlist import AllowlistConfig
from tests.support.checks import check_validator_answer, invoke_validator
from tests.support.corpus import CORPUS_MISSING, corpus_records
from tests.support.records import ACCOUNT, OTHER_ACCOUNT, OWN_FUNCTIONS, envelope
from tests.support.strategies import cloudtrail_records, json_values, mutated_records

pytestmark = [pytest.mark.reliability]

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(cloudtrail_records())
def test_validator_takes_generated_records(validator: Any, record: dict[str, Any]) -> None:
    result, made = invoke_validator(validator, envelope(record))
    check_validator_answer(result, made)
    expected = decide(record, _config(), own_functions=OWN_FUNCTIONS).verdict.value
    # The validator adds only refusals (account checks) to the core's verdict.
    assert result["verdict"] in (expected, "invalid")


@FUZZ
@given(data=st.data())
def test_validator_takes_mutated_corpus_records(validator: Any, data: Any) -> None:
    records = corpus_records()
    if not records:
        pytest.skip(CORPUS_MISSING)
    result, made = invoke_validator(validator, envelope(data.draw(mutated_records(records))))
    check_validator_answer(result, made)


GOOD = {"source": "aws.lambda", "detail-type": "AWS API Call via CloudTrail", "account": ACCOUNT}


def _differs_from(good: Any) -> Any:
    return lambda value: value != good


_BAD_VALUES: dict[str, list[Any]] = {
    "source": ["aws.s3", "custom.lambda", "AWS.LAMBDA", "aws.lambda ", ""],
    "detail-type": [
        "AWS API Call via CloudTrail ",
        "Object Created",
        "aws api call via cloudtrail",
    ],
    "account": [OTHER_ACCOUNT, "12345678901", "1234567890123", "12345678901a", 123456789012],
}


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """An envelope of a violating record with some of source / detail-type / account wrong
    (or missing, or any JSON value); returns it and the names of the fields made wrong."""
    record = {
        "eventID": draw(st.uuids()).hex,
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory"},
        "requestParameters": {"functionName": draw(st.sampled_from(["BlogFunction", "watch-me"]))},
    }
    event = envelope(record)
    wrong: set[str] = set()
    for field, bad in _BAD_VALUES.items():
        choice = draw(st.sampled_from(["good", "bad", "missing", "json"]))
        if choice == "bad":
            event[field] = draw(st.sampled_from(bad))
        elif choice == "missing":
            del event[field]
        elif choice == "json":
            event[field] = draw(json_values.filter(_differs_from(GOOD[field])))
        if choice != "good":
            wrong.add(field)
    if draw(st.booleans()):
        if draw(st.booleans()):
            del event["detail"]
        else:
            event["detail"] = draw(json_values.filter(lambda v: not isinstance(v, dict) or not v))
        wrong.add("detail")
    return event, wrong


@FUZZ
@given(envelopes())
def test_envelopes_that_do_not_fit_are_rejected_not_acted_on(
    validator: Any, drawn: tuple[dict[str, Any], set[str]]
) -> None:
    event, wrong = drawn
    result, made = invoke_validator(validator, event)
    if wrong:
        assert result["verdict"] == "invalid", (wrong, result)
        assert made == []
    else:
        assert result["verdict"] == "violation"
        assert len(made) <= 1


@FUZZ
@given(json_values | st.lists(json_values))
def test_validator_takes_any_event(validator: Any, event: Any) -> None:
    result, made = invoke_validator(validator, event)
    assert result["verdict"] == "invalid"
    assert made == []


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(st.characters(codec=None, categories=["Cs", "Co", "Cc", "So"]), min_size=1))
def test_validator_takes_strings_json_decodes_but_utf_8_cannot_encode(
    validator: Any, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """Lambda's runtime decodes the event with Python's json, which lets lone surrogates
    through (`"\\ud800"`); logs, queue message and alert must survive them."""
    record = {
        "eventID": text,
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/{text}"},
        "requestParameters": {"functionName": "BlogFunction", "extra": text},
    }
    event = json.loads(json.dumps(envelope(record)))
    # pytest-xdist cannot ship captured text that UTF-8 cannot encode back to the controller:
    # the log lines stay out of pytest's capture (they are checked to be written, below).
    service_log = logging.getLogger(handler.logger.name)
    propagate, service_log.propagate = service_log.propagate, False
    try:
        result, made = invoke_validator(validator, event)
    finally:
        service_log.propagate = propagate
    assert '"verdict":"violation"' in capsys.readouterr().out.replace(" ", "")
    check_validator_answer(result, made)
    assert result["verdict"] == "violation"


# SQS: MessageGroupId and MessageDeduplicationId are 1-128 characters of a-z, A-Z, 0-9 and
# punctuation !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ (anything else is InvalidParameterValue, which
# moto does not check).
SQS_ID = re.compile(r"[!-~]{1,128}\Z")


@FUZZ
@given(st.one_of(st.uuids().map(str), st.text(max_size=200)))
def test_queue_ids_are_ones_sqs_accepts_whatever_the_event_id(
    validator: Any, event_id: str
) -> None:
    record = {
        "eventID": event_id,
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory"},
        "requestParameters": {"functionName": "BlogFunction"},
    }
    result, made = invoke_validator(validator, envelope(record))
    assert result["verdict"] == "violation"
    ((_, params),) = made
    assert SQS_ID.match(params["MessageGroupId"])
    assert SQS_ID.match(params["MessageDeduplicationId"]), params["MessageDeduplicationId"]


def _config() -> AllowlistConfig:
    return runtime(ACCOUNT).config
