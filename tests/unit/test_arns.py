"""Function references: names, partial ARNs and ARNs, qualified or not."""

from __future__ import annotations

import pytest

from models.arns import LATEST, FunctionRef, parse_function_arn
from models.exceptions import InputError

pytestmark = pytest.mark.unit

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
DEFAULTS = {"default_region": "eu-west-1", "default_account": "210987654321"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ARN, FunctionRef("aws", "us-east-1", "123456789012", "fn")),
        (f"{ARN}:live", FunctionRef("aws", "us-east-1", "123456789012", "fn", "live")),
        (f"{ARN}:23", FunctionRef("aws", "us-east-1", "123456789012", "fn", "23")),
        (f"{ARN}:$LATEST", FunctionRef("aws", "us-east-1", "123456789012", "fn", LATEST)),
        (
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:fn",
            FunctionRef("aws-cn", "cn-north-1", "123456789012", "fn"),
        ),
        (
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:fn",
            FunctionRef("aws-us-gov", "us-gov-west-1", "123456789012", "fn"),
        ),
        ("123456789012:function:fn", FunctionRef("aws", "eu-west-1", "123456789012", "fn")),
        (
            "123456789012:function:fn:prod",
            FunctionRef("aws", "eu-west-1", "123456789012", "fn", "prod"),
        ),
        ("fn", FunctionRef("aws", "eu-west-1", "210987654321", "fn")),
        ("fn:7", FunctionRef("aws", "eu-west-1", "210987654321", "fn", "7")),
        ("  fn  ", FunctionRef("aws", "eu-west-1", "210987654321", "fn")),
    ],
)
def test_parse(text, expected):
    assert parse_function_arn(text, **DEFAULTS) == expected


def test_full_arn_ignores_the_defaults():
    assert parse_function_arn(ARN, **DEFAULTS).region == "us-east-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("fn with space", "not a Lambda"),
        ("arn:aws:lambda:us-east-1:123456789012:fn", "not a Lambda"),
        ("arn:aws:s3:::bucket", "not a Lambda"),
        (f"{ARN}:a:b", "not a Lambda"),
        ("a" * 100_000 + "!", "not a Lambda"),
    ],
)
def test_errors(text, message):
    with pytest.raises(InputError) as caught:
        parse_function_arn(text, **DEFAULTS)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 400


def test_non_string_is_an_error_not_a_crash():
    with pytest.raises(InputError):
        parse_function_arn(5, **DEFAULTS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("defaults", "missing"), [({}, "region"), ({"default_region": "r"}, "account")]
)
def test_bare_name_needs_region_and_account(defaults, missing):
    with pytest.raises(InputError) as caught:
        parse_function_arn("fn", **defaults)
    assert missing in str(caught.value)


def test_ref_properties():
    alias = parse_function_arn(f"{ARN}:live")
    assert alias.arn == f"{ARN}:live"
    assert alias.unqualified_arn == ARN
    assert alias.policy_qualifier == "live"
    assert alias.effective_qualifier == "live"
    latest = parse_function_arn(f"{ARN}:$LATEST")
    assert latest.arn == ARN  # $LATEST has no policy of its own
    assert latest.policy_qualifier is None
    assert latest.effective_qualifier == LATEST
    plain = parse_function_arn(ARN)
    assert plain.arn == ARN
    assert plain.effective_qualifier == LATEST
    assert plain.with_qualifier("7").arn == f"{ARN}:7"
