"""Repeated decisions, remembered: a key made of exactly the record fields a decision reads.

Invoke traffic repeats itself: the same callers invoke the same functions all day, and only
the event id and time change. `decision_key` reads a raw record (a dict as JSON gives it) and
returns, for a Lambda record whose fields have the types the record model accepts as they are
(strings, booleans, objects, lists; anything that pydantic would coerce or reject is left to
the full path), a tuple of the values that `decide` reads, reduced the way `decide` reduces
them (`_text`: a value that is not a non-empty string counts as absent; the session ARN of an
assumed role only counts when no session issuer names the role; `functionVersion` only when
there is no `functionName`). Two records with the same key get the same verdict, reason,
function, caller, rule and mode; `decide` then only fills in the event's id, time and name.

`DecisionCache` holds the decisions per allowlist (and own-function prefix): an allowlist is
immutable, so a cached decision never goes stale; the cache is bounded.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, TypeVar

__all__ = ["DecisionCache", "decision_key"]

LAMBDA_SOURCE = "lambda.amazonaws.com"

_RECORD_TEXT = (
    "eventVersion",
    "eventID",
    "eventTime",
    "eventName",
    "eventCategory",
    "awsRegion",
    "recipientAccountId",
    "requestID",
    "errorCode",
    "errorMessage",
)
_RECORD_FLAGS = ("readOnly", "managementEvent")
_IDENTITY_TEXT = ("type", "principalId", "arn", "accountId", "invokedBy", "userName")
_ISSUER_TEXT = ("type", "principalId", "arn", "accountId", "userName")
_RESOURCE_TEXT = ("ARN", "accountId", "type")
# Identity types whose principal `resolve_caller` reads from `userIdentity.arn`.
_ARN_TYPES = frozenset({"Root", "IAMUser", "FederatedUser", "IdentityCenterUser"})


def _texts(node: dict[str, Any], names: tuple[str, ...]) -> bool:
    """Every named field is absent, null or a string (what the model keeps as it is)."""
    get = node.get
    for name in names:
        value = get(name)
        if value is not None and type(value) is not str:
            return False
    return True


def _object(value: Any) -> bool:
    """A JSON object with string keys (what `dict[str, Any]` keeps as it is), or null."""
    return value is None or (type(value) is dict and all(type(k) is str for k in value))


def _text(value: Any) -> Any:
    """As `decide` reads an optional string: anything but a non-empty string is absent."""
    return value if isinstance(value, str) and value else None


def _identity_key(identity: Any) -> tuple[Any, ...] | bool | None:
    """The caller's part of the key; False: not a well-typed identity."""
    if type(identity) is not dict or not _texts(identity, _IDENTITY_TEXT):
        return False
    context = identity.get("sessionContext")
    issuer_arn = None
    if context is not None:
        if type(context) is not dict:
            return False
        issuer = context.get("sessionIssuer")
        if issuer is not None:
            if type(issuer) is not dict or not _texts(issuer, _ISSUER_TEXT):
                return False
            issuer_arn = issuer.get("arn")
    kind = identity.get("type")
    arn_counts = kind in _ARN_TYPES or (kind == "AssumedRole" and not issuer_arn)
    return (
        kind,
        identity.get("arn") if arn_counts else None,
        identity.get("accountId"),
        identity.get("invokedBy"),
        issuer_arn if kind == "AssumedRole" else None,
    )


def decision_key(raw: Any) -> tuple[Any, ...] | None:
    """The fields of a Lambda record that decide its verdict, or None when the record is not
    a well-typed Lambda record (it then takes the full path, and is not cached)."""
    if type(raw) is not dict or raw.get("eventSource") != LAMBDA_SOURCE:
        return None
    if not _texts(raw, _RECORD_TEXT):
        return None
    for name in _RECORD_FLAGS:
        value = raw.get(name)
        if value is not None and type(value) is not bool:
            return None
    params = raw.get("requestParameters")
    extra = raw.get("additionalEventData")
    if not (_object(params) and _object(extra)):
        return None
    params = params or {}
    resources = raw.get("resources")
    if resources is None:
        places: tuple[Any, ...] | None = None
    elif type(resources) is not list:
        return None
    else:
        for resource in resources:
            if type(resource) is not dict or not _texts(resource, _RESOURCE_TEXT):
                return None
        places = tuple((r.get("ARN"), r.get("accountId")) for r in resources)
    identity = raw.get("userIdentity")
    caller = None if identity is None else _identity_key(identity)
    if caller is False:
        return None
    name = _text(params.get("functionName"))
    return (
        raw.get("eventName"),
        raw.get("awsRegion"),
        raw.get("recipientAccountId"),
        raw.get("errorCode"),
        name,
        _text(params.get("qualifier")) if name else None,
        None if name else _text((extra or {}).get("functionVersion")),
        _text(params.get("sourceArn")),
        _text(params.get("sourceAccount")),
        places,
        identity is None,
        caller,
    )


V = TypeVar("V")


class DecisionCache(Generic[V]):
    """Values per (allowlist, own prefix, key); a few allowlists, a bounded number of keys."""

    MAX_KEYS = 65_536
    MAX_CONFIGS = 8

    def __init__(self) -> None:
        # id(config) -> (config, own prefix, values); the config is held so its id stays its own
        self._tables: dict[tuple[int, str], tuple[object, dict[Hashable, V]]] = {}

    def table(self, config: object, own_prefix: str) -> dict[Hashable, V]:
        slot = (id(config), own_prefix)
        found = self._tables.get(slot)
        if found is None:
            if len(self._tables) >= self.MAX_CONFIGS:
                del self._tables[next(iter(self._tables))]
            found = self._tables[slot] = (config, {})
        values = found[1]
        if len(values) >= self.MAX_KEYS:
            values.clear()
        return values

    def clear(self) -> None:
        self._tables.clear()
