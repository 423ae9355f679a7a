"""The queue message: the contract between the validator (and ingest) and the remediator.

One SQS FIFO message per violation, a JSON object. The validator and the ingest function
write it from their decision; the remediator reads it and trusts it for nothing but the
function's ARN and the event to quote: it decides everything else again from its own config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from models.exceptions import InputError

__all__ = ["DENIED", "KINDS", "VIOLATION", "ViolationMessage"]

VIOLATION: Final = "violation"
# An allowed caller's denied Invoke: the remediator checks it against its recent rewrites.
DENIED: Final = "denied"
KINDS: Final = (VIOLATION, DENIED)


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ViolationMessage:
    """A violation to remediate: the invoked resource, the decision's facts, the record."""

    function: str
    event_id: str | None = None
    rule: str | None = None
    mode: str | None = None
    caller: str | None = None
    reason: str | None = None
    account: str | None = None
    region: str | None = None
    event_time: str | None = None
    record: Any = None
    kind: str = VIOLATION

    def to_body(self) -> dict[str, Any]:
        """The message body (serialized as JSON by the queue adapter)."""
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "function": self.function,
            "rule": self.rule,
            "mode": self.mode,
            "caller": self.caller,
            "reason": self.reason,
            "account": self.account,
            "region": self.region,
            "event_time": self.event_time,
            "record": self.record,
        }

    @classmethod
    def from_body(cls, body: Any) -> ViolationMessage:
        """Read a message body; InputError if it is not a violation message."""
        if not isinstance(body, Mapping) or body.get("kind") not in KINDS:
            raise InputError(f"not a violation message (kind must be one of {', '.join(KINDS)})")
        function = body.get("function")
        if not isinstance(function, str) or not function:
            raise InputError("the violation message names no function")
        return cls(
            function=function,
            event_id=_text(body, "event_id"),
            rule=_text(body, "rule"),
            mode=_text(body, "mode"),
            caller=_text(body, "caller"),
            reason=_text(body, "reason"),
            account=_text(body, "account"),
            region=_text(body, "region"),
            event_time=_text(body, "event_time"),
            record=body.get("record"),
            kind=str(body["kind"]),
        )
