"""EventBridge's array matching for moto's rule engine.

EventBridge matches a pattern field inside an array of objects against every element
("JSON Array Matching" in the EventBridge user guide): `{"detail": {"resources": {"ARN":
[...]}}}` matches an event whose `detail.resources` is a list of objects with `ARN` keys.
moto 5.2.5 flattens events without descending into such arrays, so the pipeline's rule (which
excludes its own functions on `detail.resources.ARN`) never matches there.
`eventbridge_array_matching()` swaps in a flattening that collects those values, while it is
active; tests that check the gap still exists call `flatten_like_eventbridge` directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["eventbridge_array_matching", "flatten_like_eventbridge"]


def flatten_like_eventbridge(
    node: Any, prefix: str = "", out: dict[str, Any] | None = None
) -> dict[str, Any]:
    """moto's flattening, plus EventBridge's: values inside arrays of objects are collected
    under the object path, as a list."""
    out = {} if out is None else out
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value:
                flatten_like_eventbridge(value, path, out)
            elif isinstance(value, list) and any(isinstance(i, dict | list) for i in value):
                for item in value:
                    _collect(item, path, out)
            else:
                out[path] = value
    return out


def _collect(item: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(item, list):
        for inner in item:
            _collect(inner, path, out)
        return
    values = flatten_like_eventbridge(item) if isinstance(item, dict) else {"": item}
    for key, value in values.items():
        target = f"{path}.{key}" if key else path
        existing = out.setdefault(target, [])
        if not isinstance(existing, list):
            existing = out[target] = [existing]
        existing.extend(value if isinstance(value, list) else [value])


@contextlib.contextmanager
def eventbridge_array_matching() -> Iterator[None]:
    """moto's event rules match inside arrays of objects, as EventBridge does, meanwhile."""
    from moto.events.models import EventPattern

    original = EventPattern.__dict__["_flatten_dict"]
    setattr(EventPattern, "_flatten_dict", staticmethod(flatten_like_eventbridge))  # noqa: B010
    try:
        yield
    finally:
        setattr(EventPattern, "_flatten_dict", original)  # noqa: B010
