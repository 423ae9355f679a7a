"""The rewrite judged by access: generated policies and allowlists, every request of a fixed
vocabulary, and a small allowlist oracle written here (not the product's `decide` or
`rule_allows_request`).

Property: for every request, the rewritten policy answers
- a direct invoke: (old answer AND the allowlist allows it): an allowed caller is decided as
  before, anyone else is definitely not allowed;
- anything else (other actions, function-URL invocations): the old answer;
or the rewrite refuses with a reason (PostConditionError / RewriteError).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cli.allowlist_file import parse_allowlist
from cli.demo_events import ALLOWLIST_YAML as DEMO_ALLOWLIST
from cli.demo_events import FUNCTIONS as DEMO_FUNCTIONS
from lambdas.core.access import check_rewrite
from lambdas.core.evaluate import Principal, Request, evaluate
from lambdas.core.rewrite import rewrite_policy
from models.allowlist import Rule
from models.arns import parse_function_arn
from models.exceptions import PostConditionError, RewriteError
from models.policy import PolicyDocumentModel, PolicyStatementModel
from tests.support.shape_check import shape_check
from tests.support.strategies import examples

pytestmark = pytest.mark.unit

OWNER = "123456789012"
PARTNER = "111122223333"
FOREIGN = "999988887777"
FN = f"arn:aws:lambda:us-east-1:{OWNER}:function:f"
BUCKET = "arn:aws:s3:::examplebucket"
OTHER_BUCKET = "arn:aws:s3:::otherbucket"
RULE_ARN = f"arn:aws:events:us-east-1:{OWNER}:rule/app-1"
ORG = "o-a1b2c3d4e5"

DEPLOYER = f"arn:aws:iam::{OWNER}:role/deployer"
CI = f"arn:aws:iam::{PARTNER}:role/ci-build"
STRANGER = f"arn:aws:iam::{FOREIGN}:role/stranger"

# --- the oracle: does the allowlist allow this request? ---------------------------------------


def oracle_allows(entries: list[dict[str, str]], request: Request) -> bool:
    """Written from DESIGN.md's allowlist semantics, at policy level: a service entry's
    source_arn / source_account must be carried by the request."""
    principal = request.principal
    context = {k.lower(): v for k, v in request.context.items()}
    for entry in entries:
        if "service" in entry:
            if principal.kind != "service" or principal.value != entry["service"]:
                continue
            if "source_arn" in entry and not fnmatch.fnmatchcase(
                str(context.get("aws:sourcearn", "\0")), entry["source_arn"]
            ):
                continue
            if (
                "source_account" in entry
                and context.get("aws:sourceaccount") != entry["source_account"]
            ):
                continue
            return True
        if principal.kind != "aws":
            continue
        arn = principal.value
        if "principal" in entry and fnmatch.fnmatchcase(arn, entry["principal"]):
            return True
        if "account" in entry and arn.split(":")[4] == entry["account"]:
            return True
    return False


# --- the request vocabulary (fixed, written by hand) ------------------------------------------

PRINCIPALS = [
    Principal.anonymous(),
    Principal.aws(DEPLOYER),
    Principal.aws(f"arn:aws:iam::{OWNER}:role/other"),
    Principal.aws(f"arn:aws:iam::{OWNER}:root"),
    Principal.aws(CI),
    Principal.aws(f"arn:aws:iam::{PARTNER}:user/alice"),
    Principal.aws(f"arn:aws:iam::{PARTNER}:root"),
    Principal.aws(STRANGER),
    Principal.aws(f"arn:aws:iam::{FOREIGN}:root"),
    Principal.service("s3.amazonaws.com"),
    Principal.service("sns.amazonaws.com"),
    Principal.service("events.amazonaws.com"),
    Principal.service("logs.amazonaws.com"),
]
SERVICE_CONTEXTS: list[dict[str, Any]] = [
    {},
    {"aws:SourceArn": BUCKET, "aws:SourceAccount": OWNER},
    {"aws:SourceArn": BUCKET, "aws:SourceAccount": FOREIGN},
    {"aws:SourceArn": BUCKET},
    {"aws:SourceArn": OTHER_BUCKET, "aws:SourceAccount": OWNER},
    {"aws:SourceArn": RULE_ARN, "aws:SourceAccount": OWNER},
    {"aws:SourceAccount": OWNER},
]
AWS_CONTEXTS: list[dict[str, Any]] = [{}, {"aws:PrincipalOrgID": ORG}]
OTHER_ACTIONS = ["lambda:GetFunction", "lambda:UpdateFunctionCode"]


def contexts(principal: Principal) -> list[dict[str, Any]]:
    if principal.kind == "service":
        return SERVICE_CONTEXTS
    return AWS_CONTEXTS if principal.kind == "aws" else [{}]


DIRECT = [
    Request(p, action, {**c, **via})
    for p in PRINCIPALS
    for c in contexts(p)
    for action, via in (
        ("lambda:InvokeFunction", {}),
        ("lambda:InvokeFunction", {"lambda:InvokedViaFunctionUrl": False}),
        ("lambda:InvokeAsync", {}),
    )
]
OTHER = [Request(p, a, c) for p in PRINCIPALS for c in contexts(p) for a in OTHER_ACTIONS]
URL = [
    (
        Request(p, "lambda:InvokeFunctionUrl", {"lambda:FunctionUrlAuthType": auth}),
        Request(p, "lambda:InvokeFunction", {"lambda:InvokedViaFunctionUrl": True}),
    )
    for p in PRINCIPALS
    for auth in ("NONE", "AWS_IAM")
]

# --- generated policies -----------------------------------------------------------------------

principal_values = st.sampled_from(
    [
        "*",
        {"AWS": "*"},
        {"AWS": OWNER},
        {"AWS": f"arn:aws:iam::{PARTNER}:root"},
        {"AWS": FOREIGN},
        {"AWS": DEPLOYER},
        {"AWS": CI},
        {"AWS": STRANGER},
        {"AWS": [DEPLOYER, STRANGER]},
        {"Service": "s3.amazonaws.com"},
        {"Service": "sns.amazonaws.com"},
        {"Service": ["s3.amazonaws.com", "events.amazonaws.com"]},
        {"Service": "logs.amazonaws.com", "AWS": CI},
    ]
)
actions = st.sampled_from(
    [
        {"Action": "lambda:InvokeFunction"},
        {"Action": "lambda:InvokeFunction"},
        {"Action": "lambda:*"},
        {"Action": "*"},
        {"Action": "lambda:Invoke*"},
        {"Action": ["lambda:GetFunction", "lambda:InvokeFunction"]},
        {"Action": "lambda:GetFunction"},
        {"Action": "lambda:InvokeAsync"},
        {"NotAction": "lambda:GetPolicy"},
        {"NotAction": ["lambda:InvokeFunction"]},
    ]
)
conditions = st.sampled_from(
    [
        None,
        None,
        {"ArnLike": {"AWS:SourceArn": BUCKET}},
        {"ArnLike": {"AWS:SourceArn": [BUCKET, OTHER_BUCKET]}},
        {"ArnLike": {"AWS:SourceArn": "arn:aws:events:*:123456789012:rule/*"}},
        {"StringEquals": {"AWS:SourceAccount": OWNER}},
        {"StringEquals": {"AWS:SourceAccount": FOREIGN}},
        {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        {"StringEquals": {"aws:PrincipalAccount": PARTNER}},
        {"StringNotEquals": {"aws:PrincipalAccount": FOREIGN}},
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{PARTNER}:role/ci-*"}},
        {"StringEqualsIfExists": {"aws:SourceAccount": OWNER}},
        {"ArnEquals": {"AWS:SourceArn": BUCKET}, "StringEquals": {"AWS:SourceAccount": OWNER}},
        {"Bool": {"aws:SecureTransport": "true"}},
    ]
)
url_statements = st.sampled_from(
    [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunction",
            "Condition": {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": PARTNER},
            "Action": "lambda:InvokeFunctionUrl",
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
        },
    ]
)


@st.composite
def statements(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["allow"] * 6 + ["deny", "not-principal", "url"]))
    if kind == "url":
        return dict(draw(url_statements))
    statement: dict[str, Any] = {"Effect": "Deny" if kind == "deny" else "Allow"}
    principal = draw(principal_values)
    if kind == "not-principal" or (kind == "deny" and draw(st.booleans())):
        statement["NotPrincipal"] = draw(
            st.sampled_from(
                [{"AWS": STRANGER}, {"AWS": [STRANGER, f"arn:aws:iam::{FOREIGN}:root"]}]
            )
        )
    else:
        statement["Principal"] = principal
    statement.update(draw(actions))
    statement["Resource"] = FN
    condition = draw(conditions)
    if condition is not None:
        statement["Condition"] = condition
    return statement


@st.composite
def policies(draw: Any, size: int = 3) -> dict[str, Any]:
    found = draw(st.lists(statements(), min_size=size, max_size=size))
    for index, statement in enumerate(found):
        statement["Sid"] = f"s{index}"
    return {"Version": "2012-10-17", "Statement": found}


allow_entries = st.sampled_from(
    [
        {"account": PARTNER},
        {"account": FOREIGN},
        {"principal": DEPLOYER},
        {"principal": f"arn:aws:iam::{PARTNER}:role/ci-*"},
        {"principal": f"arn:aws:iam::{OWNER}:root"},
        {"service": "s3.amazonaws.com", "source_arn": BUCKET, "source_account": OWNER},
        {"service": "s3.amazonaws.com", "source_arn": BUCKET},
        {"service": "sns.amazonaws.com"},
        {
            "service": "events.amazonaws.com",
            "source_arn": "arn:aws:events:*:123456789012:rule/app-*",
        },
        {"service": "logs.amazonaws.com", "source_account": OWNER},
    ]
)
allowlists = st.tuples(st.lists(allow_entries, max_size=4, unique_by=str), st.booleans())


def parse(policy: dict[str, Any] | None) -> list[PolicyStatementModel]:
    return PolicyDocumentModel.model_validate(policy).Statement if policy else []


def allowed(policy: Any, request: Request) -> bool | None:
    return evaluate(policy, request).allowed


def url_allowed(policy: Any, pair: tuple[Request, Request]) -> bool | None:
    first, second = allowed(policy, pair[0]), allowed(policy, pair[1])
    if first is False or second is False:
        return False
    return None if first is None or second is None else True


def check_access(policy: dict[str, Any], entries: list[dict[str, str]], deny_others: bool) -> str:
    rule = Rule(name="r", functions=["f"], allow=entries, deny_others=deny_others)
    try:
        result = rewrite_policy(policy, rule, FN)
    except RewriteError as refused:
        assert str(refused), "a refusal must give its reason"
        return "refused"
    wrong = wrongly_decided(parse(policy), parse(result.policy), entries)
    assert not wrong, (wrong, result.policy)
    return "rewritten"


def wrongly_decided(
    old: list[PolicyStatementModel], new: list[PolicyStatementModel], entries: list[dict[str, str]]
) -> list[str]:
    """The requests of the vocabulary `new` decides otherwise than the property says."""
    wrong = []
    for request in DIRECT:
        was, now = allowed(old, request), allowed(new, request)
        if (now != was) if oracle_allows(entries, request) else (now is not False):
            wrong.append(f"{request.describe()}: was {was}, now {now}")
    for request in OTHER:
        if allowed(new, request) != allowed(old, request):
            wrong.append(f"{request.describe()}: decided otherwise")
    for pair in URL:
        if url_allowed(new, pair) != url_allowed(old, pair):
            wrong.append(f"{pair[0].describe()} through the URL: decided otherwise")
    return wrong


# 4 x 500 = 2,000 examples (a tenth under make mutate), in four tests so that parallel runs share them out.
PROPERTY = settings(
    max_examples=examples(500),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(policy=policies(size=1), allowlist=allowlists)
def test_one_statement_policies(policy, allowlist):
    event(check_access(policy, *allowlist))


@PROPERTY
@given(policy=policies(size=2), allowlist=allowlists)
def test_two_statement_policies(policy, allowlist):
    event(check_access(policy, *allowlist))


@PROPERTY
@given(policy=policies(size=3), allowlist=allowlists)
def test_three_statement_policies(policy, allowlist):
    event(check_access(policy, *allowlist))


@PROPERTY
@given(policy=policies(size=4), allowlist=allowlists)
def test_four_statement_policies(policy, allowlist):
    event(check_access(policy, *allowlist))


@settings(max_examples=examples(300), deadline=None, derandomize=True, database=None)
@given(policy=policies(), allowlist=allowlists)
def test_rewriting_a_rewritten_policy_changes_nothing(policy, allowlist):
    entries, deny_others = allowlist
    rule = Rule(name="r", functions=["f"], allow=entries, deny_others=deny_others)
    try:
        first = rewrite_policy(policy, rule, FN)
    except RewriteError:
        return
    again = rewrite_policy(first.policy, rule, FN)
    assert again.policy == first.policy and not again.changed, again.changes


def test_the_oracle_is_not_trivial():
    entries = [{"service": "s3.amazonaws.com", "source_arn": BUCKET, "source_account": OWNER}]
    s3 = Principal.service("s3.amazonaws.com")
    assert oracle_allows(
        entries, Request(s3, "x", {"aws:SourceArn": BUCKET, "aws:SourceAccount": OWNER})
    )
    assert not oracle_allows(entries, Request(s3, "x", {"aws:SourceArn": BUCKET}))
    assert not oracle_allows(entries, Request(Principal.aws(DEPLOYER), "x"))
    assert oracle_allows([{"account": PARTNER}], Request(Principal.aws(CI), "x"))
    assert not oracle_allows(
        [{"principal": f"arn:aws:iam::{OWNER}:root"}], Request(Principal.aws(DEPLOYER), "x")
    )


# --- the former, statement-shape post-condition against the access check ---------------------


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Resource": FN} | s for s in statements],
    }


INVOKE = "lambda:InvokeFunction"
S3_ENTRY = {"service": "s3.amazonaws.com", "source_arn": BUCKET, "source_account": OWNER}
ROOT_ENTRY = {"principal": f"arn:aws:iam::{PARTNER}:root"}
# (case, policy before, policy after, allow entries): each "after" is what the former rewrite
# wrote, or what the current one writes, for "before".
DISAGREEMENTS = [
    (
        "former: a * bounded by SourceAccount removed; S3 notifications of the account lose access",
        doc(
            {
                "Sid": "a",
                "Principal": "*",
                "Action": INVOKE,
                "Condition": {"StringEquals": {"AWS:SourceAccount": OWNER}},
            }
        ),
        None,
        [S3_ENTRY],
    ),
    (
        "former: a * bounded by aws:PrincipalOrgID removed; the allowed account loses access",
        doc(
            {
                "Sid": "a",
                "Principal": "*",
                "Action": INVOKE,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            }
        ),
        None,
        [{"account": PARTNER}],
    ),
    (
        "former: a * pinned only by an S3 SourceArn kept; the bucket's namesake elsewhere invokes",
        doc(
            {
                "Sid": "a",
                "Principal": "*",
                "Action": INVOKE,
                "Condition": {"ArnLike": {"AWS:SourceArn": BUCKET}},
            }
        ),
        doc(
            {
                "Sid": "a",
                "Principal": "*",
                "Action": INVOKE,
                "Condition": {"ArnLike": {"AWS:SourceArn": BUCKET}},
            }
        ),
        [S3_ENTRY],
    ),
    (
        "former: a statement mixing invoke and GetFunction removed whole; GetFunction lost",
        doc({"Sid": "a", "Principal": {"AWS": STRANGER}, "Action": ["lambda:GetFunction", INVOKE]}),
        None,
        [{"principal": DEPLOYER}],
    ),
    (
        "former: an account grant kept for a root-user entry; every role of the account invokes",
        doc({"Sid": "a", "Principal": {"AWS": PARTNER}, "Action": INVOKE}),
        doc({"Sid": "a", "Principal": {"AWS": PARTNER}, "Action": INVOKE}),
        [ROOT_ENTRY],
    ),
    (
        "current: an account grant narrowed to the allowed roles by aws:PrincipalArn",
        doc({"Sid": "a", "Principal": {"AWS": PARTNER}, "Action": INVOKE}),
        doc(
            {
                "Sid": "a",
                "Principal": {"AWS": PARTNER},
                "Action": INVOKE,
                "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{PARTNER}:role/ci-*"}},
            }
        ),
        [{"principal": f"arn:aws:iam::{PARTNER}:role/ci-*"}],
    ),
]


def verdict(check: Any) -> str:
    try:
        check()
    except PostConditionError as failed:
        return f"fails: {failed}"
    return "passes"


@pytest.mark.parametrize(
    ("case", "before", "after", "entries"), DISAGREEMENTS, ids=[c[0][:60] for c in DISAGREEMENTS]
)
def test_where_the_shape_check_and_the_access_check_disagree(case, before, after, entries):
    """Each case is a disagreement, said out loud: the access check is right every time, by
    the vocabulary and oracle above (independent of the product's request set)."""
    rule = Rule(name="r", functions=["f"], allow=entries)
    old_model = PolicyDocumentModel.model_validate(before)
    new_model = PolicyDocumentModel.model_validate(after) if after else None
    shape = verdict(lambda: shape_check(old_model, new_model, rule))
    access = verdict(lambda: check_rewrite(parse(before), parse(after), rule, FN))
    wrong = wrongly_decided(parse(before), parse(after), entries)
    assert (access == "passes") == (not wrong), (case, access, wrong)
    assert (shape == "passes") != (access == "passes"), (case, shape, access)
    print(f"{case}\n  shape check: {shape}\n  access check: {access}")


# --- every policy the demo writes passes the access check after rewrite -------------------------


@pytest.mark.parametrize("name", sorted(DEMO_FUNCTIONS))
def test_the_demo_policies_are_rewritten_and_proven(name):
    config = parse_allowlist(DEMO_ALLOWLIST, "demo.yaml")
    function = DEMO_FUNCTIONS[name]["Statement"][0]["Resource"]
    rule = config.rule_for(parse_function_arn(function))
    if rule is None:
        pytest.skip(f"no rule covers {name}: the remediator never rewrites its policy")
    result = rewrite_policy(DEMO_FUNCTIONS[name], rule, function)  # raises if not proven
    entries = [e.model_dump(exclude_none=True) for e in rule.allow]
    assert not wrongly_decided(parse(DEMO_FUNCTIONS[name]), parse(result.policy), entries)
