"""Races: concurrent remediations against moto's server (the emulator: per-qualifier policies,
PutResourcePolicy with RevisionId compare-and-swap). Each thread is one remediator container
with its own boto3 clients. Afterwards every policy is exactly what the rewrite says, no
allowed principal lost access, and there is one backup per policy actually changed."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator import reset_server
from lambdas.remediation.remediate import Outcome, Remediator
from tests.reliability.golden import rewritten, who_may_invoke_problems
from tests.reliability.support import DEPLOYER, OTHER_ACCOUNT
from tests.reliability.world import World, config, messy_policy, violation

pytestmark = [pytest.mark.reliability]


@pytest.fixture
def world(server_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    reset_server(server_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server_endpoint)
    yield World(server_endpoint).create()
    reset_server(server_endpoint)


def _run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Start every job at the same moment, each in its own thread; their results or errors."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = jobs[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a remediation hung"
    return results


def _job(remediator: Remediator, resource: str, event_id: str) -> Callable[[], Any]:
    return functools.partial(remediator.remediate, violation(resource, event_id))


def _statements_without(document: dict[str, Any] | None, sid: str) -> list[dict[str, Any]]:
    return [s for s in (document or {}).get("Statement", []) if s.get("Sid") != sid]


def _check_resource(
    world: World, resource: str, original: dict[str, Any], results: list[Any], extra_sid: str = ""
) -> list[str]:
    """Exactly the hand-written rewrite (plus the grant added meanwhile), letting in exactly
    whom the rule allows, and one real change (asserted); one backup per real change
    (returned as problems, so that every resource is checked)."""
    expected = rewritten(resource)
    final = world.policy(resource)
    assert final is not None
    assert _statements_without(final, extra_sid) == _statements_without(expected, extra_sid)
    assert who_may_invoke_problems(resource, final) == []
    if extra_sid:
        assert any(s.get("Sid") == extra_sid for s in final["Statement"]), "a concurrent grant lost"

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    outcomes = Counter(r.outcome for r in results)
    assert outcomes[Outcome.REMEDIATED] == 1, outcomes
    assert outcomes[Outcome.UNCHANGED] == len(results) - 1, outcomes

    backups = world.backups(resource)
    winner = next(r for r in results if r.outcome is Outcome.REMEDIATED)
    assert winner.backup is not None
    assert any(
        winner.backup.endswith(b["_key"])
        and _statements_without(b["policy"], extra_sid) == original["Statement"]
        for b in backups
    ), "the change's backup does not hold the policy it replaced"
    if len(backups) != outcomes[Outcome.REMEDIATED]:
        return [
            f"{resource}: {len(backups)} backups for {outcomes[Outcome.REMEDIATED]} policy "
            "change(s): each remediation that lost the compare-and-swap left the backup it "
            "wrote before its write"
        ]
    return []


def test_twenty_concurrent_remediations_of_one_function(world: World) -> None:
    resource = world.function("app-race")
    original = messy_policy(resource)
    world.put_policy(resource, original)
    allowlist = config()
    remediators = [world.remediator(allowlist) for _ in range(20)]
    jobs = [_job(r, resource, f"race-{i}") for i, r in enumerate(remediators)]

    results = _run_together(jobs)

    problems = _check_resource(world, resource, original, results)
    final = world.policy(resource)
    assert final is not None
    sids = {s["Sid"] for s in final["Statement"]}
    assert {"s3", "deployer", "mixed", "deny-old", "read"} <= sids  # allowed and kept
    assert not {"public", "partner"} & sids
    assert len(world.alerts()) == 1  # one change, one email
    spent = world.remediations_counted()
    if spent != 1:
        problems.append(f"one policy change spent {spent} of the hourly remediation budget")
    assert not problems, "\n".join(problems)


def test_five_functions_at_once_with_a_concurrent_legitimate_grant(world: World) -> None:
    """5 resources (functions and aliases) x 4 remediators, while an operator adds an allowed
    grant to each with AddPermission: the grant survives, nothing else differs."""
    resources = [
        world.function("app-one"),
        world.function("app-two", alias="live"),
        world.function("orders-one"),
        world.function("orders-two", alias="prod"),
        world.function("BlogFunction", alias="v1"),
    ]
    originals = {r: messy_policy(r) for r in resources}
    for resource, document in originals.items():
        world.put_policy(resource, document)
    allowlist = config()
    jobs = [
        _job(world.remediator(allowlist), resource, f"{resource.split(':')[6]}-{i}")
        for resource in resources
        for i in range(4)
    ]
    operator = world.client("lambda")

    def operator_job() -> None:
        """An operator grants an allowed principal on every resource, one after the other."""
        for resource in resources:
            name, _, qualifier = resource.partition(":function:")[2].partition(":")
            principal = DEPLOYER if name.startswith(("app", "Blog")) else OTHER_ACCOUNT
            operator.add_permission(
                FunctionName=name,
                **({"Qualifier": qualifier} if qualifier else {}),
                StatementId="operator-grant",
                Action="lambda:InvokeFunction",
                Principal=principal,
            )

    results = _run_together([*jobs, operator_job])

    assert results[-1] is None
    problems = []
    for index, resource in enumerate(resources):
        group = results[index * 4 : index * 4 + 4]
        problems += _check_resource(world, resource, originals[resource], group, "operator-grant")
    assert len(world.alerts()) == len(resources)
    assert not problems, "\n".join(problems)
