"""What a rewrite changes in a policy, as a unified diff of the two documents (keys sorted,
two-space indent): the demo prints it, the HTML report shows it."""

from __future__ import annotations

import difflib
import json
from typing import Any

__all__ = ["policy_diff"]


def policy_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The diff lines, headers (`--- before`, `+++ after`) first; [] when nothing changed."""
    old = json.dumps(before, indent=2, sort_keys=True).splitlines()
    new = json.dumps(after, indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(old, new, "before", "after", lineterm="", n=2))
