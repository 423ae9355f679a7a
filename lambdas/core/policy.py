"""Policy documents as plain JSON: decoding, comparing, and the permission-API plan.

The one place that turns a policy as Lambda returns it (JSON text, or nothing) into a document,
that says when two documents are the same policy, and that plans the AddPermission /
RemovePermission calls turning one document into another (the older permission API writes a
statement at a time). `lambdas.core.rewrite` validates documents into models for the rewrite.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from models.exceptions import RewriteError

__all__ = [
    "Document",
    "as_list",
    "dump_policy",
    "load_policy",
    "permission_plan",
    "same_policy",
    "statement_to_permissions",
]

Document = dict[str, Any]


def as_list(value: Any) -> list[Any]:
    """A JSON value that may be one item or a list of them, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def load_policy(policy: Any) -> Document | None:
    """A policy as an API returns it (JSON text, a document, or nothing) as a document."""
    if policy is None or policy == "":
        return None
    document = json.loads(policy) if isinstance(policy, str) else policy
    if not isinstance(document, dict):
        raise RewriteError(f"the policy is not a JSON object: {str(policy)[:200]}")
    return document


def dump_policy(document: Document) -> str:
    """A document as the compact JSON text the APIs take."""
    return json.dumps(document, separators=(",", ":"))


def same_policy(left: Document | None, right: Document | None) -> bool:
    """Equal as policies: the same statements, in any order (Version, Id aside)."""
    if left is None or right is None:
        return left is right

    def statements(document: Document) -> list[str]:
        items = as_list(document.get("Statement") or None)
        return sorted(json.dumps(s, sort_keys=True) for s in items)

    return statements(left) == statements(right)


_CONDITION_PARAMETERS = {
    "aws:sourcearn": "SourceArn",
    "aws:sourceaccount": "SourceAccount",
    "aws:principalorgid": "PrincipalOrgID",
    "lambda:eventsourcetoken": "EventSourceToken",
    "lambda:functionurlauthtype": "FunctionUrlAuthType",
    "lambda:invokedviafunctionurl": "InvokedViaFunctionUrl",
}


def _principals(statement: Document) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        raise RewriteError(f"statement {statement.get('Sid')!r}: no Principal AddPermission takes")
    values: list[str] = []
    for key in ("AWS", "Service"):
        values.extend(str(v) for v in as_list(principal.get(key)))
    if set(principal) - {"AWS", "Service"} or not values:
        raise RewriteError(
            f"statement {statement.get('Sid')!r}: Principal {principal!r} cannot be expressed"
            " with AddPermission"
        )
    return values


def _condition_parameters(statement: Document) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for operator, entries in (statement.get("Condition") or {}).items():
        for key, value in (entries or {}).items():
            name = _CONDITION_PARAMETERS.get(str(key).lower())
            values = as_list(value)
            if name is None or len(values) != 1:
                raise RewriteError(
                    f"statement {statement.get('Sid')!r}: condition {operator} {key} cannot be"
                    " expressed with AddPermission; the resource-policy API is needed"
                )
            single = values[0]
            if name == "InvokedViaFunctionUrl":
                single = str(single).lower() == "true"
            parameters[name] = single
    return parameters


def statement_to_permissions(statement: Document, sid: str) -> list[dict[str, Any]]:
    """AddPermission arguments (one per action and principal) that recreate `statement`."""
    if (
        statement.get("Effect") != "Allow"
        or "NotPrincipal" in statement
        or "NotAction" in statement
    ):
        raise RewriteError(
            f"statement {sid!r}: only Allow statements with Principal and Action can be written"
            " with AddPermission; the resource-policy API is needed"
        )
    actions = [str(a) for a in as_list(statement.get("Action"))]
    principals = _principals(statement)
    conditions = _condition_parameters(statement)
    pairs = [(action, principal) for action in actions for principal in principals]
    permissions = []
    for index, (action, principal) in enumerate(pairs):
        permission = {
            "StatementId": sid if index == 0 else f"{sid}-{index + 1}",
            "Action": action,
            "Principal": principal,
        }
        permissions.append(permission | conditions)
    return permissions


def _sid_map(document: Document | None) -> dict[str, Document]:
    statements = as_list((document or {}).get("Statement"))
    return {str(s.get("Sid", f"statement-{i}")): s for i, s in enumerate(statements)}


def permission_plan(
    current: Document | None, target: Document | None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The RemovePermission statement ids and AddPermission arguments that turn `current` into
    `target`, statement by statement (matched on Sid; a changed statement is removed, then
    added again)."""
    old, new = _sid_map(current), _sid_map(target)
    removals = [sid for sid, statement in old.items() if new.get(sid) != statement]
    additions: list[dict[str, Any]] = []
    for sid, statement in new.items():
        if old.get(sid) != statement:
            additions.extend(statement_to_permissions(statement, sid))
    return removals, additions
