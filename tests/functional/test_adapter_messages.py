"""What the permission-API translation refuses, in the words a person reads, and the rate
limiter's hourly trip marker as sent to DynamoDB (botocore's Stubber checks every
parameter). Expected texts and requests are written out by hand."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lambdas.adapters.errors import AwsError
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.core.policy import statement_to_permissions
from models.exceptions import RewriteError

pytestmark = pytest.mark.functional

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def _allow(principal: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": "s1",
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": ARN,
    } | extra


def test_a_public_grant_becomes_one_permission_for_everyone() -> None:
    assert statement_to_permissions(_allow("*"), "s1") == [
        {"StatementId": "s1", "Action": "lambda:InvokeFunction", "Principal": "*"}
    ]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (_allow(["a"]), "statement 's1': no Principal AddPermission takes"),
        (
            _allow({"AWS": []}),
            "statement 's1': Principal {'AWS': []} cannot be expressed with AddPermission",
        ),
        (
            _allow({"AWS": "111122223333", "Federated": "x"}),
            "statement 's1': Principal {'AWS': '111122223333', 'Federated': 'x'} cannot be "
            "expressed with AddPermission",
        ),
        (
            _allow("*", Condition={"StringEquals": {"aws:SourceAccount": ["1", "2"]}}),
            "statement 's1': condition StringEquals aws:SourceAccount cannot be expressed with "
            "AddPermission; the resource-policy API is needed",
        ),
    ],
)
def test_what_add_permission_cannot_say_is_refused_in_words(
    statement: dict[str, Any], message: str
) -> None:
    with pytest.raises(RewriteError) as caught:
        statement_to_permissions(statement, "s1")
    assert str(caught.value) == message


@pytest.fixture
def dynamodb() -> Any:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_the_first_trip_of_an_hour_is_marked_on_that_hours_item(dynamodb: Any) -> None:
    client, stubber = dynamodb
    # 23:30 in UTC-2 is 01:30 UTC the next day: the hour is named in UTC
    moment = datetime(2024, 2, 29, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    expected = {
        "TableName": "rate",
        "Key": {"pk": {"S": "remediations#2024-03-01T01"}},
        "UpdateExpression": "SET #tripped = :now",
        "ConditionExpression": "attribute_not_exists(#tripped)",
        "ExpressionAttributeNames": {"#tripped": "limit_reached_at"},
        "ExpressionAttributeValues": {":now": {"S": "2024-03-01T01:30:00+00:00"}},
    }
    stubber.add_response("update_item", {}, expected)
    stubber.add_client_error(
        "update_item", "ConditionalCheckFailedException", "", 400, expected_params=expected
    )
    limiter = HourlyRateLimiter(client, "rate")
    assert limiter.first_trip(now=moment) is True
    assert limiter.first_trip(now=moment) is False


def test_the_first_trip_without_a_time_is_marked_now(dynamodb: Any) -> None:
    client, stubber = dynamodb
    before = datetime.now(UTC)
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", lambda params, **_: sent.append(params)
    )
    stubber.add_response("update_item", {})
    assert HourlyRateLimiter(client, "rate").first_trip() is True
    after = datetime.now(UTC)
    (params,) = sent
    marked = datetime.fromisoformat(params["ExpressionAttributeValues"][":now"]["S"])
    assert marked.utcoffset() == timedelta(0)
    assert before <= marked <= after


def test_a_release_gives_one_back_to_that_hours_item_only_while_it_counts_one(
    dynamodb: Any,
) -> None:
    client, stubber = dynamodb
    moment = datetime(2024, 3, 1, 1, 59, 59, tzinfo=UTC)
    expected = {
        "TableName": "rate",
        "Key": {"pk": {"S": "remediations#2024-03-01T01"}},
        "UpdateExpression": "ADD #count :minus_one",
        "ConditionExpression": "#count > :zero",
        "ExpressionAttributeNames": {"#count": "remediations"},
        "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
    }
    stubber.add_response("update_item", {}, expected)
    stubber.add_client_error(
        "update_item", "ConditionalCheckFailedException", "", 400, expected_params=expected
    )
    limiter = HourlyRateLimiter(client, "rate")
    assert limiter.release(now=moment) is True
    assert limiter.release(now=moment) is False


def test_the_trip_time_is_written_in_utc_whatever_the_machines_zone(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = dynamodb
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        moment = datetime(2024, 3, 1, 1, 30, tzinfo=UTC)
        stubber.add_response(
            "update_item",
            {},
            {
                "TableName": "rate",
                "Key": {"pk": {"S": "remediations#2024-03-01T01"}},
                "UpdateExpression": "SET #tripped = :now",
                "ConditionExpression": "attribute_not_exists(#tripped)",
                "ExpressionAttributeNames": {"#tripped": "limit_reached_at"},
                "ExpressionAttributeValues": {":now": {"S": "2024-03-01T01:30:00+00:00"}},
            },
        )
        assert HourlyRateLimiter(client, "rate").first_trip(now=moment) is True
    finally:
        monkeypatch.undo()
        time.tzset()


def test_taking_one_from_the_budget_as_sent_to_dynamodb(dynamodb: Any) -> None:
    client, stubber = dynamodb
    moment = datetime(2024, 3, 1, 1, 15, tzinfo=UTC)
    expected = {
        "TableName": "rate",
        "Key": {"pk": {"S": "remediations#2024-03-01T01"}},
        "UpdateExpression": "ADD #count :one SET #ttl = if_not_exists(#ttl, :expires)",
        "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
        "ExpressionAttributeNames": {"#count": "remediations", "#ttl": "expires_at"},
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":limit": {"N": "1"},
            # two days later: 2024-03-03T01:15:00Z
            ":expires": {"N": "1709428500"},
        },
    }
    stubber.add_response("update_item", {}, expected)
    stubber.add_client_error(
        "update_item", "ConditionalCheckFailedException", "", 400, expected_params=expected
    )
    limiter = HourlyRateLimiter(client, "rate")
    assert limiter.try_acquire(1, now=moment) is True
    assert limiter.try_acquire(1, now=moment) is False


def _zone_that_springs_forward_tomorrow() -> str:
    """A POSIX TZ rule: UTC, and UTC+1 from the start of tomorrow until four days from now."""

    def julian(day: date) -> int:  # `Jn`: 1 to 365, as in a year without February 29
        return (date(2001, day.month, 1) + timedelta(days=day.day - 1)).timetuple().tm_yday

    today = datetime.now(UTC).date()
    start, end = julian(today + timedelta(days=1)), julian(today + timedelta(days=4))
    return f"XST0XDT-1,J{start}/0,J{end}/0"


def test_a_budget_taken_now_expires_two_days_later_across_a_clock_change(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the machine's clocks go forward an hour tomorrow: two days later is still 48 hours
    client, stubber = dynamodb
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", lambda params, **_: sent.append(params)
    )
    stubber.add_response("update_item", {})
    monkeypatch.setenv("TZ", _zone_that_springs_forward_tomorrow())
    time.tzset()
    try:
        before = datetime.now(UTC)
        assert HourlyRateLimiter(client, "rate").try_acquire(5) is True
        after = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
    (params,) = sent
    expires = int(params["ExpressionAttributeValues"][":expires"]["N"])
    two_days = 2 * 24 * 3600
    assert int(before.timestamp()) + two_days <= expires <= int(after.timestamp()) + two_days
    hours = {f"remediations#{m:%Y-%m-%dT%H}" for m in (before, after)}
    assert params["Key"]["pk"]["S"] in hours


@pytest.mark.parametrize("limit", [0, -1])
def test_a_budget_of_nothing_is_spent_without_asking(dynamodb: Any, limit: int) -> None:
    client, _ = dynamodb
    assert HourlyRateLimiter(client, "rate").try_acquire(limit) is False


def test_other_dynamodb_errors_are_raised(dynamodb: Any) -> None:
    client, stubber = dynamodb
    stubber.add_client_error("update_item", "ResourceNotFoundException", "no table", 400)
    with pytest.raises(AwsError) as caught:
        HourlyRateLimiter(client, "rate").release(now=datetime(2024, 3, 1, tzinfo=UTC))
    error = caught.value
    assert (error.service, error.operation, error.resource, error.code) == (
        "dynamodb",
        "UpdateItem",
        "rate",
        "ResourceNotFoundException",
    )
