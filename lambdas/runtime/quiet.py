"""A per-container quiet period, so that repeated events do not each send an email."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["QuietPeriod"]


class QuietPeriod:
    """Yes once per key per period, within one container. A function called again and again
    by the same caller would otherwise send one email per call."""

    def __init__(
        self, seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last: dict[tuple[str | None, ...], float] = {}

    def first(self, *key: str | None) -> bool:
        """Whether `key` was not seen in the last period (and remember it now if so)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._seconds:
            return False
        self._last[key] = now
        return True
