"""The evaluator's answers in detail, expectations written by hand from IAM's documented
evaluation logic: what each answer says and which statements decide it; the shapes a policy
may be given in; statements without Action or Resource and with NotResource; the set
operators and multivalued keys; Bool on a truth value written as text."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.evaluate import Answer, Principal, Request, evaluate, evaluate_statement
from models.policy import PolicyDocumentModel, PolicyStatementModel

pytestmark = pytest.mark.unit

INVOKE = "lambda:InvokeFunction"
ACCOUNT = "123456789012"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders"
SECRET = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:secret"
ALICE = Request(Principal.aws(USER), INVOKE)


def alice_on(resource: str) -> Request:
    return Request(Principal.aws(USER), INVOKE, resource=resource)


# A key the evaluator does not model and the request does not carry: whether a statement
# with this condition applies is not known.
UNMODELLED = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}


def statement(effect: str = "Allow", **fields: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": "*", "Action": INVOKE} | fields


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# --- what each answer says ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statements", "answer", "reason", "deciding"),
    [
        (
            [statement(Sid="open"), statement("Deny", Sid="no")],
            Answer.DENY,
            "an explicit Deny applies",
            ("no",),
        ),
        (
            [statement(Sid="a"), statement(Sid="b"), statement(Sid="c", Action="lambda:Get*")],
            Answer.ALLOW,
            "an Allow applies and no Deny does",
            ("a", "b"),
        ),
        # the Allow applies, a Deny may: the possible Deny is named first
        (
            [statement(Sid="open"), statement("Deny", Sid="maybe", Condition=UNMODELLED)],
            Answer.UNKNOWN,
            "a Deny may apply: it depends on what is not modelled",
            ("maybe", "open"),
        ),
        (
            [statement(Sid="maybe", Condition=UNMODELLED)],
            Answer.UNKNOWN,
            "an Allow may apply: it depends on what is not modelled",
            ("maybe",),
        ),
        # nothing allows: a possible Deny changes nothing, and is still named
        (
            [statement("Deny", Sid="maybe", Condition=UNMODELLED)],
            Answer.NOT_ALLOWED,
            "no statement allows it",
            ("maybe",),
        ),
        ([statement(Sid="other", Action="lambda:GetPolicy")], Answer.NOT_ALLOWED,
         "no statement allows it", ()),
    ],
)  # fmt: skip
def test_each_answer_says_why_and_names_the_statements_it_rests_on(
    statements: list[dict[str, Any]], answer: Answer, reason: str, deciding: tuple[str, ...]
) -> None:
    got = evaluate(policy(*statements), ALICE)
    assert (got.answer, got.reason, got.statements) == (answer, reason, deciding)


def test_a_policy_it_cannot_read_is_unknown_and_says_so() -> None:
    got = evaluate(policy({"Effect": "Perhaps", "Principal": "*", "Action": INVOKE}), ALICE)
    assert got.answer is Answer.UNKNOWN
    assert got.allowed is None
    assert got.reason.startswith("not a policy this evaluator reads: ")
    assert "Effect" in got.reason


def test_a_statement_whose_condition_is_not_modelled_may_apply() -> None:
    maybe = PolicyStatementModel.model_validate(statement(Condition=UNMODELLED))
    assert evaluate_statement(maybe, ALICE) is None
    known = PolicyStatementModel.model_validate(
        statement(Condition={"StringEquals": {"aws:PrincipalAccount": ACCOUNT}})
    )
    assert evaluate_statement(known, ALICE) is True


# --- the shapes a policy comes in -----------------------------------------------------------


ALLOW = statement(Sid="open")
DENY = statement("Deny", Sid="no")


@pytest.mark.parametrize(
    ("given", "answer"),
    [
        (None, Answer.NOT_ALLOWED),
        ([], Answer.NOT_ALLOWED),
        ([ALLOW], Answer.ALLOW),
        ((ALLOW,), Answer.ALLOW),
        ([ALLOW, DENY], Answer.DENY),
        ([PolicyStatementModel.model_validate(ALLOW), DENY], Answer.DENY),
        ((PolicyStatementModel.model_validate(ALLOW),), Answer.ALLOW),
        ([PolicyStatementModel.model_validate(ALLOW)], Answer.ALLOW),
        (PolicyStatementModel.model_validate(DENY), Answer.DENY),
        (PolicyDocumentModel.model_validate(policy(ALLOW)), Answer.ALLOW),
        (policy(ALLOW), Answer.ALLOW),
        ({"Statement": ALLOW}, Answer.ALLOW),  # a single statement, not in a list
        ([ALLOW, {"Effect": "Allow", "Action": 7}], Answer.UNKNOWN),
    ],
)
def test_a_policy_as_a_document_a_model_or_statements(given: Any, answer: Answer) -> None:
    assert evaluate(given, ALICE).answer is answer


# --- Action and Resource --------------------------------------------------------------------


def test_a_statement_without_action_or_not_action_applies_to_no_action() -> None:
    # IAM requires one of them; a statement that names no action grants and denies nothing
    actionless = {"Effect": "Allow", "Principal": "*", "Resource": FUNCTION}
    assert evaluate(policy(actionless), ALICE).answer is Answer.NOT_ALLOWED
    deny_actionless = {"Effect": "Deny", "Principal": "*"}
    assert evaluate(policy(ALLOW, deny_actionless), ALICE).answer is Answer.ALLOW


@pytest.mark.parametrize(
    ("resource", "answer"),
    [(FUNCTION, Answer.ALLOW), (SECRET, Answer.NOT_ALLOWED), (SECRET + ":1", Answer.ALLOW)],
)
def test_not_resource_applies_to_every_resource_but_the_listed(
    resource: str, answer: Answer
) -> None:
    document = policy(
        {"Effect": "Allow", "Principal": "*", "Action": INVOKE, "NotResource": SECRET}
    )
    assert evaluate(document, alice_on(resource)).answer is (answer)


def test_a_deny_with_not_resource_spares_only_the_listed_resources() -> None:
    document = policy(
        statement(Resource="*"),
        {"Effect": "Deny", "Principal": "*", "Action": INVOKE, "NotResource": [FUNCTION]},
    )
    assert evaluate(document, alice_on(FUNCTION)).answer is Answer.ALLOW
    assert evaluate(document, alice_on(SECRET)).answer is Answer.DENY


def test_a_statement_that_names_no_resource_grants_none_a_request_names() -> None:
    resourceless = policy(statement())
    assert evaluate(resourceless, alice_on(FUNCTION)).answer is Answer.NOT_ALLOWED
    # a request that names no resource is judged on the other elements alone
    assert evaluate(resourceless, ALICE).answer is Answer.ALLOW


def test_resources_are_matched_case_sensitively() -> None:
    document = policy(statement(Resource=FUNCTION.replace("orders", "Orders*")))
    assert evaluate(document, alice_on(FUNCTION)).answer is Answer.NOT_ALLOWED


# --- conditions: set operators, multivalued keys, Bool ------------------------------------


ORGS = "aws:PrincipalOrgID"


def conditioned(operator: str, values: Any) -> dict[str, Any]:
    return policy(statement(Condition={operator: {ORGS: values}}))


def org_request(*orgs: str) -> Request:
    return Request(Principal.aws(USER), INVOKE, {ORGS: list(orgs)} if orgs else {})


@pytest.mark.parametrize(
    ("operator", "values", "orgs", "answer"),
    [
        # ForAnyValue: true when one request value matches one policy value...
        ("ForAnyValue:StringEquals", ["o-2"], ("o-1", "o-2"), Answer.ALLOW),
        ("ForAnyValue:StringEquals", ["o-3"], ("o-1", "o-2"), Answer.NOT_ALLOWED),
        # ...and false when the key is absent, for a negated operator as well
        ("ForAnyValue:StringNotEquals", ["o-1"], (), Answer.NOT_ALLOWED),
        ("ForAnyValue:StringNotEquals", ["o-1"], ("o-1", "o-2"), Answer.ALLOW),
        ("ForAnyValue:StringNotEquals", ["o-1"], ("o-1",), Answer.NOT_ALLOWED),
        # ForAllValues: true when every request value matches a policy value, and when the
        # key is absent
        ("ForAllValues:StringEquals", ["o-1", "o-2"], ("o-2", "o-1"), Answer.ALLOW),
        ("ForAllValues:StringEquals", ["o-1"], ("o-1", "o-2"), Answer.NOT_ALLOWED),
        ("ForAllValues:StringEquals", ["o-1"], (), Answer.ALLOW),
        ("ForAllValues:StringLike", ["o-*"], ("o-1", "o-2"), Answer.ALLOW),
        ("ForAllValues:StringNotEquals", ["o-9"], ("o-1", "o-2"), Answer.ALLOW),
        ("ForAllValues:StringNotEquals", ["o-2"], ("o-1", "o-2"), Answer.NOT_ALLOWED),
        # an operator without a set qualifier on a key with two values: not judged
        ("StringEquals", ["o-1"], ("o-1", "o-2"), Answer.UNKNOWN),
        ("StringEquals", ["o-2"], ("o-1", "o-2"), Answer.UNKNOWN),
        ("StringEquals", ["o-1"], ("o-1",), Answer.ALLOW),
    ],
)
def test_set_operators_on_a_multivalued_key(
    operator: str, values: list[str], orgs: tuple[str, ...], answer: Answer
) -> None:
    assert evaluate(conditioned(operator, values), org_request(*orgs)).answer is answer


@pytest.mark.parametrize(
    ("written", "answer"),
    [("true", Answer.ALLOW), ("True", Answer.ALLOW), ("TRUE", Answer.ALLOW),
     ("false", Answer.NOT_ALLOWED), ("yes", Answer.NOT_ALLOWED)],
)  # fmt: skip
def test_bool_compares_a_truth_value_written_as_text(written: str, answer: Answer) -> None:
    document = policy(statement(Condition={"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}))
    request = Request(Principal.anonymous(), INVOKE, {"lambda:InvokedViaFunctionUrl": written})
    assert evaluate(document, request).answer is answer


def test_a_list_of_truth_values_in_the_request_reads_as_true_and_false() -> None:
    request = Request(Principal.anonymous(), INVOKE, {"X:Flags": [True, False, "text"]})
    assert request.values()["x:flags"] == ["true", "false", "text"]
    document = policy(statement(Condition={"ForAnyValue:StringEquals": {"x:flags": "false"}}))
    assert evaluate(document, request).answer is Answer.ALLOW


def test_an_accounts_root_principal_is_in_the_aws_partition_unless_named() -> None:
    assert Principal.root("123456789012") == Principal("aws", "arn:aws:iam::123456789012:root")
    assert Principal.root("123456789012", "aws-cn").value == "arn:aws-cn:iam::123456789012:root"
