"""Learn an allowlist from observed traffic: every caller seen invoking a function is allowed.

The safe way to adopt invoke-audit: learn, review, deploy in `monitor`, then `enforce`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lambdas.core.guard import is_own
from lambdas.core.record import (
    INVOKE,
    LAMBDA_SOURCE,
    Caller,
    base_event_name,
    resolve_caller,
    resolve_function,
)
from models.allowlist import AllowEntry, AllowlistConfig
from models.cloudtrail import CloudTrailRecordModel
from models.exceptions import InputError
from models.names import DEFAULT_PREFIX

__all__ = ["Observations", "learned_config", "render_yaml"]

EntryKey = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Observations:
    """Who invoked which function, how often."""

    callers: dict[str, Counter[EntryKey]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, raw: Any, own_prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(raw, dict) or raw.get("eventSource") != LAMBDA_SOURCE:
            return
        try:
            record = CloudTrailRecordModel.model_validate(raw)
        except ValidationError:
            self.skipped["unreadable record"] += 1
            return
        if base_event_name(record.eventName or "") != INVOKE:
            return
        if record.errorCode:
            self.skipped["failed call"] += 1
            return
        try:
            ref = resolve_function(record)
        except InputError:
            self.skipped["function unknown"] += 1
            return
        if is_own(ref, own_prefix) or record.userIdentity is None:
            self.skipped["own function" if record.userIdentity else "caller unknown"] += 1
            return
        entry = _entry_for(resolve_caller(record.userIdentity, record.requestParameters or {}))
        if entry is None:
            self.skipped["caller unknown"] += 1
            return
        self.callers.setdefault(ref.unqualified_arn, Counter())[entry] += 1

    def add_all(self, records: Iterable[Any], own_prefix: str = DEFAULT_PREFIX) -> None:
        for raw in records:
            self.add(raw, own_prefix)


def _valid(fields: dict[str, str]) -> bool:
    try:
        AllowEntry.model_validate(fields)
    except ValidationError:
        return False
    return True


def _entry_for(caller: Caller) -> EntryKey | None:
    """The narrowest allow entry that covers this caller."""
    if caller.service:
        fields = {"service": caller.service}
        if caller.source_arn:
            fields["source_arn"] = caller.source_arn
        if caller.source_account:
            fields["source_account"] = caller.source_account
        if _valid(fields):
            return tuple(sorted(fields.items()))
    if caller.principal and _valid({"principal": caller.principal}):
        return (("principal", caller.principal),)
    if caller.account and _valid({"account": caller.account}):
        return (("account", caller.account),)
    return None


def _rule_name(ref_arn: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", ref_arn.split(":function:")[-1])[:100] or "function"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name


def learned_config(observations: Observations, *, min_count: int = 1) -> dict[str, Any]:
    """The allowlist (as data) that allows every caller seen at least `min_count` times."""
    rules: list[dict[str, Any]] = []
    taken: set[str] = set()
    for arn in sorted(observations.callers):
        seen = observations.callers[arn]
        allow = [dict(key) for key, count in sorted(seen.items()) if count >= min_count]
        rules.append(
            {"name": _rule_name(arn, taken), "functions": [arn], "mode": "monitor", "allow": allow}
        )
    data = {
        "version": 1,
        "defaults": {"mode": "monitor", "unmatched": "report"},
        "protect": [f"{DEFAULT_PREFIX}*"],
        "rules": rules,
    }
    AllowlistConfig.model_validate(data)  # what learn writes must pass check-config
    return data


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_yaml(observations: Observations, *, min_count: int = 1, sources: int = 0) -> str:
    """The learned allowlist as commented YAML, for a person to review."""
    data = learned_config(observations, min_count=min_count)
    total = sum(sum(c.values()) for c in observations.callers.values())
    lines = [
        f"# Learned by `invoke-audit learn` from {total} Invoke records in {sources} files.",
        "# Review it, deploy it in monitor mode, watch for violations, then switch to enforce.",
    ]
    if observations.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(observations.skipped.items()))
        lines.append(f"# Not learned from: {skipped}.")
    lines += [
        "version: 1",
        "defaults:",
        "  mode: monitor",
        "  unmatched: report",
        "protect:",
        f'  - "{DEFAULT_PREFIX}*"',
        "rules:" if data["rules"] else "rules: []",
    ]
    for rule in data["rules"]:
        arn = rule["functions"][0]
        seen = observations.callers[arn]
        lines += [
            f"  # {arn}: {sum(seen.values())} invokes by {len(seen)} callers",
            f"  - name: {_quote(rule['name'])}",
            f"    functions: [{_quote(arn)}]",
            "    mode: monitor",
            "    allow:" if rule["allow"] else "    allow: []",
        ]
        for key, count in sorted(seen.items()):
            fields = dict(key)
            if count < min_count:
                described = ", ".join(f"{k}={v}" for k, v in key)
                lines.append(
                    f"      # left out (seen {count}x, under --min-count {min_count}): {described}"
                )
                continue
            first, *rest = list(fields.items())
            lines.append(f"      - {first[0]}: {_quote(first[1])}   # seen {count}x")
            lines += [f"        {k}: {_quote(v)}" for k, v in rest]
    return "\n".join(lines) + "\n"
