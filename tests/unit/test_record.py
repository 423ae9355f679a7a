"""The caller of a record (lambdas.core.record): who `resolve_caller` says called, and how a
caller is described in a reason. Expected values by hand."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.record import Caller, resolve_caller
from models.cloudtrail import UserIdentityModel

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
