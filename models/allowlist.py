"""The allowlist (`config/allowlist.yaml`): strict, so that a bad config never reaches AWS.

Unknown keys, malformed ARNs, globs or account ids, duplicate rule names, and rules that can
never match because an earlier rule takes every call they name are errors.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from models.arns import FunctionRef
from models.expiry import Expires, expiry_instant, format_expires, parse_expires
from models.globs import glob_error, has_magic, matches
from models.regions import KNOWN_REGIONS, closest_region, partition_of_region, region_format_error

__all__ = [
    "AllowEntry",
    "AllowlistConfig",
    "Defaults",
    "Limits",
    "Mode",
    "Rule",
    "dotted_location",
    "pattern_partition",
    "region_warning",
]

Mode = Literal["enforce", "monitor"]

_ACCOUNT = re.compile(r"\d{12}\Z")
# 12 digits (`?` allowed), or a glob with `*`: "123456789012", "1234567890??", "*".
_ACCOUNT_GLOB = re.compile(r"([\d?]{12}|[\d?]*\*[\d*?]*)\Z")
_SERVICE = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com(\.cn)?\Z")
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_NAME_GLOB = re.compile(r"[A-Za-z0-9_*?\[\]!-]{1,140}\Z")
_PRINCIPAL = re.compile(r"arn:(aws[a-z-]*|\*):iam::(?P<account>[^:]+):(root|user/.+|role/.+)\Z")


def _check_glob(value: str) -> str:
    problem = glob_error(value)
    if problem:
        raise ValueError(f"bad glob {value!r}: {problem}")
    return value


def _check_iam_glob(value: str) -> str:
    """Source ARNs and principals end up in IAM ArnLike conditions, which know * and ? only."""
    _check_glob(value)
    if "[" in value or "]" in value:
        raise ValueError(f"{value!r}: only * and ? globs here ([...] has no meaning in IAM)")
    return value


def _check_account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise ValueError(
            f'account id must be 12 digits in quotes, e.g. "111122223333"; got {value!r}'
        )
    return value


def _unquoted_account(value: float) -> str:
    """An account id YAML read as a number: say what it read and what to write instead."""
    quote = 'account id must be 12 digits in quotes, e.g. "111122223333"'
    if isinstance(value, int) and value >= 0:
        if len(str(value)) == 12:
            return f'{quote}: unquoted, YAML read it as the number {value}; write "{value}"'
        octal = format(value, "o")
        if len(octal) < 12 and set(octal) <= set("01234567"):
            written = octal.zfill(12)
            return (
                f"{quote}: unquoted, YAML read it as the number {value} (with a leading 0, "
                f'YAML reads the digits as an octal number); if you wrote {written}, write "{written}"'
            )
    return f"{quote}: unquoted, YAML read it as the number {value}"


def _check_function_pattern(value: str) -> str:
    _check_glob(value)
    if value.startswith("arn:"):
        parts = value.split(":")
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            raise ValueError(
                f"bad Lambda ARN {value!r}: expected arn:aws:lambda:REGION:ACCOUNT:function:NAME"
            )
        if not _ACCOUNT_GLOB.match(parts[4]):
            raise ValueError(f"bad Lambda ARN {value!r}: account {parts[4]!r} is not 12 digits")
        _check_region(value, parts[1], parts[3])
    elif not _NAME_GLOB.match(value):
        raise ValueError(f"bad function name pattern {value!r}: use a name, a glob or an ARN")
    return value


def _check_region(arn: str, partition: str, region: str) -> None:
    """A literal region must look like one, and belong to the ARN's (literal) partition:
    otherwise the pattern can never match a function."""
    if has_magic(region):
        return
    problem = region_format_error(region)
    if problem:
        raise ValueError(f"bad Lambda ARN {arn!r}: {problem}")
    if not has_magic(partition) and region in KNOWN_REGIONS:
        home = partition_of_region(region)
        if home != partition:
            raise ValueError(
                f"bad Lambda ARN {arn!r}: region {region} is in partition {home}, not "
                f"{partition}: the pattern can never match a function"
            )


def region_warning(pattern: str) -> str | None:
    """A warning for a function ARN pattern whose region is well formed but not a known one
    (most often a typo: `us-esat-1`)."""
    if not pattern.startswith("arn:"):
        return None
    parts = pattern.split(":")
    region = parts[3] if len(parts) > 3 else ""
    if has_magic(region) or region in KNOWN_REGIONS or region_format_error(region):
        return None
    closest = closest_region(region)
    hint = f"; did you mean {closest}?" if closest else ""
    return f"unknown region {region!r} in {pattern!r}: no function there will ever match{hint}"


def pattern_partition(pattern: str) -> str | None:
    """The partition a function ARN pattern is pinned to (None: a name, or a glob there)."""
    if not pattern.startswith("arn:"):
        return None
    partition, region = pattern.split(":")[1], pattern.split(":")[3]
    if not has_magic(partition):
        return partition
    if region and not has_magic(region):
        return partition_of_region(region)
    return None


# Checked one by one, so that an error names the item's own line.
FunctionPattern = Annotated[StrictStr, AfterValidator(_check_function_pattern)]
GlobPattern = Annotated[StrictStr, AfterValidator(_check_glob)]


# `expires`: a date or an aware UTC datetime (models.expiry); written back as ISO text.
ExpiresField = Annotated[
    Expires,
    PlainValidator(parse_expires),
    PlainSerializer(format_expires, return_type=str),
]
# Who answers for an exception, where it is tracked, why it exists: one line of text each.
NoteText = Annotated[StrictStr, Field(min_length=1, max_length=300, pattern=r"^[^\r\n]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllowEntry(_Strict):
    """Exactly one of `service`, `principal` or `account`; optionally a temporary exception:
    `expires` (see models.expiry), with `owner`, `ticket` and `reason` for the people who
    review it."""

    service: StrictStr | None = None
    source_arn: StrictStr | None = None
    source_account: StrictStr | None = None
    principal: StrictStr | None = None
    account: StrictStr | None = None
    expires: ExpiresField | None = None
    owner: NoteText | None = None
    ticket: NoteText | None = None
    reason: NoteText | None = None

    @field_validator("service")
    @classmethod
    def _service(cls, value: str | None) -> str | None:
        if value is not None and not _SERVICE.match(value):
            raise ValueError(f"bad service principal {value!r}: expected e.g. s3.amazonaws.com")
        return value

    @field_validator("source_arn")
    @classmethod
    def _source_arn(cls, value: str | None) -> str | None:
        if value is not None:
            _check_iam_glob(value)
            if not value.startswith("arn:") or value.count(":") < 5:
                raise ValueError(f"bad source ARN {value!r}: expected arn:PARTITION:SERVICE:...")
        return value

    @field_validator("source_account", "account", mode="before")
    @classmethod
    def _accounts_quoted(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(_unquoted_account(value))
        return value

    @field_validator("source_account", "account")
    @classmethod
    def _accounts(cls, value: str | None) -> str | None:
        return None if value is None else _check_account(value)

    @field_validator("principal")
    @classmethod
    def _principal(cls, value: str | None) -> str | None:
        if value is not None:
            _check_iam_glob(value)
            match = _PRINCIPAL.match(value)
            if not match or not _ACCOUNT_GLOB.match(match["account"]):
                raise ValueError(
                    f"bad principal {value!r}: expected an IAM user, role or root ARN, "
                    "e.g. arn:aws:iam::111122223333:role/deployer"
                )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> AllowEntry:
        kinds = [k for k in ("service", "principal", "account") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("an allow entry needs exactly one of service, principal, account")
        if self.service is None and (self.source_arn or self.source_account):
            raise ValueError("source_arn and source_account only go with service")
        return self

    @property
    def expires_at(self) -> datetime | None:
        """The first instant (UTC) at which this entry no longer allows; None: never."""
        return None if self.expires is None else expiry_instant(self.expires)

    def in_force(self, now: datetime) -> bool:
        """Does the entry allow at `now` (an aware datetime)? Always, without `expires`."""
        at = self.expires_at
        return at is None or now < at

    def exception_note(self) -> str:
        """`expires 2027-03-31, owner payments-team, ticket SEC-1234` ("" for none of them)."""
        parts = [f"expires {format_expires(self.expires)}"] if self.expires is not None else []
        parts += [
            f"{name} {value}"
            for name, value in (("owner", self.owner), ("ticket", self.ticket))
            if value
        ]
        return ", ".join(parts)

    def describe(self) -> str:
        if self.service:
            extra = "".join(
                f" {k}={v}"
                for k, v in (
                    ("source_arn", self.source_arn),
                    ("source_account", self.source_account),
                )
                if v
            )
            return f"service {self.service}{extra}"
        if self.principal:
            return f"principal {self.principal}"
        return f"account {self.account}"


class Defaults(_Strict):
    mode: Mode = "enforce"
    unmatched: Literal["report", "ignore"] = "report"


class Limits(_Strict):
    max_remediations_per_hour: StrictInt = Field(default=20, ge=0, le=10_000)
    # IAM Access Analyzer's checks before every write (lambdas.core.proof).
    proof: Literal["required", "best-effort", "off"] = "required"
    # How long after a rewrite a denied Invoke by an allowed caller counts as `broken`.
    watch_hours: StrictInt = Field(default=24, ge=0, le=24 * 90)


class Rule(_Strict):
    name: StrictStr
    functions: list[FunctionPattern] = Field(min_length=1)
    qualifiers: list[GlobPattern] = Field(default_factory=lambda: ["*"], min_length=1)
    mode: Mode | None = None
    deny_others: StrictBool = False
    allow: list[AllowEntry] = Field(default_factory=list)
    # An allowed caller denied after a rewrite: tell people, or also undo the rewrite (once).
    on_broken: Literal["alert", "restore"] = "alert"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RULE_NAME.match(value):
            raise ValueError(f"bad rule name {value!r}: letters, digits, '_', '.', '-'")
        return value

    @field_validator("functions")
    @classmethod
    def _functions(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("the same function pattern is listed twice")
        return values

    def in_force(self, now: datetime) -> Rule:
        """This rule without the allow entries that have expired at `now` (the rule itself
        when none has): what a rewrite at `now` keeps."""
        kept = [entry for entry in self.allow if entry.in_force(now)]
        return self if len(kept) == len(self.allow) else self.model_copy(update={"allow": kept})

    def matches_function(self, ref: FunctionRef) -> bool:
        return any(_pattern_matches(p, ref) for p in self.functions) and any(
            matches(q, ref.effective_qualifier) for q in self.qualifiers
        )


def _pattern_matches(pattern: str, ref: FunctionRef) -> bool:
    if pattern.startswith("arn:"):
        return matches(pattern, ref.unqualified_arn) or matches(pattern, ref.arn)
    return matches(pattern, ref.name)


def _name_part(pattern: str) -> str:
    return pattern.split(":")[6] if pattern.startswith("arn:") else pattern


def _subsumes(earlier: str, later: str) -> bool:
    """Does glob `earlier` match every string glob `later` matches? Errs towards "no"."""
    if earlier == later or not has_magic(later):
        return matches(earlier, later) or earlier == later
    if "[" in later:
        return False
    # `later` is a glob: `earlier` must match it with its `*` empty, one and several characters.
    return all(
        matches(earlier, later.replace("*", fill).replace("?", "\x00"))
        for fill in ("", "\x00", "\x00\x01\x00")
    )


def _covers(earlier: str, later: str) -> bool:
    """Does function pattern `earlier` match every function that `later` matches?"""
    if earlier.startswith("arn:"):
        return later.startswith("arn:") and _subsumes(earlier, later)
    return _subsumes(earlier, _name_part(later))


class AllowlistConfig(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    protect: list[FunctionPattern] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    rules: list[Rule] = Field(default_factory=list)

    _rule_cache: dict[tuple[str, str], Rule | None] = PrivateAttr(default_factory=dict)
    # Where each value was read from (file, line per location): set by the YAML loader.
    _origin: tuple[str, dict[tuple[str | int, ...], int]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _rules_consistent(self) -> AllowlistConfig:
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                raise _RuleError(index, "name", f"duplicate rule name {rule.name!r}")
            seen[rule.name] = index
        for index, rule in enumerate(self.rules):
            for earlier_index, earlier in enumerate(self.rules[:index]):
                # The same pattern may be in two rules for different aliases or versions;
                # not when the earlier rule already takes a qualifier the later one names.
                taken = [
                    q for q in rule.qualifiers if any(_subsumes(e, q) for e in earlier.qualifiers)
                ]
                for pattern in rule.functions:
                    if pattern in earlier.functions and taken:
                        which = "" if taken == ["*"] else f" with qualifier {taken[0]!r}"
                        raise _RuleError(
                            index,
                            "functions",
                            f"pattern {pattern!r} is also in rule {earlier.name!r} "
                            f"(rules[{earlier_index}]); the first rule would always win{which}",
                        )
                if _shadows(earlier, rule):
                    raise _RuleError(
                        index,
                        "functions",
                        f"rule {rule.name!r} never applies: rule {earlier.name!r} "
                        f"(rules[{earlier_index}]) comes first and matches all it names",
                    )
        return self

    def rule_for(self, ref: FunctionRef) -> Rule | None:
        """The first rule whose functions and qualifiers match `ref`."""
        key = (ref.unqualified_arn, ref.effective_qualifier)
        cache = self._rule_cache
        if key not in cache:
            if len(cache) > 50_000:
                cache.clear()
            cache[key] = next((r for r in self.rules if r.matches_function(ref)), None)
        return cache[key]

    @cached_property
    def expiry_instants(self) -> tuple[datetime, ...]:
        """Every instant at which an allow entry stops allowing, sorted: between two of them
        every decision under this allowlist stays the same. Read on every decision, so it is
        kept in the instance's own dict (a private attribute costs a slower lookup)."""
        return tuple(
            sorted(
                {
                    entry.expires_at
                    for rule in self.rules
                    for entry in rule.allow
                    if entry.expires_at is not None
                }
            )
        )

    def is_protected(self, ref: FunctionRef) -> str | None:
        """The `protect` pattern that covers `ref`, if any."""
        return next((p for p in self.protect if _pattern_matches(p, ref)), None)

    def mode_of(self, rule: Rule) -> Mode:
        return rule.mode or self.defaults.mode

    def __eq__(self, other: object) -> bool:
        """Equal settings; where they were read from, and caches, do not count."""
        if not isinstance(other, AllowlistConfig):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = BaseModel.__hash__

    def set_origin(self, source: str, lines: dict[tuple[str | int, ...], int]) -> None:
        self._origin = (source, lines)

    def where(self, loc: tuple[str | int, ...]) -> str:
        """`FILE:LINE: field` for a location in this allowlist (as far as it is known)."""
        dotted = dotted_location(loc)
        if self._origin is None:
            return dotted
        source, lines = self._origin
        line = next((lines[loc[:end]] for end in range(len(loc), -1, -1) if loc[:end] in lines), 1)
        return f"{source}:{line}: {dotted}"

    def region_warnings(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Function ARN patterns whose region is not a known one (a typo, most often)."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        for index, pattern in enumerate(self.protect):
            if warning := region_warning(pattern):
                found.append((("protect", index), warning))
        for rule_index, rule in enumerate(self.rules):
            for index, pattern in enumerate(rule.functions):
                if warning := region_warning(pattern):
                    found.append((("rules", rule_index, "functions", index), warning))
        return found

    def partition_problems(self, partition: str) -> list[tuple[tuple[str | int, ...], str]]:
        """Rules that can never match a function of a deployment in `partition`."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        for index, rule in enumerate(self.rules):
            pinned = {pattern_partition(p) for p in rule.functions}
            if None not in pinned and partition not in pinned:
                found.append(
                    (
                        ("rules", index, "functions"),
                        f"rule {rule.name!r} can never match a function of this deployment "
                        f"(partition {partition}): its functions are all in "
                        f"{', '.join(sorted(str(p) for p in pinned))}",
                    )
                )
        return found


def dotted_location(loc: tuple[str | int, ...]) -> str:
    """`("rules", 0, "allow", 1, "account")` -> `rules[0].allow[1].account`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _shadows(earlier: Rule, later: Rule) -> bool:
    functions = all(any(_covers(e, p) for e in earlier.functions) for p in later.functions)
    qualifiers = all(any(_subsumes(e, q) for e in earlier.qualifiers) for q in later.qualifiers)
    return functions and qualifiers


class _RuleError(ValueError):
    """A problem in one rule; carries where it is so the loader can name the line."""

    def __init__(self, index: int, field: str, message: str) -> None:
        self.loc: tuple[str | int, ...] = ("rules", index, field)
        super().__init__(message)
