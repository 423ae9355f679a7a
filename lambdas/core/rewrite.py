"""The rewrite: a resource policy + the function's rule -> the policy the remediator writes.

Pure: no AWS SDK, no I/O. `invoke-audit rewrite` prints exactly what the remediator writes.

- Deny statements, and statements that grant no invoke action, stay as they are.
- An Allow that grants invoke is kept when every principal in it is covered by an allow
  entry, removed when none is, narrowed to the covered principals when some are. `*` is
  covered only when its conditions pin it to allowed sources.
- Function-URL grants are reported, never removed.
- A kept service grant that lacks the SourceAccount / SourceArn conditions its allow entries
  name gets them (confused-deputy protection). A statement that needs different conditions
  for different principals is split, one statement per principal.
- `deny_others: true` appends one Deny for every caller outside the allowlist.
- Post-condition, checked before anything is returned: no uncovered invoke grant remains, and
  no allowed principal lost access it had. Rewriting a rewritten policy changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from models.allowlist import AllowEntry, Rule
from models.exceptions import PostConditionError, RewriteError
from models.globs import has_magic, matches
from models.names import DENY_SID
from models.policy import (
    PolicyDocumentModel,
    PolicyResponseModel,
    PolicyStatementModel,
    as_list,
)

__all__ = [
    "DENY_SID",
    "Change",
    "PolicyRewrite",
    "deny_others_statement",
    "grants_invoke",
    "parse_policy",
    "rewrite_policy",
]

ChangeKind = Literal["kept", "removed", "narrowed", "tightened", "added", "reported"]
# InvokeAsync is the deprecated asynchronous form; a grant of it lets the caller run the code too.
_INVOKE_ACTIONS = ("lambda:invokefunction", "lambda:invokeasync")
_URL_KEYS = frozenset({"lambda:invokedviafunctionurl", "lambda:functionurlauthtype"})
_PINNING = frozenset({"stringequals", "stringlike", "arnequals", "arnlike"})
Principal = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    sid: str | None
    detail: str
    principals: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "sid": self.sid,
            "detail": self.detail,
            "principals": list(self.principals),
        }


@dataclass(slots=True)
class PolicyRewrite:
    policy: dict[str, Any] | None
    changes: list[Change] = field(default_factory=list)
    revision_id: str | None = None

    @property
    def changed(self) -> bool:
        return any(c.kind not in ("kept", "reported") for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "changes": [c.to_dict() for c in self.changes],
            "changed": self.changed,
        }


def parse_policy(policy: Any) -> tuple[PolicyDocumentModel | None, str | None]:
    """Accept a document, its JSON text, or a GetPolicy / GetResourcePolicy response."""
    if policy is None or policy == "":
        return None, None
    if isinstance(policy, (str, bytes)):
        try:
            policy = json.loads(policy)
        except (ValueError, RecursionError) as exc:
            raise RewriteError(f"the policy is not valid JSON: {exc}") from None
        return parse_policy(policy)
    if not isinstance(policy, Mapping):
        raise RewriteError(f"a policy must be a JSON object, not {type(policy).__name__}")
    try:
        if "Policy" in policy:
            response = PolicyResponseModel.model_validate(policy)
            document, _ = parse_policy(response.Policy)
            return document, response.RevisionId
        if "Statement" not in policy:
            raise RewriteError("not a policy: no Statement (nor a GetPolicy response's Policy)")
        return PolicyDocumentModel.model_validate(policy), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RewriteError(f"not a valid policy: {where}: {first['msg']}") from None


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


def _with_principals(
    statement: PolicyStatementModel, principals: list[Principal], sid: str | None
) -> PolicyStatementModel:
    if principals == [("*", "*")]:
        principal: Any = "*"
    else:
        grouped: dict[str, list[str]] = {}
        for kind, value in principals:
            if value not in grouped.setdefault(kind, []):
                grouped[kind].append(value)
        principal = {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}
    return statement.model_copy(update={"Principal": principal, "Sid": sid})


def _with_conditions(
    statement: PolicyStatementModel, extra: Mapping[str, Mapping[str, str | list[str]]]
) -> PolicyStatementModel:
    conditions: dict[str, dict[str, Any]] = {
        k: dict(v) for k, v in (statement.Condition or {}).items()
    }
    for operator, block in extra.items():
        conditions.setdefault(operator, {}).update(block)
    return statement.model_copy(update={"Condition": conditions or None})


def _rewrite_allow(
    statement: PolicyStatementModel, rule: Rule
) -> tuple[list[PolicyStatementModel], Change]:
    sid = statement.Sid
    if statement.NotPrincipal is not None:
        return [], Change("removed", sid, "Allow with NotPrincipal grants invoke to everyone else")
    judged = _judge_principals(statement, rule)
    kept = [j for j in judged if j.covered]
    lost = [j.principal for j in judged if not j.covered]
    if not kept:
        why = "no allow entry covers" if judged else "no Principal in"
        return [], Change("removed", sid, f"{why} this invoke grant", _describe(lost))
    narrowed = _with_principals(statement, [j.principal for j in kept], sid) if lost else statement
    if not any(j.tighten for j in kept):
        if lost:
            return [narrowed], Change(
                "narrowed", sid, "uncovered principals removed", _describe(lost)
            )
        return [statement], Change("kept", sid, "every principal is on the allowlist")
    if len(kept) == 1:
        tightened = [_with_conditions(narrowed, kept[0].tighten)]
    else:
        tightened = [
            _with_conditions(
                _with_principals(narrowed, [j.principal], f"{sid or 'Stmt'}-{i}"), j.tighten
            )
            for i, j in enumerate(kept, start=1)
        ]
    added = sorted(
        {f"{op} {key}" for j in kept for op, block in j.tighten.items() for key in block}
    )
    detail = "confused-deputy conditions added: " + ", ".join(added)
    if lost:
        detail = "uncovered principals removed; " + detail
    return tightened, Change("tightened", sid, detail, _describe(lost))


def deny_others_statement(rule: Rule, resource_arn: str) -> dict[str, Any]:
    """One Deny for every caller outside the allowlist (needs the full-document policy API)."""
    principals = sorted({e.principal for e in rule.allow if e.principal})
    accounts = sorted({e.account for e in rule.allow if e.account})
    services = sorted({e.service for e in rule.allow if e.service})
    sources = sorted({e.source_arn for e in rule.allow if e.source_arn})
    conditions: dict[str, dict[str, list[str]]] = {}
    if principals:
        conditions.setdefault("ArnNotLikeIfExists", {})["aws:PrincipalArn"] = principals
    if sources:
        conditions.setdefault("ArnNotLikeIfExists", {})["aws:SourceArn"] = sources
    if accounts:
        conditions.setdefault("StringNotEqualsIfExists", {})["aws:PrincipalAccount"] = accounts
    if services:
        conditions.setdefault("StringNotEqualsIfExists", {})["aws:PrincipalServiceName"] = services
    statement: dict[str, Any] = {
        "Sid": DENY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "lambda:InvokeFunction",
        "Resource": resource_arn,
    }
    if conditions:
        statement["Condition"] = conditions
    return statement


def _statement_changes(
    statements: list[PolicyStatementModel], rule: Rule
) -> tuple[list[PolicyStatementModel], list[Change], PolicyStatementModel | None]:
    out: list[PolicyStatementModel] = []
    changes: list[Change] = []
    old_deny: PolicyStatementModel | None = None
    for statement in statements:
        sid = statement.Sid
        if sid == DENY_SID and statement.Effect == "Deny":
            old_deny = statement
        elif statement.Effect == "Deny":
            out.append(statement)
            changes.append(Change("kept", sid, "Deny statements stay"))
        elif _is_function_url(statement):
            out.append(statement)
            changes.append(
                Change(
                    "reported",
                    sid,
                    "function URL grant: left as is, review it by hand",
                    _describe(statement.principals()),
                )
            )
        elif not grants_invoke(statement):
            out.append(statement)
            changes.append(Change("kept", sid, "grants no invoke action"))
        else:
            rewritten, change = _rewrite_allow(statement, rule)
            out.extend(rewritten)
            changes.append(change)
    return out, changes, old_deny


def _unique_sids(
    statements: list[PolicyStatementModel], originals: list[PolicyStatementModel]
) -> list[PolicyStatementModel]:
    """Lambda requires unique Sids, and a split statement's `Sid-1` may exist already: the
    statements the rewrite made are renamed where needed; the others keep their Sids."""
    kept = {id(s) for s in originals}
    taken = {s.Sid for s in statements if id(s) in kept or s.Sid == DENY_SID}
    unique: list[PolicyStatementModel] = []
    for statement in statements:
        sid = statement.Sid
        if sid is None or id(statement) in kept or sid == DENY_SID:
            unique.append(statement)
            continue
        candidate, number = sid, 2
        while candidate in taken:
            candidate, number = f"{sid}-{number}", number + 1
        taken.add(candidate)
        unique.append(
            statement if candidate == sid else statement.model_copy(update={"Sid": candidate})
        )
    return unique


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


def _check(
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


def rewrite_policy(policy: Any, rule: Rule, resource_arn: str) -> PolicyRewrite:
    """Compute the new policy for `resource_arn` under `rule`, and what changed and why."""
    document, revision_id = parse_policy(policy)
    statements, changes, old_deny = _statement_changes(document.Statement if document else [], rule)
    if rule.deny_others:
        deny = PolicyStatementModel.model_validate(deny_others_statement(rule, resource_arn))
        statements.append(deny)
        if old_deny is not None and old_deny.dump() == deny.dump():
            changes.append(Change("kept", DENY_SID, "the deny-others statement is current"))
        else:
            verb = "replaces the outdated one" if old_deny else "added"
            changes.append(
                Change(
                    "added",
                    DENY_SID,
                    f"explicit Deny for every caller outside the allowlist ({verb})",
                )
            )
    elif old_deny is not None:
        changes.append(Change("removed", DENY_SID, "deny_others is off for this rule"))
    base = document or PolicyDocumentModel()
    statements = _unique_sids(statements, document.Statement if document else [])
    new_document = base.model_copy(update={"Statement": statements}) if statements else None
    _check(document, new_document, rule)
    return PolicyRewrite(
        policy=new_document.dump() if new_document else None,
        changes=changes,
        revision_id=revision_id,
    )
