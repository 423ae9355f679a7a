"""The evaluator's requests and principals, with hand-written expectations: the context keys
a principal implies (aws:PrincipalType as IAM documents its values), how requests and
principals describe themselves, ArnLike part by part, and NotPrincipal exemptions."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.evaluate import Answer, Principal, Request, evaluate

pytestmark = pytest.mark.unit

INVOKE = "lambda:InvokeFunction"
ACCOUNT = "123456789012"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (
            Principal.aws(USER),
            {"aws:principalarn": [USER], "aws:principalaccount": [ACCOUNT],
             "aws:principaltype": ["User"]},
        ),
        (
            Principal.aws(ROLE),
            {"aws:principalarn": [ROLE], "aws:principalaccount": [ACCOUNT],
             "aws:principaltype": ["Role"]},
        ),
        (
            Principal.aws(SESSION),
            {"aws:principalarn": [ROLE], "aws:principalaccount": [ACCOUNT],
             "aws:principaltype": ["AssumedRole"]},
        ),
        (
            Principal.root(ACCOUNT),
            {"aws:principalarn": [ROOT], "aws:principalaccount": [ACCOUNT],
             "aws:principaltype": ["Account"]},
        ),
        (
            Principal.service("s3.amazonaws.com"),
            {"aws:principalservicename": ["s3.amazonaws.com"],
             "aws:principaltype": ["AWSService"]},
        ),
        (Principal.anonymous(), {"aws:principaltype": ["Anonymous"]}),
    ],
)  # fmt: skip
def test_the_keys_a_principal_implies(principal: Principal, expected: dict[str, list[str]]) -> None:
    assert Request(principal, INVOKE).values() == expected


def test_context_values_are_strings_as_iam_compares_them() -> None:
    request = Request(
        Principal.anonymous(),
        INVOKE,
        {"lambda:InvokedViaFunctionUrl": True, "X:N": "7", "X:L": []},
    )
    values = request.values()
    assert values["lambda:invokedviafunctionurl"] == ["true"]
    assert values["x:n"] == ["7"]
    assert values["x:l"] == []
    assert Request(Principal.anonymous(), INVOKE, {"X:F": False}).values()["x:f"] == ["false"]


def test_principals_in_other_partitions() -> None:
    china = Principal.root(ACCOUNT, "aws-cn")
    assert china.value == f"arn:aws-cn:iam::{ACCOUNT}:root"
    assert (china.account, china.partition) == (ACCOUNT, "aws-cn")
    assert Principal.service("x").account is None and Principal.service("x").partition is None
    assert Principal.service("x") == Principal("service", "x")
    assert Principal.anonymous() == Principal("anonymous", "")
    assert Principal.anonymous().arn is None
    policy = _policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": INVOKE})
    assert evaluate(policy, Request(china, INVOKE)).answer is Answer.ALLOW
    cn_only = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws-cn:iam::{ACCOUNT}:root"}}
    cn_only["Action"] = INVOKE
    assert evaluate(_policy(cn_only), Request(Principal.root(ACCOUNT), INVOKE)).answer is (
        Answer.NOT_ALLOWED
    )


def test_descriptions() -> None:
    assert Principal.anonymous().describe() == "anonymous"
    assert Principal.aws(USER).describe() == USER
    assert Principal.service("s3.amazonaws.com").describe() == "service s3.amazonaws.com"
    request = Request(
        Principal.service("s3.amazonaws.com"),
        INVOKE,
        {"aws:SourceArn": "arn:aws:s3:::b", "aws:SourceAccount": ACCOUNT, "x:list": ["a", "b"]},
    )
    assert request.describe() == (
        f"service s3.amazonaws.com {INVOKE} [aws:SourceAccount={ACCOUNT}, "
        "aws:SourceArn=arn:aws:s3:::b, x:list=['a', 'b']]"
    )
    assert Request(Principal.aws(USER), INVOKE).describe() == f"{USER} {INVOKE}"
    via_url = Request(Principal.anonymous(), INVOKE, {"lambda:InvokedViaFunctionUrl": True})
    assert via_url.describe() == f"anonymous {INVOKE} [lambda:InvokedViaFunctionUrl=['true']]"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _source_arn_allows(pattern: str, value: str) -> Answer:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": INVOKE,
        "Condition": {"ArnLike": {"aws:SourceArn": pattern}},
    }
    request = Request(Principal.service("s3.amazonaws.com"), INVOKE, {"aws:SourceArn": value})
    return evaluate(_policy(statement), request).answer


@pytest.mark.parametrize(
    ("pattern", "value", "answer"),
    [
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket", Answer.ALLOW),
        ("arn:aws:s3:::bucket-*", "arn:aws:s3:::bucket-1", Answer.ALLOW),
        ("arn:aws:s3:::b?", "arn:aws:s3:::b1", Answer.ALLOW),
        ("arn:aws:s3:::bucket", "arn:aws:s3:::bucket2", Answer.NOT_ALLOWED),
        ("arn:*:s3:::bucket", "arn:aws-cn:s3:::bucket", Answer.ALLOW),
        # the parts are compared one by one: a `*` does not reach over a colon before the
        # resource part...
        ("arn:aws:*:bucket", "arn:aws:s3:::bucket", Answer.NOT_ALLOWED),
        # ...while the sixth part takes the rest, colons included
        ("arn:aws:events:us-east-1:1:rule/*", "arn:aws:events:us-east-1:1:rule/a:b", Answer.ALLOW),
        ("not-an-arn", "not-an-arn", Answer.NOT_ALLOWED),
        # a colon in the pattern's resource part belongs to that part as well
        (
            "arn:aws:events:us-east-1:1:rule/a:*",
            "arn:aws:events:us-east-1:1:rule/a:b",
            Answer.ALLOW,
        ),
        (
            "arn:aws:events:us-east-1:1:rule/a:*",
            "arn:aws:events:us-east-1:1:rule/b:b",
            Answer.NOT_ALLOWED,
        ),
        # ArnLike is case-sensitive
        ("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket", Answer.NOT_ALLOWED),
        ("arn:aws:s3:::bucket", "bucket", Answer.NOT_ALLOWED),
        # without a wildcard only the same ARN matches, even where one is the start of the other
        ("arn:aws:s3:::bucket", "arn:aws:s3", Answer.NOT_ALLOWED),
        ("arn:aws:s3", "arn:aws:s3:::bucket", Answer.NOT_ALLOWED),
    ],
)
def test_arn_like_compares_part_by_part(pattern: str, value: str, answer: Answer) -> None:
    assert _source_arn_allows(pattern, value) is answer


# --- NotPrincipal ---------------------------------------------------------------------------


def _deny_all_but(not_principal: Any) -> dict[str, Any]:
    """Allow everyone, Deny everyone but `not_principal`."""
    return _policy(
        {"Effect": "Allow", "Principal": "*", "Action": INVOKE},
        {"Effect": "Deny", "NotPrincipal": not_principal, "Action": INVOKE},
    )


@pytest.mark.parametrize(
    ("not_principal", "principal", "answer"),
    [
        # a role session is exempt only when the session, the role and the account are listed
        ({"AWS": [SESSION, ROLE, ROOT]}, Principal.aws(SESSION), Answer.ALLOW),
        ({"AWS": [SESSION, ROLE, ACCOUNT]}, Principal.aws(SESSION), Answer.ALLOW),
        ({"AWS": [ROLE, ROOT]}, Principal.aws(SESSION), Answer.DENY),
        ({"AWS": [SESSION, ROLE]}, Principal.aws(SESSION), Answer.DENY),
        ({"AWS": [USER, ROOT]}, Principal.aws(USER), Answer.ALLOW),
        ({"AWS": [USER]}, Principal.aws(USER), Answer.DENY),
        ({"AWS": ROOT}, Principal.aws(USER), Answer.DENY),
        ({"AWS": ROOT}, Principal.root(ACCOUNT), Answer.ALLOW),
        ({"AWS": ACCOUNT}, Principal.root(ACCOUNT), Answer.ALLOW),
        ({"AWS": "*"}, Principal.aws(USER), Answer.ALLOW),
        ({"AWS": "*"}, Principal.anonymous(), Answer.ALLOW),
        ({"AWS": [USER, ROOT]}, Principal.anonymous(), Answer.DENY),
        ("*", Principal.anonymous(), Answer.ALLOW),
        ({"Service": "s3.amazonaws.com"}, Principal.service("s3.amazonaws.com"), Answer.ALLOW),
        ({"Service": "s3.amazonaws.com"}, Principal.service("sns.amazonaws.com"), Answer.DENY),
        ({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/*", ROOT]}, Principal.aws(USER), Answer.UNKNOWN),
        ({"Federated": "cognito-identity.amazonaws.com"}, Principal.aws(USER), Answer.UNKNOWN),
        # a `?` is a wildcard too: the exemption depends on what it stands for
        (
            {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alic?", ROOT]},
            Principal.aws(USER),
            Answer.UNKNOWN,
        ),
        # ...but an anonymous request is exempt only where everyone is
        ({"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alic?"]}, Principal.anonymous(), Answer.DENY),
        # a Service entry beside the listed identities is understood
        (
            {"AWS": [USER, ROOT], "Service": "s3.amazonaws.com"},
            Principal.aws(USER),
            Answer.ALLOW,
        ),
        # a service principal against a service pattern: IAM does not say
        ({"Service": "s3.*"}, Principal.service("s3.amazonaws.com"), Answer.UNKNOWN),
        (
            {"Service": ["s3.*", "s3.amazonaws.com"]},
            Principal.service("s3.amazonaws.com"),
            Answer.ALLOW,
        ),
        (
            {"Service": "sns.amazonaws.com", "AWS": ROOT},
            Principal.service("s3.amazonaws.com"),
            Answer.DENY,
        ),
    ],
)
def test_not_principal_exempts_only_a_fully_listed_principal(
    not_principal: Any, principal: Principal, answer: Answer
) -> None:
    assert evaluate(_deny_all_but(not_principal), Request(principal, INVOKE)).answer is answer


@pytest.mark.parametrize(
    ("action", "answer"),
    [
        ("Lambda:Invoke*", Answer.ALLOW),
        ("LAMBDA:INVOKEFUNCTION", Answer.ALLOW),
        ("lambda:Get*", Answer.NOT_ALLOWED),
    ],
)
def test_actions_match_whatever_their_case(action: str, answer: Answer) -> None:
    policy = _policy({"Effect": "Allow", "Principal": "*", "Action": action})
    assert evaluate(policy, Request(Principal.aws(USER), INVOKE)).answer is answer


@pytest.mark.parametrize(
    ("pattern", "answer"),
    [("alice*", Answer.ALLOW), ("Alice*", Answer.NOT_ALLOWED), ("ALICE", Answer.NOT_ALLOWED)],
)
def test_string_like_is_case_sensitive(pattern: str, answer: Answer) -> None:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": INVOKE,
        "Condition": {"StringLike": {"aws:username": pattern}},
    }
    request = Request(Principal.aws(USER), INVOKE, {"aws:username": "alice"})
    assert evaluate(_policy(statement), request).answer is answer
