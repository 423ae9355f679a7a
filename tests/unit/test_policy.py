"""Policy documents as plain JSON (lambdas.core.policy): decoding, comparing, and the
AddPermission / RemovePermission plan of the older permission API. Expected values by hand."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.policy import (
    as_list,
    dump_policy,
    load_policy,
    permission_plan,
    same_policy,
    statement_to_permissions,
)
from models.exceptions import RewriteError

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111122223333:role/deployer"
BUCKET = "arn:aws:s3:::uploads"
INVOKE = "lambda:InvokeFunction"


def allow(sid: str, principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": INVOKE} | extra


# --- as_list, load_policy, dump_policy -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("a", ["a"]), (["a", "b"], ["a", "b"]), ({"k": 1}, [{"k": 1}]), (0, [0])],
)
def test_as_list(value, expected):
    assert as_list(value) == expected


def test_as_list_copies_a_list():
    value = ["a"]
    copy = as_list(value)
    copy.append("b")
    assert value == ["a"]


@pytest.mark.parametrize("policy", [None, ""])
def test_no_policy_loads_as_none(policy):
    assert load_policy(policy) is None


def test_a_policy_loads_from_text_or_as_a_document():
    text = '{"Version":"2012-10-17","Statement":[]}'
    assert load_policy(text) == {"Version": "2012-10-17", "Statement": []}
    document: dict[str, Any] = {"Statement": []}
    assert load_policy(document) is document


@pytest.mark.parametrize(
    ("policy", "quoted"),
    [("[1, 2]", "[1, 2]"), ('"text"', '"text"'), ([1], "[1]"), ("7", "7")],
)
def test_a_policy_that_is_not_an_object_is_refused_with_its_text(policy, quoted):
    with pytest.raises(RewriteError) as refused:
        load_policy(policy)
    assert str(refused.value) == f"the policy is not a JSON object: {quoted}"


def test_the_refusal_quotes_at_most_200_characters():
    policy = "[" + "1," * 300 + "1]"
    with pytest.raises(RewriteError) as refused:
        load_policy(policy)
    assert str(refused.value) == f"the policy is not a JSON object: {policy[:200]}"


def test_dump_policy_is_compact_json_in_the_documents_order():
    assert dump_policy({"b": [1, 2], "a": {"c": "d"}}) == '{"b":[1,2],"a":{"c":"d"}}'


# --- same_policy ------------------------------------------------------------------------------


def test_same_statements_in_another_order_with_another_version_and_id_are_the_same_policy():
    one = allow("A", {"AWS": ROLE})
    two = allow("B", {"Service": "s3.amazonaws.com"})
    left = {"Version": "2012-10-17", "Id": "x", "Statement": [one, two]}
    right = {"Version": "2008-10-17", "Statement": [two, one]}
    assert same_policy(left, right)


def test_the_order_of_keys_in_a_statement_does_not_matter():
    one = {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": INVOKE}
    same = {"Action": INVOKE, "Principal": {"AWS": ROLE}, "Effect": "Allow", "Sid": "A"}
    assert same_policy({"Statement": [one]}, {"Statement": [same]})


def test_a_single_statement_equals_a_list_of_it():
    one = allow("A", {"AWS": ROLE})
    assert same_policy({"Statement": one}, {"Statement": [one]})


def test_no_statement_equals_an_empty_list():
    assert same_policy({"Statement": []}, {"Version": "2012-10-17"})
    assert same_policy({"Statement": None}, {"Statement": []})


def test_statements_that_differ_in_a_key_or_a_count_are_not_the_same_policy():
    one = allow("A", {"AWS": ROLE})
    other = allow("A", {"AWS": ROLE}, Condition={"StringEquals": {"aws:SourceAccount": "1"}})
    assert not same_policy({"Statement": [one]}, {"Statement": [other]})
    assert not same_policy({"Statement": [one]}, {"Statement": [one, one]})
    assert not same_policy({"Statement": [one]}, {"Statement": []})


def test_none_is_only_the_same_as_none():
    assert same_policy(None, None)
    assert not same_policy(None, {"Statement": []})
    assert not same_policy({"Statement": []}, None)


# --- statement_to_permissions -----------------------------------------------------------------


def test_one_action_and_principal_is_one_permission_under_the_sid():
    statement = allow("Deployer", {"AWS": ROLE})
    assert statement_to_permissions(statement, "Deployer") == [
        {"StatementId": "Deployer", "Action": INVOKE, "Principal": ROLE}
    ]


def test_a_public_principal_is_written_as_a_star():
    assert statement_to_permissions(allow("P", "*"), "P") == [
        {"StatementId": "P", "Action": INVOKE, "Principal": "*"}
    ]


def test_each_action_and_principal_pair_is_a_permission_numbered_from_two():
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": [ROLE, "111122223333"], "Service": "s3.amazonaws.com"},
        "Action": [INVOKE, "lambda:GetFunction"],
    }
    assert statement_to_permissions(statement, "S") == [
        {"StatementId": "S", "Action": INVOKE, "Principal": ROLE},
        {"StatementId": "S-2", "Action": INVOKE, "Principal": "111122223333"},
        {"StatementId": "S-3", "Action": INVOKE, "Principal": "s3.amazonaws.com"},
        {"StatementId": "S-4", "Action": "lambda:GetFunction", "Principal": ROLE},
        {"StatementId": "S-5", "Action": "lambda:GetFunction", "Principal": "111122223333"},
        {"StatementId": "S-6", "Action": "lambda:GetFunction", "Principal": "s3.amazonaws.com"},
    ]


def test_conditions_become_the_add_permission_parameters_whatever_the_keys_case():
    statement = allow(
        "S3",
        {"Service": "s3.amazonaws.com"},
        Condition={
            "ArnLike": {"AWS:SourceArn": BUCKET},
            "StringEquals": {"aws:sourceaccount": ["111122223333"]},
        },
    )
    assert statement_to_permissions(statement, "S3") == [
        {
            "StatementId": "S3",
            "Action": INVOKE,
            "Principal": "s3.amazonaws.com",
            "SourceArn": BUCKET,
            "SourceAccount": "111122223333",
        }
    ]


@pytest.mark.parametrize(
    ("key", "value", "parameter", "expected"),
    [
        ("aws:PrincipalOrgID", "o-abc", "PrincipalOrgID", "o-abc"),
        ("lambda:EventSourceToken", "tok", "EventSourceToken", "tok"),
        ("lambda:FunctionUrlAuthType", "AWS_IAM", "FunctionUrlAuthType", "AWS_IAM"),
        ("lambda:InvokedViaFunctionUrl", "true", "InvokedViaFunctionUrl", True),
        ("lambda:InvokedViaFunctionUrl", "TRUE", "InvokedViaFunctionUrl", True),
        ("lambda:InvokedViaFunctionUrl", True, "InvokedViaFunctionUrl", True),
        ("lambda:InvokedViaFunctionUrl", "false", "InvokedViaFunctionUrl", False),
    ],
)
def test_each_condition_key_add_permission_takes(key, value, parameter, expected):
    statement = allow("S", "*", Condition={"StringEquals": {key: value}})
    [permission] = statement_to_permissions(statement, "S")
    assert permission == {"StatementId": "S", "Action": INVOKE, "Principal": "*"} | {
        parameter: expected
    }


def test_an_empty_condition_block_adds_nothing():
    statement = allow("S", "*", Condition={"StringEquals": None})
    assert statement_to_permissions(statement, "S") == [
        {"StatementId": "S", "Action": INVOKE, "Principal": "*"}
    ]


@pytest.mark.parametrize(
    ("condition", "named"),
    [
        ({"StringEquals": {"aws:PrincipalTag/team": "a"}}, "StringEquals aws:PrincipalTag/team"),
        ({"ArnLike": {"aws:SourceArn": [BUCKET, BUCKET + "2"]}}, "ArnLike aws:SourceArn"),
        ({"ArnLike": {"aws:SourceArn": []}}, "ArnLike aws:SourceArn"),
    ],
)
def test_a_condition_add_permission_cannot_express_is_refused_by_name(condition, named):
    statement = allow("S", "*", Condition=condition)
    with pytest.raises(RewriteError) as refused:
        statement_to_permissions(statement, "S")
    assert str(refused.value) == (
        f"statement 'S': condition {named} cannot be expressed with AddPermission;"
        " the resource-policy API is needed"
    )


@pytest.mark.parametrize(
    "statement",
    [
        {"Sid": "S", "Effect": "Deny", "Principal": "*", "Action": INVOKE},
        {"Sid": "S", "Principal": "*", "Action": INVOKE},
        {"Sid": "S", "Effect": "Allow", "NotPrincipal": {"AWS": ROLE}, "Action": INVOKE},
        {"Sid": "S", "Effect": "Allow", "Principal": "*", "NotAction": INVOKE},
    ],
)
def test_only_allow_statements_with_principal_and_action_are_written(statement):
    with pytest.raises(RewriteError) as refused:
        statement_to_permissions(statement, "S")
    assert str(refused.value) == (
        "statement 'S': only Allow statements with Principal and Action can be written with"
        " AddPermission; the resource-policy API is needed"
    )


@pytest.mark.parametrize("principal", [ROLE, None, ["*"]])
def test_a_principal_that_is_not_star_or_an_object_is_refused(principal):
    statement = {"Sid": "S", "Effect": "Allow", "Action": INVOKE, "Principal": principal}
    with pytest.raises(RewriteError) as refused:
        statement_to_permissions(statement, "S")
    assert str(refused.value) == "statement 'S': no Principal AddPermission takes"


@pytest.mark.parametrize(
    "principal",
    [
        {"Federated": "cognito-identity.amazonaws.com"},
        {"AWS": ROLE, "CanonicalUser": "abc"},
        {"AWS": []},
        {},
    ],
)
def test_a_principal_add_permission_cannot_express_is_refused(principal):
    statement = {"Sid": "S", "Effect": "Allow", "Action": INVOKE, "Principal": principal}
    with pytest.raises(RewriteError) as refused:
        statement_to_permissions(statement, "S")
    assert str(refused.value) == (
        f"statement 'S': Principal {principal!r} cannot be expressed with AddPermission"
    )


# --- permission_plan --------------------------------------------------------------------------


def test_no_change_plans_no_call():
    policy = {"Statement": [allow("A", {"AWS": ROLE})]}
    assert permission_plan(policy, policy) == ([], [])


def test_a_statement_taken_away_is_removed_and_the_kept_one_left_alone():
    kept = allow("Kept", {"AWS": ROLE})
    gone = allow("Gone", "*")
    assert permission_plan({"Statement": [kept, gone]}, {"Statement": [kept]}) == (["Gone"], [])


def test_a_changed_statement_is_removed_then_added_again():
    before = allow("S3", {"Service": "s3.amazonaws.com"})
    after = allow(
        "S3", {"Service": "s3.amazonaws.com"}, Condition={"ArnLike": {"aws:SourceArn": BUCKET}}
    )
    assert permission_plan({"Statement": [before]}, {"Statement": [after]}) == (
        ["S3"],
        [
            {
                "StatementId": "S3",
                "Action": INVOKE,
                "Principal": "s3.amazonaws.com",
                "SourceArn": BUCKET,
            }
        ],
    )


def test_from_no_policy_every_statement_is_added_and_to_no_policy_every_one_removed():
    one = allow("One", {"AWS": ROLE})
    two = allow("Two", "*")
    added = [
        {"StatementId": "One", "Action": INVOKE, "Principal": ROLE},
        {"StatementId": "Two", "Action": INVOKE, "Principal": "*"},
    ]
    assert permission_plan(None, {"Statement": [one, two]}) == ([], added)
    assert permission_plan({"Statement": [one, two]}, None) == (["One", "Two"], [])


def test_statements_without_a_sid_are_matched_by_their_place():
    first = {"Effect": "Allow", "Principal": "*", "Action": INVOKE}
    second = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": INVOKE}
    # the second statement without a Sid is `statement-1`; dropping the first renumbers it
    assert permission_plan({"Statement": [first, second]}, {"Statement": [second]}) == (
        ["statement-0", "statement-1"],
        [{"StatementId": "statement-0", "Action": INVOKE, "Principal": ROLE}],
    )


def test_a_single_statement_not_in_a_list_is_planned_too():
    one = allow("One", {"AWS": ROLE})
    assert permission_plan({"Statement": one}, {"Statement": []}) == (["One"], [])
