"""The rewrite: a resource policy + the function's rule -> the policy the remediator writes.

Pure: no AWS SDK, no I/O. `invoke-audit rewrite` prints exactly what the remediator writes.
Judged by access (who can invoke before and after), not by statement shapes:

- Deny statements, statements that grant no invoke action, and function-URL grants (reported)
  stay as they are.
- In an Allow that grants invoke, each principal keeps the grant when every direct invoke it
  lets in comes from a caller the rule allows. Otherwise the grant is narrowed to the allowed
  callers it let in (its conditions kept, the confused-deputy conditions the allow entries
  name added: `*` becomes the allowed accounts, principals and service principals; an
  account becomes the allowed principals of that account; a service grant gains its
  `AWS:SourceArn` / `AWS:SourceAccount`), and removed where it let in no allowed caller.
- A principal that loses invoke keeps the statement's other actions.
- `deny_others: true` appends one Deny for every caller outside the allowlist.
- Post-condition, checked before anything is returned (lambdas.core.access.check_rewrite):
  allowed callers are decided as before, nobody else can invoke directly, non-invoke and
  function-URL requests are decided as before. A rewrite that fails it raises
  PostConditionError naming the request. Rewriting a rewritten policy changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from lambdas.core.access import (
    DIRECT_INVOKE,
    LAMBDA_FUNCTION_ACTIONS,
    AccessCheck,
    check_rewrite,
    request_set,
)
from lambdas.core.evaluate import evaluate_statement
from models.allowlist import AllowEntry, Rule
from models.arns import parse_function_arn
from models.exceptions import InputError, RewriteError
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
# Where a pin goes when its operator already constrains the key: the same test, another name.
_PIN_OPERATORS = {
    "ArnLike": ("ArnLike", "ArnEquals", "StringLike"),
    "StringEquals": ("StringEquals", "StringLike"),
}
Principal = tuple[str, str]
Pin = tuple[str, str, list[str]]  # (operator, key, values)


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


def _describe(principals: Iterable[Principal]) -> tuple[str, ...]:
    return tuple(value if kind in ("*", "AWS") else f"{kind}:{value}" for kind, value in principals)


def _principal_element(principals: list[Principal]) -> Any:
    if ("*", "*") in principals:
        return "*"
    grouped: dict[str, list[str]] = {}
    for kind, value in principals:
        if value not in grouped.setdefault(kind, []):
            grouped[kind].append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


# --- actions ----------------------------------------------------------------------------------


def _covers_invoke(pattern: str) -> bool:
    return any(matches(pattern.lower(), a) for a in _INVOKE_ACTIONS)


def _split_actions(statement: PolicyStatementModel) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the action fields of the invoke part, those of the rest, or None if nothing else)."""
    if statement.Action is None:
        excluded = as_list(statement.NotAction)
        invoke = [
            a for a in DIRECT_INVOKE if not any(matches(p.lower(), a.lower()) for p in excluded)
        ]
        not_actions = excluded + [a for a in DIRECT_INVOKE if a not in excluded]
        return {"Action": _one_or_many(invoke)}, {"NotAction": not_actions}
    patterns = as_list(statement.Action)
    invoke = [a for a in DIRECT_INVOKE if any(matches(p.lower(), a.lower()) for p in patterns)]
    rest: list[str] = []
    for pattern in patterns:
        if not _covers_invoke(pattern):
            rest.append(pattern)
        elif has_magic(pattern):
            # A glob that covers invoke and more: the more, spelled out.
            rest += [
                a
                for a in LAMBDA_FUNCTION_ACTIONS
                if a not in DIRECT_INVOKE and matches(pattern.lower(), a.lower())
            ]
    rest = list(dict.fromkeys(rest))
    return {"Action": _one_or_many(invoke)}, ({"Action": _one_or_many(rest)} if rest else None)


def _with(statement: PolicyStatementModel, **fields: Any) -> PolicyStatementModel:
    """A copy with `fields` replaced (None removes one); Principal and NotPrincipal, Action
    and NotAction exclude each other."""
    data = statement.dump()
    for name, other in (
        ("Principal", "NotPrincipal"),
        ("NotPrincipal", "Principal"),
        ("Action", "NotAction"),
        ("NotAction", "Action"),
    ):
        if name in fields:
            data.pop(other, None)
    for name, value in fields.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return PolicyStatementModel.model_validate(data)


# --- conditions -------------------------------------------------------------------------------


def _add_pins(
    conditions: Mapping[str, Any] | None, pins: list[Pin]
) -> dict[str, dict[str, Any]] | None:
    """The conditions with each pin ANDed in ({} for none), or None when a pin cannot be
    expressed (its key is taken under every operator that could carry it)."""
    out: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (conditions or {}).items()}
    for operator, key, values in pins:
        existing = [
            str(v)
            for op, block in out.items()
            if op.lower() in _PINNING
            for name, value in block.items()
            if name.lower() == key.lower()
            for v in (value if isinstance(value, list) else [value])
        ]
        if existing and all(any(n == v or matches(n, v) for n in values) for v in existing):
            continue  # already at least as narrow
        for candidate in _PIN_OPERATORS[operator]:
            block = next((b for op, b in out.items() if op == candidate), None)
            if block is None or all(name.lower() != key.lower() for name in block):
                out.setdefault(candidate, {})[key] = _one_or_many(values)
                break
        else:
            return None
    return out


# --- narrowing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grantee:
    """An allowed caller a grant can be narrowed to: a principal element and its pins."""

    principal: Principal
    pins: tuple[Pin, ...] = ()


def _grantees(rule: Rule, partition: str) -> list[tuple[AllowEntry | None, _Grantee]]:
    """One grantee per account / principal entry, one per (service, source account)."""
    found: list[tuple[AllowEntry | None, _Grantee]] = []
    services: dict[tuple[str, str | None], list[str | None]] = {}
    for entry in rule.allow:
        if entry.service:
            services.setdefault((entry.service, entry.source_account), []).append(entry.source_arn)
        elif entry.account:
            found.append((entry, _Grantee(("AWS", f"arn:{partition}:iam::{entry.account}:root"))))
        elif entry.principal:
            found.append((entry, _principal_grantee(entry.principal)))
    for (service, account), arns in services.items():
        pins: list[Pin] = []
        if None not in arns:
            pins.append(("ArnLike", "AWS:SourceArn", sorted({a for a in arns if a})))
        if account:
            pins.append(("StringEquals", "AWS:SourceAccount", [account]))
        found.append((None, _Grantee(("Service", service), tuple(pins))))
    return found


def _principal_grantee(arn: str) -> _Grantee:
    parts = arn.split(":")
    if not has_magic(arn) and not arn.endswith(":root"):
        return _Grantee(("AWS", arn))
    # A glob, or the root user alone (a root ARN in Principal is the whole account).
    account = parts[4]
    principal = "*" if has_magic(account) else f"arn:{parts[1]}:iam::{account}:root"
    return _Grantee(("AWS", principal), (("ArnLike", "aws:PrincipalArn", [arn]),))


def _account_of(kind: str, value: str) -> tuple[str, str | None] | None:
    """(account, partition) of an account principal (`111122223333` or its root ARN)."""
    if kind != "AWS":
        return None
    if value.isdigit() and len(value) == 12:
        return value, None
    parts = value.split(":")
    if len(parts) == 6 and parts[2] == "iam" and parts[5] == "root":
        return parts[4], parts[1]
    return None


def _narrow_to(principal: Principal, grantee: _Grantee) -> _Grantee | None:
    """The part of a grant to `principal` that `grantee` stands for, or None."""
    kind, value = principal
    g_kind, g_value = grantee.principal
    if kind == "*" or (kind == "AWS" and value == "*"):
        return grantee
    if kind == "Service":
        return grantee if (g_kind, g_value) == ("Service", value) else None
    account = _account_of(kind, value)
    if account is None or g_kind != "AWS":
        return None
    if g_value == "*":
        return _Grantee(principal, grantee.pins)
    g_parts = g_value.split(":")
    if len(g_parts) < 6 or g_parts[4] != account[0] or account[1] not in (None, g_parts[1]):
        return None
    if g_value.endswith(":root"):
        return _Grantee(principal, grantee.pins)
    return grantee


# --- one Allow statement ----------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    rule: Rule
    partition: str
    requests: AccessCheck
    url_grants: bool
    # Allow statements kept as they are: a narrowed grant they already cover is left out.
    standing: list[PolicyStatementModel] = field(default_factory=list)


def _lets_in_outsiders(statement: PolicyStatementModel, context: _Context) -> bool:
    return any(evaluate_statement(statement, r) is not False for r in context.requests.outsiders)


def _lets_in_anyone(statement: PolicyStatementModel, context: _Context) -> bool:
    """Does it let in an allowed caller that no standing statement lets in already?"""
    return any(
        evaluate_statement(statement, r) is not False
        and not any(evaluate_statement(s, r) is True for s in context.standing)
        for r in context.requests.allowed
    )


def _widens(
    candidate: PolicyStatementModel, original: PolicyStatementModel, context: _Context
) -> bool:
    """Does the narrowed grant let in an allowed caller the original grant did not?"""
    return any(
        evaluate_statement(candidate, r) is not False and evaluate_statement(original, r) is False
        for r in context.requests.allowed
    )


def _kept_whole(statement: PolicyStatementModel, context: _Context) -> bool:
    if statement.NotPrincipal is not None:
        return False
    return not _lets_in_outsiders(statement, context)  # direct invokes: its other actions aside


def _rewrite_allow(
    statement: PolicyStatementModel, context: _Context
) -> tuple[list[PolicyStatementModel], Change, list[bool]]:
    """The statements that replace an invoke grant, what changed, and which of them are
    grants narrowed to allowed callers (left out later if another statement is the same)."""
    sid = statement.Sid
    invoke_fields, rest_fields = _split_actions(statement)
    invoke_part = _with(statement, **invoke_fields)
    if statement.NotPrincipal is not None:
        judged: list[tuple[Principal, PolicyStatementModel]] = [
            (("NotPrincipal", "*"), invoke_part)
        ]
    else:
        judged = [
            (p, _with(invoke_part, Principal=_principal_element([p])))
            for p in statement.principals()
        ]
    kept: list[Principal] = []
    lost: list[Principal] = []
    narrowed: list[PolicyStatementModel] = []
    wildcard: list[PolicyStatementModel] = []  # narrowed from `*` / NotPrincipal
    pinned: set[str] = set()
    grantees = _grantees(context.rule, context.partition)
    for principal, alone in judged:
        if principal[0] != "NotPrincipal" and not _lets_in_outsiders(alone, context):
            kept.append(principal)
            continue
        lost.append(principal)
        everyone = principal[0] in ("*", "NotPrincipal") or principal == ("AWS", "*")
        for _, grantee in grantees:
            # Everyone but a few is narrowed like everyone, and kept only where it grants
            # nothing the original did not (below).
            part = _narrow_to(("*", "*") if principal[0] == "NotPrincipal" else principal, grantee)
            if part is None:
                continue
            conditions = _add_pins(alone.Condition, list(part.pins))
            if conditions is None:
                continue
            candidate = _with(
                alone, Principal=_principal_element([part.principal]), Condition=conditions or None
            )
            if (
                candidate.dump() in [s.dump() for s in narrowed + wildcard]
                or not _lets_in_anyone(candidate, context)
                or _widens(candidate, alone, context)
            ):
                continue
            (wildcard if everyone else narrowed).append(candidate)
            if conditions != (alone.Condition or {}):
                pinned.update(f"{op} {key}" for op, key, _ in part.pins)
    if not lost:
        kept_as_is = Change("kept", sid, "every caller it lets invoke is on the allowlist")
        return [statement], kept_as_is, [False]
    out: list[PolicyStatementModel] = []
    if kept:
        out.append(_with(statement, Principal=_principal_element(kept)))
    merged, merged_wildcard = _merge_plain(narrowed), _merge_plain(wildcard)
    candidates = [False] * (len(out) + len(merged)) + [True] * len(merged_wildcard)
    out += merged + merged_wildcard
    if rest_fields is not None:
        rest_principal = (
            {"NotPrincipal": statement.NotPrincipal}
            if statement.NotPrincipal is not None
            else {"Principal": _principal_element(lost)}
        )
        out.append(_with(statement, **rest_principal, **rest_fields))
    if context.url_grants and "lambda:InvokeFunction" in as_list(invoke_fields["Action"]):
        via_url = _add_pins_bool(invoke_part.Condition)
        principal_field = (
            {"NotPrincipal": statement.NotPrincipal}
            if statement.NotPrincipal is not None
            else {"Principal": _principal_element(lost)}
        )
        out.append(
            _with(invoke_part, **principal_field, Action="lambda:InvokeFunction", Condition=via_url)
        )
    out = _name(out, sid)
    candidates += [False] * (len(out) - len(candidates))
    change = _change(sid, lost, narrowed + wildcard, kept, pinned, rest_fields is not None)
    return out, change, candidates


def _add_pins_bool(conditions: Mapping[str, Any] | None) -> dict[str, Any]:
    """The conditions with `lambda:InvokedViaFunctionUrl` true: invocations through a URL."""
    out: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (conditions or {}).items()}
    out.setdefault("Bool", {})["lambda:InvokedViaFunctionUrl"] = "true"
    return out


def _merge_plain(statements: list[PolicyStatementModel]) -> list[PolicyStatementModel]:
    """Narrowed grants that differ only in their AWS principal become one statement."""
    merged: list[PolicyStatementModel] = []
    for statement in statements:
        principal = statement.Principal
        target = next(
            (
                m
                for m in merged
                if isinstance(principal, dict)
                and isinstance(m.Principal, dict)
                and set(principal) == set(m.Principal) == {"AWS"}
                and m.Condition == statement.Condition
            ),
            None,
        )
        if target is None:
            merged.append(statement)
            continue
        assert isinstance(target.Principal, dict) and isinstance(principal, dict)
        values = as_list(target.Principal["AWS"]) + as_list(principal["AWS"])
        merged[merged.index(target)] = _with(
            target, Principal={"AWS": _one_or_many(list(dict.fromkeys(values)))}
        )
    return merged


def _name(statements: list[PolicyStatementModel], sid: str | None) -> list[PolicyStatementModel]:
    if len(statements) <= 1:
        return statements  # each part of a statement carries its Sid already
    base = sid or "Stmt"
    return [
        s.model_copy(update={"Sid": sid if i == 0 and sid else f"{base}-{i}"})
        for i, s in enumerate(statements, start=0 if sid else 1)
    ]


def _change(
    sid: str | None,
    lost: list[Principal],
    narrowed: list[PolicyStatementModel],
    kept: list[Principal],
    pinned: set[str],
    rest: bool,
) -> Change:
    shown = _describe(("*", "*") if p[0] == "NotPrincipal" else p for p in lost)
    others = "; its other actions stay" if rest else ""
    if not kept and not narrowed:
        return Change(
            "removed", sid, f"no allowed caller invokes through this grant{others}", shown
        )
    detail = "narrowed to the allowed callers it let invoke"
    if pinned:
        detail += "; confused-deputy conditions added: " + ", ".join(sorted(pinned))
    return Change("tightened" if pinned else "narrowed", sid, detail + others, shown)


def deny_others_statement(rule: Rule, resource_arn: str) -> dict[str, Any]:
    """One Deny for every caller outside the allowlist (needs the full-document policy API)."""
    principals = sorted({e.principal for e in rule.allow if e.principal})
    accounts = sorted({e.account for e in rule.allow if e.account})
    services = sorted({e.service for e in rule.allow if e.service})
    sources = sorted({e.source_arn for e in rule.allow if e.source_arn})
    conditions: dict[str, dict[str, Any]] = {}
    if principals:
        conditions.setdefault("ArnNotLikeIfExists", {})["aws:PrincipalArn"] = principals
    if sources:
        conditions.setdefault("ArnNotLikeIfExists", {})["aws:SourceArn"] = sources
    if accounts:
        conditions.setdefault("StringNotEqualsIfExists", {})["aws:PrincipalAccount"] = accounts
    if services:
        conditions.setdefault("StringNotEqualsIfExists", {})["aws:PrincipalServiceName"] = services
    # Invocations through a function URL are governed by the URL's grants, which the rewrite
    # reports and leaves as they are: the Deny leaves them alone too.
    conditions["BoolIfExists"] = {"lambda:InvokedViaFunctionUrl": "false"}
    return {
        "Sid": DENY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(DIRECT_INVOKE),
        "Resource": resource_arn,
        "Condition": conditions,
    }


def _statement_changes(
    statements: list[PolicyStatementModel], context: _Context
) -> tuple[list[PolicyStatementModel], list[Change], PolicyStatementModel | None]:
    out: list[PolicyStatementModel] = []
    changes: list[Change] = []
    old_deny: PolicyStatementModel | None = None
    candidates: list[tuple[int, bool]] = []  # per statement of `out`: (its change, narrowed)
    context.standing = [
        s
        for s in statements
        if s.Effect == "Allow"
        and not _is_function_url(s)
        and grants_invoke(s)
        and _kept_whole(s, context)
    ]
    for statement in statements:
        sid = statement.Sid
        if sid == DENY_SID and statement.Effect == "Deny":
            old_deny = statement
            continue
        if statement.Effect == "Deny":
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
            rewritten, change, narrowed = _rewrite_allow(statement, context)
            out.extend(rewritten)
            candidates += [(len(changes), n) for n in narrowed]
            changes.append(change)
            continue
        candidates.append((len(changes) - 1, False))
    out, changes = _drop_repeated(out, changes, candidates)
    return out, changes, old_deny


def _drop_repeated(
    out: list[PolicyStatementModel], changes: list[Change], candidates: list[tuple[int, bool]]
) -> tuple[list[PolicyStatementModel], list[Change]]:
    """A narrowed grant that another statement repeats word for word (but its Sid) goes."""

    def shape(statement: PolicyStatementModel) -> str:
        return json.dumps(statement.model_copy(update={"Sid": None}).dump(), sort_keys=True)

    kept: list[PolicyStatementModel] = []
    seen = [shape(s) for s in out]
    left: set[int] = set()  # the changes some statement is left of
    for index, (statement, (origin, narrowed)) in enumerate(zip(out, candidates, strict=True)):
        if narrowed and seen[index] in seen[:index] + [
            t for j, t in enumerate(seen) if j > index and not candidates[j][1]
        ]:
            continue
        kept.append(statement)
        left.add(origin)
    changes = [
        Change(
            "removed",
            c.sid,
            "the allowed callers it let invoke keep their grant in another statement",
            c.principals,
        )
        if c.kind in ("narrowed", "tightened") and i not in left
        else c
        for i, c in enumerate(changes)
    ]
    return kept, changes


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


def _grants_url(statement: PolicyStatementModel) -> bool:
    if statement.Effect != "Allow":
        return False
    if statement.Action is not None:
        patterns, wanted = as_list(statement.Action), True
    else:
        patterns, wanted = as_list(statement.NotAction), False
    return any(matches(p.lower(), "lambda:invokefunctionurl") for p in patterns) is wanted


def rewrite_policy(policy: Any, rule: Rule, resource_arn: str) -> PolicyRewrite:
    """Compute the new policy for `resource_arn` under `rule`, and what changed and why.

    Raises PostConditionError, naming the request, when the result would decide a request
    wrongly (see lambdas.core.access); nothing may then be written. Raises RewriteError when
    `resource_arn` is not a function's full ARN.
    """
    try:
        partition = parse_function_arn(resource_arn).partition
    except InputError as exc:
        raise RewriteError(f"not a function's full ARN: {resource_arn[:200]!r}") from exc
    document, revision_id = parse_policy(policy)
    # The pipeline's own deny-others statement is not access the owner granted: it is
    # recomputed from the rule, and the rewrite is judged against the policy without it.
    before = [
        s
        for s in (document.Statement if document else [])
        if not (s.Sid == DENY_SID and s.Effect == "Deny")
    ]
    context = _Context(
        rule=rule,
        partition=partition,
        requests=request_set(before, rule, resource_arn),
        url_grants=any(_grants_url(s) for s in before),
    )
    statements, changes, old_deny = _statement_changes(
        document.Statement if document else [], context
    )
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
    check_rewrite(before, statements, rule, resource_arn)
    return PolicyRewrite(
        policy=new_document.dump() if new_document else None,
        changes=changes,
        revision_id=revision_id,
    )
