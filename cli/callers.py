"""Who called what: scan rows (one judged record each) folded into one entry per function,
caller and verdict, with how often and when. The OCSF findings and the HTML report are both
built from these entries; the verdicts themselves come from the decision core, never from here.

Memory grows with the distinct (function, caller, verdict) triples, not with the records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallerGroup", "CallerStats"]

GroupKey = tuple[str | None, str | None, str]


@dataclass(slots=True)
class CallerGroup:
    """The records of one caller of one function that got the same verdict."""

    function: str | None
    caller: str | None
    verdict: str
    rule: str | None
    mode: str | None
    reason: str
    caller_account: str | None
    account: str | None
    region: str | None
    count: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    event_ids: list[str] = field(default_factory=list)

    def add(self, row: Mapping[str, Any], keep_ids: int) -> None:
        self.count += 1
        seen = row.get("event_time")
        if isinstance(seen, str) and seen:
            key = _sortable(seen)
            if self.first_seen is None or key < _sortable(self.first_seen):
                self.first_seen = seen
            if self.last_seen is None or key > _sortable(self.last_seen):
                self.last_seen = seen
        event_id = row.get("event_id")
        if isinstance(event_id, str) and len(self.event_ids) < keep_ids:
            self.event_ids.append(event_id)


def _sortable(moment: str) -> str:
    """Scan rows write whole seconds without a fraction (`...:00Z`) and others with one
    (`...:00.500000Z`): as text, `Z` would sort after `.`; padded, the order is time's."""
    if moment.endswith("Z") and "." not in moment:
        return moment[:-1] + ".000000Z"
    return moment


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class CallerStats:
    """Rows folded as they stream by; `totals` counts every row by verdict."""

    keep_ids: int = 5  # event ids kept per group, as evidence
    groups: dict[GroupKey, CallerGroup] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)

    def add(self, row: Mapping[str, Any]) -> None:
        verdict = str(row["verdict"])
        self.totals[verdict] += 1
        key = (_text(row.get("function")), _text(row.get("caller")), verdict)
        group = self.groups.get(key)
        if group is None:
            group = CallerGroup(
                function=key[0],
                caller=key[1],
                verdict=verdict,
                rule=_text(row.get("rule")),
                mode=_text(row.get("mode")),
                reason=str(row.get("reason") or ""),
                caller_account=_text(row.get("caller_account")),
                account=_text(row.get("account")),
                region=_text(row.get("region")),
            )
            self.groups[key] = group
        group.add(row, self.keep_ids)

    def add_all(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def of(self, verdicts: Iterable[str]) -> list[CallerGroup]:
        """The groups with these verdicts, most records first (then by function, caller)."""
        wanted = frozenset(verdicts)
        chosen = [g for g in self.groups.values() if g.verdict in wanted]
        chosen.sort(key=lambda g: (-g.count, g.function or "", g.caller or ""))
        return chosen
