"""Properties (hypothesis): rewrite is idempotent and never takes a covered principal away;
decide never raises, whatever JSON it is given."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.core.decide import Decision, Verdict, decide
from lambdas.core.rewrite import DENY_SID, grants_invoke, rewrite_policy
from models.allowlist import Rule
from models.exceptions import PostConditionError
from models.globs import matches
from models.policy import PolicyStatementModel
from tests.support import records as r
from tests.support.allowlists import STANDARD_YAML, make_config
from tests.support.records import ACCOUNT, FOREIGN_ACCOUNT, PARTNER_ACCOUNT
from tests.support.strategies import examples

pytestmark = pytest.mark.unit

PROPERTY = settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn"
BUCKETS = ["arn:aws:s3:::a", "arn:aws:s3:::b", "arn:aws:s3:::other"]
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
AWS_VALUES = [
    DEPLOYER,
    f"arn:aws:iam::{ACCOUNT}:role/ci-build",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:root",
    ACCOUNT,
    PARTNER_ACCOUNT,
    FOREIGN_ACCOUNT,
    f"arn:aws:iam::{PARTNER_ACCOUNT}:role/x",
    f"arn:aws:iam::{FOREIGN_ACCOUNT}:root",
    "*",
]
SERVICES = ["s3.amazonaws.com", "sns.amazonaws.com", "events.amazonaws.com"]
CONDITIONS: list[tuple[str, str, Any]] = [
    ("ArnLike", "AWS:SourceArn", st.sampled_from(BUCKETS)),
    ("ArnLike", "AWS:SourceArn", st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=2)),
    ("StringEquals", "AWS:SourceAccount", st.sampled_from([ACCOUNT, FOREIGN_ACCOUNT])),
    ("StringEquals", "aws:PrincipalAccount", st.sampled_from([PARTNER_ACCOUNT, FOREIGN_ACCOUNT])),
    ("ArnEquals", "aws:PrincipalArn", st.sampled_from(AWS_VALUES[:4] + AWS_VALUES[-2:])),
    ("StringLike", "aws:PrincipalArn", st.just(f"arn:aws:iam::{ACCOUNT}:role/*")),
    ("StringEqualsIfExists", "aws:PrincipalAccount", st.just(PARTNER_ACCOUNT)),
    ("Bool", "aws:SecureTransport", st.just("true")),
    ("StringEquals", "lambda:FunctionUrlAuthType", st.just("NONE")),
]


def one_or_list(values: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.lists(values, min_size=1, max_size=3, unique=True))


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, dict[str, Any]] | None:
    picked = draw(st.lists(st.sampled_from(range(len(CONDITIONS))), max_size=3, unique=True))
    if not picked:
        return None
    block: dict[str, dict[str, Any]] = {}
    for index in picked:
        operator, key, values = CONDITIONS[index]
        block.setdefault(operator, {})[key] = draw(values)
    return block


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"]))}
    sid = draw(st.sampled_from([None, "A", "B", "C", "A-1", DENY_SID]))
    if sid is not None:
        statement["Sid"] = sid
    principal = draw(
        st.one_of(
            st.just("*"),
            st.fixed_dictionaries({"AWS": one_or_list(st.sampled_from(AWS_VALUES))}),
            st.fixed_dictionaries({"Service": one_or_list(st.sampled_from(SERVICES))}),
            st.fixed_dictionaries(
                {
                    "AWS": one_or_list(st.sampled_from(AWS_VALUES)),
                    "Service": one_or_list(st.sampled_from(SERVICES)),
                }
            ),
        )
    )
    key = "NotPrincipal" if draw(st.integers(0, 9)) == 0 else "Principal"
    statement[key] = principal
    action = one_or_list(
        st.sampled_from(
            ["lambda:InvokeFunction", "lambda:*", "*", "lambda:Invoke*", "lambda:GetFunction"]
        )
    )
    statement["NotAction" if draw(st.integers(0, 9)) == 0 else "Action"] = draw(action)
    statement["Resource"] = FN
    condition = draw(conditions())
    if condition:
        statement["Condition"] = condition
    return statement


policies = st.one_of(
    st.none(),
    st.builds(
        lambda s: {"Version": "2012-10-17", "Id": "default", "Statement": s},
        st.lists(statements(), max_size=6),
    ),
)

ENTRIES = [
    {"service": "s3.amazonaws.com"},
    {"service": "s3.amazonaws.com", "source_arn": "arn:aws:s3:::a"},
    {"service": "s3.amazonaws.com", "source_arn": "arn:aws:s3:::b", "source_account": ACCOUNT},
    {"service": "s3.amazonaws.com", "source_arn": "arn:aws:s3:::*", "source_account": ACCOUNT},
    {"service": "sns.amazonaws.com", "source_account": ACCOUNT},
    {"service": "events.amazonaws.com"},
    {"principal": DEPLOYER},
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/ci-*"},
    {"principal": f"arn:aws:iam::{PARTNER_ACCOUNT}:root"},
    {"account": PARTNER_ACCOUNT},
    {"account": ACCOUNT},
]

rules = st.builds(
    lambda allow, deny: Rule.model_validate(
        {"name": "r", "functions": ["fn"], "deny_others": deny, "allow": allow}
    ),
    st.lists(st.sampled_from(ENTRIES), max_size=5, unique_by=lambda e: tuple(sorted(e.items()))),
    st.booleans(),
)


@PROPERTY
@given(policy=policies, rule=rules)
def test_rewrite_is_idempotent(policy, rule):
    first = rewrite_or_refuse(policy, rule)
    if first is None:
        return
    second = rewrite_policy(first.policy, rule, FN)
    assert second.policy == first.policy
    assert not second.changed, second.changes
    if rule.deny_others:
        assert first.policy is not None
        ours = [
            s
            for s in first.policy["Statement"]
            if (s.get("Sid"), s["Effect"]) == (DENY_SID, "Deny")
        ]
        assert len(ours) == 1


def rewrite_or_refuse(policy: Any, rule: Rule) -> Any:
    """The rewrite, or None where it refuses: only an Allow with NotPrincipal can make it
    refuse here (the exemption of a listed principal cannot be narrowed to the allowed
    callers without granting it); the refusal names the request it would decide wrongly."""
    try:
        return rewrite_policy(policy, rule, FN)
    except PostConditionError as refused:
        assert "would be" in str(refused)
        assert any(
            s.get("Effect") == "Allow" and "NotPrincipal" in s
            for s in (policy or {}).get("Statement", [])
        ), refused
        return None


# --- an oracle for plain cases, written apart from the code under test ---------------------


def _root(value: str) -> str:
    return f"arn:aws:iam::{value}:root" if value.isdigit() else value


def covered_by_oracle(kind: str, value: str, statement: dict[str, Any], rule: Rule) -> bool | None:
    """True/False where the answer is plain; None where the test does not judge.

    A statement with conditions is not plain: the rewrite judges who it lets invoke, and a
    grant whose conditions let nobody in stays (tests/unit/test_rewrite_access.py)."""
    if statement.get("Condition"):
        return None
    if kind == "AWS" and value != "*":
        arn = _root(value)
        account = arn.split(":")[4]
        return any(
            (e.principal is not None and matches(e.principal, arn)) or e.account == account
            for e in rule.allow
        )
    if kind == "Service":
        pinned = {k.lower() for block in (statement.get("Condition") or {}).values() for k in block}
        if pinned & {"aws:sourcearn", "aws:sourceaccount"}:
            return None
        return any(e.service == value for e in rule.allow)
    return None


def is_function_url(raw: dict[str, Any]) -> bool:
    keys = {k.lower() for block in (raw.get("Condition") or {}).values() for k in block}
    return bool(keys & {"lambda:functionurlauthtype", "lambda:invokedviafunctionurl"})


def invoke_grants(policy: dict[str, Any] | None) -> list[PolicyStatementModel]:
    """Allow statements that grant invoke, function-URL grants aside (those are reported)."""
    out = []
    for raw in (policy or {}).get("Statement", []):
        statement = PolicyStatementModel.model_validate(raw)
        if statement.Effect == "Allow" and grants_invoke(statement) and not is_function_url(raw):
            out.append(statement)
    return out


@PROPERTY
@given(policy=policies, rule=rules)
def test_rewrite_never_removes_a_covered_principal(policy, rule):
    result = rewrite_or_refuse(policy, rule)
    if result is None:
        return
    granted_after = {p for s in invoke_grants(result.policy) for p in s.principals()}
    # A grant narrowed by conditions (an account kept for the roles the rule names in it, with
    # aws:PrincipalArn) still names the account: statement shapes cannot judge it, the access
    # property does (tests/unit/test_rewrite_access.py). Uncovered principals are looked for
    # in the grants without conditions only.
    granted_plainly = {
        p for s in invoke_grants(result.policy) if not s.Condition for p in s.principals()
    }
    for statement in invoke_grants(policy):
        if statement.NotPrincipal is not None:
            continue
        raw = statement.model_dump(exclude_none=True)
        for kind, value in statement.principals():
            verdict = covered_by_oracle(kind, value, raw, rule)
            if verdict is True:
                assert (kind, value) in granted_after, (kind, value, result.changes)
            elif verdict is False:
                assert (kind, value) not in granted_plainly, (kind, value, result.changes)


@PROPERTY
@given(policy=policies, rule=rules)
def test_rewrite_leaves_no_not_principal_allow_and_keeps_every_deny(policy, rule):
    result = rewrite_or_refuse(policy, rule)
    if result is None:
        return
    after = (result.policy or {}).get("Statement", [])
    assert not any(s.NotPrincipal is not None for s in invoke_grants(result.policy))
    before_denies = [
        s
        for s in (policy or {}).get("Statement", [])
        if s["Effect"] == "Deny" and s.get("Sid") != DENY_SID
    ]
    for deny in before_denies:
        assert deny in after


# --- decide never raises ----------------------------------------------------------------------

CONFIG = make_config(STANDARD_YAML)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
RECORD_KEYS = [
    "eventSource",
    "eventName",
    "eventID",
    "eventTime",
    "awsRegion",
    "recipientAccountId",
    "errorCode",
    "userIdentity",
    "requestParameters",
    "additionalEventData",
    "resources",
    "readOnly",
]
record_like = st.dictionaries(st.sampled_from(RECORD_KEYS), json_values, max_size=10)


def check_decision(decision: Decision) -> None:
    assert isinstance(decision, Decision)
    assert decision.verdict in set(Verdict)
    assert isinstance(decision.reason, str) and decision.reason
    orjson.dumps(decision.to_dict())


@PROPERTY
@given(value=st.one_of(json_values, record_like))
def test_decide_never_raises_on_arbitrary_json(value):
    check_decision(decide(value, CONFIG))


BUILDERS: list[Callable[[], dict[str, Any]]] = [
    r.step_functions_invoke,
    r.eventbridge_invoke,
    r.s3_invoke,
    r.invoke_execution,
    lambda: r.invoke("orders", r.aws_account(PARTNER_ACCOUNT), qualifier="prod"),
    lambda: r.invoke("team-x", r.root(with_arn=False)),
    lambda: r.invoke("team-x", r.federated_user("bob")),
    lambda: r.invoke("team-x", r.assumed_role("deployer", with_issuer=False)),
]
TEMPLATES = [b() for b in BUILDERS]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    record = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 4))):
        targets = paths(record)
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent: Any = record
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return record


@PROPERTY
@given(record=mutated_records())
def test_decide_never_raises_on_mutated_real_records(record):
    decision = decide(record, CONFIG)
    check_decision(decision)
    if decision.verdict in (Verdict.ALLOWED, Verdict.VIOLATION):
        assert decision.function and decision.rule and decision.mode


@PROPERTY
@given(record=st.sampled_from(TEMPLATES), name=st.text(max_size=40))
def test_any_event_name_gets_a_verdict(record, name):
    check_decision(decide(record | {"eventName": name}, CONFIG))
