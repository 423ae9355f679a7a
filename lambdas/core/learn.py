"""Learn an allowlist from observed traffic: every caller seen invoking a function is allowed.

The safe way to adopt invoke-audit: learn, review, deploy in `monitor`, then `enforce`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lambdas.core.guard import is_own
from lambdas.core.record import (
    INVOCATIONS,
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
_ACCOUNT = re.compile(r"\d{12}\Z")


@dataclass(slots=True)
class Observations:
    """Who invoked which function, how often."""

    callers: dict[str, Counter[EntryKey]] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    records: int = 0  # every record read, of any service
    invokes: int = 0  # Lambda Invoke data events among them
    # Service entries learned without a source account (the records named none).
    unpinned: set[EntryKey] = field(default_factory=set)

    def add(self, raw: Any, own_functions: AbstractSet[str] = frozenset(), count: int = 1) -> None:
        """One record; `count`: how many records it stands for (an aggregated tuple)."""
        self.records += count
        if not isinstance(raw, dict) or raw.get("eventSource") != LAMBDA_SOURCE:
            return
        if base_event_name(str(raw.get("eventName") or "")) not in INVOCATIONS:
            return
        self.invokes += count
        try:
            record = CloudTrailRecordModel.model_validate(raw)
        except ValidationError:
            self.skipped["unreadable record"] += count
            return
        if record.errorCode:
            self.skipped["failed call"] += count
            return
        try:
            ref = resolve_function(record)
        except InputError:
            self.skipped["function unknown"] += count
            return
        if is_own(ref, own_functions) or record.userIdentity is None:
            self.skipped["own function" if record.userIdentity else "caller unknown"] += count
            return
        entry = _entry_for(resolve_caller(record.userIdentity, record.requestParameters or {}))
        if entry is None:
            self.skipped["caller unknown"] += count
            return
        fields = dict(entry)
        if "service" in fields and "source_account" not in fields:
            self.unpinned.add(entry)
        self.callers.setdefault(ref.unqualified_arn, Counter())[entry] += count

    def add_all(
        self, records: Iterable[Any], own_functions: AbstractSet[str] = frozenset()
    ) -> None:
        for raw in records:
            self.add(raw, own_functions)


def _valid(fields: dict[str, str]) -> bool:
    try:
        AllowEntry.model_validate(fields)
    except ValidationError:
        return False
    return True


def _account_in(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    account = parts[4] if len(parts) > 5 else ""
    return account if _ACCOUNT.match(account) else None


def _entry_for(caller: Caller) -> EntryKey | None:
    """The narrowest allow entry that covers this caller.

    A service that calls through a role (Step Functions, and any assumed-role session that
    names `invokedBy`) is learned as that role: a `service` entry would allow the service on
    behalf of anyone, in any account. Other service calls are learned with their source and
    the source account (from `sourceAccount`, else the source ARN or the identity's account).
    """
    if caller.service and caller.principal and _valid({"principal": caller.principal}):
        return (("principal", caller.principal),)
    if caller.service:
        fields = {"service": caller.service}
        if caller.source_arn:
            fields["source_arn"] = caller.source_arn
        source_account = caller.source_account or _account_in(caller.source_arn) or caller.account
        if source_account:
            fields["source_account"] = source_account
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
        # No mode on the rules: `defaults.mode` decides, so that one edit switches to enforce.
        rules.append({"name": _rule_name(arn, taken), "functions": [arn], "allow": allow})
    data = {
        "version": 1,
        "defaults": {"mode": "monitor", "unmatched": "report"},
        "protect": [f"{DEFAULT_PREFIX}*"],
        "rules": rules,
    }
    AllowlistConfig.model_validate(data)  # what learn writes must pass check-config
    return data


# Under every learned entry, for the reviewer: the fields of a temporary exception, commented
# out (nothing learned expires). Their placeholders fail check-config until filled in.
EXCEPTION_FIELDS = [
    "        # expires: YYYY-MM-DD   # a temporary exception? allowed through that day (UTC)",
    '        # owner: ""',
    '        # ticket: ""',
    '        # reason: ""',
]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_yaml(
    observations: Observations, *, min_count: int = 1, sources: int = 0, origin: str = ""
) -> str:
    """The learned allowlist as commented YAML, for a person to review."""
    data = learned_config(observations, min_count=min_count)
    total = sum(sum(c.values()) for c in observations.callers.values())
    where = origin or f"{sources} {'file' if sources == 1 else 'files'}"
    lines = [
        f"# Learned by `invoke-audit learn` from {total} Invoke "
        f"{'record' if total == 1 else 'records'} in {where}.",
        "# Review it, deploy it (monitor mode: nothing is changed), watch for violations,",
        "# then switch to enforce by changing defaults.mode below to enforce, and deploy again.",
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
            note = ""
            if key in observations.unpinned:
                note = ": no source account in the records, narrow it by hand"
            lines.append(f"      - {first[0]}: {_quote(first[1])}   # seen {count}x{note}")
            lines += [f"        {k}: {_quote(v)}" for k, v in rest]
            lines += EXCEPTION_FIELDS
    return "\n".join(lines) + "\n"
