"""IAM Access Analyzer's two policy checks, emulated for the tests and `make demo`.

moto 5.2.5 has no Access Analyzer (its answer is 404 "Not yet implemented"). invoke-audit
proves every policy write with `CheckNoNewAccess` and `CheckNoPublicAccess`, so the emulator
answers those two operations for every boto3 client created after :func:`install`, through
botocore's own extension point (a `before-call` handler in `botocore.handlers.BUILTIN_HANDLERS`,
the list moto registers its own hook in). Requests are checked against the service model by
botocore before the handler sees them, exactly as for a real call.

The answers are an emulation, not AWS's analysis (Zelkova): deliberately simple, structural
and conservative, and independent of invoke-audit's own evaluator, so that a test that passes
through it is not judged by the code it tests.

- CheckNoNewAccess(existing, new): PASS when every Allow statement of `new` is contained in
  an Allow statement of `existing` — each of its principals is one of that statement's (a
  `*` or an account covers its members), each of its actions matches one of that statement's
  action patterns, its resource is covered, and it carries every condition of that
  statement (same operator, key and values; it may add more) — and every Deny statement of
  `existing` is still in `new`. Otherwise FAIL, with the statements that grant more.
- CheckNoPublicAccess(policy, AWS::Lambda::Function): FAIL when an Allow statement has a
  wildcard principal and no condition on `aws:SourceAccount`, `aws:SourceOwner`,
  `aws:PrincipalAccount`, `aws:PrincipalOrgID`, `aws:SourceOrgID` or `aws:PrincipalArn`
  (Security Hub's Lambda.1 reading), or a service principal `s3.amazonaws.com` without
  `aws:SourceAccount` (S3 bucket ARNs carry no account).

:func:`refuse` makes the next checks answer an error instead (AccessDenied, throttling), for
tests of what the remediator does when the proof cannot be had.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from typing import Any

from botocore import handlers
from botocore.awsrequest import AWSResponse

__all__ = ["check_no_new_access", "check_no_public_access", "install", "refuse", "refused"]

_PINNING_KEYS = frozenset(
    {
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:sourceorgid",
        "aws:principalarn",
    }
)
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"installed": False, "refuse": None}


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(document: str) -> list[dict[str, Any]]:
    parsed = json.loads(document)
    return [s for s in _list(parsed.get("Statement")) if isinstance(s, dict)]


def _principals(statement: dict[str, Any]) -> set[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return {"*"}
    found: set[str] = set()
    if isinstance(principal, dict):
        for kind, values in principal.items():
            for value in _list(values):
                found.add("*" if value == "*" else f"{kind}:{value}")
    return found


def _account_of(principal: str) -> str | None:
    value = principal.split(":", 1)[1] if ":" in principal else principal
    if value.isdigit() and len(value) == 12:
        return value
    parts = value.split(":")
    return parts[4] if len(parts) > 5 and parts[2] in ("iam", "sts") else None


def _covers_principal(outer: set[str], inner: str) -> bool:
    if "*" in outer or inner in outer:
        return True
    account = _account_of(inner)
    return account is not None and any(
        _account_of(p) == account and (p.endswith(":root") or p.split(":", 1)[1] == account)
        for p in outer
        if p.startswith("AWS:")
    )


def _conditions(statement: dict[str, Any]) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    block = statement.get("Condition") or {}
    if isinstance(block, dict):
        for operator, pairs in block.items():
            if isinstance(pairs, dict):
                for key, values in pairs.items():
                    for value in _list(values):
                        found.add((operator.lower(), key.lower(), str(value)))
    return found


def _keys_of(conditions: set[tuple[str, str, str]]) -> set[tuple[str, str]]:
    return {(op, key) for op, key, _ in conditions}


def _contained(new: dict[str, Any], old: dict[str, Any]) -> bool:
    if "NotPrincipal" in old or "NotAction" in old or "NotResource" in old:
        return "NotPrincipal" not in new and "NotAction" not in new and new == old
    if "NotPrincipal" in new or "NotAction" in new or "NotResource" in new:
        return False
    outer = _principals(old)
    if not all(_covers_principal(outer, p) for p in _principals(new)):
        return False
    patterns = [str(a).lower() for a in _list(old.get("Action"))]
    actions = [str(a).lower() for a in _list(new.get("Action"))]
    if not all(any(fnmatch.fnmatchcase(a, p) for p in patterns) for a in actions):
        return False
    resources = [str(r) for r in _list(old.get("Resource"))] or ["*"]
    if not all(
        any(fnmatch.fnmatchcase(str(r), p) for p in resources)
        for r in _list(new.get("Resource")) or ["*"]
    ):
        return False
    old_conditions, new_conditions = _conditions(old), _conditions(new)
    # Every condition of the old statement holds in the new one: the same operator and key,
    # with values among the old ones (fewer values only narrow a positive operator).
    for operator, key in _keys_of(old_conditions):
        allowed = {v for op, k, v in old_conditions if (op, k) == (operator, key)}
        given = {v for op, k, v in new_conditions if (op, k) == (operator, key)}
        negated = "not" in operator
        if not given or (given != allowed if negated else not given <= allowed):
            return False
    return True


def check_no_new_access(existing: str, new: str) -> dict[str, Any]:
    old_statements, new_statements = _statements(existing), _statements(new)
    reasons: list[dict[str, Any]] = []
    old_allows = [s for s in old_statements if s.get("Effect") == "Allow"]
    for index, statement in enumerate(new_statements):
        if statement.get("Effect") != "Allow":
            continue
        if not any(_contained(statement, old) for old in old_allows):
            reason = {"description": "grants access the existing policy does not grant"}
            reasons.append(reason | _where(index, statement))
    for statement in old_statements:
        if statement.get("Effect") == "Deny" and statement not in new_statements:
            reasons.append({"description": f"removes the Deny {statement.get('Sid') or ''}"})
    return _answer(reasons, "The new policy grants new access." if reasons else "No new access.")


def check_no_public_access(policy: str) -> dict[str, Any]:
    reasons: list[dict[str, Any]] = []
    for index, statement in enumerate(_statements(policy)):
        if statement.get("Effect") != "Allow":
            continue
        keys = {key for _, key, _ in _conditions(statement)}
        principals = _principals(statement)
        if "*" in principals and not keys & _PINNING_KEYS:
            reason = {"description": "a wildcard principal without an account condition"}
            reasons.append(reason | _where(index, statement))
        elif "Service:s3.amazonaws.com" in principals and "aws:sourceaccount" not in keys:
            reason = {"description": "S3 may invoke for a bucket of any account"}
            reasons.append(reason | _where(index, statement))
    return _answer(reasons, "The policy grants public access." if reasons else "Not public.")


def _where(index: int, statement: dict[str, Any]) -> dict[str, Any]:
    sid = statement.get("Sid")
    return {"statementIndex": index} | ({"statementId": sid} if isinstance(sid, str) else {})


def _answer(reasons: list[dict[str, Any]], message: str) -> dict[str, Any]:
    return {"result": "FAIL" if reasons else "PASS", "message": message, "reasons": reasons}


def refuse(code: str | None) -> None:
    """Answer the checks with this error code from now on (None: answer them again)."""
    _STATE["refuse"] = code


class refused:
    """`with refused("AccessDeniedException"):` the checks fail with that error inside."""

    def __init__(self, code: str) -> None:
        self._code = code

    def __enter__(self) -> None:
        self._previous = _STATE["refuse"]
        refuse(self._code)

    def __exit__(self, *exc: object) -> None:
        refuse(self._previous)


def _respond(
    params: dict[str, Any], model: Any, **kwargs: Any
) -> tuple[AWSResponse, dict[str, Any]]:
    code = _STATE["refuse"]
    if code is not None:
        status = 429 if "Throttl" in code else 403 if "AccessDenied" in code else 400
        error = {"Error": {"Code": code, "Message": f"emulated {code}"}}
        meta = {"HTTPStatusCode": status, "RetryAttempts": 0}
        return AWSResponse("https://emulated", status, {}, None), error | {"ResponseMetadata": meta}
    # `params` is the serialized request: the operation's input is its JSON body.
    body = params.get("body") or b"{}"
    given = json.loads(body.decode() if isinstance(body, bytes) else body)
    if model.name == "CheckNoNewAccess":
        parsed = check_no_new_access(given["existingPolicyDocument"], given["newPolicyDocument"])
    else:
        parsed = check_no_public_access(given["policyDocument"])
    meta = {"HTTPStatusCode": 200, "RetryAttempts": 0}
    return AWSResponse("https://emulated", 200, {}, None), parsed | {"ResponseMetadata": meta}


def install() -> None:
    """Answer the two checks in every botocore session created from now on."""
    with _LOCK:
        if _STATE["installed"]:
            return
        for operation in ("CheckNoNewAccess", "CheckNoPublicAccess"):
            handlers.BUILTIN_HANDLERS.append((f"before-call.accessanalyzer.{operation}", _respond))
        _STATE["installed"] = True
