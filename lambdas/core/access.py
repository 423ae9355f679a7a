"""Who can invoke, before and after a rewrite: the requests that stand for every caller a
policy or a rule names, and the rewrite's post-condition over them.

Pure: no AWS SDK, no I/O. The answers come from lambdas.core.evaluate.

The request set is built from the old policy, the new one and the rule: every principal,
account, service, source ARN / account and organization either names (globs made concrete),
the allowlisted callers, and outsiders (an account and a service nobody names, anonymous,
each allowed service from a source nobody allows). Each is asked for the direct invoke
actions, for every non-invoke action either policy names, and through a function URL.

The post-condition (`check_rewrite`) holds when, for every request of the set:
- a direct invoke by a caller the rule allows is decided as before (allowed stays allowed,
  what the old policy left unknown stays unknown, what it did not allow is not allowed);
- a direct invoke by anyone else is definitely not allowed;
- a non-invoke request is decided as before;
- a function-URL invocation (`lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` with
  `lambda:InvokedViaFunctionUrl`, both needed) is decided as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.core.evaluate import Principal, Request, evaluate
from models.allowlist import AllowEntry, Rule
from models.exceptions import PostConditionError
from models.globs import has_magic, matches
from models.policy import PolicyDocumentModel, PolicyStatementModel, as_list

__all__ = [
    "DIRECT_INVOKE",
    "LAMBDA_FUNCTION_ACTIONS",
    "AccessCheck",
    "check_rewrite",
    "entry_allows_request",
    "rule_allows_request",
]

DIRECT_INVOKE = ("lambda:InvokeFunction", "lambda:InvokeAsync")
URL_ACTION = "lambda:InvokeFunctionUrl"
# The Lambda actions that apply to a function (or its versions and aliases), from the Service
# Authorization Reference: what a glob in a function policy's Action can stand for.
LAMBDA_FUNCTION_ACTIONS = (
    "lambda:AddPermission",
    "lambda:CreateAlias",
    "lambda:CreateFunctionUrlConfig",
    "lambda:DeleteAlias",
    "lambda:DeleteFunction",
    "lambda:DeleteFunctionCodeSigningConfig",
    "lambda:DeleteFunctionConcurrency",
    "lambda:DeleteFunctionEventInvokeConfig",
    "lambda:DeleteFunctionUrlConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
    "lambda:DeleteResourcePolicy",
    "lambda:GetAlias",
    "lambda:GetFunction",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:GetFunctionConcurrency",
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunctionEventInvokeConfig",
    "lambda:GetFunctionRecursionConfig",
    "lambda:GetFunctionUrlConfig",
    "lambda:GetPolicy",
    "lambda:GetProvisionedConcurrencyConfig",
    "lambda:GetResourcePolicy",
    "lambda:GetRuntimeManagementConfig",
    "lambda:InvokeAsync",
    "lambda:InvokeFunction",
    "lambda:InvokeFunctionUrl",
    "lambda:ListAliases",
    "lambda:ListFunctionEventInvokeConfigs",
    "lambda:ListFunctionUrlConfigs",
    "lambda:ListProvisionedConcurrencyConfigs",
    "lambda:ListTags",
    "lambda:ListVersionsByFunction",
    "lambda:PublishVersion",
    "lambda:PutFunctionCodeSigningConfig",
    "lambda:PutFunctionConcurrency",
    "lambda:PutFunctionEventInvokeConfig",
    "lambda:PutFunctionRecursionConfig",
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:PutResourcePolicy",
    "lambda:PutRuntimeManagementConfig",
    "lambda:RemovePermission",
    "lambda:TagResource",
    "lambda:UntagResource",
    "lambda:UpdateAlias",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:UpdateFunctionEventInvokeConfig",
    "lambda:UpdateFunctionUrlConfig",
)
_SAMPLE_ACTIONS = (
    "lambda:GetFunction",
    "lambda:GetPolicy",
    "lambda:UpdateFunctionCode",
    "lambda:AddPermission",
    "lambda:PutFunctionConcurrency",
)
# Names nobody uses: the outsiders of every request set.
OUTSIDER_ACCOUNT = "000011112222"
OUTSIDER_SERVICE = "outsider.amazonaws.com"
_ARN_ACCOUNT = re.compile(r"arn:[^:]*:[^:]*:[^:]*:(\d{12}):")


def entry_allows_request(entry: AllowEntry, request: Request) -> bool:
    """Does one allow entry stand for this request? A service entry's `source_arn` /
    `source_account` must be carried by the request: a policy grant cannot trust a source
    it is not told about."""
    principal = request.principal
    if entry.service is not None:
        if principal.kind != "service" or principal.value != entry.service:
            return False
        values = request.values()
        arns = values.get("aws:sourcearn", [])
        accounts = values.get("aws:sourceaccount", [])
        if entry.source_arn is not None and not any(matches(entry.source_arn, a) for a in arns):
            return False
        return entry.source_account is None or entry.source_account in accounts
    if principal.kind != "aws":
        return False
    if entry.principal is not None:
        return principal.arn is not None and matches(entry.principal, principal.arn)
    return principal.account is not None and principal.account == entry.account


def rule_allows_request(rule: Rule, request: Request) -> bool:
    return any(entry_allows_request(e, request) for e in rule.allow)


# --- the request set --------------------------------------------------------------------------


def _concrete(glob: str, fill: str = "x") -> str:
    """One string a glob matches: `*` and `?` become `fill` (digits for an account part)."""
    parts = glob.split(":")
    if len(parts) > 5 and glob.startswith("arn:"):
        account = parts[4]
        if has_magic(account):
            parts[4] = "".join("0" if c in "*?" else c for c in account).ljust(12, "0")[:12]
        return ":".join(p.replace("*", fill).replace("?", fill[0]) for p in parts)
    return glob.replace("*", fill).replace("?", fill[0])


@dataclass(slots=True)
class _Names:
    """What the policies and the rule name, gathered once."""

    partition: str
    owner: str
    arns: set[str]
    accounts: set[str]
    services: set[str]
    source_arns: set[str]
    source_accounts: set[str]
    org_ids: set[str]
    actions: set[str]


def _condition_values(statement: PolicyStatementModel, key: str) -> list[str]:
    found: list[str] = []
    for block in (statement.Condition or {}).values():
        if not isinstance(block, dict):
            continue
        for name, value in block.items():
            if name.lower() == key:
                found += [str(v) for v in (value if isinstance(value, list) else [value])]
    return found


def _gather(
    statements: Iterable[PolicyStatementModel],
    rule: Rule,
    resource_arn: str,
    result: Iterable[PolicyStatementModel] = (),
) -> _Names:
    parts = resource_arn.split(":")
    names = _Names(
        partition=parts[1] if len(parts) > 5 else "aws",
        owner=parts[4] if len(parts) > 5 else OUTSIDER_ACCOUNT,
        arns=set(),
        accounts=set(),
        services=set(),
        source_arns=set(),
        source_accounts=set(),
        org_ids=set(),
        actions=set(),
    )
    originals = {id(s) for s in statements}
    for statement in [*statements, *result]:
        for element in (statement.Principal, statement.NotPrincipal):
            if isinstance(element, dict):
                for kind, values in element.items():
                    for value in as_list(values):
                        _name_principal(names, kind, value)
        for value in _condition_values(statement, "aws:principalarn"):
            _name_principal(names, "AWS", _concrete(value))
        names.accounts.update(_condition_values(statement, "aws:principalaccount"))
        names.services.update(_condition_values(statement, "aws:principalservicename"))
        names.source_arns.update(
            _concrete(v) for v in _condition_values(statement, "aws:sourcearn")
        )
        names.source_accounts.update(_condition_values(statement, "aws:sourceaccount"))
        names.org_ids.update(_condition_values(statement, "aws:principalorgid"))
        for pattern in as_list(statement.Action) + as_list(statement.NotAction):
            # A glob stands for many actions: a few of them are asked about.
            names.actions.update(a for a in _SAMPLE_ACTIONS if matches(pattern.lower(), a.lower()))
            # Actions a rewrite spelled out are among those of the glob they came from.
            if not has_magic(pattern) and id(statement) in originals:
                names.actions.add(pattern)
    _gather_rule(names, rule)
    names.accounts.update({names.owner, OUTSIDER_ACCOUNT})
    names.services.add(OUTSIDER_SERVICE)
    names.source_arns.add(f"arn:{names.partition}:s3:::outsider-bucket")
    names.source_accounts.update({names.owner, OUTSIDER_ACCOUNT})
    return names


def _gather_rule(names: _Names, rule: Rule) -> None:
    named = sorted(names.accounts)  # the accounts the policies name
    for entry in rule.allow:
        if entry.principal:
            _name_principal(names, "AWS", _concrete(entry.principal))
            # A glob over accounts: its principals in each account a policy names too (a
            # grant to such an account lets them in).
            parts = entry.principal.split(":")
            if len(parts) > 5 and has_magic(parts[4]):
                for account in named:
                    if matches(parts[4], account):
                        in_account = ":".join([*parts[:4], account, *parts[5:]])
                        _name_principal(names, "AWS", _concrete(in_account))
        if entry.account:
            names.accounts.add(entry.account)
        if entry.service:
            names.services.add(entry.service)
        if entry.source_arn:
            names.source_arns.add(_concrete(entry.source_arn))
        if entry.source_account:
            names.source_accounts.add(entry.source_account)


def _name_principal(names: _Names, kind: str, value: str) -> None:
    if kind == "Service" and not has_magic(value):
        names.services.add(value)
    elif kind == "AWS" and value != "*":
        if re.fullmatch(r"\d{12}", value):
            names.accounts.add(value)
        elif value.startswith("arn:") and not has_magic(value):
            names.arns.add(value)
            account = _ARN_ACCOUNT.match(value)
            if account:
                names.accounts.add(account[1])


def _principals(names: _Names) -> Iterator[Principal]:
    yield Principal.anonymous()
    for arn in sorted(names.arns):
        yield Principal.aws(arn)
    for account in sorted(names.accounts):
        yield Principal.root(account, names.partition)
        yield Principal.aws(f"arn:{names.partition}:iam::{account}:role/invoke-audit-probe")
    for service in sorted(names.services):
        yield Principal.service(service)


def _contexts(principal: Principal, names: _Names) -> Iterator[dict[str, Any]]:
    if principal.kind == "service":
        arns: list[str | None] = [None, *sorted(names.source_arns)]
        accounts: list[str | None] = [None, *sorted(names.source_accounts)]
        for arn in arns:
            for account in accounts:
                context: dict[str, Any] = {}
                if arn is not None:
                    context["aws:SourceArn"] = arn
                if account is not None:
                    context["aws:SourceAccount"] = account
                yield context
    elif principal.kind == "aws":
        yield {}
        for org in sorted(names.org_ids):
            yield {"aws:PrincipalOrgID": org}
    else:
        yield {}


@dataclass(frozen=True, slots=True)
class AccessCheck:
    """The request set of one rewrite, grouped by what the post-condition asks of each."""

    allowed: tuple[Request, ...]  # direct invokes by callers the rule allows
    outsiders: tuple[Request, ...]  # direct invokes by everyone else
    other: tuple[Request, ...]
    url: tuple[tuple[Request, Request], ...]


def request_set(
    statements: Iterable[PolicyStatementModel],
    rule: Rule,
    resource_arn: str,
    result: Iterable[PolicyStatementModel] = (),
) -> AccessCheck:
    """The requests for the callers and actions `statements` (and the rewrite's `result`,
    whose actions are not asked about one by one) and `rule` name."""
    names = _gather(list(statements), rule, resource_arn, result)
    invoke: list[Request] = []
    other: list[Request] = []
    url: list[tuple[Request, Request]] = []
    actions = sorted(names.actions - set(DIRECT_INVOKE) - {URL_ACTION} | {"lambda:GetFunction"})
    for principal in _principals(names):
        contexts = list(_contexts(principal, names))
        for index, context in enumerate(contexts):
            for action in DIRECT_INVOKE:
                invoke.append(Request(principal, action, context))
            # Non-invoke grants are never narrowed, only split off: fewer contexts suffice.
            if index < 4 or len(context) == 1:
                other += [Request(principal, action, context) for action in actions]
        first = contexts[0]
        for auth in ("NONE", "AWS_IAM"):
            url.append(
                (
                    Request(principal, URL_ACTION, {**first, "lambda:FunctionUrlAuthType": auth}),
                    Request(
                        principal,
                        "lambda:InvokeFunction",
                        {**first, "lambda:InvokedViaFunctionUrl": True},
                    ),
                )
            )
    allowed = tuple(r for r in invoke if rule_allows_request(rule, r))
    outsiders = tuple(r for r in invoke if not rule_allows_request(rule, r))
    return AccessCheck(allowed, outsiders, tuple(other), tuple(url))


# --- the post-condition -----------------------------------------------------------------------


_Cache = dict[tuple[int, int], bool | None]


def _show(allowed: bool | None) -> str:
    return {True: "allowed", False: "not allowed", None: "unknown"}[allowed]


def _url_allowed(
    policy: Sequence[PolicyStatementModel], pair: tuple[Request, Request], cache: _Cache
) -> bool | None:
    first = evaluate(policy, pair[0], cache=cache).allowed
    second = evaluate(policy, pair[1], cache=cache).allowed
    if first is False or second is False:
        return False
    return None if first is None or second is None else True


def check_rewrite(
    before: Sequence[PolicyStatementModel],
    after: Sequence[PolicyStatementModel],
    rule: Rule,
    resource_arn: str,
) -> None:
    """Raise PostConditionError naming the first request the rewrite decides wrongly."""
    check = request_set(before, rule, resource_arn, after)
    cache: _Cache = {}  # the statements and requests stay alive until the check ends

    def allowed(policy: Sequence[PolicyStatementModel], request: Request) -> bool | None:
        return evaluate(policy, request, cache=cache).allowed

    for request in check.allowed:
        was, now = allowed(before, request), allowed(after, request)
        if now != was:
            raise PostConditionError(
                f"allowed caller decided differently: {request.describe()} was "
                f"{_show(was)}, would be {_show(now)}"
            )
    for request in check.outsiders:
        now = allowed(after, request)
        if now is not False:
            raise PostConditionError(
                f"caller outside the allowlist would be {_show(now)}: {request.describe()}"
            )
    for request in check.other:
        was, now = allowed(before, request), allowed(after, request)
        if now != was:
            raise PostConditionError(
                f"a non-invoke request decided differently: {request.describe()} was "
                f"{_show(was)}, would be {_show(now)}"
            )
    for pair in check.url:
        was, now = _url_allowed(before, pair, cache), _url_allowed(after, pair, cache)
        if now != was:
            raise PostConditionError(
                f"a function URL invocation decided differently: {pair[0].describe()} was "
                f"{_show(was)}, would be {_show(now)}"
            )


def statements_of(document: PolicyDocumentModel | None) -> list[PolicyStatementModel]:
    return list(document.Statement) if document else []
