"""What the remediation must leave behind, written out by hand (never computed by the rewrite
under test), and who may invoke afterwards, checked with the policy evaluator.

`messy_policy(resource)` rewritten under `REMEDIATION_CONFIG` (tests.support.allowlists):
- rule `app` (`app-*`, `BlogFunction`): allows the S3 trigger of the example bucket in our
  account and the deployer role;
- rule `orders` (`orders-*`): allows the other account and the deployer, `deny_others`.
"""

from __future__ import annotations

from typing import Any

from lambdas.core.evaluate import Answer, Principal, Request, evaluate
from tests.support.policies import STRANGER, statement
from tests.support.records import ACCOUNT, BUCKET_ARN, DEPLOYER, OTHER_ACCOUNT

INVOKE = "lambda:InvokeFunction"


def _kept_tail(resource: str) -> list[dict[str, Any]]:
    """The Deny and the non-invoke grant of the messy policy: kept as they are."""
    return [
        {
            "Sid": "deny-old",
            "Effect": "Deny",
            "Principal": {"AWS": STRANGER},
            "Action": INVOKE,
            "Resource": resource,
        },
        {
            "Sid": "read",
            "Effect": "Allow",
            "Principal": {"AWS": STRANGER},
            "Action": "lambda:GetFunction",
            "Resource": resource,
        },
    ]


def app_rewritten(resource: str) -> dict[str, Any]:
    """Rule `app`: `public` and `partner` removed; the S3 grant gains the bucket and account
    its allow entry names (confused-deputy protection); `mixed` narrowed to the deployer."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            statement(
                "s3",
                {"Service": "s3.amazonaws.com"},
                resource,
                Condition={
                    "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
                    "StringEquals": {"AWS:SourceAccount": ACCOUNT},
                },
            ),
            statement("deployer", {"AWS": DEPLOYER}, resource),
            statement("mixed", {"AWS": DEPLOYER}, resource),
            *_kept_tail(resource),
        ],
    }


def orders_rewritten(resource: str) -> dict[str, Any]:
    """Rule `orders`: `public` and the S3 grant removed (no service is allowed); `partner`
    kept (its account is allowed); `mixed` narrowed; one Deny for everyone else added."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            statement("deployer", {"AWS": DEPLOYER}, resource),
            statement("partner", {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, resource),
            statement("mixed", {"AWS": DEPLOYER}, resource),
            *_kept_tail(resource),
            {
                "Sid": "InvokeAuditDenyOthers",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["lambda:InvokeFunction", "lambda:InvokeAsync"],
                "Resource": resource,
                # Function-URL invocations are left to the URL's own grants.
                "Condition": {
                    "ArnNotLikeIfExists": {"aws:PrincipalArn": [DEPLOYER]},
                    "StringNotEqualsIfExists": {"aws:PrincipalAccount": [OTHER_ACCOUNT]},
                    "BoolIfExists": {"lambda:InvokedViaFunctionUrl": "false"},
                },
            },
        ],
    }


def rewritten(resource: str) -> dict[str, Any]:
    """The golden rewrite of `messy_policy(resource)` for the rule its name falls under."""
    name = resource.split(":function:")[1].split(":")[0]
    if name.startswith("orders-"):
        return orders_rewritten(resource)
    assert name.startswith("app-") or name == "BlogFunction", name
    return app_rewritten(resource)


def _s3(bucket: str, account: str) -> Request:
    context = {"aws:SourceArn": bucket, "aws:SourceAccount": account}
    return Request(Principal.service("s3.amazonaws.com"), INVOKE, context)


# (who, request, may invoke under `app`, may invoke under `orders`)
_CALLERS = [
    ("the deployer", Request(Principal.aws(DEPLOYER), INVOKE), True, True),
    ("anyone", Request(Principal.anonymous(), INVOKE), False, False),
    ("the stranger", Request(Principal.aws(STRANGER), INVOKE), False, False),
    (
        "the other account",
        Request(Principal.aws(f"arn:aws:iam::{OTHER_ACCOUNT}:role/partner"), INVOKE),
        False,
        True,
    ),
    ("S3 for the example bucket", _s3(BUCKET_ARN, ACCOUNT), True, False),
    ("S3 for another bucket", _s3("arn:aws:s3:::otherbucket", ACCOUNT), False, False),
    ("S3 for the bucket, another account", _s3(BUCKET_ARN, OTHER_ACCOUNT), False, False),
]


def who_may_invoke_problems(resource: str, document: dict[str, Any] | None) -> list[str]:
    """Callers the evaluator finds let in although the rule does not allow them, or kept out
    although it does (an empty list when the policy does what the rule says)."""
    orders = resource.split(":function:")[1].startswith("orders-")
    problems = []
    for who, request, app_allows, orders_allows in _CALLERS:
        expected = orders_allows if orders else app_allows
        answer = evaluate(document, request).answer
        if (answer is Answer.ALLOW) != expected:
            problems.append(f"{resource}: {who} gets {answer.value}")
    return problems
