"""Per-resource Lambda policies for moto 5.2.5: the semantics invoke-audit depends on.

moto's Lambda backend falls short of AWS in four ways that matter to a tool that reads and
rewrites function resource policies. Each gap, what AWS does, and how it is closed here:

1. The full-document API is missing. AWS has ``GetResourcePolicy``, ``PutResourcePolicy``
   and ``DeleteResourcePolicy`` (API version 2026-07-09, ``/2026-07-09/resource-policy/
   {ResourceArn}``): a whole policy document, Deny statements allowed, ``RevisionId`` for
   compare-and-swap, ``PreconditionFailedException`` (412) on a stale revision,
   ``PolicyLengthExceededException`` past 20 KB, ``PublicPolicyException`` when a policy
   would make the resource public. moto answers 404 "Not yet implemented".
   Closed by: a URL route for ``resource-policy/`` and the three operations below.

2. One policy is shared by a function and all its versions and aliases. In AWS each
   function, published version and alias has its own policy (``GetPolicy`` /
   ``AddPermission`` / ``RemovePermission`` with ``Qualifier``, or a qualified
   ``ResourceArn``); ``$LATEST`` has no policy of its own: the unqualified function's
   policy governs it, and ``AddPermission`` refuses ``Qualifier=$LATEST``
   (InvalidParameterValueException "We currently do not support adding policies for
   $LATEST."). moto keeps the policy on the function object and shallow-copies it into
   every published version; ``RemovePermission`` ignores ``Qualifier``.
   Closed by: a policy table per backend, keyed by (function name, qualifier).

3. ``RevisionId``: each policy has its own, changed by every write, returned by
   ``GetPolicy`` and ``GetResourcePolicy``; every write call takes an optional
   ``RevisionId`` and answers 412 when it is stale. moto's ``RemovePermission`` fails with
   412 for any ``RevisionId`` (its server reads the query-string value as a list).
   Closed by: one revision per policy record, checked under a lock (moto's server is
   threaded, and compare-and-swap must hold under concurrent writers).

4. Conflicts: ``AddPermission`` with an existing ``StatementId`` is a 409
   ``ResourceConflictException`` in AWS (moto appends a duplicate);
   ``RemovePermission`` of an unknown statement is a 404.

Both APIs read and write the same record: a statement added with ``AddPermission`` is in
``GetResourcePolicy``'s document, and a document put with ``PutResourcePolicy`` is what
``GetPolicy`` returns. Removing the last statement deletes the policy, as in AWS.

Where AWS documents nothing, the emulator picks the strict reading and says so:
a ``RevisionId`` given for a resource that has no policy yet fails with 412 on
``AddPermission`` / ``PutResourcePolicy`` (nothing matches it), writes to ``$LATEST``
through the new API are refused like ``AddPermission``'s, and ``PublicPolicyException``
is raised only when :func:`block_public_policies` is on (a statement is "public" when it
allows a wildcard principal with no ``Condition``). The policy size is measured on the
compact JSON document (``PutResourcePolicy``: also on the string as sent).

The operations are installed on moto's ``LambdaBackend`` and ``LambdaResponse`` classes by
:func:`install`; ``LambdaSimpleBackend`` (``use_docker: False``) inherits them. Not covered:
moto's CloudFormation ``AWS::Lambda::Permission`` still writes moto's own policy object,
which the patched operations no longer read.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from moto.awslambda import urls as lambda_urls
from moto.awslambda.exceptions import UnknownFunctionException
from moto.awslambda.models import LambdaBackend
from moto.awslambda.responses import LambdaResponse
from moto.core.common_types import TYPE_RESPONSE
from moto.core.exceptions import JsonRESTError

__all__ = [
    "POLICY_SIZE_LIMIT",
    "RESOURCE_POLICY_API_VERSION",
    "add_permission",
    "block_public_policies",
    "delete_resource_policy",
    "get_policy",
    "get_resource_policy",
    "install",
    "is_installed",
    "public_policies_blocked",
    "put_resource_policy",
    "remove_permission",
]

POLICY_SIZE_LIMIT: Final = 20480
RESOURCE_POLICY_API_VERSION: Final = "2026-07-09"
LATEST: Final = "$LATEST"
_POLICY_VERSION: Final = "2012-10-17"

_FULL_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12})"
    r":function:(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?\Z"
)
_PARTIAL_ARN = re.compile(
    r"(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?\Z"
)
_NAME = re.compile(r"(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?\Z")
_ACCOUNT_ID = re.compile(r"\d{12}\Z")
_RESOURCE_ARN_PATTERN: Final = (
    r"arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}"
    r":function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_])+)?"
)


# --- errors: AWS error codes and status codes, raised inside moto's request handling ----


class _LambdaError(JsonRESTError):
    code = 400


class InvalidParameterValueError(_LambdaError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterValueException", message)


class ValidationError(_LambdaError):
    def __init__(self, message: str) -> None:
        super().__init__("ValidationException", message)


class ResourceNotFoundError(_LambdaError):
    code = 404

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


class ResourceConflictError(_LambdaError):
    code = 409

    def __init__(self, message: str) -> None:
        super().__init__("ResourceConflictException", message)


class PreconditionFailedError(_LambdaError):
    code = 412

    def __init__(self, read_api: str) -> None:
        super().__init__(
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. "
            f"Call the {read_api} API to retrieve the latest Revision Id",
        )


class PolicyLengthExceededError(_LambdaError):
    def __init__(self, size: int) -> None:
        super().__init__(
            "PolicyLengthExceededException",
            f"The final policy size ({size}) is bigger than the limit ({POLICY_SIZE_LIMIT}).",
        )


class PublicPolicyError(_LambdaError):
    def __init__(self) -> None:
        super().__init__(
            "PublicPolicyException",
            "The resource-based policy would grant public access to the resource, "
            "which Lambda block public access does not allow.",
        )


# --- the policy table --------------------------------------------------------------------


@dataclass
class _PolicyRecord:
    document: dict[str, Any]
    revision_id: str

    def statements(self) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = self.document["Statement"]
        return statements

    def wire(self) -> dict[str, str]:
        return {"Policy": _compact(self.document), "RevisionId": self.revision_id}


@dataclass(frozen=True)
class _Target:
    """The resource that owns a policy: a function (qualifier None), a version or an alias."""

    function_name: str
    qualifier: str | None
    arn: str

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.function_name, self.qualifier)


@dataclass
class _Settings:
    block_public_policies: bool = False


_SETTINGS = _Settings()
# One lock for every policy read-modify-write: moto's server handles requests in threads.
_LOCK = threading.RLock()
_TABLE_ATTRIBUTE: Final = "_invoke_audit_policies"


def block_public_policies(enabled: bool = True) -> None:
    """Refuse policies that grant a wildcard principal without conditions (PublicPolicyException)."""
    _SETTINGS.block_public_policies = enabled


def _table(backend: LambdaBackend) -> dict[tuple[str, str | None], _PolicyRecord]:
    # Kept in the backend's __dict__: moto's reset() clears it along with the functions.
    table: dict[tuple[str, str | None], _PolicyRecord] = backend.__dict__.setdefault(
        _TABLE_ATTRIBUTE, {}
    )
    return table


def _new_revision() -> str:
    return str(uuid.uuid4())


def _compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


# --- resolving names, ARNs and qualifiers ------------------------------------------------


def _split_reference(name_or_arn: str) -> tuple[str, str | None, str | None, str | None]:
    """(name, qualifier, account, region) of a function name, partial ARN or ARN."""
    full = _FULL_ARN.match(name_or_arn)
    if full:
        return full["name"], full["qualifier"], full["account"], full["region"]
    partial = _PARTIAL_ARN.match(name_or_arn)
    if partial:
        return partial["name"], partial["qualifier"], partial["account"], None
    plain = _NAME.match(name_or_arn)
    if plain:
        return plain["name"], plain["qualifier"], None, None
    raise InvalidParameterValueError(f"Invalid function name or ARN: {name_or_arn}")


def _function_arn(backend: LambdaBackend, name: str, qualifier: str | None = None) -> str:
    arn = (
        f"arn:{backend.partition}:lambda:{backend.region_name}:{backend.account_id}:function:{name}"
    )
    return f"{arn}:{qualifier}" if qualifier else arn


def _resolve(
    backend: LambdaBackend,
    name_or_arn: str,
    qualifier: str | None,
    *,
    write: bool,
) -> _Target:
    """The resource whose policy a call reads or writes; 404 when it does not exist."""
    name, derived, account, region = _split_reference(name_or_arn)
    if qualifier and derived and qualifier != derived:
        raise InvalidParameterValueError(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    qualifier = derived or qualifier or None
    if (account and account != backend.account_id) or (region and region != backend.region_name):
        raise ResourceNotFoundError(f"Function not found: {name_or_arn}")
    try:
        backend.get_function(name)
    except UnknownFunctionException as error:
        raise ResourceNotFoundError(
            f"Function not found: {_function_arn(backend, name, qualifier)}"
        ) from error
    if qualifier == LATEST:
        if write:
            raise InvalidParameterValueError(
                "We currently do not support adding policies for $LATEST."
            )
        qualifier = None
    if qualifier is not None and not _qualifier_exists(backend, name, qualifier):
        raise ResourceNotFoundError(
            f"Function not found: {_function_arn(backend, name, qualifier)}"
        )
    return _Target(name, qualifier, _function_arn(backend, name, qualifier))


def _qualifier_exists(backend: LambdaBackend, name: str, qualifier: str) -> bool:
    if qualifier.isdigit():
        versions = backend.list_versions_by_function(name)
        return any(str(version.version) == qualifier for version in versions)
    return any(alias.name == qualifier for alias in backend.list_aliases(name))


def _resource_arn_target(backend: LambdaBackend, resource_arn: str, *, write: bool) -> _Target:
    if not re.fullmatch(_RESOURCE_ARN_PATTERN, resource_arn):
        raise ValidationError(
            f"1 validation error detected: Value '{resource_arn}' at 'resourceArn' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            f"{_RESOURCE_ARN_PATTERN}"
        )
    return _resolve(backend, resource_arn, None, write=write)


# --- policy documents ---------------------------------------------------------------------


def _check_revision(record: _PolicyRecord | None, revision_id: str | None, read_api: str) -> None:
    if revision_id and (record is None or record.revision_id != revision_id):
        raise PreconditionFailedError(read_api)


def _check_size(document: dict[str, Any]) -> None:
    size = len(_compact(document).encode("utf-8"))
    if size > POLICY_SIZE_LIMIT:
        raise PolicyLengthExceededError(size)


def _wildcard(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        values = principal.get("AWS", [])
        return "*" in (values if isinstance(values, list) else [values])
    return False


def _check_public(statements: list[dict[str, Any]]) -> None:
    if not _SETTINGS.block_public_policies:
        return
    for statement in statements:
        allows = statement.get("Effect") == "Allow"
        if allows and _wildcard(statement.get("Principal")) and not statement.get("Condition"):
            raise PublicPolicyError()


def _check_statement(index: int, statement: Any) -> None:
    where = f"Statement[{index}]"
    if not isinstance(statement, dict):
        raise InvalidParameterValueError(f"{where} must be an object.")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise InvalidParameterValueError(f"{where}.Effect must be Allow or Deny.")
    if "Action" not in statement and "NotAction" not in statement:
        raise InvalidParameterValueError(f"{where} needs Action or NotAction.")
    if "Principal" not in statement and "NotPrincipal" not in statement:
        raise InvalidParameterValueError(f"{where} needs Principal or NotPrincipal.")


def _parse_document(text: str) -> dict[str, Any]:
    """A PutResourcePolicy document: JSON, one or more well-formed statements, unique Sids."""
    size = len(text.encode("utf-8"))
    if size > POLICY_SIZE_LIMIT:
        raise PolicyLengthExceededError(size)
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InvalidParameterValueError(f"The policy is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise InvalidParameterValueError("The policy must be a JSON object.")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise InvalidParameterValueError("The policy must have at least one Statement.")
    seen: set[str] = set()
    for index, statement in enumerate(statements):
        _check_statement(index, statement)
        sid = statement.get("Sid")
        if sid is not None and sid in seen:
            raise InvalidParameterValueError(f"Statement ids must be unique: {sid}")
        if sid is not None:
            seen.add(sid)
    document["Statement"] = statements
    return document


def _principal(value: str, partition: str) -> Any:
    if value == "*":
        return "*"
    if _ACCOUNT_ID.match(value):
        return {"AWS": f"arn:{partition}:iam::{value}:root"}
    if value.endswith((".amazonaws.com", ".amazon.com")):
        return {"Service": value}
    return {"AWS": value}


def _permission_statement(
    body: dict[str, Any], resource_arn: str, partition: str
) -> dict[str, Any]:
    """The statement AWS writes for an AddPermission request."""
    for field in ("StatementId", "Action", "Principal"):
        if not body.get(field):
            raise InvalidParameterValueError(f"{field} is required.")
    statement: dict[str, Any] = {
        "Sid": body["StatementId"],
        "Effect": "Allow",
        "Principal": _principal(str(body["Principal"]), partition),
        "Action": body["Action"],
        "Resource": resource_arn,
    }
    condition: dict[str, dict[str, str]] = {}
    conditions = (
        ("SourceAccount", "StringEquals", "AWS:SourceAccount"),
        ("SourceArn", "ArnLike", "AWS:SourceArn"),
        ("PrincipalOrgID", "StringEquals", "aws:PrincipalOrgID"),
        ("EventSourceToken", "StringEquals", "lambda:EventSourceToken"),
        ("FunctionUrlAuthType", "StringEquals", "lambda:FunctionUrlAuthType"),
    )
    for field, operator, key in conditions:
        if body.get(field):
            condition.setdefault(operator, {})[key] = str(body[field])
    if body.get("InvokedViaFunctionUrl"):
        condition.setdefault("Bool", {})["lambda:InvokedViaFunctionUrl"] = "true"
    if condition:
        statement["Condition"] = condition
    return statement


# --- backend operations (installed as LambdaBackend methods) -----------------------------


def add_permission(
    backend: LambdaBackend, function_name: str, qualifier: str | None, raw: str
) -> dict[str, Any]:
    """AddPermission: one Allow statement into the policy of the function, version or alias."""
    body = json.loads(raw) if raw else {}
    with _LOCK:
        target = _resolve(backend, function_name, qualifier, write=True)
        table = _table(backend)
        record = table.get(target.key)
        _check_revision(record, body.get("RevisionId"), "GetPolicy")
        statement = _permission_statement(body, target.arn, backend.partition)
        existing = record.statements() if record else []
        if any(s.get("Sid") == statement["Sid"] for s in existing):
            raise ResourceConflictError(
                "The statement id (sid) provided already exists. Please choose a new statement "
                "id, or remove the existing statement."
            )
        _check_public([statement])
        document = (
            {**record.document, "Statement": [*existing, statement]}
            if record
            else {"Version": _POLICY_VERSION, "Id": "default", "Statement": [statement]}
        )
        _check_size(document)
        table[target.key] = _PolicyRecord(document, _new_revision())
        return statement


def remove_permission(
    backend: LambdaBackend,
    function_name: str,
    sid: str,
    revision: str | None = None,
    qualifier: str | None = None,
) -> None:
    """RemovePermission: drop one statement; removing the last one deletes the policy."""
    with _LOCK:
        target = _resolve(backend, function_name, qualifier, write=True)
        table = _table(backend)
        record = table.get(target.key)
        if record is None:
            raise ResourceNotFoundError("No policy is associated with the given resource.")
        _check_revision(record, revision, "GetPolicy")
        remaining = [s for s in record.statements() if s.get("Sid") != sid]
        if len(remaining) == len(record.statements()):
            raise ResourceNotFoundError(f"Statement {sid} is not found in resource policy.")
        if remaining:
            table[target.key] = _PolicyRecord(
                {**record.document, "Statement": remaining}, _new_revision()
            )
        else:
            del table[target.key]


def get_policy(backend: LambdaBackend, function_name: str, qualifier: str | None = None) -> str:
    """GetPolicy: the JSON response body {"Policy": str, "RevisionId": str}."""
    with _LOCK:
        target = _resolve(backend, function_name, qualifier, write=False)
        record = _table(backend).get(target.key)
        if record is None:
            raise ResourceNotFoundError("The resource you requested does not exist.")
        return json.dumps(record.wire())


def get_resource_policy(backend: LambdaBackend, resource_arn: str) -> dict[str, str]:
    """GetResourcePolicy: {"Policy": str, "RevisionId": str} of a (qualified) function ARN."""
    with _LOCK:
        target = _resource_arn_target(backend, resource_arn, write=False)
        record = _table(backend).get(target.key)
        if record is None:
            raise ResourceNotFoundError(
                f"No policy is associated with the given resource: {target.arn}"
            )
        return record.wire()


def put_resource_policy(
    backend: LambdaBackend, resource_arn: str, policy: str, revision_id: str | None = None
) -> dict[str, str]:
    """PutResourcePolicy: replace the whole document (compare-and-swap when RevisionId is set)."""
    with _LOCK:
        target = _resource_arn_target(backend, resource_arn, write=True)
        document = _parse_document(policy)
        table = _table(backend)
        _check_revision(table.get(target.key), revision_id, "GetResourcePolicy")
        _check_public(document["Statement"])
        _check_size(document)
        record = _PolicyRecord(document, _new_revision())
        table[target.key] = record
        return record.wire()


def delete_resource_policy(
    backend: LambdaBackend, resource_arn: str, revision_id: str | None = None
) -> None:
    """DeleteResourcePolicy: remove the document (compare-and-swap when RevisionId is set)."""
    with _LOCK:
        target = _resource_arn_target(backend, resource_arn, write=True)
        table = _table(backend)
        record = table.get(target.key)
        if record is None:
            raise ResourceNotFoundError(
                f"No policy is associated with the given resource: {target.arn}"
            )
        _check_revision(record, revision_id, "GetResourcePolicy")
        del table[target.key]


def _forget(backend: LambdaBackend, name: str, qualifier: str | None) -> None:
    with _LOCK:
        table = _table(backend)
        for key in [k for k in table if k[0] == name and (qualifier is None or k[1] == qualifier)]:
            del table[key]


def _delete_function(
    backend: LambdaBackend, function_name: str, qualifier: str | None = None
) -> None:
    """DeleteFunction, then forget the policies of what was deleted."""
    _ORIGINALS["delete_function"](backend, function_name, qualifier)
    name, derived, _, _ = _split_reference(function_name)
    _forget(backend, name, derived or qualifier)


def _delete_alias(backend: LambdaBackend, name: str, function_name: str) -> None:
    """DeleteAlias, then forget the alias's policy."""
    _ORIGINALS["delete_alias"](backend, name, function_name)
    _forget(backend, _split_reference(function_name)[0], name)


# --- HTTP handlers (installed as LambdaResponse methods) ---------------------------------


def _query(response: LambdaResponse, name: str) -> str | None:
    value = response.normalized_request.args.get(name)
    return value or None


def _json_body(response: LambdaResponse) -> dict[str, Any]:
    if not response.body:
        return {}
    body = json.loads(response.body)
    if not isinstance(body, dict):
        raise InvalidParameterValueError("The request body must be a JSON object.")
    return body


def _path_resource_arn(response: LambdaResponse) -> str:
    return unquote(response.path.split("/resource-policy/", 1)[1])


_JSON: Final = "application/json"


def _handle_add_permission(response: LambdaResponse) -> TYPE_RESPONSE:
    function_name = unquote(response.path.split("/")[-2])
    statement = add_permission(
        response.backend, function_name, _query(response, "Qualifier"), response.body or ""
    )
    body = json.dumps({"Statement": json.dumps(statement)})
    return 201, {"status": "201", "content-type": _JSON}, body


def _handle_get_policy(response: LambdaResponse) -> TYPE_RESPONSE:
    function_name = unquote(response.path.split("/")[-2])
    body = get_policy(response.backend, function_name, _query(response, "Qualifier"))
    return 200, {"content-type": _JSON}, body


def _handle_remove_permission(response: LambdaResponse) -> TYPE_RESPONSE:
    parts = response.path.split("/")
    remove_permission(
        response.backend,
        unquote(parts[-3]),
        unquote(parts[-1]),
        revision=_query(response, "RevisionId"),
        qualifier=_query(response, "Qualifier"),
    )
    return 204, {"status": "204"}, ""


def _handle_get_resource_policy(response: LambdaResponse) -> TYPE_RESPONSE:
    result = get_resource_policy(response.backend, _path_resource_arn(response))
    return 200, {"content-type": _JSON}, json.dumps(result)


def _handle_put_resource_policy(response: LambdaResponse) -> TYPE_RESPONSE:
    body = _json_body(response)
    policy = body.get("Policy")
    if not isinstance(policy, str) or not policy:
        raise InvalidParameterValueError("Policy is required.")
    result = put_resource_policy(
        response.backend, _path_resource_arn(response), policy, body.get("RevisionId") or None
    )
    return 200, {"content-type": _JSON}, json.dumps(result)


def _handle_delete_resource_policy(response: LambdaResponse) -> TYPE_RESPONSE:
    delete_resource_policy(
        response.backend, _path_resource_arn(response), _query(response, "RevisionId")
    )
    return 204, {"status": "204"}, ""


# --- installation -------------------------------------------------------------------------

# moto routes requests by regex over lambda's URL paths (moto.awslambda.urls.url_paths),
# both in-process (BotocoreStubber reads backend.urls on every request) and in the server
# (create_backend_app turns backend.flask_paths into Flask rules when the first Lambda
# request arrives). The operation name comes from botocore's model (1.44.5 knows the
# resource-policy operations), and LambdaResponse calls the method of that name.
_ROUTES: Final[dict[str, Callable[..., Any]]] = {
    r"{0}/(?P<api_version>[^/]+)/resource-policy/(?P<resource_arn>.+)$": LambdaResponse.dispatch,
    # moto's own route refuses statement ids with dots, which AWS allows.
    r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[\w_:%-]+)/policy/"
    r"(?P<statement_id>[\w.%-]+)$": LambdaResponse.dispatch,
}
_BACKEND_METHODS: Final[dict[str, Callable[..., Any]]] = {
    "add_permission": add_permission,
    "remove_permission": remove_permission,
    "get_policy": get_policy,
    "get_resource_policy": get_resource_policy,
    "put_resource_policy": put_resource_policy,
    "delete_resource_policy": delete_resource_policy,
    "delete_function": _delete_function,
    "delete_alias": _delete_alias,
}
_RESPONSE_METHODS: Final[dict[str, Callable[..., Any]]] = {
    "add_permission": _handle_add_permission,
    "get_policy": _handle_get_policy,
    "remove_permission": _handle_remove_permission,
    "get_resource_policy": _handle_get_resource_policy,
    "put_resource_policy": _handle_put_resource_policy,
    "delete_resource_policy": _handle_delete_resource_policy,
}
_ORIGINALS: dict[str, Callable[..., Any]] = {}


def is_installed() -> bool:
    return bool(_ORIGINALS)


def install() -> None:
    """Patch moto's Lambda backend, responses and routes; calling it again changes nothing."""
    with _LOCK:
        if _ORIGINALS:
            return
        _ORIGINALS["delete_function"] = LambdaBackend.delete_function
        _ORIGINALS["delete_alias"] = LambdaBackend.delete_alias
        for name, function in _BACKEND_METHODS.items():
            setattr(LambdaBackend, name, function)
        for name, function in _RESPONSE_METHODS.items():
            setattr(LambdaResponse, name, function)
        lambda_urls.url_paths.update(_ROUTES)


@contextmanager
def public_policies_blocked() -> Iterator[None]:
    """Within the block, policies that would make a resource public are refused."""
    previous = _SETTINGS.block_public_policies
    block_public_policies(True)
    try:
        yield
    finally:
        block_public_policies(previous)
