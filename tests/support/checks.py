"""The properties the reliability and soak runs check after every input: a decision that is
consistent with what it claims, a validator answer that matches the AWS calls it made, and
the outcome of concurrent remediations of one resource."""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from lambdas.adapters.clients import ClientFactory
from lambdas.core.decide import Verdict, decide
from lambdas.remediation.remediate import Outcome, Remediator
from lambdas.validator import handler
from models.arns import parse_function_arn
from tests.support.allowlists import fuzz_config
from tests.support.aws import World
from tests.support.golden import rewritten, who_may_invoke_problems
from tests.support.lambda_runtime import LambdaContext, log_to_current_stdout
from tests.support.pipeline import violation
from tests.support.records import ACCOUNT, OWN_FUNCTIONS

SEND, PUBLISH = "SendMessage", "Publish"

# --- the decision ------------------------------------------------------------------------------


def check_decision(raw: Any) -> Any:
    """decide() must not raise; its answer must be consistent with what it claims."""
    config = fuzz_config()
    decision = decide(raw, config, own_functions=OWN_FUNCTIONS)
    assert decision.verdict in set(Verdict)
    assert decision.reason, f"empty reason for {decision}"
    orjson.dumps(decision.to_dict())  # the validator logs it and scan prints it
    if decision.verdict is Verdict.VIOLATION:
        # Everything the remediator needs is there, and it points at a covered, unprotected
        # function that is not the pipeline's own.
        assert decision.function and decision.rule and decision.caller and decision.mode
        ref = parse_function_arn(decision.function)
        assert ref.unqualified_arn not in OWN_FUNCTIONS
        assert config.is_protected(ref) is None
        rule = config.rule_for(ref)
        assert rule is not None and rule.name == decision.rule
        assert isinstance(raw, dict) and not raw.get("errorCode")
        assert isinstance(raw.get("userIdentity"), dict)
    if decision.verdict in (Verdict.ALLOWED, Verdict.VIOLATION, Verdict.UNMONITORED):
        assert decision.function is not None
    return decision


# --- the validator Lambda ----------------------------------------------------------------------


class RecordingFactory(ClientFactory):
    """The validator's own ClientFactory, with every call its clients make recorded."""

    calls: list[tuple[str, dict[str, Any]]] = []

    def client(self, service: str, **kwargs: Any) -> Any:
        made = super().client(service, **kwargs)
        if not getattr(made, "_recorded", False):

            def record(model: Any, params: Any, **_: Any) -> None:
                RecordingFactory.calls.append((model.name, params))

            made.meta.events.register("before-parameter-build.*.*", record)
            made._recorded = True
        return made


def invoke_validator(
    calls: list[tuple[str, dict[str, Any]]], event: Any
) -> tuple[dict[str, Any], list[Any]]:
    """Run the handler on one event; its result and the AWS calls it made."""
    before = len(calls)
    log_to_current_stdout(handler.logger)
    result = handler.lambda_handler(event, LambdaContext(account=ACCOUNT))
    made = calls[before:]
    assert {name for name, _ in made} <= {SEND, PUBLISH}, made
    return result, made


def check_validator_answer(result: dict[str, Any], made: list[tuple[str, dict[str, Any]]]) -> None:
    verdict = result["verdict"]
    assert result["reason"]
    if verdict != "violation":
        assert made == [], f"{verdict} event sent {made}"
        assert result["action"] is None
        return
    if result["mode"] == "enforce":
        assert [name for name, _ in made] == [SEND]
        body = json.loads(made[0][1]["MessageBody"])
        assert body["kind"] == "violation"
        assert body["function"] == result["function"]
        assert made[0][1]["MessageGroupId"]
    else:
        assert [name for name, _ in made] in ([PUBLISH], [])  # [] = suppressed repeat
        assert result["action"] in ("notified", "suppressed")


# --- concurrent remediations -------------------------------------------------------------------


def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
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


def remediation_job(remediator: Remediator, resource: str, event_id: str) -> Callable[[], Any]:
    return functools.partial(remediator.remediate, violation(resource, event_id))


def statements_without(document: dict[str, Any] | None, sid: str) -> list[dict[str, Any]]:
    return [s for s in (document or {}).get("Statement", []) if s.get("Sid") != sid]


def check_race_outcome(
    world: World, resource: str, original: dict[str, Any], results: list[Any], extra_sid: str = ""
) -> list[str]:
    """Exactly the hand-written rewrite (plus the grant added meanwhile), letting in exactly
    whom the rule allows, and one real change (asserted); one backup per real change
    (returned as problems, so that every resource is checked)."""
    expected = rewritten(resource)
    final = world.policy(resource)
    assert final is not None
    assert statements_without(final, extra_sid) == statements_without(expected, extra_sid)
    assert who_may_invoke_problems(resource, final) == []
    if extra_sid:
        assert any(s.get("Sid") == extra_sid for s in final["Statement"]), "a concurrent grant lost"

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    outcomes = Counter(r.outcome for r in results)
    assert outcomes[Outcome.REMEDIATED] == 1, outcomes
    assert outcomes[Outcome.UNCHANGED] == len(results) - 1, outcomes

    backups = world.backup_documents(resource)
    winner = next(r for r in results if r.outcome is Outcome.REMEDIATED)
    assert winner.backup is not None
    assert any(
        winner.backup.endswith(b["_key"])
        and statements_without(b["policy"], extra_sid) == original["Statement"]
        for b in backups
    ), "the change's backup does not hold the policy it replaced"
    if len(backups) != outcomes[Outcome.REMEDIATED]:
        return [
            f"{resource}: {len(backups)} backups for {outcomes[Outcome.REMEDIATED]} policy "
            "change(s): each remediation that lost the compare-and-swap left the backup it "
            "wrote before its write"
        ]
    return []
