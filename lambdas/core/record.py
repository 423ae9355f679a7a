"""The one reader of a CloudTrail record's fields: which function was invoked, by whom.

Everything that reads a Lambda record asks this module: `decide` (through `resolve_function`
and `resolve_caller`), the decision cache (`decision_key`, the deciding fields of a raw
record), `learn`, and the edge-filter compiler (the field paths and identity types below,
which it turns into an EventBridge pattern that must agree with what `decide` reads).

Fields and their meaning (DESIGN.md, "Facts the code must respect"):

- the invoked resource: `requestParameters.functionName` (name, partial or full ARN, maybe
  qualified; `requestParameters.qualifier` may add the qualifier), else
  `additionalEventData.functionVersion`, else `resources[].ARN`; region and account from the
  ARN, else `awsRegion` / `recipientAccountId` (or the function resource's `accountId`);
- the caller: `userIdentity.invokedBy` (a service), the principal (the role behind an
  assumed-role session, the IAM user, root, federated or Identity Center user ARN), the
  account, and `requestParameters.sourceArn` / `sourceAccount`.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.arns import FunctionRef, parse_function_arn
from models.cloudtrail import CloudTrailRecordModel, UserIdentityModel
from models.exceptions import InputError
from models.regions import partition_of_region

__all__ = [
    "ARN_IDENTITY_TYPES",
    "ASSUMED_ROLE",
    "FUNCTION_NAME",
    "FUNCTION_VERSION",
    "IDENTITY_ACCOUNT",
    "IDENTITY_ARN",
    "IDENTITY_TYPE",
    "INVOCATIONS",
    "INVOKE",
    "INVOKED_BY",
    "ISSUER_ARN",
    "LAMBDA_SOURCE",
    "SOURCE_ACCOUNT",
    "SOURCE_ARN",
    "Caller",
    "FieldPath",
    "base_event_name",
    "decision_key",
    "resolve_caller",
    "resolve_function",
    "text",
]

LAMBDA_SOURCE = "lambda.amazonaws.com"
INVOKE = "Invoke"
# The invocation APIs: InvokeAsync (deprecated) runs the function like Invoke, and so does
# InvokeWithResponseStream. CloudTrail's documentation lists only Invoke as a Lambda data
# event; the others are judged alike whenever they are recorded (a missed invocation costs
# more than a logged one). InvokeExecution is the asynchronous run of an Invoke.
INVOCATIONS = frozenset({INVOKE, "InvokeAsync", "InvokeWithResponseStream"})

FieldPath = tuple[str, ...]
FUNCTION_NAME: FieldPath = ("requestParameters", "functionName")
QUALIFIER: FieldPath = ("requestParameters", "qualifier")
FUNCTION_VERSION: FieldPath = ("additionalEventData", "functionVersion")
SOURCE_ARN: FieldPath = ("requestParameters", "sourceArn")
SOURCE_ACCOUNT: FieldPath = ("requestParameters", "sourceAccount")
INVOKED_BY: FieldPath = ("userIdentity", "invokedBy")
IDENTITY_TYPE: FieldPath = ("userIdentity", "type")
IDENTITY_ARN: FieldPath = ("userIdentity", "arn")
IDENTITY_ACCOUNT: FieldPath = ("userIdentity", "accountId")
ISSUER_ARN: FieldPath = ("userIdentity", "sessionContext", "sessionIssuer", "arn")

ASSUMED_ROLE = "AssumedRole"
ROOT = "Root"
# Identity types whose principal is `userIdentity.arn` when it is set (Root: else built from
# the account).
ARN_IDENTITY_TYPES = ("IAMUser", ROOT, "FederatedUser", "IdentityCenterUser")

# An API version date, 20YYMMDD (the edge filter selects `Invoke20...` on this).
_SUFFIX = re.compile(r"20[0-9]{6}(v[0-9]+)?\Z")
_ASSUMED_ROLE = re.compile(r"arn:(?P<p>[^:]+):sts::(?P<a>[^:]+):assumed-role/(?P<role>[^/]+)/")


def base_event_name(name: str) -> str:
    """`GetFunction20150331` -> `GetFunction`; `AddPermission20150331v2` -> `AddPermission`."""
    return _SUFFIX.sub("", name)


def text(value: Any) -> str | None:
    """An optional string as the record means it: anything but a non-empty string is absent."""
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called: any of a service (invokedBy), a principal ARN and an account."""

    service: str | None = None
    principal: str | None = None
    account: str | None = None
    source_arn: str | None = None
    source_account: str | None = None
    identity_type: str | None = None

    def describe(self) -> str:
        if self.service:
            via = f" (as {self.principal})" if self.principal else ""
            source = f" for {self.source_arn}" if self.source_arn else ""
            return f"{self.service}{source}{via}"
        if self.principal:
            return self.principal
        return f"account {self.account}" if self.account else "unknown caller"


def resolve_function(record: CloudTrailRecordModel) -> FunctionRef:
    """The invoked resource: the function, version or alias whose policy governs the call."""
    params = record.requestParameters or {}
    extra = record.additionalEventData or {}
    region = record.awsRegion
    account = record.recipientAccountId
    partition: str | None = None  # a bare name's partition: the resource ARN's, else the region's
    for resource in record.resources or []:
        if resource.ARN and ":function:" in resource.ARN:
            account = account or resource.accountId
            partition = partition or resource.ARN.split(":")[1] or None
    partition = partition or (partition_of_region(region) if region else "aws")
    for path, node in ((FUNCTION_NAME, params), (FUNCTION_VERSION, extra)):
        value = node.get(path[1])
        if value is not None and not isinstance(value, str):
            # A list or an object where a name belongs: which function it names is not
            # knowable (and EventBridge matches a list element by element), so it is not judged.
            raise InputError(f"{'.'.join(path)} is a {type(value).__name__}, not a string")
    name = text(params.get(FUNCTION_NAME[1]))
    if name:
        ref = parse_function_arn(
            name, default_region=region, default_account=account, default_partition=partition
        )
        qualifier = text(params.get(QUALIFIER[1]))
        return ref if ref.qualifier or not qualifier else ref.with_qualifier(qualifier)
    version = text(extra.get(FUNCTION_VERSION[1]))
    if version:
        return parse_function_arn(
            version, default_region=region, default_account=account, default_partition=partition
        )
    for resource in record.resources or []:
        if resource.ARN and ":function:" in resource.ARN:
            return parse_function_arn(resource.ARN, default_region=region, default_account=account)
    raise InputError(
        "no functionName, functionVersion or function resource: the function is unknown"
    )


def resolve_caller(identity: UserIdentityModel, params: Mapping[str, Any]) -> Caller:
    """The caller of a record with this `userIdentity` and `requestParameters`."""
    principal: str | None = None
    kind = identity.type
    issuer = identity.sessionContext.sessionIssuer if identity.sessionContext else None
    account = identity.accountId
    if kind == ASSUMED_ROLE:
        if issuer and issuer.arn:
            principal = issuer.arn
        elif identity.arn and (m := _ASSUMED_ROLE.match(identity.arn)):
            principal = f"arn:{m['p']}:iam::{m['a']}:role/{m['role']}"
    elif kind == ROOT:
        principal = identity.arn or (f"arn:aws:iam::{account}:root" if account else None)
    elif kind in ARN_IDENTITY_TYPES:
        principal = identity.arn
    if account is None and principal and principal.count(":") >= 5:
        account = principal.split(":")[4] or None
    return Caller(
        service=identity.invokedBy,
        principal=principal,
        account=account,
        source_arn=text(params.get(SOURCE_ARN[1])),
        source_account=text(params.get(SOURCE_ACCOUNT[1])),
        identity_type=kind,
    )


# -- the deciding fields of a raw record, for the decision cache ----------------------------
#
# `decision_key` reads a raw record (a dict as JSON gives it) and returns, for a Lambda record
# whose fields have the types the record model keeps as they are (strings, booleans, objects,
# lists; anything pydantic would coerce or reject is left to the full path), a tuple of the
# values that `resolve_function`, `resolve_caller` and `decide` read, reduced the way they
# reduce them (`text`; the session ARN of an assumed role only counts when no session issuer
# names the role; `functionVersion` only when there is no `functionName`). Two records with
# the same key get the same decision but for the event's id, time and name.

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
    arn_counts = kind in ARN_IDENTITY_TYPES or (kind == ASSUMED_ROLE and not issuer_arn)
    return (
        kind,
        identity.get("arn") if arn_counts else None,
        identity.get("accountId"),
        identity.get("invokedBy"),
        issuer_arn if kind == ASSUMED_ROLE else None,
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
    for path, node in ((FUNCTION_NAME, params), (FUNCTION_VERSION, extra or {})):
        value = node.get(path[1])
        if value is not None and type(value) is not str:
            return None
    function = text(params.get(FUNCTION_NAME[1]))
    return (
        raw.get("eventName"),
        raw.get("awsRegion"),
        raw.get("recipientAccountId"),
        raw.get("errorCode"),
        function,
        text(params.get(QUALIFIER[1])) if function else None,
        None if function else text((extra or {}).get(FUNCTION_VERSION[1])),
        text(params.get(SOURCE_ARN[1])),
        text(params.get(SOURCE_ACCOUNT[1])),
        places,
        identity is None,
        caller,
    )
