"""May this function be changed? One answer for the decision, the remediator and the CLI.

A function, version or alias is never changed when it is the pipeline's own (its unqualified
ARN is one of the deployment's own functions: exact ARNs, never a name prefix) or the
allowlist protects it; otherwise the first rule that
covers it says whether it is watched (`monitor`) or remediated (`enforce`); no rule, no change.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum

from models.allowlist import AllowlistConfig, Rule
from models.arns import FunctionRef

__all__ = ["Guard", "Standing", "guard", "is_own"]


class Standing(StrEnum):
    OWN = "own"  # the pipeline's own function
    PROTECTED = "protected"  # the allowlist's `protect` names it
    UNCOVERED = "uncovered"  # no rule covers it
    MONITOR = "monitor"  # its rule reports only
    ENFORCE = "enforce"  # its rule remediates


@dataclass(frozen=True, slots=True)
class Guard:
    """Where a function stands: its rule (when it has one) and the protecting pattern."""

    standing: Standing
    rule: Rule | None = None
    pattern: str | None = None

    @property
    def may_change(self) -> bool:
        return self.standing is Standing.ENFORCE

    @property
    def mode(self) -> str | None:
        """The mode of its rule (None without a rule, or when it is never looked at)."""
        return self.standing.value if self.rule is not None else None

    def reason(self) -> str:
        """Why it stands where it does, for a person."""
        if self.standing is Standing.OWN:
            return "the pipeline's own function"
        if self.standing is Standing.PROTECTED:
            return f"protected by {self.pattern!r}"
        if self.rule is None:
            return "no rule of the allowlist covers this function"
        return f"rule {self.rule.name!r} is in {self.standing.value} mode"


def is_own(ref: FunctionRef, own_functions: AbstractSet[str] = frozenset()) -> bool:
    """One of the pipeline's own functions (or a version or alias of one), by exact ARN."""
    return ref.unqualified_arn in own_functions


def guard(
    ref: FunctionRef, config: AllowlistConfig, own_functions: AbstractSet[str] = frozenset()
) -> Guard:
    """Where `ref` stands under `config`: own, protected, uncovered, monitor or enforce."""
    if is_own(ref, own_functions):
        return Guard(Standing.OWN)
    pattern = config.is_protected(ref)
    if pattern:
        return Guard(Standing.PROTECTED, pattern=pattern)
    rule = config.rule_for(ref)
    if rule is None:
        return Guard(Standing.UNCOVERED)
    mode = Standing.ENFORCE if config.mode_of(rule) == "enforce" else Standing.MONITOR
    return Guard(mode, rule=rule)
