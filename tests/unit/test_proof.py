"""The proof gate's decisions under `limits.proof`, with a prover written here."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lambdas.core.proof import (
    Proof,
    ProofCheck,
    ProofFailedError,
    ProofUnavailableError,
    gate,
)

pytestmark = pytest.mark.unit

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:blog"
PASS = Proof((ProofCheck("CheckNoNewAccess", True), ProofCheck("CheckNoPublicAccess", True)))
FAIL = Proof(
    (
        ProofCheck("CheckNoNewAccess", True),
        ProofCheck("CheckNoPublicAccess", False, "public", ("statement 0: Principal *",)),
    )
)


@dataclass
class Prover:
    answer: Proof | None = None
    calls: int = 0

    def prove(self, resource, old, new):
        self.calls += 1
        if self.answer is None:
            raise ProofUnavailableError("CheckNoNewAccess", "AccessDeniedException: no")
        return self.answer


@pytest.mark.parametrize("mode", ["required", "best-effort"])
def test_pass_lets_the_write_go_ahead(mode):
    assert gate(Prover(PASS), mode, FUNCTION, {}, {}) == (
        "proven by IAM Access Analyzer: CheckNoNewAccess: PASS; CheckNoPublicAccess: PASS"
    )


@pytest.mark.parametrize("mode", ["required", "best-effort"])
def test_fail_stops_the_write_in_every_mode_that_asks(mode):
    with pytest.raises(ProofFailedError) as caught:
        gate(Prover(FAIL), mode, FUNCTION, {}, {})
    assert caught.value.detail == "CheckNoPublicAccess: FAIL (statement 0: Principal *)"
    assert not caught.value.unavailable


def test_unanswered_under_required_stops_the_write():
    with pytest.raises(ProofFailedError, match="AccessDeniedException") as caught:
        gate(Prover(None), "required", FUNCTION, {}, {})
    assert caught.value.unavailable


def test_unanswered_under_best_effort_writes_and_says_so():
    note = gate(Prover(None), "best-effort", FUNCTION, {}, {})
    assert note.startswith("not proven: CheckNoNewAccess could not be answered")
    assert "semantic post-condition alone" in note


def test_off_asks_nothing():
    prover = Prover(FAIL)
    assert gate(prover, "off", FUNCTION, {}, {}) == "not proven: limits.proof is off"
    assert prover.calls == 0


def test_no_prover_is_a_failure_only_when_required():
    with pytest.raises(ProofFailedError):
        gate(None, "required", FUNCTION, {}, {})
    assert gate(None, "best-effort", FUNCTION, {}, {}).startswith("not proven")
