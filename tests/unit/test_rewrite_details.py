"""The rewrite in detail (lambdas.core.rewrite): what each change says, the Sids of split
statements, partitions, grants narrowed from everyone, function-URL grants and the
statements that repeat one another. Expected policies and changes written by hand from
DESIGN.md's rewrite semantics."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.rewrite import DENY_SID, Change, PolicyRewrite, rewrite_policy
from models.allowlist import Rule
from models.exceptions import RewriteError
from tests.support.allowlists import make_rule
from tests.support.records import ACCOUNT, BUCKET_ARN, FOREIGN_ACCOUNT, PARTNER_ACCOUNT

pytestmark = pytest.mark.unit

FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:BlogFunction"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
INTRUDER = f"arn:aws:iam::{FOREIGN_ACCOUNT}:root"
PARTNER_ROOT = f"arn:aws:iam::{PARTNER_ACCOUNT}:root"
S3 = "s3.amazonaws.com"
SNS = "sns.amazonaws.com"
SQS = "sqs.amazonaws.com"

# S3 from one bucket of the owner's account, SNS from anywhere, one role, one partner account.
RULE = make_rule(
    f"""
rules:
  - name: blog
    functions: [BlogFunction]
    allow:
      - service: {S3}
        source_arn: "{BUCKET_ARN}"
        source_account: "{ACCOUNT}"
      - service: {SNS}
      - principal: "{DEPLOYER}"
      - account: "{PARTNER_ACCOUNT}"
"""
)
# Only people: a grant narrowed from everyone needs no confused-deputy condition.
PEOPLE = make_rule(
    f"""
rules:
  - name: people
    functions: [BlogFunction]
    allow:
      - principal: "{DEPLOYER}"
      - account: "{PARTNER_ACCOUNT}"
"""
)
S3_PINS = {
    "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
    "StringEquals": {"AWS:SourceAccount": ACCOUNT},
}
# The narrowing of a grant to everyone, for the people of PEOPLE (and RULE).
PEOPLE_AWS = {"AWS": [DEPLOYER, PARTNER_ROOT]}


def stmt(
    principal: Any = None,
    *,
    sid: str | None = "S",
    effect: str = "Allow",
    action: Any = "lambda:InvokeFunction",
    condition: dict[str, Any] | None = None,
    resource: str = FN,
    **extra: Any,
) -> dict[str, Any]:
    statement: dict[str, Any] = (
        {"Effect": effect} if sid is None else {"Sid": sid, "Effect": effect}
    )
    if principal is not None:
        statement["Principal"] = principal
    statement.update(extra)
    if action is not None:
        statement["Action"] = action
    statement["Resource"] = resource
    if condition is not None:
        statement["Condition"] = condition
    return statement


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def run(policy: Any, rule: Rule = RULE, resource: str = FN) -> PolicyRewrite:
    result = rewrite_policy(policy, rule, resource)
    if result.policy is not None:  # every rewrite is idempotent
        again = rewrite_policy(result.policy, rule, resource)
        assert again.policy == result.policy
        assert not again.changed, again.changes
    return result


def statements(result: PolicyRewrite) -> list[dict[str, Any]]:
    assert result.policy is not None
    return result.policy["Statement"]


def deny_intruder(sid: str) -> dict[str, Any]:
    return stmt({"AWS": INTRUDER}, sid=sid, effect="Deny")


# --- what each change says ----------------------------------------------------------------


def test_a_function_url_grant_is_reported_for_review():
    url = stmt(
        "*",
        action="lambda:InvokeFunctionUrl",
        condition={"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
    )
    result = run(doc(url))
    assert statements(result) == [url]
    assert result.changes == [
        Change("reported", "S", "function URL grant: left as is, review it by hand", ("*",))
    ]


def test_every_change_says_why():
    policy = doc(
        deny_intruder("deny"),
        stmt("*", sid="get", action="lambda:GetFunction"),
        stmt({"AWS": DEPLOYER}, sid="ok"),
        stmt(
            {"AWS": INTRUDER}, sid="mixed", action=["lambda:GetFunction", "lambda:InvokeFunction"]
        ),
        stmt({"AWS": INTRUDER}, sid="gone"),
        stmt({"AWS": [DEPLOYER, INTRUDER]}, sid="some"),
        stmt({"Service": S3}, sid="s3"),
    )
    result = run(policy)
    assert result.changes == [
        Change("kept", "deny", "Deny statements stay"),
        Change("kept", "get", "grants no invoke action"),
        Change("kept", "ok", "every caller it lets invoke is on the allowlist"),
        Change(
            "removed",
            "mixed",
            "no allowed caller invokes through this grant; its other actions stay",
            (INTRUDER,),
        ),
        Change("removed", "gone", "no allowed caller invokes through this grant", (INTRUDER,)),
        Change("narrowed", "some", "narrowed to the allowed callers it let invoke", (INTRUDER,)),
        Change(
            "tightened",
            "s3",
            "narrowed to the allowed callers it let invoke; confused-deputy conditions added: "
            "ArnLike AWS:SourceArn, StringEquals AWS:SourceAccount",
            (f"Service:{S3}",),
        ),
    ]
    assert statements(result) == [
        deny_intruder("deny"),
        stmt("*", sid="get", action="lambda:GetFunction"),
        stmt({"AWS": DEPLOYER}, sid="ok"),
        stmt({"AWS": INTRUDER}, sid="mixed", action="lambda:GetFunction"),
        stmt({"AWS": DEPLOYER}, sid="some"),
        stmt({"Service": S3}, sid="s3", condition=S3_PINS),
    ]


DENY_RULE = make_rule(
    f"""
rules:
  - name: blog
    functions: [BlogFunction]
    deny_others: true
    allow: [{{principal: "{DEPLOYER}"}}, {{account: "{PARTNER_ACCOUNT}"}}]
"""
)
DENY_ONE = make_rule(
    f"""
rules:
  - name: blog
    functions: [BlogFunction]
    deny_others: true
    allow: [{{principal: "{DEPLOYER}"}}]
"""
)


def deny_change(result: PolicyRewrite) -> Change:
    (change,) = [c for c in result.changes if c.sid == DENY_SID]
    return change


def test_the_deny_others_statement_says_what_happened_to_it():
    policy = doc(stmt({"AWS": DEPLOYER}))
    added = rewrite_policy(policy, DENY_RULE, FN)
    assert deny_change(added) == Change(
        "added", DENY_SID, "explicit Deny for every caller outside the allowlist (added)"
    )
    current = rewrite_policy(added.policy, DENY_RULE, FN)
    assert deny_change(current) == Change("kept", DENY_SID, "the deny-others statement is current")
    replaced = rewrite_policy(added.policy, DENY_ONE, FN)
    assert deny_change(replaced) == Change(
        "added",
        DENY_SID,
        "explicit Deny for every caller outside the allowlist (replaces the outdated one)",
    )
    off = rewrite_policy(added.policy, PEOPLE, FN)
    assert deny_change(off) == Change("removed", DENY_SID, "deny_others is off for this rule")


def test_a_not_principal_grant_is_reported_as_everyone():
    result = run(doc(stmt(None, NotPrincipal={"AWS": INTRUDER})), PEOPLE)
    assert statements(result) == [stmt(PEOPLE_AWS)]
    assert result.changes == [
        Change("narrowed", "S", "narrowed to the allowed callers it let invoke", ("*",))
    ]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (5, "a policy must be a JSON object, not int"),
        ("[]", "a policy must be a JSON object, not list"),
        (
            {"Version": "2012-10-17"},
            "not a policy: no Statement (nor a GetPolicy response's Policy)",
        ),
    ],
)
def test_an_unreadable_policy_is_named_exactly(policy, message):
    with pytest.raises(RewriteError) as caught:
        rewrite_policy(policy, RULE, FN)
    assert str(caught.value) == message


# --- Sids -------------------------------------------------------------------------------------


def test_a_split_statement_takes_the_first_free_name():
    # "S" splits in two; its second part would be "S-1", which the owner's statements use,
    # and so is "S-1-2": it becomes "S-1-3". The owner's statements keep their Sids.
    policy = doc(
        stmt({"Service": [S3, SNS]}),
        stmt({"AWS": DEPLOYER}, sid="S-1"),
        stmt({"AWS": PARTNER_ACCOUNT}, sid="S-1-2"),
    )
    result = run(policy)
    assert statements(result) == [
        stmt({"Service": SNS}),
        stmt({"Service": S3}, sid="S-1-3", condition=S3_PINS),
        stmt({"AWS": DEPLOYER}, sid="S-1"),
        stmt({"AWS": PARTNER_ACCOUNT}, sid="S-1-2"),
    ]


def test_two_rewritten_statements_never_share_a_name():
    # "A" splits into "A" and "A-1"; the owner's "A-1" is narrowed: it cannot stay "A-1".
    policy = doc(
        stmt({"Service": [S3, SNS]}, sid="A"),
        stmt({"AWS": [DEPLOYER, INTRUDER]}, sid="A-1"),
    )
    result = run(policy)
    assert statements(result) == [
        stmt({"Service": SNS}, sid="A"),
        stmt({"Service": S3}, sid="A-1", condition=S3_PINS),
        stmt({"AWS": DEPLOYER}, sid="A-1-2"),
    ]


def test_a_statement_without_sid_narrowed_in_place_gets_none():
    result = run(doc(stmt({"AWS": [DEPLOYER, INTRUDER]}, sid=None)))
    assert statements(result) == [stmt({"AWS": DEPLOYER}, sid=None)]


# --- partitions -------------------------------------------------------------------------------


def test_everyone_in_another_partition_narrows_to_that_partitions_accounts():
    cn_deployer = f"arn:aws-cn:iam::{ACCOUNT}:role/deployer"
    rule = make_rule(
        f"""
        rules:
          - name: r
            functions: [f]
            allow: [{{principal: "{cn_deployer}"}}, {{account: "{PARTNER_ACCOUNT}"}}]
        """
    )
    fn = f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:f"
    result = run(doc(stmt("*", resource=fn)), rule, fn)
    assert statements(result) == [
        stmt({"AWS": [cn_deployer, f"arn:aws-cn:iam::{PARTNER_ACCOUNT}:root"]}, resource=fn)
    ]


# --- principal globs --------------------------------------------------------------------------


def test_a_role_glob_in_one_account_narrows_everyone_to_that_account():
    # Not to everyone with a condition: the grant names the account (no public grant).
    ci = f"arn:aws:iam::{PARTNER_ACCOUNT}:role/ci-*"
    rule = make_rule(f"rules: [{{name: r, functions: [f], allow: [{{principal: '{ci}'}}]}}]")
    result = run(doc(stmt("*")), rule)
    assert statements(result) == [
        stmt({"AWS": PARTNER_ROOT}, condition={"ArnLike": {"aws:PrincipalArn": ci}})
    ]


def test_a_role_glob_in_any_account_keeps_everyone_with_the_principal_condition():
    ci = "arn:aws:iam::*:role/ci-*"
    rule = make_rule(f"rules: [{{name: r, functions: [f], allow: [{{principal: '{ci}'}}]}}]")
    result = run(doc(stmt("*")), rule)
    assert statements(result) == [
        stmt({"AWS": "*"}, condition={"ArnLike": {"aws:PrincipalArn": ci}})
    ]


def test_an_account_grant_narrows_to_the_role_glob_of_any_account():
    ci = "arn:aws:iam::*:role/ci-*"
    rule = make_rule(f"rules: [{{name: r, functions: [f], allow: [{{principal: '{ci}'}}]}}]")
    # The partner's ci roles could invoke and are allowed: they keep invoking, nobody else.
    result = run(doc(stmt({"AWS": PARTNER_ACCOUNT})), rule)
    assert statements(result) == [
        stmt({"AWS": PARTNER_ACCOUNT}, condition={"ArnLike": {"aws:PrincipalArn": ci}})
    ]
    assert result.changes[0].kind == "tightened"


def test_an_account_grant_narrows_to_the_allowed_role_of_that_account_alone():
    # The owner's account: only the deployer of it; not the partner's account, not services.
    result = run(
        doc(stmt({"AWS": ACCOUNT}, action=["lambda:InvokeFunction", "lambda:GetFunction"]))
    )
    assert statements(result) == [
        stmt({"AWS": DEPLOYER}),
        stmt({"AWS": ACCOUNT}, sid="S-1", action="lambda:GetFunction"),
    ]
    assert result.changes == [
        Change(
            "narrowed",
            "S",
            "narrowed to the allowed callers it let invoke; its other actions stay",
            (ACCOUNT,),
        )
    ]


# --- grants to everyone -----------------------------------------------------------------------


def test_a_mixed_grant_to_everyone_keeps_its_other_actions_for_everyone():
    result = run(doc(stmt("*", action=["lambda:InvokeFunction", "lambda:GetFunction"])), PEOPLE)
    assert statements(result) == [
        stmt(PEOPLE_AWS),
        stmt("*", sid="S-1", action="lambda:GetFunction"),
    ]


def test_an_empty_condition_block_is_not_carried_into_the_narrowed_grant():
    result = run(doc(stmt("*", condition={})), PEOPLE)
    assert statements(result) == [stmt(PEOPLE_AWS)]


def test_a_source_pinned_by_a_one_element_list_is_not_pinned_twice():
    condition = {"ArnLike": {"AWS:SourceArn": [BUCKET_ARN]}}
    result = run(doc(stmt("*", condition=condition)))
    assert statements(result) == [
        stmt(
            {"Service": S3},
            condition={**condition, "StringEquals": {"AWS:SourceAccount": ACCOUNT}},
        ),
        stmt({"Service": SNS}, sid="S-1", condition=condition),
    ]


def test_a_source_narrower_than_the_allowed_pattern_is_not_pinned_again():
    rule = make_rule(
        "rules: [{name: r, functions: [BlogFunction],"
        f" allow: [{{service: {S3}, source_arn: 'arn:aws:s3:::logs-*'}}]}}]"
    )
    condition = {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::logs-2024"}}
    result = run(doc(stmt("*", condition=condition)), rule)
    assert statements(result) == [stmt({"Service": S3}, condition=condition)]


def test_a_grant_to_everyone_already_pinned_to_the_sources_is_narrowed_not_tightened():
    result = run(doc(stmt("*", condition=S3_PINS)))
    assert statements(result) == [
        stmt({"Service": S3}, condition=S3_PINS),
        stmt({"Service": SNS}, sid="S-1", condition=S3_PINS),
    ]
    assert result.changes == [
        Change("narrowed", "S", "narrowed to the allowed callers it let invoke", ("*",))
    ]


def test_an_allowed_caller_that_cannot_be_pinned_does_not_stop_the_others():
    # The source account is taken under both operators that could pin it: S3 cannot be
    # narrowed from this grant (its own grant "s3" covers it); SNS, allowed from anywhere, can.
    condition = {
        "StringEquals": {"AWS:SourceAccount": [ACCOUNT, FOREIGN_ACCOUNT]},
        "StringLike": {"AWS:SourceAccount": "*"},
    }
    s3 = stmt({"Service": S3}, sid="s3", condition=S3_PINS)
    result = run(doc(s3, stmt("*", condition=condition)))
    assert statements(result) == [s3, stmt({"Service": SNS}, condition=condition)]


# --- statements that repeat one another --------------------------------------------------------


def test_a_grant_narrowed_from_everyone_that_another_statement_makes_is_left_out():
    # "A" is tightened to the same S3 grant the narrowing of "*" makes (its conditions in
    # another order): it is not made twice.
    a = stmt({"Service": S3}, sid="A", condition={"StringEquals": {"AWS:SourceAccount": ACCOUNT}})
    result = run(doc(a, stmt("*", sid="B")))
    assert statements(result) == [
        stmt({"Service": S3}, sid="A", condition=S3_PINS),
        stmt({"AWS": [DEPLOYER, PARTNER_ROOT]}, sid="B"),
        stmt({"Service": SNS}, sid="B-2"),
    ]


@pytest.mark.parametrize(
    ("everyone", "expected"),
    [
        (
            {"Principal": {"Service": S3, "AWS": "*"}},
            [
                stmt({"Service": S3}, sid="W", condition=S3_PINS),
                stmt({"AWS": [DEPLOYER, PARTNER_ROOT]}, sid="W-1"),
            ],
        ),
        (
            {"Principal": {"AWS": "*"}},
            [
                stmt({"AWS": [DEPLOYER, PARTNER_ROOT]}, sid="W"),
                stmt({"Service": S3}, sid="W-1", condition=S3_PINS),
            ],
        ),
        (
            {"NotPrincipal": {"AWS": INTRUDER}},
            [
                stmt({"AWS": [DEPLOYER, PARTNER_ROOT]}, sid="W"),
                stmt({"Service": S3}, sid="W-1", condition=S3_PINS),
            ],
        ),
    ],
)
def test_a_grant_narrowed_from_everyone_is_not_repeated_after_an_earlier_one(everyone, expected):
    # "P" is narrowed to SNS alone; the narrowing of everyone would grant SNS again.
    p = stmt({"Service": [SNS, SQS]}, sid="P")
    result = run(doc(p, stmt(None, sid="W", **everyone)))
    assert statements(result) == [stmt({"Service": SNS}, sid="P"), *expected]


def test_a_grant_to_everyone_that_an_earlier_one_repeats_is_removed():
    # "Y" narrows to what "X" is narrowed to: it goes, and says why; the Deny statements
    # around it stay as they are.
    policy = doc(
        stmt("*", sid="X"),
        deny_intruder("D1"),
        deny_intruder("D2"),
        stmt("*", sid="Y"),
        deny_intruder("D3"),
    )
    result = run(policy, PEOPLE)
    assert statements(result) == [
        stmt(PEOPLE_AWS, sid="X"),
        deny_intruder("D1"),
        deny_intruder("D2"),
        deny_intruder("D3"),
    ]
    assert result.changes == [
        Change("narrowed", "X", "narrowed to the allowed callers it let invoke", ("*",)),
        Change("kept", "D1", "Deny statements stay"),
        Change("kept", "D2", "Deny statements stay"),
        Change(
            "removed",
            "Y",
            "the allowed callers it let invoke keep their grant in another statement",
            ("*",),
        ),
        Change("kept", "D3", "Deny statements stay"),
    ]


def test_identical_grants_kept_as_they_are_both_stay():
    policy = doc(stmt({"AWS": DEPLOYER}, sid="A"), stmt({"AWS": DEPLOYER}, sid="B"))
    assert statements(run(policy)) == policy["Statement"]


def test_the_other_actions_of_a_mixed_grant_stay_even_when_another_statement_has_them():
    get = stmt({"AWS": INTRUDER}, sid="P", action="lambda:GetFunction")
    mixed = stmt({"AWS": INTRUDER}, action=["lambda:InvokeFunction", "lambda:GetFunction"])
    result = run(doc(get, mixed))
    assert statements(result) == [get, stmt({"AWS": INTRUDER}, action="lambda:GetFunction")]


# --- function URLs ----------------------------------------------------------------------------

URL_FLAG = {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}


def test_everyone_but_one_with_a_function_url_keeps_url_invocations_for_the_same():
    both = ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    not_intruder: dict[str, Any] = {"NotPrincipal": {"AWS": INTRUDER}}
    result = run(doc(stmt(None, action=both, **not_intruder)))
    assert statements(result) == [
        stmt({"AWS": [DEPLOYER, PARTNER_ROOT]}),
        stmt({"Service": S3}, sid="S-1", condition=S3_PINS),
        stmt({"Service": SNS}, sid="S-2"),
        stmt(None, sid="S-3", action="lambda:InvokeFunctionUrl", **not_intruder),
        stmt(None, sid="S-4", condition=URL_FLAG, **not_intruder),
    ]


def test_only_the_principals_that_lose_invoke_get_the_function_url_grant():
    both = ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    result = run(doc(stmt({"AWS": [DEPLOYER, INTRUDER]}, action=both)))
    assert statements(result) == [
        stmt({"AWS": DEPLOYER}, action=both),
        stmt({"AWS": INTRUDER}, sid="S-1", action="lambda:InvokeFunctionUrl"),
        stmt({"AWS": INTRUDER}, sid="S-2", condition=URL_FLAG),
    ]
    assert result.changes == [
        Change(
            "narrowed",
            "S",
            "narrowed to the allowed callers it let invoke; its other actions stay",
            (INTRUDER,),
        )
    ]


def test_the_function_url_grant_keeps_the_statements_conditions():
    org = {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    result = run(
        doc(stmt({"AWS": INTRUDER}, action=None, NotAction="lambda:GetPolicy", condition=org))
    )
    assert statements(result) == [
        stmt(
            {"AWS": INTRUDER},
            action=None,
            NotAction=["lambda:GetPolicy", "lambda:InvokeFunction", "lambda:InvokeAsync"],
            condition=org,
        ),
        stmt({"AWS": INTRUDER}, sid="S-1", condition={**org, **URL_FLAG}),
    ]


def test_without_a_function_url_grant_no_url_invocation_is_kept():
    # Everything but invoking through a URL: no URL grant in the policy, none added.
    no_url = ["lambda:InvokeFunctionUrl", "lambda:GetPolicy"]
    result = run(doc(stmt({"AWS": INTRUDER}, action=None, NotAction=no_url)))
    assert statements(result) == [
        stmt(
            {"AWS": INTRUDER},
            action=None,
            NotAction=[*no_url, "lambda:InvokeFunction", "lambda:InvokeAsync"],
        )
    ]


def test_a_deny_statement_is_no_function_url_grant():
    deny = stmt({"AWS": PARTNER_ROOT}, sid="D", effect="Deny", action="lambda:InvokeFunctionUrl")
    result = run(doc(deny, stmt({"AWS": INTRUDER}, sid="G")))
    assert statements(result) == [deny]


@pytest.mark.parametrize(
    "resource", ["BlogFunction", f"{ACCOUNT}:function:BlogFunction", "arn:aws:s3:::bucket", ""]
)
def test_a_resource_that_is_not_a_functions_full_arn_is_refused(resource: str) -> None:
    # The partition of the principals the rewrite writes comes from the function's ARN: a
    # bare name gives none, and nothing is assumed.
    with pytest.raises(RewriteError) as refused:
        rewrite_policy(None, RULE, resource)
    assert str(refused.value) == f"not a function's full ARN: {resource!r}"


def test_a_long_resource_is_named_by_its_first_200_characters() -> None:
    resource = "x" * 199 + "yz"
    with pytest.raises(RewriteError) as refused:
        rewrite_policy(None, RULE, resource)
    assert str(refused.value) == "not a function's full ARN: '" + "x" * 199 + "y'"
