"""The code's memos, emptied at the start of every test session (tests/conftest.py)."""

from __future__ import annotations

import functools
import sys


def clear_memos() -> int:
    """Empty the memos of the loaded `lambdas` and `models` modules; how many were emptied.

    `make mutate` runs one session per mutant in a process forked after the sessions that
    recorded the tests: memos filled there (the evaluator's compiled statements and matches,
    the glob cache) would answer for the functions a mutant changes, and its tests would not
    see the change."""
    emptied = 0
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("lambdas", "models"):
            continue
        for value in list(vars(module).values()):
            for holder in (value, *vars(value).values()) if isinstance(value, type) else (value,):
                if isinstance(holder, functools._lru_cache_wrapper):  # lru_cache and cache
                    holder.cache_clear()
                    emptied += 1
    compiled = getattr(sys.modules.get("lambdas.core.evaluate"), "_COMPILED", None)
    if isinstance(compiled, dict):
        compiled.clear()
        emptied += 1
    return emptied
