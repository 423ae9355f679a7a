"""The policy evaluator against the cases AWS documents. Each case cites the page it is from.

Expected answers are written by hand from the documentation, never computed.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.evaluate import Answer, Principal, Request, evaluate

pytestmark = pytest.mark.unit

EVAL_LOGIC = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
    "reference_policies_evaluation-logic_policy-eval-denyallow.html"
)
OPERATORS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"
MULTI_VALUE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html"
PRINCIPAL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html"
)
NOT_PRINCIPAL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"
)
SERVICES = "https://docs.aws.amazon.com/lambda/latest/dg/permissions-function-services.html"
ORGANIZATION = "https://docs.aws.amazon.com/lambda/latest/dg/permissions-function-organization.html"
URLS = "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
LAMBDA_1 = (
    "https://docs.aws.amazon.com/config/latest/developerguide/lambda-function-public-access-prohibited.html"
    " (Security Hub control Lambda.1 runs this rule)"
)

OWNER = "123456789012"
OTHER = "444455556666"
FN = f"arn:aws:lambda:us-east-2:{OWNER}:function:my-function"
INVOKE = "lambda:InvokeFunction"
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, action: Any = INVOKE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": FN, **extra}


def deny(principal: Any, action: Any = INVOKE, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Principal": principal, "Action": action, "Resource": FN, **extra}


def role(account: str, name: str = "app") -> Principal:
    return Principal.aws(f"arn:aws:iam::{account}:role/{name}")


def s3(source_arn: str | None = BUCKET, source_account: str | None = OWNER) -> Request:
    context = {}
    if source_arn:
        context["aws:SourceArn"] = source_arn
    if source_account:
        context["aws:SourceAccount"] = source_account
    return Request(Principal.service("s3.amazonaws.com"), INVOKE, context)


# The S3 example of the Lambda guide: bucket and account pinned.
S3_PINNED = policy(
    allow(
        {"Service": "s3.amazonaws.com"},
        Sid="s3",
        Condition={
            "StringEquals": {"AWS:SourceAccount": OWNER},
            "ArnLike": {"AWS:SourceArn": BUCKET},
        },
    )
)
S3_UNPINNED_ACCOUNT = policy(
    allow({"Service": "s3.amazonaws.com"}, Condition={"ArnLike": {"AWS:SourceArn": BUCKET}})
)
ORG = policy(
    allow(
        "*",
        Sid="PrincipalOrgIDExample",
        Condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5f"}},
    )
)
ACCOUNT_GRANT = policy(allow({"AWS": f"arn:aws:iam::{OTHER}:root"}))
URL_PUBLIC = policy(
    allow(
        "*",
        "lambda:InvokeFunctionUrl",
        Sid="FunctionURLAllowPublicAccess",
        Condition={"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    ),
    allow(
        "*",
        INVOKE,
        Sid="FunctionURLAllowInvokeAction",
        Condition={"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
    ),
)

CASES: list[tuple[str, str, Any, Request, Answer]] = [
    # --- Lambda guide: services, organizations, function URLs
    (SERVICES, "S3 from the pinned bucket and account", S3_PINNED, s3(), Answer.ALLOW),
    (SERVICES, "S3 from another bucket", S3_PINNED, s3("arn:aws:s3:::other"), Answer.NOT_ALLOWED),
    (
        SERVICES,
        "S3, the bucket now in another account",
        S3_PINNED,
        s3(BUCKET, OTHER),
        Answer.NOT_ALLOWED,
    ),
    (
        SERVICES,
        "S3 without SourceAccount in the request",
        S3_PINNED,
        s3(BUCKET, None),
        Answer.NOT_ALLOWED,
    ),
    (
        SERVICES,
        "SNS is not the service named",
        S3_PINNED,
        Request(
            Principal.service("sns.amazonaws.com"),
            INVOKE,
            {"aws:SourceArn": BUCKET, "aws:SourceAccount": OWNER},
        ),
        Answer.NOT_ALLOWED,
    ),
    (
        SERVICES,
        "S3 pinned grant gives no GetFunction",
        S3_PINNED,
        Request(
            Principal.service("s3.amazonaws.com"),
            "lambda:GetFunction",
            {"aws:SourceArn": BUCKET, "aws:SourceAccount": OWNER},
        ),
        Answer.NOT_ALLOWED,
    ),
    (
        LAMBDA_1,
        "S3 grant without AWS:SourceAccount: a re-created bucket in another account invokes",
        S3_UNPINNED_ACCOUNT,
        s3(BUCKET, OTHER),
        Answer.ALLOW,
    ),
    (
        ORGANIZATION,
        "a principal of the organization",
        ORG,
        Request(role(OTHER), INVOKE, {"aws:PrincipalOrgID": "o-a1b2c3d4e5f"}),
        Answer.ALLOW,
    ),
    (
        ORGANIZATION,
        "a principal of another organization",
        ORG,
        Request(role(OTHER), INVOKE, {"aws:PrincipalOrgID": "o-other"}),
        Answer.NOT_ALLOWED,
    ),
    (
        ORGANIZATION,
        "a principal in no organization",
        ORG,
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (ORGANIZATION, "a service carries no PrincipalOrgID", ORG, s3(), Answer.NOT_ALLOWED),
    (
        URLS,
        "public URL, AuthType NONE",
        URL_PUBLIC,
        Request(
            Principal.anonymous(),
            "lambda:InvokeFunctionUrl",
            {"lambda:FunctionUrlAuthType": "NONE"},
        ),
        Answer.ALLOW,
    ),
    (
        URLS,
        "public URL policy, the InvokeFunction half, through the URL",
        URL_PUBLIC,
        Request(Principal.anonymous(), INVOKE, {"lambda:InvokedViaFunctionUrl": True}),
        Answer.ALLOW,
    ),
    (
        URLS,
        "public URL policy does not allow a direct Invoke",
        URL_PUBLIC,
        Request(Principal.anonymous(), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        URLS,
        "public URL policy, AuthType AWS_IAM",
        URL_PUBLIC,
        Request(role(OTHER), "lambda:InvokeFunctionUrl", {"lambda:FunctionUrlAuthType": "AWS_IAM"}),
        Answer.NOT_ALLOWED,
    ),
    # --- Principal
    (
        PRINCIPAL,
        "an account grant covers a role of that account",
        ACCOUNT_GRANT,
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        "... and its root",
        ACCOUNT_GRANT,
        Request(Principal.root(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        "... and a session of a role of that account",
        ACCOUNT_GRANT,
        Request(Principal.aws(f"arn:aws:sts::{OTHER}:assumed-role/app/session-1"), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        "... not another account",
        ACCOUNT_GRANT,
        Request(role(OWNER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (PRINCIPAL, "... not a service", ACCOUNT_GRANT, s3(), Answer.NOT_ALLOWED),
    (
        PRINCIPAL,
        "an account id alone is the account",
        policy(allow({"AWS": OTHER})),
        Request(role(OTHER, "x"), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        "a role grant covers the role's sessions",
        policy(allow({"AWS": f"arn:aws:iam::{OTHER}:role/app"})),
        Request(Principal.aws(f"arn:aws:sts::{OTHER}:assumed-role/app/s"), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        "a role grant does not cover another role",
        policy(allow({"AWS": f"arn:aws:iam::{OTHER}:role/app"})),
        Request(role(OTHER, "other"), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        PRINCIPAL,
        '"*" is everyone, anonymous too',
        policy(allow("*")),
        Request(Principal.anonymous(), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        '{"AWS": "*"} is the same as "*"',
        policy(allow({"AWS": "*"})),
        Request(Principal.anonymous(), INVOKE),
        Answer.ALLOW,
    ),
    (PRINCIPAL, '"*" includes service principals', policy(allow("*")), s3(), Answer.ALLOW),
    (
        PRINCIPAL,
        "a partition is part of the account ARN",
        policy(allow({"AWS": f"arn:aws-cn:iam::{OTHER}:root"})),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        PRINCIPAL,
        "... and matches in its own partition",
        policy(allow({"AWS": f"arn:aws-cn:iam::{OTHER}:root"})),
        Request(Principal.aws(f"arn:aws-cn:iam::{OTHER}:role/app"), INVOKE),
        Answer.ALLOW,
    ),
    (
        PRINCIPAL,
        "a partial wildcard in Principal is not IAM: unknown",
        policy(allow({"AWS": f"arn:aws:iam::{OTHER}:role/*"})),
        Request(role(OTHER), INVOKE),
        Answer.UNKNOWN,
    ),
    (
        PRINCIPAL,
        "a Federated principal names no IAM, service or anonymous caller",
        policy(allow({"Federated": "cognito-identity.amazonaws.com"})),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    # --- evaluation logic
    (
        EVAL_LOGIC,
        "an explicit deny overrides an allow",
        policy(allow("*"), deny({"AWS": OTHER})),
        Request(role(OTHER), INVOKE),
        Answer.DENY,
    ),
    (
        EVAL_LOGIC,
        "no statement: implicit deny",
        policy(),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        EVAL_LOGIC,
        "an allow for another action does not allow",
        policy(allow({"AWS": OTHER}, "lambda:GetFunction")),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        EVAL_LOGIC,
        "Action globs, case-insensitive",
        policy(allow({"AWS": OTHER}, "LAMBDA:invoke*")),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        EVAL_LOGIC,
        "NotAction: every action but the listed",
        policy(allow({"AWS": OTHER}, NotAction=INVOKE, Action=None)),
        Request(role(OTHER), "lambda:GetFunction"),
        Answer.ALLOW,
    ),
    (
        EVAL_LOGIC,
        "NotAction: the listed action is not granted",
        policy(allow({"AWS": OTHER}, NotAction=INVOKE, Action=None)),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    # --- NotPrincipal
    (
        NOT_PRINCIPAL,
        "Deny with NotPrincipal naming the role only: the account is denied, so is the role",
        policy(
            allow("*"),
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": f"arn:aws:iam::{OTHER}:role/app"},
                "Action": INVOKE,
            },
        ),
        Request(role(OTHER), INVOKE),
        Answer.DENY,
    ),
    (
        NOT_PRINCIPAL,
        "Deny with NotPrincipal naming the role and its account: exempt",
        policy(
            allow("*"),
            {
                "Effect": "Deny",
                "NotPrincipal": {
                    "AWS": [f"arn:aws:iam::{OTHER}:role/app", f"arn:aws:iam::{OTHER}:root"]
                },
                "Action": INVOKE,
            },
        ),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        NOT_PRINCIPAL,
        "Deny with NotPrincipal: everyone else is denied",
        policy(
            allow("*"),
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                "Action": INVOKE,
            },
        ),
        Request(role(OWNER), INVOKE),
        Answer.DENY,
    ),
    # --- condition operators
    (
        OPERATORS,
        "negated operator, key absent: true",
        policy(allow("*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}})),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "ArnNotLike, key absent: true",
        policy(allow("*", Condition={"ArnNotLike": {"aws:SourceArn": BUCKET}})),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "positive operator, key absent: false",
        policy(allow("*", Condition={"ArnLike": {"aws:SourceArn": BUCKET}})),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "...IfExists, key absent: true",
        policy(allow("*", Condition={"ArnLikeIfExists": {"aws:SourceArn": BUCKET}})),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "...IfExists, key present: checked",
        policy(allow("*", Condition={"ArnLikeIfExists": {"aws:SourceArn": BUCKET}})),
        s3("arn:aws:s3:::other"),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "Null true: the key is absent",
        policy(allow("*", Condition={"Null": {"aws:SourceArn": "true"}})),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "Null true: present fails",
        policy(allow("*", Condition={"Null": {"aws:SourceArn": "true"}})),
        s3(),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "Null false: present",
        policy(allow("*", Condition={"Null": {"aws:SourceArn": "false"}})),
        s3(),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "StringEqualsIgnoreCase",
        policy(
            allow(
                "*",
                "lambda:InvokeFunctionUrl",
                Condition={"StringEqualsIgnoreCase": {"lambda:FunctionUrlAuthType": "none"}},
            )
        ),
        Request(
            Principal.anonymous(),
            "lambda:InvokeFunctionUrl",
            {"lambda:FunctionUrlAuthType": "NONE"},
        ),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "StringEquals is case-sensitive",
        policy(
            allow(
                "*",
                "lambda:InvokeFunctionUrl",
                Condition={"StringEquals": {"lambda:FunctionUrlAuthType": "none"}},
            )
        ),
        Request(
            Principal.anonymous(),
            "lambda:InvokeFunctionUrl",
            {"lambda:FunctionUrlAuthType": "NONE"},
        ),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "StringLike with * and ?",
        policy(
            allow("*", Condition={"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ap?"}})
        ),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "ArnLike: each ARN part matched on its own",
        policy(allow("*", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::amzn-*"}})),
        s3(),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "ArnEquals takes wildcards like ArnLike",
        policy(allow("*", Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::amzn-*"}})),
        s3(),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "ArnLike: a wildcard in one part does not cross a colon",
        policy(allow("*", Condition={"ArnLike": {"aws:SourceArn": "arn:*:amzn-s3-demo-bucket"}})),
        s3(),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "Bool compares true/false",
        policy(allow("*", Condition={"Bool": {"lambda:InvokedViaFunctionUrl": "false"}})),
        Request(role(OTHER), INVOKE, {"lambda:InvokedViaFunctionUrl": False}),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "Bool with the key absent: false",
        policy(allow("*", Condition={"Bool": {"lambda:InvokedViaFunctionUrl": "true"}})),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "condition keys are case-insensitive",
        policy(allow("*", Condition={"StringEquals": {"AWS:SOURCEACCOUNT": OWNER}})),
        s3(),
        Answer.ALLOW,
    ),
    (
        OPERATORS,
        "an operator it does not model: unknown",
        policy(allow("*", Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}})),
        Request(role(OTHER), INVOKE),
        Answer.UNKNOWN,
    ),
    (
        OPERATORS,
        "a key it does not model: unknown",
        policy(allow("*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})),
        Request(role(OTHER), INVOKE),
        Answer.UNKNOWN,
    ),
    (
        OPERATORS,
        "an unmodelled key in a StringEquals: unknown",
        policy(allow("*", Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})),
        Request(role(OTHER), INVOKE),
        Answer.UNKNOWN,
    ),
    (
        OPERATORS,
        "... but a false known condition beside it decides",
        policy(
            allow(
                "*",
                Condition={
                    "StringEquals": {"aws:SourceVpc": "vpc-1", "aws:PrincipalAccount": OWNER}
                },
            )
        ),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        OPERATORS,
        "policy variables: unknown",
        policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": "${aws:username}"}})),
        Request(role(OTHER), INVOKE),
        Answer.UNKNOWN,
    ),
    (
        OPERATORS,
        "an unknown Deny with an allow: unknown",
        policy(allow("*"), deny("*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})),
        Request(role(OTHER), INVOKE),
        Answer.UNKNOWN,
    ),
    (
        OPERATORS,
        "an unknown Deny with nothing allowed: not allowed either way",
        policy(deny("*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    # --- several values, several keys
    (
        MULTI_VALUE,
        "several values for a key: OR",
        policy(allow("*", Condition={"StringEquals": {"aws:SourceAccount": [OTHER, OWNER]}})),
        s3(),
        Answer.ALLOW,
    ),
    (
        MULTI_VALUE,
        "several values, negated operator: NOR",
        policy(allow("*", Condition={"StringNotEquals": {"aws:SourceAccount": [OTHER, OWNER]}})),
        s3(),
        Answer.NOT_ALLOWED,
    ),
    (
        MULTI_VALUE,
        "several keys: AND",
        policy(
            allow(
                "*",
                Condition={
                    "StringEquals": {
                        "aws:SourceAccount": OWNER,
                        "aws:PrincipalServiceName": "sns.amazonaws.com",
                    }
                },
            )
        ),
        s3(),
        Answer.NOT_ALLOWED,
    ),
    (
        MULTI_VALUE,
        "several operators: AND",
        policy(
            allow(
                "*",
                Condition={
                    "StringEquals": {"aws:SourceAccount": OWNER},
                    "ArnLike": {"aws:SourceArn": "arn:aws:s3:::other"},
                },
            )
        ),
        s3(),
        Answer.NOT_ALLOWED,
    ),
    (
        MULTI_VALUE,
        "ForAllValues with the key absent: true",
        policy(
            allow("*", Condition={"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ["o-1"]}})
        ),
        Request(role(OTHER), INVOKE),
        Answer.ALLOW,
    ),
    (
        MULTI_VALUE,
        "ForAnyValue with the key absent: false",
        policy(allow("*", Condition={"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": ["o-1"]}})),
        Request(role(OTHER), INVOKE),
        Answer.NOT_ALLOWED,
    ),
    (
        MULTI_VALUE,
        "ForAnyValue: one value matches",
        policy(
            allow(
                "*", Condition={"ForAnyValue:StringLike": {"aws:PrincipalOrgID": ["o-1*", "o-9"]}}
            )
        ),
        Request(role(OTHER), INVOKE, {"aws:PrincipalOrgID": "o-12"}),
        Answer.ALLOW,
    ),
    (
        MULTI_VALUE,
        "ForAllValues: every value must match",
        policy(
            allow("*", Condition={"ForAllValues:StringEquals": {"aws:PrincipalOrgID": ["o-1"]}})
        ),
        Request(role(OTHER), INVOKE, {"aws:PrincipalOrgID": "o-2"}),
        Answer.NOT_ALLOWED,
    ),
]


@pytest.mark.parametrize(
    ("source", "case", "document", "request_", "expected"),
    CASES,
    ids=[c[1] for c in CASES],
)
def test_documented_case(
    source: str, case: str, document: Any, request_: Request, expected: Answer
) -> None:
    for statement in document["Statement"]:
        if statement.get("Action", "") is None:
            del statement["Action"]
    got = evaluate(document, request_)
    assert got.answer is expected, f"{case} ({source}): {got.reason}"


def test_the_deciding_statements_are_named() -> None:
    got = evaluate(
        policy(allow("*", Sid="open"), deny({"AWS": OTHER}, Sid="no")), Request(role(OTHER), INVOKE)
    )
    assert (got.answer, got.statements) == (Answer.DENY, ("no",))


def test_a_resource_is_checked_when_the_request_names_one() -> None:
    document = policy(allow("*"))
    other = Request(role(OTHER), INVOKE, resource=FN + "-other")
    same = Request(role(OTHER), INVOKE, resource=FN)
    assert evaluate(document, other).answer is Answer.NOT_ALLOWED
    assert evaluate(document, same).answer is Answer.ALLOW


def test_a_malformed_policy_is_unknown_never_an_exception() -> None:
    assert (
        evaluate({"Statement": [{"Effect": "Maybe"}]}, Request(role(OTHER), INVOKE)).answer
        is Answer.UNKNOWN
    )
