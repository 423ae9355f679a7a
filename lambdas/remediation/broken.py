"""The broken-caller watch in AWS: a denied Invoke by an allowed caller, after a rewrite.

The validator queues every failed Invoke (`AccessDenied*`) whose caller the rule allows
(`kind: denied`); this flow, in the remediator, judges it again from its own allowlist,
looks up the watch of the invoked resource, and when the call falls within it:

- alerts once per (rewrite, caller), however many denied Invokes arrive;
- with the rule's `on_broken: restore`, undoes the rewrite once (the same compare-and-swap
  restore as `invoke-audit restore`, which refuses when the policy changed since the rewrite),
  and says so in the alert.

A denied call outside any watch, or by a caller the allowlist does not allow, is not
`broken`: nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from lambdas.core.decide import Verdict, decide
from lambdas.core.watch import Watch, broken_notice, judge_denied
from lambdas.remediation.remediate import Violation
from models.allowlist import AllowlistConfig
from models.arns import parse_function_arn

__all__ = ["BrokenResult", "BrokenWatch", "WatchStore"]


class WatchStore(Protocol):
    """lambdas.adapters.watch.RewriteWatches, or an in-memory fake."""

    def get(self, resource: str) -> Watch | None: ...

    def first_alert(self, watch: Watch, caller: str) -> bool: ...

    def first_restore(self, watch: Watch, now: datetime) -> bool: ...


class AlertSink(Protocol):
    def publish(self, subject: str, summary: str, details: dict[str, object]) -> str: ...


@dataclass(slots=True)
class BrokenResult:
    verdict: str  # broken | failed-call (not broken)
    function: str
    detail: str
    caller: str | None = None
    backup: str | None = None
    alerted: bool = False
    restored: str | None = None  # what the undo did, when it ran

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "function": self.function,
            "detail": self.detail,
            "caller": self.caller,
            "backup": self.backup,
            "alerted": self.alerted,
            "restored": self.restored,
        }


@dataclass
class BrokenWatch:
    config: AllowlistConfig
    watches: WatchStore
    notifier: AlertSink | None
    undo: Callable[[str], str] | None  # backup URI -> what the restore did
    own_functions: AbstractSet[str] = frozenset()
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def check(self, violation: Violation) -> BrokenResult:
        ref = parse_function_arn(violation.function)
        decision = decide(
            violation.record, self.config, own_functions=self.own_functions, now=self.clock()
        )
        result = BrokenResult("failed-call", ref.arn, decision.reason, caller=decision.caller)
        if decision.function != ref.arn:
            result.detail = "the record does not invoke the function the message names"
            return result
        watch = self.watches.get(ref.arn)
        judged = judge_denied(decision, [watch] if watch else [], now=self.clock())
        if judged.verdict is not Verdict.BROKEN or watch is None:
            if decision.denied_allowed and watch is None:
                result.detail = "an allowed caller was denied, but no rewrite is being watched"
            return result
        result.verdict, result.detail, result.backup = "broken", judged.reason, watch.backup
        rule = self.config.rule_for(ref)
        if rule is not None and rule.on_broken == "restore" and self.undo is not None:
            # One undo, and one alert from whoever made it (it says what the undo did).
            if not self.watches.first_restore(watch, self.clock()):
                return result
            try:
                result.restored = self.undo(watch.backup)
            except Exception as error:  # tell people: the undo is theirs to do now
                result.restored = f"the automatic undo FAILED ({error}); undo it by hand"
        elif not self.watches.first_alert(watch, judged.caller or "unknown caller"):
            return result
        if self.notifier is not None:
            subject, text = broken_notice(judged, watch, restored=result.restored)
            self.notifier.publish(subject, text, result.to_dict() | {"decision": judged.to_dict()})
            result.alerted = True
        return result
