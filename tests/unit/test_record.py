"""The caller of a record (lambdas.core.record): who `resolve_caller` says called, and how a
caller is described in a reason. Expected values by hand."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.record import Caller, decision_key, resolve_caller, resolve_function, text
from models.cloudtrail import CloudTrailRecordModel, UserIdentityModel
from models.exceptions import InputError

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111122223333:role/deployer"
BUCKET = "arn:aws:s3:::uploads"


def caller(identity: dict[str, Any], **params: Any) -> Caller:
    return resolve_caller(UserIdentityModel.model_validate(identity), params)


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (
            {"type": "AWSAccount", "accountId": "999988887777", "principalId": "AIDAX"},
            Caller(account="999988887777", identity_type="AWSAccount"),
        ),
        (
            {"type": "AWSService", "invokedBy": "s3.amazonaws.com"},
            Caller(service="s3.amazonaws.com", identity_type="AWSService"),
        ),
        (
            {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/deployer/s1",
                "accountId": "111122223333",
            },
            Caller(principal=ROLE, account="111122223333", identity_type="AssumedRole"),
        ),
        (
            {"type": "Root", "accountId": "111122223333"},
            Caller(
                principal="arn:aws:iam::111122223333:root",
                account="111122223333",
                identity_type="Root",
            ),
        ),
        (
            {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory"},
            Caller(
                principal="arn:aws:iam::111122223333:user/mallory",
                account="111122223333",
                identity_type="IAMUser",
            ),
        ),
    ],
)
def test_the_caller_of_an_identity(identity, expected):
    assert caller(identity) == expected


def test_the_source_of_a_service_call_comes_from_the_request():
    found = caller(
        {"type": "AWSService", "invokedBy": "s3.amazonaws.com"},
        sourceArn=BUCKET,
        sourceAccount="111122223333",
    )
    assert (found.source_arn, found.source_account) == (BUCKET, "111122223333")
    assert caller({"type": "AWSService"}, sourceArn="", sourceAccount=5).source_arn is None


@pytest.mark.parametrize(
    ("found", "described"),
    [
        (
            Caller(service="s3.amazonaws.com", principal=ROLE, source_arn=BUCKET),
            f"s3.amazonaws.com for {BUCKET} (as {ROLE})",
        ),
        (Caller(service="s3.amazonaws.com", source_arn=BUCKET), f"s3.amazonaws.com for {BUCKET}"),
        (Caller(service="sns.amazonaws.com", account="111122223333"), "sns.amazonaws.com"),
        (Caller(principal=ROLE, account="111122223333"), ROLE),
        (Caller(account="999988887777"), "account 999988887777"),
        (Caller(), "unknown caller"),
        (Caller(identity_type="AWSAccount"), "unknown caller"),
    ],
)
def test_how_a_caller_is_described(found, described):
    assert found.describe() == described


def function_of(**record: Any) -> str:
    return resolve_function(CloudTrailRecordModel.model_validate(record)).arn


def test_a_bare_name_takes_the_partition_of_the_function_resource_before_the_regions():
    assert (
        function_of(
            requestParameters={"functionName": "orders"},
            awsRegion="us-east-1",
            recipientAccountId="123456789012",
            resources=[{"ARN": "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders"}],
        )
        == "arn:aws-cn:lambda:us-east-1:123456789012:function:orders"
    )


def test_a_resource_that_is_no_function_gives_neither_partition_nor_account():
    resources = [{"ARN": "arn:aws-cn:s3:::uploads", "accountId": "444455556666"}]
    assert (
        function_of(
            requestParameters={"functionName": "orders"},
            awsRegion="us-east-1",
            recipientAccountId="123456789012",
            resources=resources,
        )
        == "arn:aws:lambda:us-east-1:123456789012:function:orders"
    )
    with pytest.raises(InputError):
        function_of(
            requestParameters={"functionName": "orders"},
            awsRegion="us-east-1",
            resources=resources,
        )


def test_a_full_arn_needs_no_region_in_the_record():
    arn = "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:orders"
    assert function_of(requestParameters={"functionName": arn}) == arn


def test_the_account_of_a_root_without_an_arn_is_its_root_and_without_an_account_none():
    assert caller({"type": "Root", "accountId": "111122223333"}).principal == (
        "arn:aws:iam::111122223333:root"
    )
    assert caller({"type": "Root"}) == Caller(identity_type="Root")


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        ("arn:aws:iam::111122223333:user/mallory", "111122223333"),
        ("arn:aws:iam::111122223333:user/path/to/mallory", "111122223333"),
        ("arn:aws:iam:::user/mallory", None),
        ("arn:aws:iam::111122223333", None),
    ],
)
def test_an_account_missing_from_the_identity_is_read_from_the_principal(arn, account):
    assert caller({"type": "IAMUser", "arn": arn}).account == account


def test_an_identity_account_wins_over_the_principals():
    found = caller(
        {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/x", "accountId": "999988887777"}
    )
    assert found.account == "999988887777"


def test_a_qualifier_in_the_name_wins_over_the_qualifier_parameter():
    base = {"awsRegion": "us-east-1", "recipientAccountId": "123456789012"}
    named = {"functionName": "orders:prod", "qualifier": "v2"}
    assert function_of(requestParameters=named, **base).endswith(":function:orders:prod")
    added = {"functionName": "orders", "qualifier": "v2"}
    assert function_of(requestParameters=added, **base).endswith(":function:orders:v2")
    bare = {"functionName": "orders"}
    assert function_of(requestParameters=bare, **base).endswith(":function:orders")


def test_a_partial_function_version_takes_region_account_and_partition_from_the_record():
    assert (
        function_of(
            additionalEventData={"functionVersion": "orders:7"},
            awsRegion="us-east-1",
            resources=[
                {
                    "ARN": "arn:aws-cn:lambda:cn-north-1:444455556666:function:orders",
                    "accountId": "444455556666",
                }
            ],
        )
        == "arn:aws-cn:lambda:us-east-1:444455556666:function:orders:7"
    )


def test_without_name_or_version_the_function_resource_is_read_with_the_records_defaults():
    resources = [
        {"ARN": "arn:aws:s3:::uploads"},
        {"ARN": "123456789012:function:orders"},
    ]
    assert (
        function_of(awsRegion="eu-west-1", resources=resources)
        == "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    )


def test_a_record_that_names_no_function_says_so():
    with pytest.raises(InputError) as refused:
        function_of(awsRegion="eu-west-1", resources=[{"ARN": "arn:aws:s3:::uploads"}])
    assert str(refused.value) == (
        "no functionName, functionVersion or function resource: the function is unknown"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a", "a"), ("", None), (None, None), (5, None), (True, None), (["a"], None)],
)
def test_text_is_a_non_empty_string_or_absent(value, expected):
    assert text(value) == expected


def lambda_record(identity: Any) -> dict[str, Any]:
    return {
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": "us-east-1",
        "recipientAccountId": "123456789012",
        "requestParameters": {"functionName": "orders"},
        "userIdentity": identity,
    }


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "AssumedRole", "sessionContext": "x"},
        {"type": "AssumedRole", "sessionContext": []},
        {"type": "AssumedRole", "sessionContext": {"sessionIssuer": "x"}},
        {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": 5}}},
        {"type": "IAMUser", "arn": 5},
        [],
    ],
)
def test_an_identity_the_model_would_coerce_or_reject_has_no_decision_key(identity):
    assert decision_key(lambda_record(identity)) is None


def test_a_well_typed_session_context_has_a_key():
    identity = {
        "type": "AssumedRole",
        "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/r"}},
    }
    assert decision_key(lambda_record(identity)) is not None
    assert decision_key(lambda_record({"type": "AssumedRole", "sessionContext": {}})) is not None


def test_the_session_issuer_of_an_identity_that_is_no_assumed_role_is_not_in_the_key():
    def user(issuer: str) -> dict[str, Any]:
        return {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/mallory",
            "sessionContext": {"sessionIssuer": {"arn": issuer}},
        }

    first = decision_key(lambda_record(user("arn:aws:iam::111122223333:role/a")))
    second = decision_key(lambda_record(user("arn:aws:iam::111122223333:role/b")))
    assert first is not None and first == second


@pytest.mark.parametrize(
    "change",
    [
        {"additionalEventData": "x"},
        {"additionalEventData": {5: "x"}},
        {"requestParameters": []},
        {"resources": [{"ARN": 5}]},
        {"resources": [{"ARN": "arn:aws:lambda:us-east-1:123456789012:function:orders"}, "x"]},
        {"resources": {"ARN": "x"}},
        {"readOnly": "false"},
        {"errorCode": 403},
        {"requestParameters": {"functionName": ["orders"]}},
        {"requestParameters": {"functionName": 7}},
        {"additionalEventData": {"functionVersion": {"arn": "x"}}},
    ],
)
def test_a_record_field_the_model_would_coerce_or_reject_leaves_no_decision_key(change):
    record = lambda_record({"type": "AWSAccount", "accountId": "999988887777"})
    assert decision_key(record) is not None
    assert decision_key(record | change) is None


def test_a_record_without_user_identity_has_a_decision_key():
    record = lambda_record(None)
    del record["userIdentity"]
    assert decision_key(record) is not None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # without functionName the qualifier parameter is not read
        (
            {"additionalEventData": {"functionVersion": "orders:7"}, "requestParameters": {}},
            {
                "additionalEventData": {"functionVersion": "orders:7"},
                "requestParameters": {"qualifier": "prod"},
            },
        ),
        # with functionName, functionVersion is not read
        (
            {"additionalEventData": {"functionVersion": "orders:7"}},
            {"additionalEventData": {"functionVersion": "orders:8"}},
        ),
    ],
)
def test_fields_the_decision_does_not_read_are_not_in_the_key(one, other):
    record = lambda_record({"type": "AWSAccount", "accountId": "999988887777"})
    assert decision_key(record | one) == decision_key(record | other)
