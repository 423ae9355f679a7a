"""Records for the report's tests: callers and functions made to order."""

from __future__ import annotations

from typing import Any

from tests.support import records

# A caller name is whatever the record says: a page that shows it must escape it.
SCRIPT_NAME = "<script>alert(1)</script>"


def user_invoke(function: str, user: str, event_time: str) -> dict[str, Any]:
    """An IAM user's Invoke of `function` at `event_time`."""
    return records.invoke(function, records.iam_user(user), event_time=event_time)
