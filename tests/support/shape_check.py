"""The rewrite's former post-condition, which judged statement shapes: kept here, as it was,
to show where it and the access check (lambdas.core.access) disagree. Not product code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.allowlist import AllowEntry, Rule
from models.exceptions import PostConditionError
from models.globs import has_magic, matches
from models.policy import PolicyDocumentModel, PolicyStatementModel, as_list

_INVOKE_ACTIONS = ("lambda:invokefunction", "lambda:invokeasync")
_URL_KEYS = frozenset({"lambda:invokedviafunctionurl", "lambda:functionurlauthtype"})
_PINNING = frozenset({"stringequals", "stringlike", "arnequals", "arnlike"})
Principal = tuple[str, str]


def grants_invoke(statement: PolicyStatementModel) -> bool:
    if statement.Action is not None:
        actions = [a.lower() for a in as_list(statement.Action)]
        return any(matches(a, target) for a in actions for target in _INVOKE_ACTIONS)
    if statement.NotAction is not None:
        excluded = [a.lower() for a in as_list(statement.NotAction)]
        return not all(any(matches(a, t) for a in excluded) for t in _INVOKE_ACTIONS)
    return False


def _is_function_url(statement: PolicyStatementModel) -> bool:
    return any(
        key.lower() in _URL_KEYS for block in (statement.Condition or {}).values() for key in block
    )


def _pinned(statement: PolicyStatementModel, key: str) -> list[str]:
    """Values a condition key is pinned to (positive, non-IfExists operators only)."""
    values: list[str] = []
    for operator, block in (statement.Condition or {}).items():
        if operator.lower() not in _PINNING:
            continue
        for name, value in block.items():
            if name.lower() == key and isinstance(value, (str, list)):
                values.extend(as_list(value))
    return values


def _principal_arn(value: str) -> str:
    return f"arn:aws:iam::{value}:root" if value.isdigit() and len(value) == 12 else value


def _aws_covered(value: str, rule: Rule) -> bool:
    arn = _principal_arn(value)
    account = arn.split(":")[4] if arn.count(":") >= 5 else None
    return any(
        (e.principal is not None and matches(e.principal, arn))
        or (e.account is not None and e.account == account)
        for e in rule.allow
    )


def _covers_value(pattern: str, value: str) -> bool:
    """Does allowlist glob `pattern` cover the condition value `value` (itself maybe a glob)?"""
    return pattern == value or matches(pattern, value)


def _wildcard_covered(statement: PolicyStatementModel, rule: Rule) -> bool:
    arns = _pinned(statement, "aws:sourcearn")
    source_globs = [e.source_arn for e in rule.allow if e.source_arn]
    if arns and all(any(_covers_value(g, v) for g in source_globs) for v in arns):
        return True
    principals = _pinned(statement, "aws:principalarn")
    if principals and all("*" not in v and _aws_covered(v, rule) for v in principals):
        return True
    accounts = _pinned(statement, "aws:principalaccount")
    allowed = {e.account for e in rule.allow if e.account}
    return bool(accounts) and all(a in allowed for a in accounts)


def _service_tightening(
    service: str, statement: PolicyStatementModel, rule: Rule
) -> dict[str, dict[str, str | list[str]]] | None:
    """None if the service grant is not covered; else the conditions it must gain (maybe {})."""
    arns = _pinned(statement, "aws:sourcearn")
    accounts = _pinned(statement, "aws:sourceaccount")

    def arn_ok(entry: AllowEntry, value: str) -> bool:
        return entry.source_arn is None or _covers_value(entry.source_arn, value)

    def account_ok(entry: AllowEntry, value: str) -> bool:
        return entry.source_account in (None, value)

    def compatible(entry: AllowEntry) -> bool:
        return (not arns or any(arn_ok(entry, v) for v in arns)) and (
            not accounts or any(account_ok(entry, v) for v in accounts)
        )

    # Every pinned value must be allowed by some entry (a grant pinned to two allowed buckets
    # is covered by two entries, one per bucket).
    entries = [e for e in rule.allow if e.service == service and compatible(e)]
    if (
        not entries
        or not all(any(arn_ok(e, v) for e in entries) for v in arns)
        or not all(any(account_ok(e, v) for e in entries) for v in accounts)
    ):
        return None
    needed: dict[str, dict[str, str | list[str]]] = {}
    if not arns and all(e.source_arn for e in entries):
        needed["ArnLike"] = {"AWS:SourceArn": _one_or_many(e.source_arn for e in entries)}
    if not accounts and all(e.source_account for e in entries):
        needed["StringEquals"] = {
            "AWS:SourceAccount": _one_or_many(e.source_account for e in entries)
        }
    return needed


def _one_or_many(values: Iterable[str | None]) -> str | list[str]:
    unique = sorted({v for v in values if v})
    return unique[0] if len(unique) == 1 else unique


@dataclass(slots=True)
class _Judged:
    principal: Principal
    covered: bool
    tighten: dict[str, dict[str, str | list[str]]]


def _judge_principals(statement: PolicyStatementModel, rule: Rule) -> list[_Judged]:
    judged: list[_Judged] = []
    for kind, value in statement.principals():
        tighten: dict[str, dict[str, str | list[str]]] = {}
        if kind == "*" or (kind == "AWS" and value == "*"):
            covered = _wildcard_covered(statement, rule)
        elif kind == "Service":
            needed = _service_tightening(value, statement, rule)
            covered, tighten = needed is not None, needed or {}
        elif kind == "AWS":
            covered = _aws_covered(value, rule)
            if not covered:
                # An account-root grant (the whole account) narrows to the principals of that
                # account the rule names, so that they keep the access they had through it.
                judged += [
                    _Judged(("AWS", arn), True, {}) for arn in _named_in_account(value, rule)
                ]
        else:
            covered = False
        judged.append(_Judged((kind, value), covered, tighten))
    return judged


def _named_in_account(value: str, rule: Rule) -> list[str]:
    arn = _principal_arn(value)
    if not arn.endswith(":root") or arn.count(":") < 5:
        return []
    account = arn.split(":")[4]
    return [
        e.principal
        for e in rule.allow
        if e.principal
        and not has_magic(e.principal)
        and e.principal.split(":")[4] == account
        and not e.principal.endswith(":root")
    ]


def _describe(principals: Iterable[Principal]) -> tuple[str, ...]:
    return tuple(value if kind in ("*", "AWS") else f"{kind}:{value}" for kind, value in principals)


def _allowed_grants(document: PolicyDocumentModel | None, rule: Rule) -> set[Principal]:
    if document is None:
        return set()
    return {
        j.principal
        for s in document.Statement
        if s.Effect == "Allow"
        and grants_invoke(s)
        and not _is_function_url(s)
        and s.NotPrincipal is None
        for j in _judge_principals(s, rule)
        if j.covered
    }


def shape_check(
    before: PolicyDocumentModel | None, after: PolicyDocumentModel | None, rule: Rule
) -> None:
    for statement in after.Statement if after else []:
        if (
            statement.Effect != "Allow"
            or not grants_invoke(statement)
            or _is_function_url(statement)
        ):
            continue
        bad = [j for j in _judge_principals(statement, rule) if not j.covered or j.tighten]
        if statement.NotPrincipal is not None or bad:
            raise PostConditionError(
                f"statement {statement.Sid!r} would still grant invoke to "
                f"{', '.join(_describe(j.principal for j in bad)) or 'NotPrincipal'}"
            )
    lost = _allowed_grants(before, rule) - _allowed_grants(after, rule)
    if lost:
        raise PostConditionError(
            f"allowed principals would lose access: {', '.join(_describe(lost))}"
        )
