"""Edge filtering: the allowlist compiled into the EventBridge rule's event pattern.

An Invoke by a caller that the allowlist allows for the invoked function needs no judging, so
the rule can drop it before the validator runs (and before it costs a Lambda request and log
lines). The compiled pattern is the plain pattern AND one `$or` of "deliver" clauses:

- `C0`: `decide` would read the function from `requestParameters.functionName`, and it is
  none of the forms that surely name a function of a compiled rule; or, without a
  functionName (Step Functions), from `additionalEventData.functionVersion`, likewise;
- `D_i`, for each rule: the function name (either field) could be one of rule *i*'s AND the
  caller is none of rule *i*'s allowed callers that the pattern can express exactly. "None
  of" is a conjunction of negations; a negation that spans fields (the service, its source
  ARN, its source account) is a disjunction: groups that share fields get one `$or` (at the
  clause, or under `userIdentity` / `requestParameters`), further ones split the clause, and
  conditions on one field merge into one `anything-but` list.

An event is dropped only when it is in no clause: its function name surely belongs to a
compiled rule, and for every rule whose functions it could name, the caller is one that rule
allows. The rule `decide` picks (the first that matches) is among those, so a dropped Invoke
is one `decide` judges `allowed`, or no violation for another reason (a failed call, an
unparsable name). What the pattern language cannot say exactly (`?` and `[...]` globs, callers
known only from derived fields) is delivered, never guessed: what is dropped is
under-approximated, what is delivered over-approximated. Records CloudTrail never writes
(a functionName that is a JSON array) are outside this argument.

Operators used, all documented for EventBridge event buses: `$or` (nested), `wildcard`,
`anything-but` with a list and with `wildcard`, `exists`, and `null`. A pattern is limited to
2048 characters by default (an adjustable quota) and to 1000 `$or` combinations: when the
compiled one does not fit, less is compiled (see `edge_filtered_pattern`), down to the plain
pattern, with a warning.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
    "EdgeFilter",
    "edge_filtered_pattern",
    "pattern_size",
]

PATTERN_SIZE_LIMIT = 2048  # EventBridge's default limit on an event pattern's length
MAX_OR_TERMS = 1000  # EventBridge's limit on the combinations a `$or` pattern expands to

# The record's fields and identity types, as `lambdas.core.record` (the reader `decide` uses)
# names them: the pattern must read what `decide` reads.
Path = FieldPath


@dataclass(frozen=True)
class EdgeFilter:
    """The pattern for the rule, and what the compiler did."""

    pattern: dict[str, Any]
    size: int
    filtered_rules: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    warning: str | None = None

    @property
    def filtering(self) -> bool:
        return bool(self.filtered_rules)


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
    """The field matches one of `values` (wildcards)."""

    values: frozenset[str]


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
    """The field is absent or null."""


_Literal = _Match | _Differs | _Present | _Absent
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
        return _values(literal.values)
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


# -- rules ----------------------------------------------------------------------------------


@dataclass
class _RuleForms:
    """What the pattern can say about one rule's functions and callers.

    `functionName` and `functionVersion` name a function as `NAME`, `NAME:QUALIFIER`, or an
    ARN or partial ARN (`...:function:NAME[:QUALIFIER]`); `decide` strips whitespace first.
    - `sure_*`: forms that surely name a function of this rule (empty: not compiled);
    - `loose_*`: a shorter superset of those (a name that starts like one of the rule's);
    - `maybe_*`: forms that every name of one of its functions matches, whitespace included,
      as long as it also matches a `sure_*` or `loose_*` form of some rule.
    `*_names` are the bare-name forms, `*_arns` those with a `:` before the name; no form in
    `sure_*`/`loose_*` matches a bare name with leading whitespace (`maybe_*` would miss it).
    """

    sure_arns: set[str] = field(default_factory=set)
    sure_names: set[str] = field(default_factory=set)
    loose_arns: set[str] = field(default_factory=set)
    loose_names: set[str] = field(default_factory=set)
    maybe_arns: set[str] = field(default_factory=set)
    maybe_names: set[str] = field(default_factory=set)
    caller_groups: list[_Alternatives] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def compiled(self) -> bool:
        return bool(self.sure_arns)

    def drop(self) -> None:
        """Compile nothing but `maybe_*`: every Invoke that may be of this rule is delivered."""
        for forms in (self.sure_arns, self.sure_names, self.loose_arns, self.loose_names):
            forms.clear()
        self.caller_groups.clear()

    def sure(self, level: _Level) -> set[str]:
        if level.names == "loose":
            return self.loose_arns | self.loose_names
        return self.sure_arns | self.sure_names if level.names == "names" else self.sure_arns

    def sure_versions(self, level: _Level) -> set[str]:
        return self.loose_arns if level.names == "loose" else self.sure_arns

    def maybe(self, level: _Level) -> set[str]:
        return self.maybe_arns if level.names == "arns" else self.maybe_arns | self.maybe_names


@dataclass(frozen=True)
class _Level:
    """How much is compiled: functionVersion or not; which function name forms count as sure
    ("names": exact ARN and bare-name forms, "arns": exact ARN forms, "loose": prefixes)."""

    versions: bool
    names: str


LEVELS = tuple(_Level(v, n) for v in (True, False) for n in ("names", "arns", "loose"))


def _qualifier_suffixes(rule: Rule, forms: _RuleForms) -> list[str] | None:
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
            forms.notes.append(f"rule {rule.name!r}: qualifier {qualifier!r} is not compiled")
    return suffixes or None


def _function_forms(rule: Rule, forms: _RuleForms) -> None:
    suffixes = _qualifier_suffixes(rule, forms)
    for pattern in rule.functions:
        is_arn = pattern.startswith("arn:")
        name, _ = _wildcard(pattern.split(":")[6] if is_arn else pattern)
        starred = name.startswith("*")
        forms.maybe_arns.add(_join("*", name, "*") if starred else _join("*:", name, "*"))
        if not starred:
            forms.maybe_names.add(_join(name, "*"))
        wild, exact = _wildcard(pattern)
        if suffixes is None:
            continue
        qualified_arn = pattern.count(":") == 7
        if not exact or (qualified_arn and suffixes != ["", ":*"]):
            forms.notes.append(f"rule {rule.name!r}: function {pattern!r} is not compiled")
            continue
        # `NAME*` also matches `NAME*:QUALIFIER`: the qualified form is then not needed.
        ends = (
            [""] if qualified_arn or (wild.endswith("*") and suffixes == ["", ":*"]) else suffixes
        )
        if is_arn:
            forms.sure_arns.update(_join(wild, end) for end in ends)
            forms.loose_arns.add(_join(wild, "*"))
        else:
            forms.sure_arns.update(_join("*:function:", wild, end) for end in ends)
            forms.loose_arns.add(_join("*:function:", wild, "*"))
            if not starred:
                forms.sure_names.update(_join(wild, end) for end in ends)
                forms.loose_names.add(_join(wild, "*"))


def _exact_wildcards(rule: Rule, globs: Iterable[str], forms: _RuleForms) -> frozenset[str]:
    out: set[str] = set()
    for glob in globs:
        wild, exact = _wildcard(glob)
        if exact:
            out.add(wild)
        else:
            forms.notes.append(f"rule {rule.name!r}: principal {glob!r} is not compiled")
    return frozenset(out)


def _service_groups(entries: list[AllowEntry]) -> list[list[list[tuple[Path, _Literal]]]]:
    """Each group: the caller is NOT this allowed kind, as alternatives of literal lists."""
    groups: list[list[list[tuple[Path, _Literal]]]] = []
    plain = frozenset(
        e.service for e in entries if e.service and not e.source_arn and not e.source_account
    )
    if plain:
        groups.append([[(INVOKED_BY, _Differs(plain, absent_ok=True))]])
    sourced: dict[tuple[str, str | None], set[str | None]] = {}
    for entry in entries:
        if (
            entry.service
            and entry.service not in plain
            and (entry.source_arn or entry.source_account)
        ):
            sourced.setdefault((entry.service, entry.source_account), set()).add(entry.source_arn)
    for (service, account), source_arns in sorted(sourced.items(), key=str):
        alternatives: list[list[tuple[Path, _Literal]]] = [
            [(INVOKED_BY, _Differs(frozenset({service}), absent_ok=True))]
        ]
        if None not in source_arns:
            wilds = [_wildcard(s) for s in source_arns if s]
            if all(exact for _, exact in wilds):
                values = frozenset(w for w, _ in wilds)
                alternatives.append([(SOURCE_ARN, _Differs(values, absent_ok=False))])
            else:  # not expressible: allowed (here) only when the record names no source ARN
                alternatives.append([(SOURCE_ARN, _Present())])
        if account:
            alternatives.append([(SOURCE_ACCOUNT, _Differs(frozenset({account}), absent_ok=False))])
        groups.append(alternatives)
    return groups


def _caller_groups(rule: Rule, forms: _RuleForms) -> None:
    entries = list(rule.allow)
    forms.caller_groups.extend(_service_groups([e for e in entries if e.service]))
    principals = [e.principal for e in entries if e.principal]
    roles = _exact_wildcards(rule, [p for p in principals if ":role/" in p], forms)
    if roles:
        forms.caller_groups.append(
            [
                [(IDENTITY_TYPE, _Differs(frozenset({ASSUMED_ROLE}), absent_ok=True))],
                [(ISSUER_ARN, _Differs(roles, absent_ok=True))],
            ]
        )
    others = _exact_wildcards(rule, [p for p in principals if ":role/" not in p], forms)
    if others:
        forms.caller_groups.append(
            [
                [(IDENTITY_TYPE, _Differs(frozenset(ARN_IDENTITY_TYPES), absent_ok=True))],
                [(IDENTITY_ARN, _Differs(others, absent_ok=True))],
            ]
        )
    accounts = frozenset(e.account for e in entries if e.account)
    if accounts:
        forms.caller_groups.append([[(IDENTITY_ACCOUNT, _Differs(accounts, absent_ok=True))]])


def _rule_forms(rule: Rule) -> _RuleForms:
    forms = _RuleForms()
    _function_forms(rule, forms)
    if forms.compiled:
        _caller_groups(rule, forms)
        if not forms.caller_groups:
            forms.drop()  # nobody is allowed: nothing to filter
    return forms


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


def _deliver_clauses(forms: _RuleForms, level: _Level) -> list[dict[str, Any]]:
    """The function could be the rule's and the caller is none that the rule allows."""
    names: _Alternatives = [[(FUNCTION_NAME, _Match(frozenset(forms.maybe(level))))]]
    if level.versions:
        names.append([(FUNCTION_VERSION, _Match(frozenset(forms.maybe_arns)))])
    if not forms.compiled:  # whatever may be its function is delivered
        return [_nest(dict(name)) for name in names]
    return _clauses_for([names, *forms.caller_groups])


# -- the pattern ----------------------------------------------------------------------------


def _combinations(node: Any) -> int:
    """How many plain patterns a pattern with (nested) `$or` stands for."""
    if not isinstance(node, Mapping):
        return 1
    count = 1
    for key, value in node.items():
        if key == "$or":
            count *= sum(_combinations(item) for item in value)
        else:
            count *= _combinations(value)
    return count


def pattern_size(pattern: Any) -> int:
    """Characters of the pattern as compact JSON (how EventBridge counts it)."""
    return len(json.dumps(pattern, separators=(",", ":")))


def edge_filtered_pattern(
    base: Mapping[str, Any],
    config: AllowlistConfig,
    *,
    limit: int = PATTERN_SIZE_LIMIT,
    size_allowance: int = 0,
) -> EdgeFilter:
    """`base` (the plain pattern) narrowed so that Invokes by allowed callers are not delivered.

    When the result does not fit EventBridge's limits, less is compiled, in this order, until
    it fits: functionVersion (Invokes without a functionName are then all delivered), then
    whole rules, the largest first. A rule left out is named in the warning; with none left,
    the plain pattern is returned with a warning. `size_allowance`: characters to add to the
    measured size, for values that are still placeholders (CDK tokens) when it is built.
    """
    plain = dict(base)
    plain_size = pattern_size(plain) + size_allowance
    detail = base.get("detail")
    if not isinstance(detail, Mapping) or "$or" in detail:
        problem = "edge filter: the plain pattern has no detail object or already uses $or"
        return EdgeFilter(plain, plain_size, warning=problem)
    rules = [(rule.name, _rule_forms(rule)) for rule in config.rules]
    notes = [note for _, forms in rules for note in forms.notes]
    left_out: list[str] = []
    budget = limit - size_allowance
    while any(forms.compiled for _, forms in rules):
        found = next(
            (
                (level, pattern)
                for level in LEVELS
                if _fits(pattern := _pattern(plain, detail, rules, level), budget)
            ),
            None,
        )
        if found is not None:
            level, pattern = found
            notes.extend(_level_notes(level))
            warning = None
            if left_out:
                warning = (
                    f"edge filter: rules {', '.join(left_out)} do not fit in the pattern "
                    f"({limit} characters): every Invoke of their functions is delivered"
                )
            filtered = tuple(name for name, forms in rules if forms.compiled)
            size = pattern_size(pattern) + size_allowance
            return EdgeFilter(pattern, size, filtered, tuple(notes), warning)
        name, dropped = _rule_to_drop(plain, detail, rules, budget)
        dropped.drop()
        left_out.append(repr(name))
    warning = None
    if left_out:
        warning = (
            f"edge filter: the compiled pattern does not fit in {limit} characters; using the "
            "plain pattern: every Invoke reaches the validator, which still judges it"
        )
    return EdgeFilter(plain, plain_size, notes=tuple(notes), warning=warning)


def _fits(pattern: dict[str, Any], budget: int) -> bool:
    return pattern_size(pattern) <= budget and _combinations(pattern) <= MAX_OR_TERMS


def _pattern(
    plain: dict[str, Any],
    detail: Mapping[str, Any],
    rules: list[tuple[str, _RuleForms]],
    level: _Level,
) -> dict[str, Any]:
    """The plain pattern AND the `$or` of the deliver clauses (the plain one: none compiled)."""
    sure = frozenset(form for _, forms in rules for form in forms.sure(level))
    if not sure:
        return plain
    absent: _Term = {FUNCTION_NAME: _Absent()}
    if level.versions:
        versions = frozenset(form for _, forms in rules for form in forms.sure_versions(level))
        absent[FUNCTION_VERSION] = _Differs(versions, absent_ok=True)
    clauses = [
        # decide reads the function from functionName, which no compiled rule surely has,
        _nest({FUNCTION_NAME: _Differs(sure, absent_ok=False)}),
        # or, without a functionName (Step Functions), from functionVersion (or resources).
        _nest(absent),
    ]
    delivers = [clause for _, forms in rules for clause in _deliver_clauses(forms, level)]
    return {**plain, "detail": {**detail, "$or": clauses + _merge_names(delivers)}}


def _name_field(node: Any) -> tuple[str, str] | None:
    """The (parent, key) of a clause part that only names the function, else None."""
    if isinstance(node, dict) and len(node) == 1:
        for parent, key in (FUNCTION_NAME, FUNCTION_VERSION):
            inner = node.get(parent)
            if isinstance(inner, dict) and list(inner) == [key]:
                return parent, key
    return None


def _merge_names(clauses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(A and X) or (B and X) as (A or B) and X, for the function names A, B of clauses that
    say the same about the caller X (rules that allow the same callers)."""
    groups: dict[str, tuple[dict[str, Any], dict[tuple[str, str], list[Any]], bool]] = {}
    for clause in clauses:
        split = _split_names(clause)
        if split is None:
            groups[json.dumps(clause, sort_keys=True)] = (clause, {}, False)
            continue
        rest, names, inline = split
        signature = json.dumps([inline, sorted(names), rest], sort_keys=True)
        _, merged, _ = groups.setdefault(signature, (rest, {}, inline))
        for name_field, values in names.items():
            known = merged.setdefault(name_field, [])
            known.extend(v for v in values if v not in known)
    out = []
    for rest, names, inline in groups.values():
        parts = [
            {parent: {key: sorted(values, key=json.dumps)}}
            for (parent, key), values in sorted(names.items())
        ]
        if not parts:
            out.append(rest)
        elif inline:
            ((parent, inner),) = parts[0].items()
            out.append({**rest, parent: {**rest.get(parent, {}), **inner}})
        else:
            out.append({**rest, "$or": parts})
    return out


def _split_names(
    clause: dict[str, Any],
) -> tuple[dict[str, Any], dict[tuple[str, str], list[Any]], bool] | None:
    """A clause as (the rest, its function name fields and values, whether the one name field
    is inline rather than in its `$or`), or None when its names are not separable."""
    alternatives = clause.get("$or")
    if alternatives:
        fields = [_name_field(a) for a in alternatives]
        if not all(fields) or len(set(fields)) != len(fields):
            return None
        names = {f: a[f[0]][f[1]] for f, a in zip(fields, alternatives, strict=True) if f}
        return {k: v for k, v in clause.items() if k != "$or"}, names, False
    inline = [
        (parent, key)
        for parent, key in (FUNCTION_NAME, FUNCTION_VERSION)
        if isinstance(clause.get(parent), dict) and key in clause[parent]
    ]
    if len(inline) != 1:
        return None
    parent, key = inline[0]
    inner = {k: v for k, v in clause[parent].items() if k != key}
    rest = {k: v for k, v in clause.items() if k != parent} | ({parent: inner} if inner else {})
    return rest, {(parent, key): clause[parent][key]}, True


def _rule_to_drop(
    plain: dict[str, Any],
    detail: Mapping[str, Any],
    rules: list[tuple[str, _RuleForms]],
    budget: int,
) -> tuple[str, _RuleForms]:
    """The compiled rule to leave out: the last one (in the file's order) whose absence makes
    the pattern fit, so that as many rules as possible stay, else the last one."""
    lowest = LEVELS[-1]
    compiled = [(name, forms) for name, forms in rules if forms.compiled]

    def fits_without(forms: _RuleForms) -> bool:
        stub = _RuleForms(maybe_arns=forms.maybe_arns, maybe_names=forms.maybe_names)
        rest = [(n, stub if f is forms else f) for n, f in rules]
        return _fits(_pattern(plain, detail, rest, lowest), budget)

    enough = [item for item in compiled if fits_without(item[1])]
    return enough[-1] if enough else compiled[-1]


def _level_notes(level: _Level) -> list[str]:
    notes = []
    if not level.versions:
        notes.append(
            "functionVersion is not compiled (pattern size): Invokes without a functionName "
            "(Step Functions) are delivered"
        )
    if level.names == "arns":
        notes.append(
            "bare function names are not compiled (pattern size): Invokes that name the "
            "function without an ARN are delivered"
        )
    elif level.names == "loose":
        notes.append(
            "function names are compiled as prefixes (pattern size): an Invoke of a function no "
            "rule covers, whose name starts like a compiled rule's and whose caller that rule "
            "allows, is dropped rather than reported unmonitored"
        )
    return notes
