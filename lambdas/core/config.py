"""The allowlist's rules beyond its model: problems worded for people, warnings, the
partition check, and the JSON form the functions ship with. Pure: no file is read here
(the YAML file is read at the edge, `cli.allowlist_file`; the shipped JSON by the functions'
runtime, `lambdas.runtime.settings`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import ValidationError

from models.allowlist import AllowlistConfig, dotted_location
from models.exceptions import ConfigError

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "Loc",
    "allowlist_from_json",
    "allowlist_notes",
    "allowlist_to_json",
    "allowlist_warnings",
    "capped_error",
    "check_partition",
    "expiry_warnings",
    "globs_overlap",
    "validation_problem",
]

Loc = tuple[str | int, ...]

_MAX_PROBLEMS = 50
_MAX_LINE = 400

_dotted = dotted_location


def validation_problem(error: Any) -> tuple[Loc, str]:
    """(where, what) of one pydantic error, worded for the person who wrote the allowlist."""
    loc: Loc = tuple(error["loc"])
    message = str(error["msg"])
    cause = (error.get("ctx") or {}).get("error")
    if cause is not None and hasattr(cause, "loc"):
        loc = (*loc, *cause.loc)
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif error["type"] == "missing":
        message = f"required key {loc[-1]!r} is missing"
    elif error["type"] == "literal_error":
        message = f"{message}; got {error.get('input')!r}"
    return loc, message


def capped_error(problems: list[str], source: str) -> ConfigError:
    """One ConfigError for `problems`, at most a screenful of them."""
    shown = [p if len(p) <= _MAX_LINE else p[:_MAX_LINE] + "..." for p in problems[:_MAX_PROBLEMS]]
    if len(problems) > _MAX_PROBLEMS:
        line = problems[_MAX_PROBLEMS][len(source) + 1 :].split(":", 1)[0]
        more = len(problems) - _MAX_PROBLEMS
        shown.append(f"{source}:{line}: {more} more problems not shown, from this line on")
    return ConfigError(shown)


def allowlist_warnings(config: AllowlistConfig) -> list[str]:
    """What is valid but most likely wrong (`FILE:LINE: field: warning`)."""
    found = config.region_warnings()
    for rule_index, rule in enumerate(config.rules):
        for index, entry in enumerate(rule.allow):
            if entry.service == "s3.amazonaws.com" and entry.source_account is None:
                found.append(
                    (
                        ("rules", rule_index, "allow", index),
                        "s3.amazonaws.com without source_account: S3 bucket ARNs carry no "
                        "account, so a bucket of the same name in another account passes too "
                        "(Security Hub Lambda.1 fails such a grant); add source_account",
                    )
                )
    return [f"{config.where(loc)}: {message}" for loc, message in found]


def globs_overlap(first: str, second: str) -> bool:
    """Can one string match both globs (`*`, `?`, `[...]`)? A character class is taken as
    any one character, so the answer errs towards "yes"."""
    a, b = _glob_tokens(first), _glob_tokens(second)

    @cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] == "*":
            return meet(i, j + 1) or (i < len(a) and meet(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        one, other = a[i], b[j]
        same = one == other or one in ("?", "[") or other in ("?", "[")
        return same and meet(i + 1, j + 1)

    return meet(0, 0)


def _glob_tokens(pattern: str) -> list[str]:
    """`*`, `?`, `[` (a whole character class) or one literal character each; a literal is
    prefixed with NUL, so that it never equals a wildcard token."""
    tokens: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "[":
            close = pattern.find("]", index + 2)
            if close != -1:
                tokens.append("[")
                index = close + 1
                continue
        tokens.append("\0" + char if char not in "*?" else char)
        index += 1
    return tokens


def _function_patterns_overlap(first: str, second: str) -> bool:
    """Can one function match both allowlist function patterns (a name or an ARN glob)?"""
    if first.startswith("arn:") and second.startswith("arn:"):
        # `arn:...:function:NAME` or `...:NAME:QUALIFIER`: compare the unqualified parts, and
        # let a qualifier on either side match any.
        return globs_overlap(_unqualified(first), _unqualified(second))
    return globs_overlap(_name_of(first), _name_of(second))


def _unqualified(pattern: str) -> str:
    return ":".join(pattern.split(":")[:7])


def _name_of(pattern: str) -> str:
    parts = pattern.split(":")
    return parts[6] if pattern.startswith("arn:") and len(parts) > 6 else pattern


def allowlist_notes(config: AllowlistConfig) -> list[str]:
    """What is valid and harmless but most likely not what was meant (`FILE:LINE: field:
    note`): a `protect` entry that matches no function any rule covers protects nothing,
    since a function no rule covers is never changed anyway."""
    found: list[tuple[Loc, str]] = []
    for index, pattern in enumerate(config.protect):
        if not any(
            _function_patterns_overlap(pattern, function)
            for rule in config.rules
            for function in rule.functions
        ):
            found.append(
                (
                    ("protect", index),
                    f"{pattern!r} matches no function that any rule covers: such a function is "
                    "never changed anyway, so this entry protects nothing (a typo, or a rule "
                    "that is missing?)",
                )
            )
    return [f"{config.where(loc)}: {message}" for loc, message in found]


# check-config and cdk synth warn about temporary exceptions that expire within this many days.
EXPIRY_WARNING_DAYS = 14


def expiry_warnings(
    config: AllowlistConfig, now: datetime, within: timedelta
) -> tuple[list[str], list[str]]:
    """(expiring, expired): a `FILE:LINE: field: text` line for each temporary exception that
    stops allowing by `now + within`, and for each that no longer allows at `now`."""
    expiring: list[str] = []
    expired: list[str] = []
    for rule_index, rule in enumerate(config.rules):
        for index, entry in enumerate(rule.allow):
            ends = entry.expires_at
            if ends is None or ends > now + within:
                continue
            who = "".join(
                f", {name} {value}"
                for name, value in (("owner", entry.owner), ("ticket", entry.ticket))
                if value
            )
            where = config.where(("rules", rule_index, "allow", index, "expires"))
            what = f"the exception for {entry.describe()} in rule {rule.name!r}"
            if now >= ends:
                expired.append(
                    f"{where}: {what} has expired: no longer allowed since "
                    f"{ends:%Y-%m-%d %H:%M} UTC{who}; remove the entry or extend expires"
                )
            else:
                days = (ends - now).total_seconds() / 86400
                expiring.append(
                    f"{where}: {what} expires in {days:.1f} days: allowed until "
                    f"{ends:%Y-%m-%d %H:%M} UTC{who}"
                )
    return expiring, expired


def check_partition(config: AllowlistConfig, partition: str) -> None:
    """Raise ConfigError for every rule that can never match in a deployment in `partition`."""
    problems = config.partition_problems(partition)
    if problems:
        raise ConfigError([f"{config.where(loc)}: {message}" for loc, message in problems])


def allowlist_to_json(config: AllowlistConfig) -> str:
    """The validated config as the JSON the deployed functions load."""
    return json.dumps(config.model_dump(mode="json"), indent=1, sort_keys=True)


def allowlist_from_json(data: bytes, source: str) -> AllowlistConfig:
    """The config the functions ship with, validated again: the same rules apply."""
    try:
        return AllowlistConfig.model_validate_json(data)
    except ValidationError as exc:
        problems = [validation_problem(e) for e in exc.errors()]
        raise ConfigError([f"{source}: {_dotted(loc)}: {what}" for loc, what in problems]) from None
