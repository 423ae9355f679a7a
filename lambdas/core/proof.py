"""The proof gate before a policy write: what the checks said, and whether to write.

The checks themselves are IAM Access Analyzer's (an adapter asks them); this module holds
what their answers mean under the allowlist's `limits.proof` setting:

- `required` (default): write only when both checks PASS; a check that cannot be answered
  stops the write and alerts;
- `best-effort`: a FAIL still stops the write; a check that cannot be answered lets the
  write go ahead on the semantic post-condition alone, and the notification says so;
- `off`: no check is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from models.exceptions import InvokeAuditError

__all__ = [
    "EMPTY_POLICY",
    "Proof",
    "ProofCheck",
    "ProofFailedError",
    "ProofMode",
    "ProofUnavailableError",
    "Prover",
    "gate",
]

ProofMode = Literal["required", "best-effort", "off"]

# What "no policy" is proven as: a policy that grants nothing.
EMPTY_POLICY: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """One check's answer: `name` is the Access Analyzer operation."""

    name: str
    passed: bool
    message: str = ""
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        why = "; ".join(self.reasons) or self.message or "no reason given"
        return f"{self.name}: {verdict}" + ("" if self.passed else f" ({why})")


@dataclass(frozen=True, slots=True)
class Proof:
    checks: tuple[ProofCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> tuple[ProofCheck, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def describe(self) -> str:
        return "; ".join(check.describe() for check in self.checks)


class ProofUnavailableError(InvokeAuditError):
    """A check could not be answered (access denied, throttled, unavailable, refused input)."""

    def __init__(self, check: str, reason: str) -> None:
        self.check = check
        self.reason = reason
        super().__init__(f"{check} could not be answered: {reason}")


class ProofFailedError(InvokeAuditError):
    """The proof gate stops the write: a check FAILED, or could not be answered under
    `limits.proof: required`. Nothing was backed up or written."""

    def __init__(self, resource: str, detail: str, *, unavailable: bool = False) -> None:
        self.resource = resource
        self.detail = detail
        self.unavailable = unavailable
        super().__init__(f"{resource}: the proof before writing failed: {detail}")


class Prover(Protocol):
    """Answers the two checks for a planned change of one resource's policy."""

    def prove(
        self, resource: str, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> Proof: ...


def gate(
    prover: Prover | None,
    mode: ProofMode,
    resource: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> str:
    """Run the proof for `old` -> `new` under `mode`. Returns a one-line account of what was
    proven (for the notification and the log); raises ProofFailedError when the write must
    not happen."""
    if mode == "off":
        return "not proven: limits.proof is off"
    if prover is None:
        if mode == "required":
            raise ProofFailedError(
                resource, "no prover is configured and limits.proof is required", unavailable=True
            )
        return "not proven: no prover is configured (limits.proof: best-effort)"
    try:
        proof = prover.prove(resource, old, new)
    except ProofUnavailableError as error:
        if mode == "required":
            raise ProofFailedError(resource, str(error), unavailable=True) from error
        return (
            f"not proven: {error} (limits.proof: best-effort, written on the semantic "
            "post-condition alone)"
        )
    if not proof.passed:
        raise ProofFailedError(resource, "; ".join(c.describe() for c in proof.failed))
    return f"proven by IAM Access Analyzer: {proof.describe()}"
