"""Edge filtering: the allowlist compiled into EventBridge rules, so that Invokes by callers
the allowlist allows never reach the validator (and never cost a Lambda request and log lines).

`compile_edge_rules(base, config)` returns the rules the stack puts on the bus, each `base`
(the Invoke events of `stacks.pattern.invoke_pattern`) narrowed further:

- one rule per allowlist rule *i*: "Invokes of rule *i*'s functions whose caller is not on its
  allow list" -- the invoked function *may* be one of rule *i*'s (a superset: any function
  name, version or, failing both, any record) AND the caller is *surely not* one that rule *i*
  allows (the negation of each allow entry, also a superset: whatever the pattern cannot say
  exactly counts as "not allowed");
- `unmatched` (only with `unmatched: report`): Invokes whose function is not *surely* one that
  some rule covers (an under-approximation of "covered", so its negation delivers more);
- `failed-invokes`: every Invoke with an `errorCode` (rare; the broken-caller watch needs them);
- `coarse`: every Invoke of the functions of the rules that did not get a rule of their own
  (more allowlist rules than the rules-per-bus setting allows).

Why nothing `decide` flags is dropped: a `violation` is an Invoke whose first matching rule *r*
does not allow the caller; its function is one of *r*'s and its caller is not allowed by *r*,
so rule *r*'s pattern delivers it (each part being a superset). An `unmonitored` Invoke's
function is covered by no rule, so it is not surely covered, and `unmatched` delivers it. An
event matched by several rules is delivered once per rule: harmless, the FIFO queue's
deduplication id is the eventID. What a rule's pattern cannot hold (its size limit, 1,000 `$or`
combinations) is compiled looser, never tighter: allow entries are left out (their callers are
delivered), then the function part (every Invoke whose caller the rule does not allow), and a
rule that still does not fit delivers every Invoke.

EventBridge matching as aws/event-ruler does it: `anything-but` matches null and numbers but no
absent field; `{"exists": false}` matches an absent field, an object or array, a null parent,
but not null itself; `*` in `wildcard` matches any character, newlines included (so does the
allowlist's `*`). Operators used, all documented for event buses: `$or` (nested), `wildcard`,
`anything-but` with a list and with `wildcard`, `exists`, and `null`.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from lambdas.core.record import (
    ARN_IDENTITY_TYPES,
    ASSUMED_ROLE,
    FUNCTION_NAME,
    FUNCTION_VERSION,
    IDENTITY_ACCOUNT,
    IDENTITY_ARN,
    IDENTITY_TYPE,
    INVOKED_BY,
    ISSUER_ARN,
    SOURCE_ACCOUNT,
    SOURCE_ARN,
    FieldPath,
)
from models.allowlist import AllowEntry, AllowlistConfig, Rule

__all__ = [
    "MAX_OR_TERMS",
    "PATTERN_SIZE_LIMIT",
    "RULES_PER_BUS",
    "EdgeFilterError",
    "EdgeRule",
    "EdgeRules",
    "combinations",
    "compile_edge_rules",
    "pattern_size",
]

PATTERN_SIZE_LIMIT = 2048  # EventBridge's default limit on an event pattern's length
MAX_OR_TERMS = 1000  # EventBridge's limit on the combinations a `$or` pattern expands to
RULES_PER_BUS = 300  # EventBridge's default limit on the rules of one event bus

# The record's fields and identity types, as `lambdas.core.record` (the reader `decide` uses)
# names them: the pattern must read what `decide` reads.
Path = FieldPath
ERROR_CODE: Path = ("errorCode",)


class EdgeFilterError(ValueError):
    """The rules cannot be built within the settings (the message says which and why)."""


@dataclass(frozen=True)
class EdgeRule:
    """One EventBridge rule: `key` names it (`rule-NAME`, `unmatched`, `failed-invokes`,
    `coarse`), `rules` the allowlist rules it is for, `filtering` whether it leaves out any
    caller."""

    key: str
    description: str
    pattern: dict[str, Any]
    size: int
    combinations: int
    rules: tuple[str, ...] = ()
    filtering: bool = False


@dataclass(frozen=True)
class EdgeRules:
    """The rules, what was compiled looser than it could have been (`notes`), and what the
    person deploying should know (`warnings`)."""

    rules: tuple[EdgeRule, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def largest_size(self) -> int:
        return max((rule.size for rule in self.rules), default=0)

    @property
    def filtered_rules(self) -> tuple[str, ...]:
        """The allowlist rules whose allowed callers are left out at the edge."""
        return tuple(name for rule in self.rules if rule.filtering for name in rule.rules)


# -- wildcards ------------------------------------------------------------------------------


def _wildcard(glob: str) -> tuple[str, bool]:
    """An allowlist glob as an EventBridge wildcard, and whether the two match the same strings.

    `*` is the same in both; `?` and `[...]` have no wildcard equivalent and become `*`
    (a superset). Consecutive stars are not allowed in EventBridge wildcards.
    """
    out: list[str] = []
    exact = True
    index = 0
    while index < len(glob):
        char = glob[index]
        if char in "*?[":
            if char != "*":
                exact = False
            if char == "[":
                close = glob.find("]", index + 2)
                index = close if close != -1 else len(glob)
            if not out or out[-1] != "*":
                out.append("*")
        elif char == "\\":
            out.append("\\\\")
        else:
            out.append(char)
        index += 1
    return "".join(out), exact


def _join(*parts: str) -> str:
    text = "".join(parts)
    while "**" in text:
        text = text.replace("**", "*")
    return text


def _is_wildcard(value: str) -> bool:
    return "*" in value.replace("\\*", "")


# -- literals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    """The field matches one of `values` (wildcards); `or_not_text`: or is no non-empty
    string (absent, null, "", a number, an object...)."""

    values: frozenset[str]
    or_not_text: bool = False


@dataclass(frozen=True)
class _Differs:
    """The field has none of `values` (wildcards); `absent_ok`: also when absent or null."""

    values: frozenset[str]
    absent_ok: bool


@dataclass(frozen=True)
class _Present:
    """The field is present (any value)."""


@dataclass(frozen=True)
class _Absent:
    """The field is absent or null (or an object or array: not a leaf)."""


_Literal = _Match | _Differs | _Present | _Absent
# Not a non-empty string: absent (or an object or array), null, "", a number or boolean.
_NOT_TEXT: list[Any] = [{"exists": False}, None, "", {"anything-but": {"wildcard": "*"}}]
_Term = dict[Path, _Literal]
_Alternatives = list[list[tuple[Path, _Literal]]]


def _merge(a: _Literal, b: _Literal) -> _Literal | None:
    """Both literals on one field as one, or None when they cannot be merged."""
    if isinstance(a, _Present):
        a, b = b, a
    if isinstance(b, _Present):
        if isinstance(a, _Differs):
            return _Differs(a.values, absent_ok=False)
        return a
    if isinstance(a, _Absent | _Match) or isinstance(b, _Absent | _Match):
        return None
    if isinstance(a, _Differs) and isinstance(b, _Differs):
        return _Differs(a.values | b.values, a.absent_ok and b.absent_ok)
    return None


def _conjoin(literals: Iterable[tuple[Path, _Literal]]) -> _Term | None:
    term: _Term = {}
    for path, literal in literals:
        if path in term:
            merged = _merge(term[path], literal)
            if merged is None:
                return None
            term[path] = merged
        else:
            term[path] = literal
    return term


def _values(values: frozenset[str]) -> list[Any]:
    ordered = sorted(values)
    if any(_is_wildcard(v) for v in ordered):
        return [{"wildcard": v} if _is_wildcard(v) else v for v in ordered]
    return list(ordered)


def _filter(literal: _Literal) -> list[Any]:
    """One field's EventBridge filter list (its elements are alternatives)."""
    if isinstance(literal, _Present):
        return [{"exists": True}]
    if isinstance(literal, _Absent):
        return [{"exists": False}, None]
    ordered = sorted(literal.values)
    if isinstance(literal, _Match):
        return _values(literal.values) + (_NOT_TEXT if literal.or_not_text else [])
    wildcard = any(_is_wildcard(v) for v in ordered)
    if wildcard:
        inner: Any = {"wildcard": ordered if len(ordered) > 1 else ordered[0]}
    else:
        inner = ordered if len(ordered) > 1 else ordered[0]
    out: list[Any] = [{"anything-but": inner}]
    if literal.absent_ok:
        out += [{"exists": False}, None]
    return out


def _nest(term: _Term) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(term):
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = _filter(term[path])
    return tree


# -- clauses ------------------------------------------------------------------------------


def _product(groups: list[_Alternatives]) -> list[_Term]:
    """The conjunction of the groups (each a disjunction), as a disjunction of terms."""
    terms: list[_Term] = []
    seen: set[str] = set()
    for choice in product(*groups):
        term = _conjoin(literal for alternative in choice for literal in alternative)
        if term is None:  # pragma: no cover - the literals built here always merge
            raise AssertionError("literals that cannot be merged")
        key = json.dumps(_nest(term), sort_keys=True)
        if key not in seen:
            seen.add(key)
            terms.append(term)
    return terms


def _components(groups: list[_Alternatives]) -> list[list[_Alternatives]]:
    """Groups that share a field, together (a field may appear once in a combination)."""
    components: list[tuple[set[Path], list[_Alternatives]]] = []
    for group in groups:
        paths = {path for alternative in group for path, _ in alternative}
        joined = [c for c in components if c[0] & paths]
        for component in joined:
            components.remove(component)
            paths |= component[0]
        components.append((paths, [g for c in joined for g in c[1]] + [group]))
    return [members for _, members in components]


def _clauses_for(groups: list[_Alternatives]) -> list[dict[str, Any]]:
    """Pattern objects whose union is the conjunction of `groups`.

    The whole product of the groups (each a disjunction) would multiply in size. Instead, each
    set of groups that share fields gets its own `$or`: under the one top-level key all its
    fields share (`userIdentity`, `requestParameters`) when that key's `$or` is free, else at
    the object's own level, for one such set; any further sets are split into one object per
    term. A set that is a single term needs no `$or` at all.
    """
    base: _Term = {}
    nested: dict[str, list[_Term]] = {}
    top: list[list[_Term]] = []
    for members in _components(groups):
        terms = _product(members)
        parents = {path[0] for term in terms for path in term}
        if len(terms) == 1:
            base.update(terms[0])
        elif len(parents) == 1 and (parent := parents.pop()) not in nested:
            nested[parent] = [{path[1:]: lit for path, lit in term.items()} for term in terms]
        else:
            top.append(terms)
    # One set keeps its `$or`, the others are split: whichever choice is the shortest.
    choices = [_split(base, nested, top[:i] + top[i + 1 :], top[i]) for i in range(len(top))]
    return min(choices, key=pattern_size) if choices else _split(base, nested, [], [])


def _split(
    base: _Term, nested: dict[str, list[_Term]], split: list[list[_Term]], own: list[_Term]
) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = []
    for choice in product(*split):
        clause = _nest({**base, **{path: lit for term in choice for path, lit in term.items()}})
        for parent, terms in nested.items():
            clause.setdefault(parent, {})["$or"] = [_nest(term) for term in terms]
        if own:
            clause["$or"] = [_nest(term) for term in own]
        clauses.append(clause)
    return clauses


# -- what the patterns say about a rule's functions -------------------------------------------

_MAGIC = re.compile(r"\*|\?|\[")


# What `str.strip()` removes: `decide` reads a function name with this whitespace around it.
WHITESPACE = tuple(c for c in map(chr, range(0x110000)) if c.isspace())
# `:function:` twice: an ARN whose region reads `function`, where `*:function:NAME` may match
# the wrong `:function:`. The `padded-*` rules deliver it with the whitespace-padded names.
TWICE = ":function:*:function:"
PADDING = (*WHITESPACE, TWICE)


def _maybe_forms(pattern: str) -> set[str]:
    """Wildcards that every functionName or functionVersion without whitespace around it
    matches when it names a function that `pattern` matches, with any qualifier (from the
    text or from `requestParameters.qualifier`). Names with whitespace around them are
    delivered by the `padded-*` rules.

    A glob's `?` and `[...]` become `*`, a superset. An ARN glob whose name part is a glob
    may match the qualified ARN with the qualifier taken from `requestParameters`: there only
    the literal start of the name part surely begins the name.
    """
    is_arn = pattern.startswith("arn:")
    name = pattern.split(":")[6] if is_arn else pattern
    if is_arn and _MAGIC.search(name):
        start = _MAGIC.split(name)[0].replace("\\", "\\\\")
        return {_join(start, "*"), _join("*:function:", start, "*")}
    wild, _ = _wildcard(name)
    return {_join(form, end) for form in (wild, f"*:function:{wild}") for end in ("", ":*")}


def _padded_groups(
    fields: Sequence[Path], chars: Sequence[str], budget: _Budget, base: Mapping[str, Any]
) -> list[list[tuple[Path, str]]]:
    """The (field, whitespace character) pairs in as few patterns as fit."""
    pairs = [(path, char) for path in fields for char in chars]
    chunks: list[list[tuple[Path, str]]] = []
    while pairs:
        size = len(pairs)
        while size > 1 and not budget.fits(_padded_pattern(base, pairs[:size])):
            size = (size + 1) // 2
        chunks.append(pairs[:size])
        pairs = pairs[size:]
    return chunks


def _padded_pattern(base: Mapping[str, Any], pairs: Sequence[tuple[Path, str]]) -> dict[str, Any]:
    by_field: dict[Path, set[str]] = {}
    for path, char in pairs:
        if char == TWICE:
            by_field.setdefault(path, set()).add(_join("*", TWICE, "*"))
        else:
            by_field.setdefault(path, set()).update({_join(char, "*"), _join("*", char)})
    group: _Alternatives = [[(path, _Match(frozenset(forms)))] for path, forms in by_field.items()]
    return _narrowed(base, [group])


@dataclass(frozen=True)
class _Sure:
    """Function name forms that surely name one function pattern of a rule (`decide` would
    match it), as wildcards: `arns` (`...:function:NAME[:QUALIFIER]`, also for
    functionVersion) and `names` (a bare `NAME[:QUALIFIER]`); `start`: the literal start of
    the pattern's name (every name it matches begins with it)."""

    start: str
    arns: frozenset[str]
    names: frozenset[str] = frozenset()


def _qualifier_suffixes(rule: Rule, notes: list[str]) -> list[str] | None:
    """What may follow a function name in a form surely of this rule: "" (unqualified) and
    ":*" when every qualifier is, else ":QUALIFIER" for each qualifier glob. None: nothing."""
    if "*" in rule.qualifiers:
        return ["", ":*"]
    suffixes = []
    for qualifier in rule.qualifiers:
        wild, exact = _wildcard(qualifier)
        if exact:
            suffixes.append(f":{wild}")
        else:
            notes.append(f"rule {rule.name!r}: qualifier {qualifier!r} is not compiled")
    return suffixes or None


def _sure_forms(rule: Rule, notes: list[str]) -> list[_Sure]:
    """The forms that surely name one of the rule's functions with one of its qualifiers.

    A `*` may only end the name part: EventBridge's `*` also matches `:`, so `a*b` would match
    `ax:yb` (function `ax`, qualifier `yb`), which the glob does not cover. Text `decide`
    cannot parse (extra `:` parts) is never judged a violation or unmonitored, so the other
    stars (before `:function:`, in a qualifier) are harmless; a text with `:function:` twice
    (an ARN whose region reads `function`), which `*:function:NAME` could match at the wrong
    place, is delivered by the `padded-*` rules.
    """
    suffixes = _qualifier_suffixes(rule, notes)
    if suffixes is None:
        return []
    out: list[_Sure] = []
    for pattern in rule.functions:
        is_arn = pattern.startswith("arn:")
        name = pattern.split(":")[6] if is_arn else pattern
        wild, exact = _wildcard(pattern)
        inner_star = "*" in name.rstrip("*")
        qualified_arn = is_arn and pattern.count(":") == 7
        if not exact or inner_star or (qualified_arn and suffixes != ["", ":*"]):
            notes.append(f"rule {rule.name!r}: function {pattern!r} is not compiled as covered")
            continue
        ends = (
            [""] if qualified_arn or (wild.endswith("*") and suffixes == ["", ":*"]) else suffixes
        )
        start = _MAGIC.split(name)[0]
        if is_arn:
            out.append(_Sure(start, frozenset(_join(wild, end) for end in ends)))
        else:
            # A bare form with a wildcard that could match the start of a full or partial ARN
            # (`a*`, `12*`, `arn:*`) would also cover other functions' ARNs: left out, those
            # texts are delivered.
            bare = (_join(wild, end) for end in ends)
            out.append(
                _Sure(
                    start,
                    frozenset(_join("*:function:", wild, end) for end in ends),
                    frozenset(
                        f for f in bare if "*" not in f or _bare_prefix_safe(f.split("*")[0])
                    ),
                )
            )
    return out


# -- what the patterns say about a rule's callers ---------------------------------------------


def _exact_wildcards(rule: Rule, globs: Iterable[str], notes: list[str]) -> frozenset[str]:
    out: set[str] = set()
    for glob in globs:
        wild, exact = _wildcard(glob)
        if exact:
            out.add(wild)
        else:
            notes.append(f"rule {rule.name!r}: principal {glob!r} is not compiled")
    return frozenset(out)


def _service_groups(entries: list[AllowEntry]) -> list[_Alternatives]:
    """ "The caller is none of these services as allowed", split on `invokedBy`: another (or
    no) service, or one of them with a source ARN or account none of its entries allows."""
    if not entries:
        return []
    services = frozenset(e.service for e in entries if e.service)
    alternatives: _Alternatives = [[(INVOKED_BY, _Differs(services, absent_ok=True))]]
    plain = {e.service for e in entries if e.service and not e.source_arn and not e.source_account}
    for service in sorted(services - plain):
        this = _Match(frozenset({service}))
        per_account: dict[str | None, set[str | None]] = {}
        for entry in entries:
            if entry.service == service:
                per_account.setdefault(entry.source_account, set()).add(entry.source_arn)
        groups: list[_Alternatives] = []
        for account, source_arns in sorted(per_account.items(), key=str):
            group: _Alternatives = []
            if None not in source_arns:
                wilds = [_wildcard(s) for s in source_arns if s]
                if all(exact for _, exact in wilds):
                    values = frozenset(w for w, _ in wilds)
                    group.append([(SOURCE_ARN, _Differs(values, absent_ok=False))])
                else:  # not expressible: allowed (here) only when the record names no source
                    group.append([(SOURCE_ARN, _Present())])
            if account:
                group.append([(SOURCE_ACCOUNT, _Differs(frozenset({account}), absent_ok=False))])
            groups.append(group)
        for term in _product(groups):
            alternatives.append([(INVOKED_BY, this), *term.items()])
    return [alternatives]


def _lasting(entry: AllowEntry) -> bool:
    """An entry that allows for good: one that expires stops allowing after synth, so the
    rule must not leave its callers out."""
    return getattr(entry, "expires", None) is None


def _caller_groups(rule: Rule, notes: list[str]) -> list[_Alternatives]:
    """ "The caller is not allowed by rule": one group (a disjunction) per kind of allow entry;
    the rule's pattern is their conjunction."""
    entries = [e for e in rule.allow if _lasting(e)]
    groups = _service_groups([e for e in entries if e.service])
    principals = [e.principal for e in entries if e.principal]
    roles = _exact_wildcards(rule, [p for p in principals if ":role/" in p], notes)
    if roles:
        groups.append(
            [
                [(IDENTITY_TYPE, _Differs(frozenset({ASSUMED_ROLE}), absent_ok=True))],
                [(ISSUER_ARN, _Differs(roles, absent_ok=True))],
            ]
        )
    others = _exact_wildcards(rule, [p for p in principals if ":role/" not in p], notes)
    if others:
        groups.append(
            [
                [(IDENTITY_TYPE, _Differs(frozenset(ARN_IDENTITY_TYPES), absent_ok=True))],
                [(IDENTITY_ARN, _Differs(others, absent_ok=True))],
            ]
        )
    accounts = frozenset(e.account for e in entries if e.account)
    if accounts:
        groups.append([[(IDENTITY_ACCOUNT, _Differs(accounts, absent_ok=True))]])
    return groups


def _function_group(forms: frozenset[str]) -> _Alternatives:
    """The function `decide` reads may be one of `forms`: it reads functionName when that is
    a non-empty string, else functionVersion when that is one, else `resources` (any)."""
    return [
        [(FUNCTION_NAME, _Match(forms))],
        [
            (FUNCTION_NAME, _Match(frozenset(), or_not_text=True)),
            (FUNCTION_VERSION, _Match(forms, or_not_text=True)),
        ],
    ]


# -- patterns -------------------------------------------------------------------------------


def combinations(node: Any) -> int:
    """How many plain patterns a pattern with (nested) `$or` stands for."""
    if isinstance(node, list):
        return max((combinations(item) for item in node), default=1)
    if not isinstance(node, Mapping):
        return 1
    count = 1
    for key, value in node.items():
        if key == "$or":
            count *= sum(combinations(item) for item in value)
        else:
            count *= combinations(value)
    return count


def pattern_size(pattern: Any) -> int:
    """Characters of the pattern as compact JSON (how EventBridge counts it)."""
    return len(json.dumps(pattern, separators=(",", ":")))


def _narrowed(base: Mapping[str, Any], groups: Sequence[_Alternatives]) -> dict[str, Any]:
    """`base` AND every group (each a disjunction)."""
    detail = dict(base["detail"])
    if groups:
        clauses = _clauses_for(list(groups))
        if len(clauses) == 1:
            detail.update(clauses[0])
        else:
            detail["$or"] = clauses
    return {**base, "detail": detail}


@dataclass
class _Budget:
    limit: int

    def size(self, pattern: dict[str, Any]) -> int:
        return pattern_size(pattern)

    def fits(self, pattern: dict[str, Any]) -> bool:
        return self.size(pattern) <= self.limit and combinations(pattern) <= MAX_OR_TERMS


def _edge_rule(
    key: str,
    description: str,
    pattern: dict[str, Any],
    budget: _Budget,
    *,
    rules: tuple[str, ...] = (),
    filtering: bool = False,
) -> EdgeRule:
    return EdgeRule(
        key,
        description,
        pattern,
        budget.size(pattern),
        combinations(pattern),
        rules,
        filtering,
    )


@dataclass(frozen=True)
class _Fitted:
    pattern: dict[str, Any]
    kept: int  # how many kinds of allowed callers it leaves out


def _fitted(
    base: Mapping[str, Any],
    budget: _Budget,
    functions: _Alternatives,
    callers: list[_Alternatives],
) -> _Fitted | None:
    """`base` AND `functions` AND as many caller groups as fit (the last ones left out
    first); None when not even the function part fits."""
    for kept in range(len(callers), -1, -1):
        pattern = _narrowed(base, [functions, *callers[:kept]])
        if budget.fits(pattern):
            return _Fitted(pattern, kept)
    return None


def _rule_for(
    rule: Rule,
    base: Mapping[str, Any],
    budget: _Budget,
    notes: list[str],
    warnings: list[str],
    *,
    split: bool = True,
) -> list[EdgeRule]:
    """ "Invokes of the rule's functions whose caller is not on its allow list": one pattern,
    or (`split`, when one pattern cannot hold every allowed caller) two that share the work --
    Invokes that name the function in functionName, and those without one (Step Functions:
    functionVersion) -- so the caller part is not written twice. Loosened until it fits:
    allow entries left out last first, then the function part, then nothing."""
    forms = frozenset(f for p in rule.functions for f in _maybe_forms(p))
    callers = _caller_groups(rule, notes)
    description = f"Invokes of allowlist rule {rule.name}'s functions by callers it does not allow"
    key = f"rule-{rule.name}"
    whole = _fitted(base, budget, _function_group(forms), callers)
    if split and (whole is None or whole.kept < len(callers)):
        by_name = _fitted(base, budget, [[(FUNCTION_NAME, _Match(forms))]], callers)
        by_version = _fitted(base, budget, [_function_group(forms)[1]], callers)
        if (
            by_name is not None
            and by_version is not None
            and min(by_name.kept, by_version.kept) > (whole.kept if whole else -1)
        ):
            if min(by_name.kept, by_version.kept) < len(callers):
                notes.append(
                    f"rule {rule.name!r}: some allowed callers do not fit in its patterns "
                    f"({budget.limit} characters): their Invokes are delivered"
                )
            return [
                _edge_rule(
                    key,
                    f"{description} (function named in functionName)",
                    by_name.pattern,
                    budget,
                    rules=(rule.name,),
                    filtering=by_name.kept > 0,
                ),
                _edge_rule(
                    f"{key}-versions",
                    f"{description} (no functionName: functionVersion)",
                    by_version.pattern,
                    budget,
                    rules=(rule.name,),
                    filtering=by_version.kept > 0,
                ),
            ]
    if whole is not None:
        if whole.kept < len(callers):
            notes.append(
                f"rule {rule.name!r}: {len(callers) - whole.kept} kind(s) of allowed callers do "
                f"not fit in its pattern ({budget.limit} characters): their Invokes are delivered"
            )
        return [
            _edge_rule(
                key,
                description,
                whole.pattern,
                budget,
                rules=(rule.name,),
                filtering=whole.kept > 0,
            )
        ]
    callers_only = _narrowed(base, callers)
    if callers and budget.fits(callers_only):
        warnings.append(
            f"edge filter: rule {rule.name!r}'s functions do not fit in its pattern: every "
            "Invoke by a caller it does not allow is delivered, of any function"
        )
        return [_edge_rule(key, description, callers_only, budget, rules=(rule.name,))]
    warnings.append(
        f"edge filter: rule {rule.name!r} does not fit in a pattern of {budget.limit} "
        "characters: every Invoke is delivered"
    )
    return [_edge_rule(key, description, dict(base), budget, rules=(rule.name,))]


# -- Invokes of functions no rule covers ------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\")


def _bare_prefix_safe(prefix: str) -> bool:
    """Whether `PREFIX*` matches, among the texts `decide` reads as a function, only bare
    names (`NAME`, `NAME:QUALIFIER`) that begin with `prefix`: not a start of `arn:` (full
    ARNs) nor digits, with or without a colon (a partial ARN begins with the 12-digit account
    and a colon)."""
    return (
        bool(prefix)
        and not "arn:".startswith(prefix)
        and not prefix.startswith("arn:")
        and not prefix.removesuffix(":").isdigit()
    )


def _elsewhere(prefix: str, items: list[_Sure], bare: bool) -> set[str]:
    """Wildcards that match every form of `items` (whose names begin with `prefix`) and no
    text that names a function whose name does not begin with `prefix` (but texts with
    `:function:` twice, which the `padded-*` rules deliver)."""
    out = {_join("*:function:", _escape(prefix), "*")}
    if bare:
        if _bare_prefix_safe(prefix):
            out.add(_join(_escape(prefix), "*"))
        else:
            out.update(form for item in items for form in item.names)
    return out


def _partitioned(
    items: list[_Sure],
    make: Any,
    budget: _Budget,
    *,
    bare: bool,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Patterns (`make(forms)`: "the field is none of `forms`") that together deliver every
    function text that no item surely names.

    One pattern listing every covered form may not fit. The names are split into partitions
    by how they begin (`svc0`, `svc1`, `t`, ...: prefixes of the items' literal starts, none
    a prefix of another), and each pattern *owns* some partitions: it lists the exact forms
    of its own partitions' items, and for every other partition a short wildcard (`svc1*`,
    `*:function:svc1*`) that matches only names of that partition. A text that names no
    covered function falls in at most one partition: the pattern that owns it does not list
    it (its exact forms are covered ones), and the others' wildcards are for other
    partitions, so it is delivered; a name in no partition is delivered by every pattern.
    A partition too big for a pattern of its own is split on the next character; one that
    cannot be split (an item's start ends there) is not compiled: its functions' Invokes are
    delivered. [] when nothing is left to leave out.
    """
    groups: dict[str, list[_Sure]] = {}
    for item in items:
        groups.setdefault(item.start[:1], []).append(item)
    if "" in groups:  # a name pattern that begins with a wildcard: one partition, all names
        groups = {"": list(items)}
    while groups:
        elsewhere = {prefix: _elsewhere(prefix, group, bare) for prefix, group in groups.items()}

        def forms(
            own: list[str],
            groups: dict[str, list[_Sure]] = groups,
            elsewhere: dict[str, set[str]] = elsewhere,
        ) -> frozenset[str]:
            out: set[str] = set()
            for prefix, group in groups.items():
                if prefix not in own:
                    out |= elsewhere[prefix]
                    continue
                for item in group:
                    out |= (item.arns | item.names) if bare else item.arns
            return frozenset(out)

        packs: list[list[str]] = []
        too_big: str | None = None
        for prefix in sorted(groups):
            if packs and budget.fits(make(forms([*packs[-1], prefix]))):
                packs[-1].append(prefix)
            elif budget.fits(make(forms([prefix]))):
                packs.append([prefix])
            else:
                too_big = prefix
                break
        if too_big is None:
            return [make(forms(pack)) for pack in packs]
        group = groups.pop(too_big)
        if any(len(item.start) == len(too_big) for item in group):
            notes.append(
                f"unmatched: the functions whose names begin with {too_big!r} do not fit in a "
                "pattern: every Invoke of them is delivered"
            )
            continue
        for item in group:
            groups.setdefault(item.start[: len(too_big) + 1], []).append(item)
    return []


def _unmatched_rules(
    config: AllowlistConfig, base: Mapping[str, Any], budget: _Budget, notes: list[str]
) -> list[EdgeRule]:
    """Invokes whose function no rule surely covers: those that name it in functionName, and
    those without a functionName (Step Functions: functionVersion, else `resources`). Each
    in as few patterns as fit; without any covered form, every Invoke."""
    items = [item for rule in config.rules for item in _sure_forms(rule, notes)]

    def by_name(forms: frozenset[str]) -> dict[str, Any]:
        return _narrowed(base, [[[(FUNCTION_NAME, _Differs(forms, absent_ok=False))]]])

    def by_version(forms: frozenset[str]) -> dict[str, Any]:
        literals: list[tuple[Path, _Literal]] = [
            (FUNCTION_NAME, _Absent()),
            (FUNCTION_VERSION, _Differs(forms, absent_ok=True)),
        ]
        return _narrowed(base, [[literals]])

    description = "Invokes of functions that no allowlist rule covers"
    names = _partitioned(items, by_name, budget, bare=True, notes=notes)
    if not names:
        if items:
            notes.append(
                "unmatched: no covered function fits in a pattern: every Invoke is delivered"
            )
        return [_edge_rule("unmatched", description, dict(base), budget)]
    versions = _partitioned(items, by_version, budget, bare=False, notes=notes) or [
        _narrowed(base, [[[(FUNCTION_NAME, _Absent())]]])
    ]
    out = []
    for index, pattern in enumerate(names, start=1):
        suffix = f"-{index}" if len(names) > 1 else ""
        part = f" (part {index} of {len(names)})" if len(names) > 1 else ""
        out.append(
            _edge_rule(
                f"unmatched{suffix}", f"{description}, named in functionName{part}", pattern, budget
            )
        )
    for index, pattern in enumerate(versions, start=1):
        suffix = f"-{index}" if len(versions) > 1 else ""
        part = f" (part {index} of {len(versions)})" if len(versions) > 1 else ""
        out.append(
            _edge_rule(
                f"unmatched-versions{suffix}",
                f"{description}, without a functionName{part}",
                pattern,
                budget,
            )
        )
    return out


def _coarse_rule(rules: list[Rule], base: Mapping[str, Any], budget: _Budget) -> EdgeRule:
    names = tuple(rule.name for rule in rules)
    forms = frozenset(f for rule in rules for p in rule.functions for f in _maybe_forms(p))
    pattern = _narrowed(base, [_function_group(forms)])
    if not budget.fits(pattern):
        pattern = dict(base)
    description = "Invokes of the functions of the allowlist rules without a rule of their own"
    return _edge_rule("coarse", description, pattern, budget, rules=names)


def compile_edge_rules(
    base: Mapping[str, Any],
    config: AllowlistConfig,
    *,
    limit: int = PATTERN_SIZE_LIMIT,
    max_rules: int = RULES_PER_BUS,
) -> EdgeRules:
    """The EventBridge rules that together deliver every Invoke of `base` that `decide` may
    judge a violation, unmonitored (with `unmatched: report`) or a failed call.

    `limit`: the pattern size quota; `max_rules`: how many rules this pipeline may put on the
    bus (at most; beyond it allowlist rules are compiled into one pattern each rather than
    two, then the remaining ones share one coarse rule). Raises EdgeFilterError when not even
    the fixed rules fit.
    """
    budget = _Budget(limit)
    detail = base.get("detail")
    if not isinstance(detail, Mapping) or "$or" in detail:
        raise EdgeFilterError("edge filter: the Invoke pattern has no detail or already uses $or")
    if not budget.fits(dict(base)):
        raise EdgeFilterError(
            f"edge filter: the Invoke pattern alone is {budget.size(dict(base))} characters, "
            f"over the pattern size setting ({limit})"
        )
    notes: list[str] = []
    warnings: list[str] = []
    fixed = [
        _edge_rule(
            "failed-invokes",
            "Invokes that failed (errorCode set): the broken-caller watch needs them",
            _narrowed(base, [[[(ERROR_CODE, _Present())]]]),
            budget,
        )
    ]
    chunks = _padded_groups((FUNCTION_NAME, FUNCTION_VERSION), PADDING, budget, base)
    for index, chunk in enumerate(chunks, start=1):
        padded = _padded_pattern(base, chunk)
        fixed.append(
            _edge_rule(
                f"padded-{index}",
                "Invokes that name the function with whitespace around it, or with "
                f":function: twice (part {index} of {len(chunks)})",
                padded if budget.fits(padded) else dict(base),
                budget,
            )
        )
    if config.defaults.unmatched == "report":
        unmatched = _unmatched_rules(config, base, budget, notes)
        if len(fixed) + len(unmatched) + 1 > max_rules:
            notes.append(
                "unmatched: its patterns are over the rules-per-bus setting: every Invoke is "
                "delivered"
            )
            unmatched = [
                _edge_rule(
                    "unmatched",
                    "Invokes of functions that no allowlist rule covers",
                    dict(base),
                    budget,
                )
            ]
        fixed += unmatched
    rules = list(config.rules)
    own = len(rules)
    if len(fixed) + own > max_rules:
        minimum = len(fixed) + 1
        if max_rules < minimum:
            raise EdgeFilterError(
                f"edge filter: the rules-per-bus setting ({max_rules}) is below the {minimum} "
                "rules the pipeline needs at least; raise it"
            )
        own = max_rules - len(fixed) - 1
        left = ", ".join(repr(rule.name) for rule in rules[own:])
        warnings.append(
            f"edge filter: {len(fixed) + len(rules)} rules are over the rules-per-bus setting "
            f"({max_rules}): allowlist rules {left} share one coarse rule that delivers every "
            "Invoke of their functions"
        )
    # Two patterns for an allowlist rule where one cannot hold all its callers, as long as
    # the rules-per-bus setting allows (the first rules first).
    room = max_rules - len(fixed) - own - (own < len(rules))
    compiled: list[EdgeRule] = []
    for rule in rules[:own]:
        rule_notes: list[str] = []
        rule_warnings: list[str] = []
        these = _rule_for(rule, base, budget, rule_notes, rule_warnings, split=room > 0)
        if len(these) > 1:
            room -= 1
        compiled += these
        notes += rule_notes
        warnings += rule_warnings
    if own < len(rules):
        compiled.append(_coarse_rule(rules[own:], base, budget))
    return EdgeRules(tuple(compiled + fixed), tuple(notes), tuple(warnings))
