"""Repeated decisions, remembered, keyed by exactly the record fields a decision reads.

Invoke traffic repeats itself: the same callers invoke the same functions all day, and only
the event id and time change. The key is `lambdas.core.record.decision_key`; two records with
the same key get the same verdict, reason, function, caller, rule and mode; `decide` then only
fills in the event's id, time and name.

`DecisionCache` holds the decisions per allowlist (and own-function prefix): an allowlist is
immutable, so a cached decision never goes stale; the cache is bounded. Only time changes a
decision, where an allow entry expires: `decide` then adds to the key how many of the
allowlist's expiry instants have passed at the call's time, so a remembered "allowed" is
never given to a call made after the exception that allowed it expired.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Set as AbstractSet
from typing import Generic, TypeVar

__all__ = ["DecisionCache"]


V = TypeVar("V")


class DecisionCache(Generic[V]):
    """Values per (allowlist, own functions, key); a few allowlists, a bounded number of keys."""

    MAX_KEYS = 65_536
    MAX_CONFIGS = 8

    def __init__(self) -> None:
        # (id(config), own functions) -> (config, values); the config is held so its id stays
        self._tables: dict[tuple[int, frozenset[str]], tuple[object, dict[Hashable, V]]] = {}

    def table(self, config: object, own_functions: AbstractSet[str]) -> dict[Hashable, V]:
        slot = (id(config), frozenset(own_functions))
        found = self._tables.get(slot)
        if found is None:
            if len(self._tables) >= self.MAX_CONFIGS:
                del self._tables[next(iter(self._tables))]
            found = self._tables[slot] = (config, {})
        values = found[1]
        if len(values) >= self.MAX_KEYS:
            values.clear()
        return values

    def clear(self) -> None:
        self._tables.clear()
