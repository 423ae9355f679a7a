"""Hypothesis strategies for CloudTrail records, JSON values and mutations of real records
(the fuzzers and the soak runs)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from tests.support.records import ACCOUNT, BUCKET_ARN, DEPLOYER, OTHER_ACCOUNT, OWN_PREFIX, REGION


def examples(count: int) -> int:
    """`count` examples under hypothesis' default profile (100 examples), proportionally fewer
    under another: `make mutate`'s `mutation` profile (tests/conftest.py) runs a tenth."""
    profile = settings.default
    return count if profile is None else max(1, count * profile.max_examples // 100)


# --- JSON values and records -----------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)

_NAMES = st.sampled_from(
    [
        "BlogFunction",
        "my-function-name",
        "orders-api",
        "watch-me",
        "unruled",
        "protected-db",
        f"{OWN_PREFIX}remediator",
    ]
)
_QUALIFIERS = st.sampled_from(["prod", "live", "1", "23", "$LATEST"])


@st.composite
def function_names(draw: st.DrawFn) -> Any:
    """functionName as records carry it: a name, partial ARN or ARN, maybe qualified, or junk."""
    name = draw(_NAMES)
    qualifier = draw(st.none() | _QUALIFIERS)
    suffix = f":{qualifier}" if qualifier else ""
    account = draw(st.sampled_from([ACCOUNT, OTHER_ACCOUNT, "12345", "not-an-account"]))
    shapes = [
        name + suffix,
        f"{account}:function:{name}{suffix}",
        f"arn:aws:lambda:{REGION}:{account}:function:{name}{suffix}",
        f"arn:aws:lambda:{REGION}:{account}:function:{name}:{qualifier or 'a'}:extra",
        "",
        " ",
        "arn:aws:s3:::examplebucket",
        "function:",
    ]
    return draw(st.sampled_from(shapes) | json_values)


_PRINCIPALS = st.sampled_from(
    [
        DEPLOYER,
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        f"arn:aws:iam::{OTHER_ACCOUNT}:role/partner",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/session",
        f"arn:aws:iam::{ACCOUNT}:root",
        "arn:aws:sts::bad",
    ]
)


@st.composite
def user_identities(draw: st.DrawFn) -> Any:
    kind = draw(
        st.sampled_from(
            [
                "IAMUser",
                "AssumedRole",
                "Root",
                "AWSAccount",
                "AWSService",
                "FederatedUser",
                "Unknown",
            ]
        )
        | json_values
    )
    identity: dict[str, Any] = {"type": kind}
    optional = {
        "arn": _PRINCIPALS | json_values,
        "accountId": st.sampled_from([ACCOUNT, OTHER_ACCOUNT, "1234"])
        | st.integers()
        | json_values,
        "invokedBy": st.sampled_from(
            ["s3.amazonaws.com", "events.amazonaws.com", "states.amazonaws.com"]
        ),
        "principalId": st.text(max_size=20),
        "sessionContext": st.fixed_dictionaries(
            {},
            optional={
                "sessionIssuer": st.fixed_dictionaries(
                    {}, optional={"arn": _PRINCIPALS | json_values, "type": st.just("Role")}
                )
                | json_values
            },
        )
        | json_values,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            identity[key] = draw(strategy)
    return identity if draw(st.integers(0, 9)) else draw(json_values)


@st.composite
def cloudtrail_records(draw: st.DrawFn) -> dict[str, Any]:
    """Lambda records shaped like CloudTrail's, any field missing or of the wrong type."""
    record: dict[str, Any] = {}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "eventVersion": st.sampled_from(["1.08", "1.09"]) | json_values,
        "eventID": st.uuids().map(str) | json_values,
        "eventTime": st.sampled_from(["2024-05-01T10:00:00Z", "yesterday"]) | json_values,
        "eventSource": st.sampled_from(["lambda.amazonaws.com"] * 6 + ["s3.amazonaws.com", ""])
        | json_values,
        "eventName": st.sampled_from(
            ["Invoke"] * 6 + ["Invoke20150331", "InvokeExecution", "GetFunction20150331v2", ""]
        )
        | json_values,
        "awsRegion": st.sampled_from([REGION, "eu-west-1"]) | json_values,
        "recipientAccountId": st.sampled_from([ACCOUNT, "00042"]) | st.integers() | json_values,
        "errorCode": st.none() | st.sampled_from(["AccessDenied", "ResourceNotFoundException"]),
        "userIdentity": user_identities(),
        "requestParameters": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "functionName": function_names(),
                "qualifier": _QUALIFIERS | json_values,
                "sourceArn": st.sampled_from([BUCKET_ARN, "arn:aws:s3:::other"]) | json_values,
                "sourceAccount": st.sampled_from([ACCOUNT, OTHER_ACCOUNT]) | json_values,
            },
        )
        | json_values,
        "additionalEventData": st.fixed_dictionaries(
            {}, optional={"functionVersion": function_names()}
        )
        | json_values,
        "resources": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "ARN": function_names(),
                    "accountId": st.just(ACCOUNT),
                    "type": st.text(),
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    }
    for key, strategy in fields.items():
        if draw(st.integers(0, 5)):
            record[key] = draw(strategy)
    for _ in range(draw(st.integers(0, 2))):
        record[draw(st.text(max_size=10))] = draw(json_values)
    return record


# --- mutations of real records ---------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _wrong_type(value: Any) -> Any:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, str):
        return len(value)
    if value is None:
        return {}
    return str(value)


@st.composite
def mutated_records(draw: st.DrawFn, records: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """A real record, often turned into a Lambda Invoke record, with 1-4 random mutations:
    a key deleted, a value replaced (null, wrong type, random JSON, a string cut or padded)."""
    record = copy.deepcopy(draw(st.sampled_from(records)))
    if draw(st.booleans()):
        record["eventSource"] = "lambda.amazonaws.com"
        record["eventName"] = draw(st.sampled_from(["Invoke", "Invoke20150331"]))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(record))[1:] or [("eventName",)]))
        parent: Any = record
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        current = (
            parent[key]
            if (isinstance(parent, dict) and key in parent) or isinstance(parent, list)
            else None
        )
        operation = draw(st.sampled_from(["delete", "null", "wrong-type", "random", "string"]))
        if operation == "delete" and isinstance(parent, dict) and key in parent:
            del parent[key]
        elif operation == "null":
            parent[key] = None
        elif operation == "wrong-type":
            parent[key] = _wrong_type(current)
        elif operation == "string" and isinstance(current, str):
            parent[key] = draw(
                st.sampled_from(
                    [current[: len(current) // 2], current + "\u0000\u202e", current * 50, ""]
                )
            )
        else:
            parent[key] = draw(json_values)
    return record
