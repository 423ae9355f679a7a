"""Edge filtering through moto's EventBridge rule matching: no violation is ever filtered out,
and most allowed Invokes are.

- The measurement `make bench` reports: `put_rule` with the compiled pattern, `put_events` of
  a mixed Invoke set on the default bus, an SQS target; compared with `decide`'s verdicts.
- A property: for random allowlists and random (irregular) records, whatever the compiled
  pattern does not deliver, `decide` does not judge a violation; at every compile level, and
  also when `anything-but` does not match null (EventBridge's documentation does not say
  whether it does; the patterns list null explicitly wherever a null must be delivered).

moto does not match inside arrays of objects (`resources.ARN`); `bench.edge` adds EventBridge's
documented behaviour for that while these tests run.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern
from pydantic import ValidationError

from bench import edge, records
from cli.allowlist_file import load_allowlist
from lambdas.core.decide import Verdict, decide
from models.allowlist import AllowlistConfig
from stacks import edge_filter
from stacks.edge_filter import edge_filtered_pattern
from stacks.pattern import event_pattern, function_arn
from tests.support.records import envelope

pytestmark = pytest.mark.functional

ACCOUNT = records.ACCOUNT
REGION = records.REGION
PLAIN = event_pattern(
    own_function_arns=[
        function_arn(partition="aws", region=REGION, account=ACCOUNT, name=f"invoke-audit-{name}")
        for name in ("validator", "remediator")
    ]
)


# -- the measurement through the bus ------------------------------------------------------


@pytest.fixture(scope="module")
def bench_config() -> AllowlistConfig:
    return load_allowlist(records.ALLOWLIST)


@pytest.mark.parametrize("limit", [2048, 4096])
def test_no_violation_is_filtered_and_most_allowed_invokes_are(bench_config, limit):
    compiled = edge.compiled_pattern(bench_config, limit=limit)
    result = edge.measure(compiled.pattern, records.invoke_set(800, seed=limit), bench_config)
    assert result["verdicts"]["violation"] > 50
    assert result["false_negatives"] == 0
    assert result["dropped"].keys() <= {"allowed", "ignored"}
    assert result["allowed_filtered_fraction"] >= (0.9 if limit == 4096 else 0.6)


def test_the_shipped_allowlist_filters_the_blog_buckets_invokes_only():
    config = load_allowlist("config/allowlist.yaml")
    compiled = edge.compiled_pattern(config)
    assert compiled.filtered_rules == ("blog-s3-trigger",) and compiled.warning is None
    rng = random.Random(1)
    bucket = "arn:aws:s3:::examplebucket"
    allowed = records.invoke(
        rng,
        "BlogFunction",
        records.service("s3.amazonaws.com"),
        source_arn=bucket,
        source_account="123456789012",
    )
    other_bucket = records.invoke(
        rng,
        "BlogFunction",
        records.service("s3.amazonaws.com"),
        source_arn="arn:aws:s3:::attacker",
        source_account="123456789012",
    )
    user = records.invoke(rng, "BlogFunction", records.iam_user("mallory"), form="name")
    arrived = edge.delivered_ids(compiled.pattern, [allowed, other_bucket, user])
    assert arrived == {other_bucket["eventID"], user["eventID"]}


def test_without_the_edge_filter_everything_arrives(bench_config):
    batch = records.invoke_set(120, seed=3)
    arrived = edge.delivered_ids(PLAIN, batch)
    own = {r["eventID"] for r in batch if "invoke-audit-" in r["resources"][0]["ARN"]}
    assert arrived == {r["eventID"] for r in batch} - own


# -- the property -------------------------------------------------------------------------

NAMES = ["BlogFunction", "api-orders", "orders", "orders-worker", "partner-hook", "wf-a", "x"]
FUNCTION_PATTERNS = [
    "BlogFunction",
    "api-*",
    "orders",
    "*-worker",
    "wf-?",
    "partner-[hp]ook",
    "*",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:wf-*",
    f"arn:aws:lambda:*:{ACCOUNT}:function:orders",
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders:prod",
]
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"
ENTRIES: list[dict[str, str]] = [
    {"service": "s3.amazonaws.com"},
    {"service": "s3.amazonaws.com", "source_arn": "arn:aws:s3:::examplebucket"},
    {
        "service": "s3.amazonaws.com",
        "source_arn": "arn:aws:s3:::example*",
        "source_account": ACCOUNT,
    },
    {"service": "s3.amazonaws.com", "source_arn": "arn:aws:s3:::exampl?bucket"},
    {"service": "events.amazonaws.com", "source_account": ACCOUNT},
    {"service": "states.amazonaws.com"},
    {"principal": ROLE},
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/States*"},
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/dep?oyer"},
    {"principal": f"arn:aws:iam::{ACCOUNT}:user/alice"},
    {"principal": f"arn:aws:iam::{ACCOUNT}:root"},
    {"account": "222222222222"},
    {"account": ACCOUNT},
]
QUALIFIERS = [["*"], ["prod"], ["prod", "v*"], ["$LATEST"], ["p?od"]]


@st.composite
def configs(draw: Any) -> AllowlistConfig:
    count = draw(st.integers(1, 4))
    patterns = draw(
        st.lists(st.sampled_from(FUNCTION_PATTERNS), min_size=count, max_size=count, unique=True)
    )
    rules = [
        {
            "name": f"r{index}",
            "functions": [pattern],
            "qualifiers": draw(st.sampled_from(QUALIFIERS)),
            "allow": draw(st.lists(st.sampled_from(ENTRIES), max_size=4)),
        }
        for index, pattern in enumerate(patterns)
    ]
    try:
        return AllowlistConfig.model_validate({"version": 1, "rules": rules})
    except ValidationError:
        return AllowlistConfig.model_validate({"version": 1, "rules": rules[:1]})


def _maybe(draw: Any, value: Any) -> Any:
    """The value, or an irregular stand-in: absent (a marker), null, empty, a number."""
    return draw(st.sampled_from([value, value, value, value, _ABSENT, None, "", 12]))


_ABSENT = object()


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not _ABSENT:
        target[key] = value


@st.composite
def function_names(draw: Any) -> str:
    name = draw(st.sampled_from(NAMES))
    qualifier = draw(st.sampled_from(["", ":prod", ":7", ":$LATEST", ":v2"]))
    form = draw(st.sampled_from(["name", "arn", "partial", "other-account"]))
    text = {
        "name": f"{name}{qualifier}",
        "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}{qualifier}",
        "partial": f"{ACCOUNT}:function:{name}{qualifier}",
        "other-account": f"arn:aws:lambda:eu-west-1:999988887777:function:{name}{qualifier}",
    }[form]
    pad = draw(st.sampled_from(["", "", "", " ", "\t", "\u2003"]))
    return draw(st.sampled_from([text, pad + text, text + pad]))


@st.composite
def identities(draw: Any) -> dict[str, Any] | None:
    kind = draw(
        st.sampled_from(
            ["AWSService", "AssumedRole", "IAMUser", "Root", "AWSAccount", "FederatedUser", None]
        )
    )
    if kind is None and draw(st.booleans()):
        return None
    identity: dict[str, Any] = {}
    _put(identity, "type", kind if kind else _ABSENT)
    role = draw(st.sampled_from(["deployer", "StatesRole-1", "intruder"]))
    account = draw(st.sampled_from([ACCOUNT, "222222222222", "999988887777"]))
    if kind in ("AWSService", "AssumedRole") or draw(st.booleans()):
        _put(
            identity,
            "invokedBy",
            _maybe(
                draw,
                draw(
                    st.sampled_from(
                        [
                            "s3.amazonaws.com",
                            "events.amazonaws.com",
                            "states.amazonaws.com",
                            "apigateway.amazonaws.com",
                        ]
                    )
                ),
            ),
        )
    arn = {
        "AssumedRole": f"arn:aws:sts::{account}:assumed-role/{role}/session",
        "IAMUser": f"arn:aws:iam::{account}:user/{draw(st.sampled_from(['alice', 'bob']))}",
        "Root": f"arn:aws:iam::{account}:root",
        "FederatedUser": f"arn:aws:sts::{account}:federated-user/carol",
    }.get(kind or "", f"arn:aws:iam::{account}:role/{role}")
    _put(identity, "arn", _maybe(draw, arn))
    _put(identity, "accountId", _maybe(draw, account))
    if draw(st.booleans()):
        issuer = _maybe(draw, f"arn:aws:iam::{account}:role/{role}")
        identity["sessionContext"] = draw(
            st.sampled_from(
                [
                    {"sessionIssuer": {} if issuer is _ABSENT else {"arn": issuer}},
                    {"sessionIssuer": None},
                    None,
                ]
            )
        )
    return identity


@st.composite
def invoke_records(draw: Any) -> dict[str, Any]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    record = records.invoke(rng, "x", None)
    params: dict[str, Any] = {}
    _put(params, "functionName", _maybe(draw, draw(function_names())))
    _put(params, "qualifier", draw(st.sampled_from([_ABSENT, _ABSENT, "prod", "v3", None])))
    _put(
        params,
        "sourceArn",
        _maybe(
            draw,
            draw(
                st.sampled_from(
                    [
                        "arn:aws:s3:::examplebucket",
                        "arn:aws:s3:::otherbucket",
                        "arn:aws:events:us-east-1:111111111111:rule/r",
                    ]
                )
            ),
        ),
    )
    _put(params, "sourceAccount", _maybe(draw, draw(st.sampled_from([ACCOUNT, "999988887777"]))))
    record["requestParameters"] = draw(st.sampled_from([params, params, params, None]))
    extra = {"functionVersion": draw(function_names())}
    record["additionalEventData"] = draw(st.sampled_from([extra, extra, {}, None]))
    name = draw(st.sampled_from(NAMES))
    record["resources"] = [{"type": "AWS::Lambda::Function", "ARN": records.function_arn(name)}]
    identity = draw(identities())
    if identity is None:
        record.pop("userIdentity", None)
    else:
        record["userIdentity"] = identity
    if draw(st.integers(0, 9)) == 0:
        record["errorCode"] = "AccessDenied"
    return record


@contextlib.contextmanager
def anything_but_never_matches_null() -> Iterator[None]:
    original = EventPattern.__dict__["_does_item_match_named_filter"]

    def stricter(item: Any, pattern: dict[str, Any]) -> bool:
        if item is None and "anything-but" in pattern:
            return False
        return original.__func__(item, pattern)

    setattr(EventPattern, "_does_item_match_named_filter", staticmethod(stricter))  # noqa: B010
    try:
        yield
    finally:
        setattr(EventPattern, "_does_item_match_named_filter", original)  # noqa: B010


def _all_levels(config: AllowlistConfig) -> list[dict[str, Any]]:
    """The compiled pattern at every level (how much is compiled when space runs out)."""
    rules = [(rule.name, edge_filter._rule_forms(rule)) for rule in config.rules]
    patterns = [
        edge_filter._pattern(PLAIN, PLAIN["detail"], rules, level) for level in edge_filter.LEVELS
    ]
    patterns.append(edge_filtered_pattern(PLAIN, config, limit=1200).pattern)
    return patterns


def _without_nulls(node: Any) -> Any:
    """The pattern as CDK writes it into the template: jsii turns None into undefined, and
    list elements that are undefined are left out."""
    if isinstance(node, dict):
        return {key: _without_nulls(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_nulls(value) for value in node if value is not None]
    return node


@pytest.mark.parametrize(
    "null_semantics", ["moto", "anything-but never matches null", "as CDK synthesizes it"]
)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=configs(), batch=st.lists(invoke_records(), min_size=20, max_size=20))
def test_what_the_pattern_drops_is_never_a_violation(null_semantics, config, batch):
    strict = null_semantics == "anything-but never matches null"
    with (
        edge.eventbridge_array_matching(),
        anything_but_never_matches_null() if strict else contextlib.nullcontext(),
    ):
        for compiled in _all_levels(config):
            pattern = _without_nulls(compiled) if null_semantics.startswith("as CDK") else compiled
            matcher = EventPattern(json.dumps(pattern), pattern)
            for record in batch:
                if matcher.matches_event(
                    cast(Any, envelope(record, account=ACCOUNT, id=record["eventID"]))
                ):
                    continue
                decision = decide(record, config, own_prefix="invoke-audit-")
                assert decision.verdict is not Verdict.VIOLATION, (
                    json.dumps(pattern),
                    json.dumps(record),
                    decision.reason,
                )


def test_the_property_filters_something():
    """The property above is not vacuous: its generators produce allowed Invokes that the
    compiled pattern drops."""
    config = AllowlistConfig.model_validate(
        {
            "version": 1,
            "rules": [{"name": "r", "functions": ["BlogFunction"], "allow": [ENTRIES[1]]}],
        }
    )
    rng = random.Random(4)
    record = records.invoke(
        rng,
        "BlogFunction",
        records.service("s3.amazonaws.com"),
        source_arn="arn:aws:s3:::examplebucket",
    )
    assert decide(record, config).verdict is Verdict.ALLOWED
    with edge.eventbridge_array_matching():
        dropped = [
            not EventPattern(json.dumps(p), p).matches_event(
                cast(Any, envelope(record, account=ACCOUNT, id=record["eventID"]))
            )
            for p in _all_levels(config)
        ]
    assert all(dropped)
