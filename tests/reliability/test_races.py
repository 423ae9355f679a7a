"""Races: concurrent remediations against moto's server (the emulator: per-qualifier policies,
PutResourcePolicy with RevisionId compare-and-swap). Each thread is one remediator container
with its own boto3 clients. Afterwards every policy is exactly what the rewrite says, no
allowed principal lost access, and there is one backup per policy actually changed."""

from __future__ import annotations

import pytest

from tests.support.allowlists import remediation_config
from tests.support.aws import World
from tests.support.checks import check_race_outcome, remediation_job, run_together
from tests.support.policies import messy_policy
from tests.support.records import DEPLOYER, OTHER_ACCOUNT

pytestmark = [pytest.mark.reliability]


def test_twenty_concurrent_remediations_of_one_function(world: World) -> None:
    resource = world.function("app-race")
    original = messy_policy(resource)
    world.put_policy(resource, original)
    allowlist = remediation_config()
    remediators = [world.remediator(allowlist) for _ in range(20)]
    jobs = [remediation_job(r, resource, f"race-{i}") for i, r in enumerate(remediators)]

    results = run_together(jobs)

    problems = check_race_outcome(world, resource, original, results)
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
    allowlist = remediation_config()
    jobs = [
        remediation_job(world.remediator(allowlist), resource, f"{resource.split(':')[6]}-{i}")
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

    results = run_together([*jobs, operator_job])

    assert results[-1] is None
    problems = []
    for index, resource in enumerate(resources):
        group = results[index * 4 : index * 4 + 4]
        problems += check_race_outcome(
            world, resource, originals[resource], group, "operator-grant"
        )
    assert len(world.alerts()) == len(resources)
    assert not problems, "\n".join(problems)
