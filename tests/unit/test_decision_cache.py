"""Remembered decisions are the decisions: `decide` through the cache gives exactly what the
full path gives, for generated, mutated and real records, and records whose keys are equal
are judged alike."""

from __future__ import annotations

import copy
import dataclasses
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.core import decide as decide_module
from lambdas.core.decide import Decision, decide
from lambdas.core.decision_cache import DecisionCache
from lambdas.core.record import decision_key
from models.allowlist import AllowlistConfig
from tests.support.allowlists import fuzz_config
from tests.support.corpus import corpus_records
from tests.support.records import OWN_FUNCTIONS
from tests.support.strategies import cloudtrail_records, examples, mutated_records

pytestmark = pytest.mark.unit

SETTINGS = settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PER_EVENT = ("event_id", "event_time", "event_name")


def full(record: Any) -> Decision:
    return decide_module._decide(record, fuzz_config(), OWN_FUNCTIONS)


def sibling(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The record as another event of the same call: other ids, time, session, extras."""
    other = copy.deepcopy(record)
    other["eventID"] = f"{rng.getrandbits(64):016x}"
    other["eventTime"] = "2030-01-01T00:00:00Z"
    other["requestID"] = f"{rng.getrandbits(32):08x}"
    other["sourceIPAddress"] = "198.51.100.1"
    identity = other.get("userIdentity")
    if isinstance(identity, dict):
        identity["principalId"] = "AROAOTHER:session"
        context = identity.get("sessionContext")
        issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
        if identity.get("type") == "AssumedRole" and isinstance(issuer, dict) and issuer.get("arn"):
            identity["arn"] = str(identity.get("arn")) + "-other-session"
    return other


def without_event(decision: Decision) -> dict[str, Any]:
    fields = dataclasses.asdict(decision)
    return {k: v for k, v in fields.items() if k not in PER_EVENT}


@pytest.fixture(autouse=True)
def fresh_cache():
    decide_module._DECISIONS.clear()
    yield
    decide_module._DECISIONS.clear()


def check(record: Any, rng: random.Random) -> None:
    if isinstance(record, dict):
        decide(sibling(record, rng), fuzz_config(), own_functions=OWN_FUNCTIONS)  # fills the cache
    assert decide(record, fuzz_config(), own_functions=OWN_FUNCTIONS) == full(record)


@SETTINGS
@given(cloudtrail_records(), st.randoms(use_true_random=False))
def test_generated_records_are_judged_as_by_the_full_path(record, rng):
    check(record, rng)


@SETTINGS
@given(st.data(), st.randoms(use_true_random=False))
def test_mutated_real_records_are_judged_as_by_the_full_path(data, rng):
    records = corpus_records()
    if not records:
        pytest.skip("the shared corpus is not there")
    check(data.draw(mutated_records(records)), rng)


def test_every_real_record_is_judged_as_by_the_full_path():
    records = corpus_records()
    if not records:
        pytest.skip("the shared corpus is not there")
    rng = random.Random(7)
    cached = 0
    for record in records:
        check(record, rng)
        cached += decision_key(record) is not None
    assert cached > 10


@SETTINGS
@given(cloudtrail_records(), st.randoms(use_true_random=False))
def test_siblings_share_a_key_and_a_decision(record, rng):
    other = sibling(record, rng)
    key = decision_key(record)
    if key is None:
        return
    assert decision_key(other) == key
    assert without_event(full(other)) == without_event(full(record))


@pytest.mark.parametrize(
    "change",
    [
        {"readOnly": "false"},  # pydantic turns it into a bool: left to the full path
        {"recipientAccountId": 123456789012},  # a number for a string: coerced
        {"requestParameters": {1: "x"}},
        {"resources": ({"ARN": "a"},)},
        {"userIdentity": {"accountId": 1}},
        {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": 5}}}},
        {"eventSource": "s3.amazonaws.com"},
    ],
)
def test_records_pydantic_would_change_or_reject_are_not_cached(change):
    record = {"eventSource": "lambda.amazonaws.com", "eventName": "Invoke", **change}
    assert decision_key(record) is None


def test_the_session_of_an_assumed_role_counts_only_without_an_issuer():
    identity: dict[str, Any] = {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r/s1"}
    base: dict[str, Any] = {"eventSource": "lambda.amazonaws.com", "userIdentity": identity}
    other = copy.deepcopy(base)
    other["userIdentity"]["arn"] = "arn:aws:sts::1:assumed-role/r/s2"
    assert decision_key(base) != decision_key(other)
    for record in (base, other):
        record["userIdentity"]["sessionContext"] = {
            "sessionIssuer": {"arn": "arn:aws:iam::1:role/r"}
        }
    assert decision_key(base) == decision_key(other)


def test_the_cache_is_bounded():
    cache: DecisionCache[int] = DecisionCache()
    configs = [object() for _ in range(DecisionCache.MAX_CONFIGS + 3)]
    for config in configs:
        cache.table(config, frozenset({"p"}))[1] = 1
    assert len(cache._tables) == DecisionCache.MAX_CONFIGS
    table = cache.table(configs[-1], frozenset({"p"}))
    for i in range(DecisionCache.MAX_KEYS):
        table[i] = i
    assert len(cache.table(configs[-1], frozenset({"p"}))) == 0


# --- field by field: a remembered decision never answers for a record one field away --------

_PARTNER = "111122223333"
_FOREIGN = "999988887777"
_ACCOUNT = "123456789012"
_REGION = "us-east-1"
_DEPLOYER = f"arn:aws:iam::{_ACCOUNT}:role/deployer"
_FIELD_CONFIG = AllowlistConfig.model_validate(
    {
        "version": 1,
        "rules": [
            {
                "name": "blog",
                "functions": ["BlogFunction"],
                "allow": [
                    {
                        "service": "s3.amazonaws.com",
                        "source_arn": "arn:aws:s3:::examplebucket",
                        "source_account": _ACCOUNT,
                    },
                    {"principal": _DEPLOYER},
                    {"principal": f"arn:aws:iam::{_ACCOUNT}:user/alice"},
                    {"account": _PARTNER},
                ],
            },
            {
                "name": "orders-prod",
                "functions": ["orders"],
                "qualifiers": ["prod"],
                "allow": [{"account": _PARTNER}],
            },
            {
                "name": "regional",
                "functions": [f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:regional"],
                "allow": [{"account": _PARTNER}],
            },
        ],
    }
)


def _record(name: Any = "BlogFunction", identity: Any = None, **params: Any) -> dict[str, Any]:
    parameters = None if name is None else {"functionName": name, **params}
    return {
        "eventVersion": "1.08",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "eventID": "e-1",
        "eventTime": "2024-05-01T10:00:00Z",
        "awsRegion": _REGION,
        "recipientAccountId": _ACCOUNT,
        "userIdentity": identity or {"type": "AWSAccount", "accountId": _PARTNER},
        "requestParameters": parameters,
        "resources": [
            {
                "ARN": f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:BlogFunction",
                "accountId": _ACCOUNT,
                "type": "AWS::Lambda::Function",
            }
        ],
    }


def _s3(**params: Any) -> dict[str, Any]:
    sources = {"sourceArn": "arn:aws:s3:::examplebucket", "sourceAccount": _ACCOUNT} | params
    return _record(identity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"}, **sources)


def _role(*, issuer: str | None, session_role: str = "deployer") -> dict[str, Any]:
    identity: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{_ACCOUNT}:assumed-role/{session_role}/s1",
        "accountId": _ACCOUNT,
    }
    if issuer:
        identity["sessionContext"] = {"sessionIssuer": {"type": "Role", "arn": issuer}}
    return _record(identity=identity)


def _set(path: str, value: Any) -> Any:
    """A change of one field (dotted path; `resources.0.ARN`); `...` deletes it."""

    def change(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = record
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is ...:
            del node[last]
        else:
            node[last] = value

    return change


# (field, record, the change to one field of it): every field `decide` reads, each changed
# so that the full path judges the neighbour differently from the record.
NEIGHBOURS = [
    ("sourceAccount", _s3(), _set("requestParameters.sourceAccount", _FOREIGN)),
    ("sourceArn", _s3(), _set("requestParameters.sourceArn", "arn:aws:s3:::otherbucket")),
    ("eventName", _record(), _set("eventName", "InvokeExecution")),
    ("errorCode", _record(), _set("errorCode", "AccessDeniedException")),
    ("functionName", _record(), _set("requestParameters.functionName", "OtherFunction")),
    ("qualifier", _record("orders", qualifier="prod"), _set("requestParameters.qualifier", "dev")),
    (
        "functionVersion",
        _record(None) | {"additionalEventData": {"functionVersion": "orders:prod"}},
        _set("additionalEventData.functionVersion", "orders:7"),
    ),
    ("awsRegion", _record("regional"), _set("awsRegion", "eu-west-1")),
    ("recipientAccountId", _record("regional"), _set("recipientAccountId", _PARTNER)),
    (
        "resources.ARN",
        _record(None),
        _set("resources.0.ARN", f"arn:aws:lambda:{_REGION}:{_ACCOUNT}:function:OtherFunction"),
    ),
    (
        "resources.accountId",
        {k: v for k, v in _record("regional").items() if k != "recipientAccountId"},
        _set("resources.0.accountId", _PARTNER),
    ),
    ("userIdentity", _record(), _set("userIdentity", ...)),
    (
        "userIdentity.type",
        _record(identity={"type": "IAMUser", "arn": f"arn:aws:iam::{_ACCOUNT}:user/alice"}),
        _set("userIdentity.type", "Unknown"),
    ),
    (
        "userIdentity.arn",
        _record(identity={"type": "IAMUser", "arn": f"arn:aws:iam::{_ACCOUNT}:user/alice"}),
        _set("userIdentity.arn", f"arn:aws:iam::{_ACCOUNT}:user/mallory"),
    ),
    ("userIdentity.accountId", _record(), _set("userIdentity.accountId", _FOREIGN)),
    ("userIdentity.invokedBy", _s3(), _set("userIdentity.invokedBy", "sns.amazonaws.com")),
    (
        "sessionIssuer.arn",
        _role(issuer=_DEPLOYER),
        _set("userIdentity.sessionContext.sessionIssuer.arn", f"arn:aws:iam::{_ACCOUNT}:role/x"),
    ),
    (
        "assumed-role session arn",
        _role(issuer=None),
        _set("userIdentity.arn", f"arn:aws:sts::{_ACCOUNT}:assumed-role/intruder/s1"),
    ),
]


@pytest.mark.parametrize(("field", "record", "change"), NEIGHBOURS, ids=[n[0] for n in NEIGHBOURS])
def test_a_record_one_field_away_is_judged_on_its_own(field, record, change):
    neighbour = copy.deepcopy(record)
    change(neighbour)
    uncached = decide_module._decide(neighbour, _FIELD_CONFIG, OWN_FUNCTIONS)
    # The neighbour really is judged differently, or this case could not catch anything.
    assert without_event(uncached) != without_event(
        decide_module._decide(record, _FIELD_CONFIG, OWN_FUNCTIONS)
    ), field
    decide(record, _FIELD_CONFIG, own_functions=OWN_FUNCTIONS)  # primes the cache
    assert decide(neighbour, _FIELD_CONFIG, own_functions=OWN_FUNCTIONS) == uncached, field


def test_one_allowlist_and_own_functions_keep_one_table():
    cache: DecisionCache[str] = DecisionCache()
    config, other = object(), object()
    table = cache.table(config, {"a"})
    table["key"] = "remembered"
    assert cache.table(config, frozenset({"a"})) is table
    assert cache.table(config, {"a"}) == {"key": "remembered"}
    assert cache.table(config, {"b"}) == {}
    assert cache.table(other, {"a"}) == {}
    cache.clear()
    assert cache.table(config, {"a"}) == {}


def test_the_oldest_allowlist_is_the_one_forgotten():
    cache: DecisionCache[int] = DecisionCache()
    configs = [object() for _ in range(DecisionCache.MAX_CONFIGS + 1)]
    for number, config in enumerate(configs):
        cache.table(config, set())["n"] = number
    assert cache.table(configs[0], set()) == {}
    assert [cache.table(c, set()).get("n") for c in configs[2:]] == list(range(2, len(configs)))
