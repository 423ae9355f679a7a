"""Every rewrite rule of DESIGN.md: what stays, what goes, what is narrowed or tightened."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.core.rewrite import (
    DENY_SID,
    PolicyRewrite,
    deny_others_statement,
    grants_invoke,
    parse_policy,
    rewrite_policy,
)
from models.allowlist import Rule
from models.exceptions import RewriteError
from models.policy import PolicyStatementModel
from tests.support.allowlists import make_rule
from tests.support.records import ACCOUNT, BUCKET_ARN, FOREIGN_ACCOUNT, PARTNER_ACCOUNT

pytestmark = pytest.mark.unit

FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:BlogFunction"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
INTRUDER = f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"

RULE_YAML = f"""
rules:
  - name: blog
    functions: [BlogFunction]
    deny_others: {{deny}}
    allow:
      - service: s3.amazonaws.com
        source_arn: "{BUCKET_ARN}"
        source_account: "{ACCOUNT}"
      - service: sns.amazonaws.com
      - principal: "{DEPLOYER}"
      - account: "{PARTNER_ACCOUNT}"
"""
RULE = make_rule(RULE_YAML.replace("{deny}", "false"))
DENY_RULE = make_rule(RULE_YAML.replace("{deny}", "true"))


def stmt(
    principal: Any = None,
    *,
    sid: str = "S",
    effect: str = "Allow",
    action: Any = "lambda:InvokeFunction",
    condition: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": effect}
    if principal is not None:
        statement["Principal"] = principal
    if action is not None:
        statement["Action"] = action
    statement["Resource"] = FN
    if condition is not None:
        statement["Condition"] = condition
    statement.update(extra)
    return statement


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}


def run(policy: Any, rule: Rule = RULE, resource: str = FN) -> PolicyRewrite:
    result = rewrite_policy(policy, rule, resource)
    # every rewrite is idempotent
    if result.policy is not None:
        again = rewrite_policy(result.policy, rule, resource)
        assert again.policy == result.policy
        assert not again.changed, again.changes
    return result


def kinds(result: PolicyRewrite) -> dict[str | None, str]:
    return {c.sid: c.kind for c in result.changes}


def statements(result: PolicyRewrite) -> list[dict[str, Any]]:
    assert result.policy is not None
    return result.policy["Statement"]


def by_sid(result: PolicyRewrite) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in statements(result)}


# --- what stays as it is --------------------------------------------------------------------


def test_deny_statements_stay():
    deny = stmt("*", effect="Deny", condition={"StringEquals": {"aws:PrincipalAccount": "1"}})
    result = run(doc(deny))
    assert statements(result) == [deny]
    assert kinds(result) == {"S": "kept"}
    assert not result.changed


def test_deny_with_not_principal_stays():
    deny = stmt(None, effect="Deny", NotPrincipal={"AWS": DEPLOYER})
    assert statements(run(doc(deny))) == [deny]


@pytest.mark.parametrize(
    "action", ["lambda:GetFunction", ["lambda:GetPolicy", "lambda:GetFunction"], "s3:*"]
)
def test_statements_that_grant_no_invoke_stay(action):
    statement = stmt("*", action=action)
    result = run(doc(statement))
    assert statements(result) == [statement]
    assert result.changes[0].kind == "kept"


def test_allow_is_kept_when_every_principal_is_covered():
    statement = stmt({"AWS": [DEPLOYER, f"arn:aws:iam::{PARTNER_ACCOUNT}:role/any"]})
    result = run(doc(statement))
    assert statements(result) == [statement]
    assert kinds(result) == {"S": "kept"}
    assert not result.changed


def test_version_id_and_extra_keys_are_preserved():
    policy = doc(stmt({"AWS": DEPLOYER}, Extra="kept")) | {"Custom": 1}
    result = run(policy)
    assert result.policy is not None
    assert result.policy["Version"] == "2012-10-17"
    assert result.policy["Id"] == "default"
    assert result.policy["Custom"] == 1
    assert statements(result)[0]["Extra"] == "kept"


# --- removed and narrowed -------------------------------------------------------------------


def test_allow_is_removed_when_no_principal_is_covered():
    result = run(doc(stmt({"AWS": INTRUDER}, sid="bad"), stmt({"AWS": DEPLOYER}, sid="good")))
    assert [s["Sid"] for s in statements(result)] == ["good"]
    change = result.changes[0]
    assert (change.kind, change.sid) == ("removed", "bad")
    assert change.principals == (INTRUDER,)
    assert result.changed


def test_allow_is_narrowed_to_the_covered_principals():
    result = run(doc(stmt({"AWS": [DEPLOYER, INTRUDER], "Service": "sqs.amazonaws.com"})))
    assert statements(result) == [stmt({"AWS": DEPLOYER})]
    change = result.changes[0]
    assert change.kind == "narrowed"
    assert set(change.principals) == {INTRUDER, "Service:sqs.amazonaws.com"}


@pytest.mark.parametrize("principal", [{"Federated": "cognito-identity.amazonaws.com"}, None])
def test_a_grant_that_lets_nobody_invoke_is_kept(principal):
    # A Federated principal names no IAM, service or anonymous caller; no Principal, nobody.
    statement = stmt(principal)
    result = run(doc(statement))
    assert statements(result) == [statement]
    assert kinds(result) == {"S": "kept"}


# The rule's callers, as the narrowing of a grant to everyone spells them: the principals
# and accounts in one statement, each service with its confused-deputy conditions.
S3_PINS = {
    "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
    "StringEquals": {"AWS:SourceAccount": ACCOUNT},
}
ALLOWED_AWS = {"AWS": [DEPLOYER, f"arn:aws:iam::{PARTNER_ACCOUNT}:root"]}


def test_not_principal_allow_is_narrowed_to_the_allowed_callers():
    result = run(doc(stmt(None, NotPrincipal={"AWS": INTRUDER}), stmt({"AWS": DEPLOYER}, sid="x")))
    # the deployer keeps its own grant ("x"): the narrowed one does not repeat it
    assert statements(result) == [
        stmt({"AWS": f"arn:aws:iam::{PARTNER_ACCOUNT}:root"}),
        stmt({"Service": "s3.amazonaws.com"}, sid="S-1", condition=S3_PINS),
        stmt({"Service": "sns.amazonaws.com"}, sid="S-2"),
        stmt({"AWS": DEPLOYER}, sid="x"),
    ]
    assert kinds(result) == {"S": "tightened", "x": "kept"}


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_unconditioned_wildcard_is_narrowed_to_the_allowed_callers(principal):
    # Everyone could invoke: the allowed callers still can, nobody else.
    result = run(doc(stmt(principal)))
    assert statements(result) == [
        stmt(ALLOWED_AWS),
        stmt({"Service": "s3.amazonaws.com"}, sid="S-1", condition=S3_PINS),
        stmt({"Service": "sns.amazonaws.com"}, sid="S-2"),
    ]
    change = result.changes[0]
    assert (change.kind, change.principals) == ("tightened", ("*",))


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:PrincipalAccount": PARTNER_ACCOUNT}},
        {"StringEquals": {"aws:PrincipalAccount": [PARTNER_ACCOUNT]}},
        {"ArnEquals": {"aws:PrincipalArn": DEPLOYER}},
        {"StringLike": {"aws:PrincipalArn": [DEPLOYER, f"arn:aws:iam::{PARTNER_ACCOUNT}:root"]}},
        {
            "StringEquals": {"aws:PrincipalAccount": PARTNER_ACCOUNT},
            "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"},
        },
    ],
)
def test_wildcard_pinned_to_allowed_principals_is_kept(condition):
    statement = stmt("*", condition=condition)
    result = run(doc(statement))
    assert statements(result) == [statement]
    assert kinds(result) == {"S": "kept"}


def test_wildcard_pinned_by_source_arn_only_becomes_the_service_with_source_account():
    # An S3 bucket ARN carries no account: `*` + SourceArn is a confused-deputy hole
    # (Security Hub Lambda.1). It becomes the allowed service, with AWS:SourceAccount.
    condition = {"ArnLike": {"AWS:SourceArn": BUCKET_ARN}}
    result = run(doc(stmt("*", condition=condition)))
    assert statements(result) == [
        stmt({"Service": "s3.amazonaws.com"}, condition=S3_PINS),
        # sns is allowed from any source: it keeps what it had, the bucket as source
        stmt({"Service": "sns.amazonaws.com"}, sid="S-1", condition=condition),
    ]
    assert result.changes[0].kind == "tightened"


def test_bounded_wildcard_is_narrowed_never_removed():
    # `*` for the sources of the owner's account: S3 and SNS notifications of the account
    # keep invoking; nobody else can.
    condition = {"StringEquals": {"AWS:SourceAccount": ACCOUNT}}
    result = run(doc(stmt("*", condition=condition)))
    assert statements(result) == [
        stmt(
            {"Service": "s3.amazonaws.com"},
            condition={
                "StringEquals": {"AWS:SourceAccount": ACCOUNT},
                "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
            },
        ),
        stmt({"Service": "sns.amazonaws.com"}, sid="S-1", condition=condition),
    ]


def test_wildcard_for_an_organization_is_narrowed_to_its_allowed_members():
    condition = {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    result = run(doc(stmt("*", condition=condition)))
    # services carry no PrincipalOrgID: only the principals and accounts remain
    assert statements(result) == [stmt(ALLOWED_AWS, condition=condition)]


@pytest.mark.parametrize(
    "condition",
    [
        {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::otherbucket"}},
        {"StringEquals": {"aws:PrincipalAccount": FOREIGN_ACCOUNT}},
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/other-*"}},
        {"ArnEquals": {"aws:PrincipalArn": INTRUDER}},
    ],
)
def test_wildcard_that_lets_in_no_allowed_caller_is_removed(condition):
    # ...but sns, allowed from any source, keeps a grant pinned to another bucket
    result = rewrite_policy(doc(stmt("*", condition=condition)), RULE, FN)
    remaining = statements(result) if result.policy else []
    assert all(s["Principal"] == {"Service": "sns.amazonaws.com"} for s in remaining)
    if "SourceArn" not in str(condition):
        assert result.policy is None
        assert result.changes[0].kind == "removed"


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEqualsIfExists": {"aws:PrincipalAccount": PARTNER_ACCOUNT}},
        {"ArnLikeIfExists": {"AWS:SourceArn": BUCKET_ARN}},
        {"StringNotEquals": {"aws:PrincipalAccount": FOREIGN_ACCOUNT}},
        {"Bool": {"aws:SecureTransport": "true"}},
    ],
)
def test_wildcard_not_pinned_keeps_its_conditions_when_narrowed(condition):
    result = run(doc(stmt("*", condition=condition)))
    out = statements(result)
    assert all(s["Principal"] != "*" for s in out)
    assert all(
        s["Condition"][op] == condition[op] for s in out for op in condition if op in s["Condition"]
    )
    assert result.changes[0].kind in ("narrowed", "tightened")


# --- service grants and confused-deputy conditions ------------------------------------------


def test_service_grant_gains_source_account_and_source_arn():
    result = run(doc(stmt({"Service": "s3.amazonaws.com"})))
    (statement,) = statements(result)
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    change = result.changes[0]
    assert change.kind == "tightened"
    assert "AWS:SourceArn" in change.detail and "AWS:SourceAccount" in change.detail


def test_service_grant_gains_only_what_it_lacks():
    condition = {"ArnLike": {"AWS:SourceArn": BUCKET_ARN}}
    (statement,) = statements(run(doc(stmt({"Service": "s3.amazonaws.com"}, condition=condition))))
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }


def test_service_grant_with_the_owners_conditions_is_kept():
    condition = {
        "StringEquals": {"aws:sourceaccount": ACCOUNT},
        "ArnEquals": {"aws:sourcearn": BUCKET_ARN},
    }
    statement = stmt({"Service": "s3.amazonaws.com"}, condition=condition)
    result = run(doc(statement))
    assert statements(result) == [statement]
    assert kinds(result) == {"S": "kept"}


def test_service_allowed_without_sources_needs_no_conditions():
    statement = stmt({"Service": "sns.amazonaws.com"})
    assert statements(run(doc(statement))) == [statement]


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"AWS:SourceAccount": FOREIGN_ACCOUNT}},
        {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::attackerbucket"}},
    ],
)
def test_service_grant_with_a_foreign_source_is_removed(condition):
    result = run(doc(stmt({"Service": "s3.amazonaws.com"}, condition=condition)))
    assert result.policy is None
    assert result.changes[0].kind == "removed"
    assert result.changes[0].principals == ("Service:s3.amazonaws.com",)


@pytest.mark.parametrize(
    ("condition", "added"),
    [
        (
            {"ArnLike": {"AWS:SourceArn": [BUCKET_ARN, "arn:aws:s3:::attackerbucket"]}},
            {
                "ArnEquals": {"AWS:SourceArn": BUCKET_ARN},
                "StringEquals": {"AWS:SourceAccount": ACCOUNT},
            },
        ),
        (
            {"StringEquals": {"AWS:SourceAccount": [ACCOUNT, FOREIGN_ACCOUNT]}},
            {
                "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
                "StringLike": {"AWS:SourceAccount": ACCOUNT},
            },
        ),
    ],
)
def test_service_grant_partly_foreign_is_narrowed_to_the_allowed_source(condition, added):
    # The pin is ANDed in under another operator when the grant's own operator holds the key.
    result = run(doc(stmt({"Service": "s3.amazonaws.com"}, condition=condition)))
    assert statements(result) == [
        stmt({"Service": "s3.amazonaws.com"}, condition={**condition, **added})
    ]
    assert result.changes[0].kind == "tightened"


def test_service_not_on_the_allowlist_is_removed():
    result = run(doc(stmt({"Service": "events.amazonaws.com"})))
    assert result.policy is None


def test_several_allowed_sources_of_one_service():
    rule = make_rule(
        """
        rules:
          - name: r
            functions: [f]
            allow:
              - {service: s3.amazonaws.com, source_arn: "arn:aws:s3:::a", source_account: "123456789012"}
              - {service: s3.amazonaws.com, source_arn: "arn:aws:s3:::b", source_account: "123456789012"}
        """
    )
    result = run(doc(stmt({"Service": "s3.amazonaws.com"})), rule)
    (statement,) = statements(result)
    assert statement["Condition"]["ArnLike"] == {
        "AWS:SourceArn": ["arn:aws:s3:::a", "arn:aws:s3:::b"]
    }
    assert statement["Condition"]["StringEquals"] == {"AWS:SourceAccount": ACCOUNT}
    # a grant pinned to one of them, or to both, is covered
    for pinned in ("arn:aws:s3:::b", ["arn:aws:s3:::a", "arn:aws:s3:::b"]):
        condition = {"ArnLike": {"AWS:SourceArn": pinned}}
        kept = run(doc(stmt({"Service": "s3.amazonaws.com"}, condition=condition)), rule)
        assert kinds(kept)["S"] == "tightened"  # SourceAccount added
        assert statements(kept)[0]["Condition"]["ArnLike"] == {"AWS:SourceArn": pinned}
    # one pinned to an unlisted bucket as well is narrowed to the listed one
    condition = {"ArnLike": {"AWS:SourceArn": ["arn:aws:s3:::a", "arn:aws:s3:::c"]}}
    narrowed = run(doc(stmt({"Service": "s3.amazonaws.com"}, condition=condition)), rule)
    assert statements(narrowed)[0]["Condition"] == {
        "ArnLike": {"AWS:SourceArn": ["arn:aws:s3:::a", "arn:aws:s3:::c"]},
        "ArnEquals": {"AWS:SourceArn": ["arn:aws:s3:::a", "arn:aws:s3:::b"]},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }


def test_glob_source_arn_is_carried_into_the_condition():
    rule = make_rule(
        """
        rules:
          - name: r
            functions: [f]
            allow:
              - {service: events.amazonaws.com, source_arn: "arn:aws:events:*:123456789012:rule/app-*"}
        """
    )
    result = run(doc(stmt({"Service": "events.amazonaws.com"})), rule)
    assert statements(result)[0]["Condition"] == {
        "ArnLike": {"AWS:SourceArn": "arn:aws:events:*:123456789012:rule/app-*"}
    }
    narrower = {"ArnLike": {"AWS:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/app-1"}}
    kept = run(doc(stmt({"Service": "events.amazonaws.com"}, condition=narrower)), rule)
    assert kinds(kept) == {"S": "kept"}


def test_multi_principal_statement_is_split_when_tightening():
    statement = stmt({"Service": ["s3.amazonaws.com", "sns.amazonaws.com"], "AWS": INTRUDER})
    result = run(doc(statement))
    out = statements(result)
    # the principals that keep the grant as it is stay in the statement; the others follow
    assert [s["Sid"] for s in out] == ["S", "S-1"]
    sns, s3 = out
    assert s3["Principal"] == {"Service": "s3.amazonaws.com"}
    assert s3["Condition"] == {
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }
    assert sns["Principal"] == {"Service": "sns.amazonaws.com"}
    assert "Condition" not in sns  # nothing to add: no empty Condition block
    change = result.changes[0]
    assert change.kind == "tightened"
    assert change.principals == ("Service:s3.amazonaws.com", INTRUDER)
    assert "confused-deputy conditions added" in change.detail


def test_multi_principal_split_keeps_existing_conditions():
    condition = {"Bool": {"aws:SecureTransport": "true"}}
    statement = stmt({"Service": ["s3.amazonaws.com", "sns.amazonaws.com"]}, condition=condition)
    sns, s3 = statements(run(doc(statement)))
    assert s3["Condition"]["Bool"] == condition["Bool"]
    assert sns["Condition"] == condition


def test_single_kept_principal_is_narrowed_and_tightened_in_place():
    result = run(doc(stmt({"Service": ["s3.amazonaws.com", "sqs.amazonaws.com"]})))
    (statement,) = statements(result)
    assert statement["Sid"] == "S"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert "AWS:SourceArn" in statement["Condition"]["ArnLike"]


def test_split_without_sid():
    statement = stmt({"Service": ["s3.amazonaws.com", "sns.amazonaws.com"]})
    del statement["Sid"]
    assert [s["Sid"] for s in statements(run(doc(statement)))] == ["Stmt-1", "Stmt-2"]


def test_split_statements_never_reuse_an_existing_sid():
    taken = stmt(
        {"Service": "s3.amazonaws.com"},
        condition={
            "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
            "StringEquals": {"AWS:SourceAccount": ACCOUNT},
        },
    )
    taken["Sid"] = "S-1"
    statement = stmt({"Service": ["s3.amazonaws.com", "sns.amazonaws.com"]})
    result = run(doc(taken, statement))
    sids = [s["Sid"] for s in statements(result)]
    # s3 from the bucket is granted by "S-1" already: "S" keeps sns only
    assert sids == ["S-1", "S"]
    assert len(set(sids)) == len(sids)
    assert not run(result.policy).changed


# --- function URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "condition"),
    [
        ("lambda:InvokeFunctionUrl", {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}),
        ("lambda:InvokeFunction", {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}),
    ],
)
def test_function_url_grants_are_reported_not_removed(action, condition):
    statement = stmt("*", action=action, condition=condition)
    result = run(doc(statement))
    assert statements(result) == [statement]
    change = result.changes[0]
    assert change.kind == "reported"
    assert change.principals == ("*",)
    assert not result.changed


# --- principals written as account ids ------------------------------------------------------


def test_account_id_principal_is_the_accounts_root():
    result = run(
        doc(stmt({"AWS": PARTNER_ACCOUNT}, sid="a"), stmt({"AWS": FOREIGN_ACCOUNT}, sid="b"))
    )
    assert [s["Sid"] for s in statements(result)] == ["a"]
    assert kinds(result) == {"a": "kept", "b": "removed"}


def test_a_root_principal_entry_is_the_root_user_not_the_account():
    # `principal: ...:root` allows the account's root user (as `decide` judges it); a grant to
    # the whole account narrows to it with aws:PrincipalArn. `account:` allows the account.
    root = f"arn:aws:iam::{PARTNER_ACCOUNT}:root"
    rule = make_rule(
        f"""
        rules:
          - name: r
            functions: [f]
            allow: [{{principal: "{root}"}}]
        """
    )
    result = run(doc(stmt({"AWS": PARTNER_ACCOUNT})), rule)
    assert statements(result) == [
        stmt({"AWS": PARTNER_ACCOUNT}, condition={"ArnLike": {"aws:PrincipalArn": root}})
    ]
    assert kinds(result) == {"S": "tightened"}


def test_root_grant_narrows_to_the_roles_of_that_account_the_rule_names():
    rule = make_rule(
        f"""
        rules:
          - name: r
            functions: [f]
            allow: [{{principal: "arn:aws:iam::{PARTNER_ACCOUNT}:role/ci"}}]
        """
    )
    result = run(doc(stmt({"AWS": f"arn:aws:iam::{PARTNER_ACCOUNT}:root"})), rule)
    # the grant to the whole account narrows to the one role the rule names in it
    assert result.policy is not None
    (statement,) = result.policy["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{PARTNER_ACCOUNT}:role/ci"}
    assert [c.kind for c in result.changes] == ["narrowed"]
    assert result.changes[0].principals == (f"arn:aws:iam::{PARTNER_ACCOUNT}:root",)
    assert not run(result.policy, rule).changed


def test_principal_globs_cover_matching_roles():
    rule = make_rule(
        f"""
        rules:
          - name: r
            functions: [f]
            allow: [{{principal: "arn:aws:iam::{ACCOUNT}:role/ci-*"}}]
        """
    )
    result = run(
        doc(
            stmt({"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci-build"}, sid="a"),
            stmt({"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"}, sid="b"),
        ),
        rule,
    )
    assert kinds(result) == {"a": "kept", "b": "removed"}


# --- action forms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "invoke"),
    [
        ({"Action": "lambda:InvokeFunction"}, True),
        ({"Action": "lambda:invokefunction"}, True),
        ({"Action": "lambda:*"}, True),
        ({"Action": "*"}, True),
        ({"Action": "lambda:Invoke*"}, True),
        ({"Action": "lambda:Inv*Function"}, True),
        ({"Action": ["lambda:GetFunction", "lambda:InvokeFunction"]}, True),
        ({"Action": ["lambda:GetFunction", "lambda:GetPolicy"]}, False),
        ({"Action": []}, False),
        ({"Action": "lambda:InvokeFunctionUrl"}, False),
        ({"NotAction": "lambda:GetPolicy"}, True),
        # everything but InvokeFunction still includes InvokeAsync, which runs the code too
        ({"NotAction": ["lambda:InvokeFunction"]}, True),
        ({"NotAction": ["lambda:InvokeFunction", "lambda:InvokeAsync"]}, False),
        ({"Action": "lambda:InvokeAsync"}, True),
        ({"NotAction": "lambda:*"}, False),
        ({"NotAction": []}, True),
        ({}, False),
    ],
)
def test_grants_invoke(statement, invoke):
    model = PolicyStatementModel.model_validate({"Effect": "Allow", "Principal": "*", **statement})
    assert grants_invoke(model) is invoke


@pytest.mark.parametrize(
    "action", ["lambda:*", "*", "lambda:Invoke*", ["lambda:GetFunction", "lambda:InvokeFunction"]]
)
def test_every_invoke_action_form_is_rewritten(action):
    result = run(doc(stmt({"AWS": [DEPLOYER, INTRUDER]}, action=action)))
    kept, rest = statements(result)[:2]
    assert kept["Principal"] == {"AWS": DEPLOYER}
    assert kept["Action"] == action
    # the intruder loses invoke, and only invoke
    assert rest["Principal"] == {"AWS": INTRUDER}
    rest_actions = rest["Action"] if isinstance(rest["Action"], list) else [rest["Action"]]
    assert "lambda:InvokeFunction" not in rest_actions
    assert "lambda:InvokeAsync" not in rest_actions
    assert rest_actions


def test_a_mixed_statement_loses_only_its_invoke_actions():
    statement = stmt({"AWS": INTRUDER}, action=["lambda:GetFunction", "lambda:InvokeFunction"])
    result = run(doc(statement))
    assert statements(result) == [stmt({"AWS": INTRUDER}, action="lambda:GetFunction")]
    assert result.changes[0].kind == "removed"
    assert "other actions stay" in result.changes[0].detail


def test_lambda_star_spells_out_what_is_left():
    result = run(doc(stmt({"AWS": INTRUDER}, action="lambda:*")))
    rest = statements(result)[0]
    assert "lambda:GetFunction" in rest["Action"] and "lambda:UpdateFunctionCode" in rest["Action"]
    assert not {"lambda:InvokeFunction", "lambda:InvokeAsync"} & set(rest["Action"])


def test_not_action_invoke_grant_is_rewritten():
    statement = stmt({"AWS": INTRUDER}, action=None, NotAction="lambda:GetPolicy")
    out = statements(run(doc(statement)))
    # every action but GetPolicy, and now but invoke too
    assert out[0] == stmt(
        {"AWS": INTRUDER},
        action=None,
        NotAction=["lambda:GetPolicy", "lambda:InvokeFunction", "lambda:InvokeAsync"],
    )
    # it also granted InvokeFunctionUrl: invocations through a function URL are decided as
    # before, so the grant of InvokeFunction through the URL stays
    assert out[1] == stmt(
        {"AWS": INTRUDER},
        sid="S-1",
        condition={"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
    )


# --- deny_others ----------------------------------------------------------------------------


def test_deny_others_adds_exactly_one_deny():
    result = run(doc(stmt({"AWS": DEPLOYER})), DENY_RULE)
    denies = [s for s in statements(result) if s.get("Sid") == DENY_SID]
    assert len(denies) == 1
    deny = denies[0]
    assert statements(result)[-1] is deny
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    # InvokeAsync runs the code too
    assert deny["Action"] == ["lambda:InvokeFunction", "lambda:InvokeAsync"]
    assert deny["Resource"] == FN
    assert deny["Condition"] == {
        "ArnNotLikeIfExists": {"aws:PrincipalArn": [DEPLOYER], "aws:SourceArn": [BUCKET_ARN]},
        "StringNotEqualsIfExists": {
            "aws:PrincipalAccount": [PARTNER_ACCOUNT],
            "aws:PrincipalServiceName": ["s3.amazonaws.com", "sns.amazonaws.com"],
        },
        # invocations through a function URL are the URL grants' business, left as they are
        "BoolIfExists": {"lambda:InvokedViaFunctionUrl": "false"},
    }
    assert kinds(result)[DENY_SID] == "added"
    assert result.changed


def test_deny_others_is_kept_on_rerun():
    first = rewrite_policy(doc(stmt({"AWS": DEPLOYER})), DENY_RULE, FN)
    second = rewrite_policy(first.policy, DENY_RULE, FN)
    assert second.policy == first.policy
    assert kinds(second)[DENY_SID] == "kept"
    assert not second.changed
    assert sum(s.get("Sid") == DENY_SID for s in statements(second)) == 1


def test_deny_others_is_removed_when_the_rule_turns_it_off():
    first = rewrite_policy(doc(stmt({"AWS": DEPLOYER})), DENY_RULE, FN)
    off = rewrite_policy(first.policy, RULE, FN)
    assert all(s.get("Sid") != DENY_SID for s in statements(off))
    assert kinds(off)[DENY_SID] == "removed"
    assert off.changed


def test_outdated_deny_others_is_replaced():
    first = rewrite_policy(doc(stmt({"AWS": DEPLOYER})), DENY_RULE, FN)
    narrower = make_rule(
        f"""
        rules:
          - name: blog
            functions: [BlogFunction]
            deny_others: true
            allow: [{{principal: "{DEPLOYER}"}}]
        """
    )
    result = rewrite_policy(first.policy, narrower, FN)
    denies = [s for s in statements(result) if s.get("Sid") == DENY_SID]
    assert len(denies) == 1
    assert denies[0]["Condition"] == {
        "ArnNotLikeIfExists": {"aws:PrincipalArn": [DEPLOYER]},
        "BoolIfExists": {"lambda:InvokedViaFunctionUrl": "false"},
    }
    assert kinds(result)[DENY_SID] == "added"
    assert "replaces" in next(c.detail for c in result.changes if c.sid == DENY_SID)


def test_deny_others_on_a_function_without_policy():
    result = run(None, DENY_RULE)
    assert result.policy is not None
    assert [s["Sid"] for s in statements(result)] == [DENY_SID]
    assert result.policy["Version"] == "2012-10-17"


def test_deny_others_with_an_empty_allowlist_denies_everyone():
    rule = make_rule("rules: [{name: r, functions: [f], deny_others: true}]")
    assert deny_others_statement(rule, FN)["Condition"] == {
        "BoolIfExists": {"lambda:InvokedViaFunctionUrl": "false"}
    }


@pytest.mark.parametrize(
    ("allow", "condition"),
    [
        (
            "[{service: s3.amazonaws.com, source_arn: 'arn:aws:s3:::b'}]",
            {
                "ArnNotLikeIfExists": {"aws:SourceArn": ["arn:aws:s3:::b"]},
                "StringNotEqualsIfExists": {"aws:PrincipalServiceName": ["s3.amazonaws.com"]},
            },
        ),
        (
            "[{service: sns.amazonaws.com}]",
            {"StringNotEqualsIfExists": {"aws:PrincipalServiceName": ["sns.amazonaws.com"]}},
        ),
        (
            "[{account: '111122223333'}, {account: '111122223333'}]",
            {"StringNotEqualsIfExists": {"aws:PrincipalAccount": ["111122223333"]}},
        ),
        (
            "[{principal: 'arn:aws:iam::111122223333:role/b'},"
            " {principal: 'arn:aws:iam::111122223333:role/a'}]",
            {
                "ArnNotLikeIfExists": {
                    "aws:PrincipalArn": [
                        "arn:aws:iam::111122223333:role/a",
                        "arn:aws:iam::111122223333:role/b",
                    ]
                }
            },
        ),
    ],
)
def test_deny_others_names_each_kind_of_entry_on_its_own(allow, condition):
    rule = make_rule(f"rules: [{{name: r, functions: [f], deny_others: true, allow: {allow}}}]")
    assert deny_others_statement(rule, FN) == {
        "Sid": "InvokeAuditDenyOthers",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["lambda:InvokeFunction", "lambda:InvokeAsync"],
        "Resource": FN,
        "Condition": condition | {"BoolIfExists": {"lambda:InvokedViaFunctionUrl": "false"}},
    }


def test_a_users_own_deny_with_another_sid_is_not_touched_by_deny_others():
    own = stmt("*", sid="MyDeny", effect="Deny")
    result = run(doc(own), DENY_RULE)
    assert statements(result)[0] == own
    assert [s["Sid"] for s in statements(result)] == ["MyDeny", DENY_SID]


# --- inputs ---------------------------------------------------------------------------------


def test_statement_as_a_single_object():
    policy = {"Version": "2012-10-17", "Statement": stmt({"AWS": [DEPLOYER, INTRUDER]})}
    result = run(policy)
    assert statements(result) == [stmt({"AWS": DEPLOYER})]


def test_json_text_and_bytes_inputs():
    policy = doc(stmt({"AWS": INTRUDER}, sid="bad"), stmt({"AWS": DEPLOYER}, sid="good"))
    for form in (json.dumps(policy), json.dumps(policy).encode()):
        assert [s["Sid"] for s in statements(run(form))] == ["good"]


def test_get_policy_response_and_revision_id():
    policy = doc(stmt({"AWS": DEPLOYER}))
    response = {
        "Policy": json.dumps(policy),
        "RevisionId": "7c2e5bd2-0f8b-4a5e-a1c4-d2f7a0b6f7e1",
        "ResponseMetadata": {"HTTPStatusCode": 200},
    }
    result = run(response)
    assert result.revision_id == "7c2e5bd2-0f8b-4a5e-a1c4-d2f7a0b6f7e1"
    assert result.policy == policy
    assert run(json.dumps(response)).revision_id == response["RevisionId"]
    assert run({"Policy": json.dumps(policy)}).revision_id is None
    assert run(policy).revision_id is None


@pytest.mark.parametrize("empty", [None, ""])
def test_no_policy(empty):
    result = run(empty)
    assert result.policy is None
    assert result.changes == []
    assert not result.changed
    assert parse_policy(empty) == (None, None)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        (5, "JSON object"),
        ([], "JSON object"),
        ({"Version": "2012-10-17"}, "no Statement"),
        ({"Statement": [{"Effect": "Maybe", "Principal": "*"}]}, "Statement.0.Effect"),
        ({"Statement": [{"Effect": "Allow", "Principal": {"AWS": 5}}]}, "Principal"),
        ({"Statement": 5}, "Statement"),
        ({"Policy": 5}, "Policy"),
        ({"Policy": "{broken"}, "not valid JSON"),
        ({"Policy": "[]"}, "JSON object"),
    ],
)
def test_unreadable_policies_are_rewrite_errors(policy, message):
    with pytest.raises(RewriteError) as caught:
        rewrite_policy(policy, RULE, FN)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the result -----------------------------------------------------------------------------


def test_everything_removed_gives_no_policy():
    empty = make_rule("rules: [{name: r, functions: [f]}]")
    result = run(doc(stmt("*", sid="a"), stmt({"AWS": INTRUDER}, sid="b")), empty)
    assert result.policy is None
    assert result.changed
    assert kinds(result) == {"a": "removed", "b": "removed"}


def test_to_dict_shape():
    result = rewrite_policy(doc(stmt({"AWS": [DEPLOYER, INTRUDER]})), RULE, FN)
    out = result.to_dict()
    assert set(out) >= {"policy", "changes", "changed"}
    assert out["policy"] == result.policy
    assert out["changed"] is True
    assert out["changes"] == [
        {
            "kind": "narrowed",
            "sid": "S",
            "detail": "narrowed to the allowed callers it let invoke",
            "principals": [INTRUDER],
        }
    ]
    json.dumps(out)  # serialisable


def test_a_mixed_policy_is_idempotent():
    policy = doc(
        stmt("*", effect="Deny", sid="d", condition={"Bool": {"aws:SecureTransport": "false"}}),
        stmt("*", sid="pub"),
        stmt({"Service": ["s3.amazonaws.com", "sns.amazonaws.com"]}, sid="svc"),
        stmt({"AWS": [DEPLOYER, INTRUDER, PARTNER_ACCOUNT]}, sid="aws"),
        stmt(
            "*",
            sid="url",
            action="lambda:InvokeFunctionUrl",
            condition={"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
        ),
        stmt("*", sid="get", action="lambda:GetFunction"),
    )
    first = run(policy, DENY_RULE)
    assert kinds(first) == {
        "d": "kept",
        "pub": "tightened",
        "svc": "tightened",
        "aws": "narrowed",
        "url": "reported",
        "get": "kept",
        DENY_SID: "added",
    }
    second = rewrite_policy(first.policy, DENY_RULE, FN)
    third = rewrite_policy(second.policy, DENY_RULE, FN)
    assert first.policy == second.policy == third.policy
    assert not second.changed and not third.changed


def test_a_grant_already_pinned_with_one_element_lists_is_left_as_it_is():
    pinned = stmt(
        {"Service": "s3.amazonaws.com"},
        condition={
            "ArnLike": {"AWS:SourceArn": [BUCKET_ARN]},
            "StringEquals": {"AWS:SourceAccount": [ACCOUNT]},
        },
    )
    result = run(doc(pinned))
    assert statements(result) == [pinned]
    assert not result.changed


def test_a_grant_pinned_narrower_than_the_allowlists_pattern_is_left_as_it_is():
    rule = make_rule(
        "rules: [{name: r, functions: [BlogFunction],"
        " allow: [{service: s3.amazonaws.com, source_arn: 'arn:aws:s3:::logs-*'}]}]"
    )
    narrower = stmt(
        {"Service": "s3.amazonaws.com"},
        condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::logs-2024"}},
    )
    result = run(doc(narrower), rule)
    assert statements(result) == [narrower]
    assert not result.changed
