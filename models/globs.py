"""Case-sensitive glob matching (`*`, `?`, `[...]`) with compiled patterns cached."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["glob_error", "glob_matcher", "has_magic", "matches"]

_MAGIC = re.compile(r"[*?\[]")


def has_magic(pattern: str) -> bool:
    return _MAGIC.search(pattern) is not None


def glob_error(pattern: str) -> str | None:
    """Why `pattern` is not a usable glob, or None."""
    if not pattern:
        return "empty pattern"
    if pattern != pattern.strip():
        return "leading or trailing whitespace"
    depth = 0
    for char in pattern:
        if char == "[":
            if depth:
                return "nested '[' in a character class"
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        return "unclosed '[' in the pattern"
    return None


@lru_cache(maxsize=4096)
def glob_matcher(pattern: str) -> Callable[[str], re.Match[str] | None]:
    if not has_magic(pattern):
        return re.compile(re.escape(pattern) + r"\Z").match
    return re.compile(fnmatch.translate(pattern)).match


def matches(pattern: str, value: str) -> bool:
    return glob_matcher(pattern)(value) is not None
