"""The long runs (`make soak`): the same properties as the reliability tier, many more inputs
and rounds. Not in `make test`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.allowlists import remediation_config
from tests.support.aws import World
from tests.support.checks import (
    check_decision,
    check_race_outcome,
    check_validator_answer,
    invoke_validator,
    remediation_job,
    run_together,
)
from tests.support.corpus import CORPUS_MISSING, corpus_records
from tests.support.policies import messy_policy
from tests.support.records import envelope
from tests.support.strategies import cloudtrail_records, json_values, mutated_records

pytestmark = [pytest.mark.reliability, pytest.mark.soak]

LONG = settings(
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@LONG
@given(st.one_of(cloudtrail_records(), json_values))
def test_soak_decide_generated(record: Any) -> None:
    check_decision(record)


@LONG
@given(data=st.data())
def test_soak_decide_mutated_corpus(data: Any) -> None:
    records = corpus_records()
    if not records:
        pytest.skip(CORPUS_MISSING)
    check_decision(data.draw(mutated_records(records)))


@settings(LONG, max_examples=3_000)
@given(cloudtrail_records())
def test_soak_validator_generated(validator: Any, record: dict[str, Any]) -> None:
    result, made = invoke_validator(validator, envelope(record))
    check_validator_answer(result, made)


@settings(LONG, max_examples=3_000)
@given(data=st.data())
def test_soak_validator_mutated_corpus(validator: Any, data: Any) -> None:
    records = corpus_records()
    if not records:
        pytest.skip(CORPUS_MISSING)
    result, made = invoke_validator(validator, envelope(data.draw(mutated_records(records))))
    check_validator_answer(result, made)


@pytest.mark.parametrize("round_", range(5))
def test_soak_races_rounds(world: World, round_: int) -> None:
    """Five rounds: 10 resources x 5 remediators each, 50 threads at once."""
    resources = [world.function(f"app-soak-{round_}-{i}") for i in range(5)]
    resources += [world.function(f"orders-soak-{round_}-{i}", alias="live") for i in range(5)]
    originals = {r: messy_policy(r) for r in resources}
    for resource, document in originals.items():
        world.put_policy(resource, document)
    allowlist = remediation_config()
    jobs = [
        remediation_job(world.remediator(allowlist), resource, f"soak-{round_}-{n}-{i}")
        for n, resource in enumerate(resources)
        for i in range(5)
    ]
    results = run_together(jobs)
    problems: list[str] = []
    for index, resource in enumerate(resources):
        group = results[index * 5 : index * 5 + 5]
        problems += check_race_outcome(world, resource, originals[resource], group)
    assert not problems, "\n".join(problems)
    assert world.remediations_counted() == len(resources)
