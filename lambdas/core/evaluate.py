"""Who may do what: a Lambda resource-based policy evaluated for one request, as IAM does.

Pure: no AWS SDK, no I/O. The rewrite proves its result with it (lambdas.core.rewrite), and
tests use it as an independent oracle.

A request is a principal (an IAM user or role ARN, an assumed-role session ARN, an account
root, a service principal, or anonymous), an action, the request context keys and,
optionally, the resource. The answer follows IAM's evaluation of one resource-based policy:

- an explicit Deny that applies wins (`deny`);
- else an Allow that applies allows (`allow`);
- else the request is implicitly denied (`not-allowed`);
- `unknown` when the answer depends on something this module does not model. Every caller
  must treat `unknown` as unsafe.

A statement applies when its Principal (or NotPrincipal), Action (or NotAction), Resource
(or NotResource, checked only when the request names a resource) and every condition match.
Modelled: `"*"` and `{"AWS": "*"}` (everyone, anonymous and services included); an account
(`"111122223333"` or `arn:PARTITION:iam::111122223333:root`) stands for every principal of
that account; a role ARN also matches that role's sessions; actions are case-insensitive
globs (`*`, `?`); condition operators String(Not)Equals(IgnoreCase), String(Not)Like,
Arn(Not)Equals, Arn(Not)Like, Null and Bool, with `...IfExists`, `ForAnyValue:` and
`ForAllValues:`; condition keys case-insensitive, values a string or a list (OR; NOR for a
negated operator); a key absent from the request makes a positive operator false and a
negated one true (`IfExists`: true).

Not modelled (the answer is `unknown` when one of these could decide it):
- other policy types: identity-based policies, SCPs and RCPs, permission boundaries,
  session policies. Within one account an identity-based policy can allow what this policy
  does not grant; an account grant lets in only the principals that account's own
  policies delegate to. The answer is what *this* policy grants or denies.
- condition keys outside `KNOWN_KEYS` unless the request carries them, policy variables
  (`${...}`), Numeric/Date/IpAddress/Binary operators, unique-id principals (`AROA...`),
  partial wildcards in Principal (IAM rejects them). `Federated` and `CanonicalUser`
  principals name no principal a request here can have (IAM, service, anonymous).
- NotPrincipal: a principal is exempt only when each of its identities (session, role,
  account) is listed, as IAM's documentation describes for Deny with NotPrincipal. IAM now
  documents Allow with NotPrincipal as unsupported; it is read as its older documentation
  describes it (everyone except the listed principals), the reading that grants the most.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, Literal

from pydantic import ValidationError

from models.policy import PolicyDocumentModel, PolicyStatementModel, as_list

__all__ = [
    "KNOWN_KEYS",
    "Answer",
    "Evaluation",
    "Principal",
    "Request",
    "evaluate",
    "evaluate_statement",
]

# Keys a request built by this project fills in whenever the real request would carry them.
KNOWN_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalservicename",
        "aws:principaltype",
        "lambda:functionurlauthtype",
        "lambda:invokedviafunctionurl",
    }
)

_STRING_OPS = frozenset(
    {
        "stringequals",
        "stringnotequals",
        "stringequalsignorecase",
        "stringnotequalsignorecase",
        "stringlike",
        "stringnotlike",
    }
)
_ARN_OPS = frozenset({"arnequals", "arnlike", "arnnotequals", "arnnotlike"})
_NEGATED = frozenset(
    {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike"}
)
_ACCOUNT = re.compile(r"\d{12}\Z")
_IAM = re.compile(r"arn:(?P<p>[\w-]+):iam::(?P<a>\d{12}):(?P<rest>root|user/.+|role/.+)\Z")
_SESSION = re.compile(
    r"arn:(?P<p>[\w-]+):sts::(?P<a>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)\Z"
)

Tri = bool | None  # True, False, or None for "depends on what is not modelled"


class Answer(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NOT_ALLOWED = "not-allowed"
    UNKNOWN = "unknown"

    @property
    def allowed(self) -> bool | None:
        """True / False, or None when unknown."""
        if self is Answer.UNKNOWN:
            return None
        return self is Answer.ALLOW


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes the request. `value`: an IAM ARN (`aws`), a service name (`service`)."""

    kind: Literal["aws", "service", "anonymous"]
    value: str = ""

    @classmethod
    def aws(cls, arn: str) -> Principal:
        return cls("aws", arn)

    @classmethod
    def root(cls, account: str, partition: str = "aws") -> Principal:
        return cls("aws", f"arn:{partition}:iam::{account}:root")

    @classmethod
    def service(cls, name: str) -> Principal:
        return cls("service", name)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls("anonymous")

    @property
    def account(self) -> str | None:
        parts = self.value.split(":")
        return parts[4] if self.kind == "aws" and len(parts) > 5 else None

    @property
    def partition(self) -> str | None:
        parts = self.value.split(":")
        return parts[1] if self.kind == "aws" and len(parts) > 5 else None

    @property
    def arn(self) -> str | None:
        """The stable ARN (`aws:PrincipalArn`): the role behind an assumed-role session."""
        if self.kind != "aws":
            return None
        session = _SESSION.match(self.value)
        if session:
            return f"arn:{session['p']}:iam::{session['a']}:role/{session['role']}"
        return self.value

    def describe(self) -> str:
        if self.kind == "anonymous":
            return "anonymous"
        return self.value if self.kind == "aws" else f"service {self.value}"


ContextValue = str | bool | Sequence[str | bool]  # read from JSON: true / false as booleans


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    resource: str | None = None

    def values(self) -> dict[str, list[str]]:
        """The request context, keys lower-cased, with the keys the principal implies."""
        return self._values

    @cached_property
    def _values(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        principal = self.principal
        if principal.kind == "aws":
            arn = principal.arn
            if arn:
                found["aws:principalarn"] = [arn]
            if principal.account:
                found["aws:principalaccount"] = [principal.account]
            found["aws:principaltype"] = [_principal_type(principal.value)]
        elif principal.kind == "service":
            found["aws:principalservicename"] = [principal.value]
            found["aws:principaltype"] = ["AWSService"]
        else:
            found["aws:principaltype"] = ["Anonymous"]
        for key, value in self.context.items():
            found[key.lower()] = _strings(value)
        return found

    def describe(self) -> str:
        extra = ", ".join(f"{k}={_show(v)}" for k, v in sorted(self.context.items()))
        return f"{self.principal.describe()} {self.action}" + (f" [{extra}]" if extra else "")


def _principal_type(arn: str) -> str:
    if arn.endswith(":root"):
        return "Account"
    if ":assumed-role/" in arn:
        return "AssumedRole"
    return "User" if ":user/" in arn else "Role"


def _show(value: ContextValue) -> str:
    return value if isinstance(value, str) else str(_strings(value))


def _strings(value: Any) -> list[str]:
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (str, int)):
        return [str(value)]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in value or []]


@dataclass(frozen=True, slots=True)
class Evaluation:
    answer: Answer
    reason: str
    statements: tuple[str | None, ...] = ()

    @property
    def allowed(self) -> bool | None:
        return self.answer.allowed


# --- matching -------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _like(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` one character; nothing else is magic."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body + r"\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _like(pattern, ignore_case).match(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike / ArnEquals: the six colon-separated parts are compared one by one."""
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(_glob(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


@lru_cache(maxsize=65536)
def _names_principal(kind: str, value: str, principal: Principal) -> Tri:
    """Does one Principal entry (kind, value) name the requesting principal?"""
    if kind == "*" or (kind == "AWS" and value == "*"):
        return True
    if kind == "Service":
        if "*" in value or "?" in value:
            return None
        return principal.kind == "service" and principal.value.lower() == value.lower()
    if kind != "AWS":
        # Federated (identity providers) and CanonicalUser (S3) never name the principals a
        # request here can have: IAM principals, service principals, anonymous.
        return False
    account = value if _ACCOUNT.match(value) else None
    iam = _IAM.match(value)
    if iam and iam["rest"] == "root":
        account = iam["a"]
    if account is None and not iam and not _SESSION.match(value):
        return None  # a unique id or something IAM would not accept
    if "*" in value or "?" in value:
        return None
    if principal.kind != "aws":
        return False
    if account is not None:
        partition_ok = iam is None or iam["p"] == principal.partition
        return partition_ok and principal.account == account
    return value in (principal.value, principal.arn)


def _principal_matches(principal_element: Any, principal: Principal) -> Tri:
    if principal_element is None:
        return False
    if principal_element == "*":
        return True
    if not isinstance(principal_element, dict):
        return None
    unknown = False
    for kind, values in principal_element.items():
        for value in as_list(values):
            hit = _names_principal(kind, value, principal)
            if hit:
                return True
            unknown = unknown or hit is None
    return None if unknown else False


def _not_principal_exempts(element: Any, principal: Principal) -> Tri:
    """Is the request exempt from a NotPrincipal statement? Only when each of its identities
    (session, role, account) is listed: listing a role does not list its account."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return None
    if principal.kind == "anonymous":
        return "*" in as_list(element.get("AWS"))
    if principal.kind == "service":
        return _principal_matches(element, principal)
    listed = as_list(element.get("AWS"))
    if "*" in listed:
        return True
    if any("*" in v or "?" in v for v in listed) or any(
        k not in ("AWS", "Service") for k in element
    ):
        return None
    identities = {principal.value, principal.arn}
    exempt = all(i in listed for i in identities if i and not i.endswith(":root"))
    account = principal.account
    root = f"arn:{principal.partition}:iam::{account}:root"
    return exempt and (account in listed or root in listed)


@lru_cache(maxsize=65536)
def _action_matches(patterns: tuple[str, ...], action: str) -> bool:
    return any(_glob(p, action, ignore_case=True) for p in patterns)


# --- conditions -----------------------------------------------------------------------------


def _value_matches(base: str, policy_values: list[str], value: str) -> bool:
    """One context value against a positive base operator's policy values (OR)."""
    if base in ("stringequals",):
        return value in policy_values
    if base == "stringequalsignorecase":
        return value.lower() in {v.lower() for v in policy_values}
    if base == "stringlike":
        return any(_glob(p, value) for p in policy_values)
    return any(_arn_like(p, value) for p in policy_values)  # arnequals, arnlike


_POSITIVE = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
}


def _one_value(base: str, policy_values: list[str], value: str) -> bool:
    if base in _NEGATED:
        return not _value_matches(_POSITIVE[base], policy_values, value)
    return _value_matches(base, policy_values, value)


@lru_cache(maxsize=4096)
def _parse_operator(operator: str) -> tuple[str | None, str, bool] | None:
    """`ForAnyValue:StringLikeIfExists` -> ("foranyvalue", "stringlike", True); None if unknown."""
    name = operator.lower()
    qualifier = None
    if ":" in name:
        qualifier, name = name.split(":", 1)
        if qualifier not in ("foranyvalue", "forallvalues"):
            return None
    if_exists = name.endswith("ifexists") and name != "null"
    base = name.removesuffix("ifexists") if if_exists else name
    if base not in _STRING_OPS and base not in _ARN_OPS and base not in ("null", "bool"):
        return None
    if base == "null" and (qualifier or if_exists):
        return None
    return qualifier, base, if_exists


def _condition(operator: str, key: str, raw: Any, context: dict[str, list[str]]) -> Tri:
    parsed = _parse_operator(operator)
    if parsed is None:
        return None
    qualifier, base, if_exists = parsed
    if isinstance(raw, Mapping):
        return None
    policy_values = _strings(raw)
    if any("${" in v for v in policy_values):
        return None  # policy variables: not modelled
    lowered = key.lower()
    if lowered not in KNOWN_KEYS and lowered not in context:
        return None
    present = context.get(lowered)
    if base == "null":
        want_absent = {v.lower() for v in policy_values}
        return ("true" in want_absent and not present) or ("false" in want_absent and bool(present))
    if base == "bool":
        policy_values = [v.lower() for v in policy_values]
        base = "stringequals"
        present = [v.lower() for v in present] if present else present
    if qualifier == "foranyvalue":
        if not present:
            return if_exists
        return any(_one_value(base, policy_values, v) for v in present)
    if qualifier == "forallvalues":
        return all(_one_value(base, policy_values, v) for v in present or [])
    if not present:
        return True if if_exists else base in _NEGATED
    if len(present) > 1:
        return None  # a multivalued key needs ForAnyValue / ForAllValues
    return _one_value(base, policy_values, present[0])


# --- statements and policies ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    """What evaluation reads of a statement, read once per statement object."""

    actions: tuple[str, ...] | None  # None: no Action / NotAction, nothing matches
    not_action: bool
    principals: tuple[tuple[str, str], ...] | None  # None: Principal "*" / everyone
    principal_readable: bool
    not_principal: Any
    resources: tuple[str, ...] | None
    not_resource: bool
    conditions: tuple[tuple[str, str, Any], ...] | None  # None: a block it cannot read


_COMPILED: dict[int, _Compiled] = {}


def _compile(statement: PolicyStatementModel) -> _Compiled:
    key = id(statement)
    found = _COMPILED.get(key)
    if found is not None:
        return found
    if statement.Action is not None:
        actions: tuple[str, ...] | None = tuple(as_list(statement.Action))
    elif statement.NotAction is not None:
        actions = tuple(as_list(statement.NotAction))
    else:
        actions = None
    element = statement.Principal
    principals: tuple[tuple[str, str], ...] | None = None
    readable = True
    if isinstance(element, dict):
        principals = tuple((k, v) for k, values in element.items() for v in as_list(values))
    elif element is None:
        principals = ()
    elif element != "*":
        readable = False
    conditions: tuple[tuple[str, str, Any], ...] | None = ()
    for operator, block in (statement.Condition or {}).items():
        if not isinstance(block, dict):
            conditions = None
            break
        assert conditions is not None
        conditions += tuple((operator, k, raw) for k, raw in block.items())
    resource = statement.Resource if statement.Resource is not None else statement.NotResource
    found = _Compiled(
        actions=actions,
        not_action=statement.Action is None,
        principals=principals,
        principal_readable=readable,
        not_principal=statement.NotPrincipal,
        resources=None if resource is None else tuple(as_list(resource)),
        not_resource=statement.Resource is None,
        conditions=conditions,
    )
    _COMPILED[key] = found
    # The entry goes with the statement: an id is never reused while its entry lives.
    weakref.finalize(statement, _COMPILED.pop, key, None)
    return found


def _principal_tri(compiled: _Compiled, principal: Principal) -> Tri:
    if compiled.not_principal is not None:
        exempt = _not_principal_exempts(compiled.not_principal, principal)
        return None if exempt is None else not exempt
    if not compiled.principal_readable:
        return None
    if compiled.principals is None:
        return True
    unknown = False
    for kind, value in compiled.principals:
        hit = _names_principal(kind, value, principal)
        if hit:
            return True
        unknown = unknown or hit is None
    return None if unknown else False


def evaluate_statement(statement: PolicyStatementModel, request: Request) -> Tri:
    """Does `statement` apply to `request`? None when that depends on what is not modelled."""
    compiled = _compile(statement)
    if compiled.actions is None:
        return False
    if _action_matches(compiled.actions, request.action) is compiled.not_action:
        return False
    principal = _principal_tri(compiled, request.principal)
    if principal is False:
        return False
    if request.resource is not None and compiled.resources is not None:
        named = any(_glob(p, request.resource) for p in compiled.resources)
        if named is compiled.not_resource:
            return False
    elif request.resource is not None:
        return False
    if compiled.conditions is None:
        return None
    if not compiled.conditions:
        return principal
    values = request.values()
    result: Tri = principal
    for operator, key, raw in compiled.conditions:
        holds = _condition(operator, key, raw, values)
        if holds is False:
            return False
        if holds is None:
            result = None
    return result


def _statements(policy: Any) -> list[PolicyStatementModel]:
    if type(policy) is list and all(type(s) is PolicyStatementModel for s in policy):
        return policy
    if policy is None:
        return []
    if isinstance(policy, PolicyDocumentModel):
        return policy.Statement
    if isinstance(policy, PolicyStatementModel):
        return [policy]
    if isinstance(policy, Mapping):
        return PolicyDocumentModel.model_validate(policy).Statement
    return [
        s if isinstance(s, PolicyStatementModel) else PolicyStatementModel.model_validate(s)
        for s in policy
    ]


def evaluate(
    policy: Any,
    request: Request,
    *,
    cache: dict[tuple[int, int], Tri] | None = None,
) -> Evaluation:
    """Judge `request` under `policy` (a document, its model, or a list of statements).

    `cache`: per-statement answers keyed by (id(statement), id(request)), for a caller that
    asks about the same statement and request objects again while it holds them."""
    try:
        statements = _statements(policy)
    except ValidationError as exc:
        return Evaluation(Answer.UNKNOWN, f"not a policy this evaluator reads: {exc.errors()[0]}")
    denies: list[tuple[str | None, Tri]] = []
    allows: list[tuple[str | None, Tri]] = []
    for statement in statements:
        if cache is None:
            applies = evaluate_statement(statement, request)
        else:
            key = (id(statement), id(request))
            if key not in cache:
                cache[key] = evaluate_statement(statement, request)
            applies = cache[key]
        if applies is False:
            continue
        (denies if statement.Effect == "Deny" else allows).append((statement.Sid, applies))
    denied = tuple(sid for sid, applies in denies if applies)
    if denied:
        return Evaluation(Answer.DENY, "an explicit Deny applies", denied)
    allowed = tuple(sid for sid, applies in allows if applies)
    maybe_deny = tuple(sid for sid, _ in denies)
    if allowed and not maybe_deny:
        return Evaluation(Answer.ALLOW, "an Allow applies and no Deny does", allowed)
    maybe_allow = tuple(sid for sid, _ in allows)
    if maybe_allow:
        why = "a Deny may apply" if allowed else "an Allow may apply"
        return Evaluation(
            Answer.UNKNOWN, f"{why}: it depends on what is not modelled", maybe_deny + maybe_allow
        )
    # No statement allows: whether a possible Deny applies changes nothing for access.
    return Evaluation(Answer.NOT_ALLOWED, "no statement allows it", maybe_deny)
