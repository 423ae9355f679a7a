"""Blast radius: an allowlist that would strip 50 functions at once (a wrong allowlist, or
an attack that makes many violations) changes at most `max_remediations_per_hour` policies,
emits the alarm metric `RateLimitTripped`, alerts once, and parks every other message, with
its reason, for the next hour (or the dead-letter queue)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.support.pipeline import Pipeline, message_body, name
from tests.support.policies import messy_policy

pytestmark = [pytest.mark.reliability]

FUNCTIONS = 50
LIMIT = 20


def _deliver_all(p: Pipeline, resources: list[str], *, attempt: int) -> tuple[list[str], float]:
    """Every message once, in SQS batches of 10 (one group each): the ids of the messages
    that failed, and the RateLimitTripped metric's total."""
    failed: list[str] = []
    tripped = 0.0
    for start in range(0, len(resources), 10):
        batch = resources[start : start + 10]
        messages = [(name(r), r, json.dumps(message_body(r, f"{name(r)}-e"))) for r in batch]
        result = p.deliver(messages, attempt=attempt)
        if "error" in result:  # every record of the batch failed
            failed += [name(r) for r in batch]
        else:
            failed += [f["itemIdentifier"] for f in result["batchItemFailures"]]
        parked = p.logged("rate-limited")
        assert all(f"limit of {LIMIT} remediations per hour" in line["message"] for line in parked)
        tripped += p.metrics().get("RateLimitTripped", 0)
        assert len(parked) == p.metrics().get("RateLimitTripped", 0)
    return failed, tripped


def test_fifty_functions_stop_at_the_rate_limit(pipeline: Pipeline) -> None:
    p = pipeline
    p.configure(max_remediations_per_hour=LIMIT)
    resources = [p.resource(f"app-blast-{i:02}") for i in range(FUNCTIONS)]

    parked, tripped = _deliver_all(p, resources, attempt=1)

    changed = [r for r in resources if p.world.policy(r) != messy_policy(r)]
    assert len(changed) == LIMIT
    assert len(parked) == FUNCTIONS - LIMIT
    assert {name(r) for r in changed}.isdisjoint(parked)
    assert tripped == FUNCTIONS - LIMIT  # the alarm metric, once per parked message
    assert len(p.world.backup_documents()) == LIMIT
    alerts = p.world.alerts()
    assert sum("rate limit reached" in a["Subject"] for a in alerts) == 1
    assert sum("rewritten" in a["Subject"] for a in alerts) == LIMIT
    assert p.world.remediations_counted() == LIMIT

    # Redelivered within the hour: still parked, nothing changed, no second alert.
    still, tripped = _deliver_all(p, [r for r in resources if name(r) in parked], attempt=2)
    assert still == parked
    assert tripped == len(parked)
    assert [r for r in resources if p.world.policy(r) != messy_policy(r)] == changed
    assert not any("rate limit reached" in a["Subject"] for a in p.world.alerts())

    # The next hour: the next LIMIT go through, the rest wait again.
    p.now += timedelta(hours=1)
    p.new_container()
    left, tripped = _deliver_all(p, [r for r in resources if name(r) in parked], attempt=3)
    assert len(left) == tripped == FUNCTIONS - 2 * LIMIT
    assert sum(p.world.policy(r) != messy_policy(r) for r in resources) == 2 * LIMIT
    assert sum("rate limit reached" in a["Subject"] for a in p.world.alerts()) == 1
