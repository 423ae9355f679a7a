"""The remediator Lambda run the way AWS runs it, against the emulator's server: SQS FIFO
batches in, its own wiring (ClientFactory, build_remediator) with the clients under a fault
plan, the allowlist shipped as JSON; logs and EMF metrics captured.

The `pipeline` fixture of the reliability tier (its conftest.py) starts and stops one.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from emulator import reset_server
from lambdas.core.config import allowlist_to_json
from lambdas.remediation.remediate import Violation
from lambdas.remediation.wiring import build_remediator
from lambdas.remediator import handler
from lambdas.runtime.settings import runtime
from tests.support.allowlists import remediation_config
from tests.support.aws import BACKUP_BUCKET, RATE_TABLE, World
from tests.support.faults import FaultPlan, FaultyFactory
from tests.support.lambda_runtime import (
    LambdaContext,
    emf_metrics,
    log_to_current_stdout,
    printed_json,
    sqs_event,
)
from tests.support.policies import STRANGER, messy_policy
from tests.support.records import ACCOUNT, OWN_FUNCTIONS, REGION

REMEDIATOR = "invoke-audit-remediator"


@dataclass
class Pipeline:
    """The remediator Lambda against the emulator's server, its clients under `plan`."""

    world: World
    plan: FaultPlan
    capsys: pytest.CaptureFixture[str]
    allowlist: Path
    sleeps: list[float] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))

    def tick(self) -> datetime:
        """The remediator's clock: a second passes each time it is read."""
        self.now += timedelta(seconds=1)
        return self.now

    def configure(self, **limits: int) -> None:
        """Ship the test allowlist (with these limits) and start a new container."""
        self.allowlist.write_text(allowlist_to_json(remediation_config(**limits)))
        self.new_container()

    def resource(self, function: str, document: Any = None, *, alias: str | None = None) -> str:
        arn = self.world.function(function, alias=alias)
        self.world.put_policy(arn, document or messy_policy(arn))
        return arn

    def run(self, *resources: str, attempt: int = 1) -> dict[str, Any]:
        """One invocation on a batch with one message per resource (message id = name)."""
        return self.deliver(
            [(name(r), r, json.dumps(message_body(r, f"{name(r)}-event"))) for r in resources],
            attempt=attempt,
        )

    def deliver(self, messages: list[tuple[str, str, str]], *, attempt: int = 1) -> dict[str, Any]:
        """One invocation on (message id, group, body) messages: the handler's answer, or
        the error Powertools raises when every record failed."""
        event = sqs_event(*messages)
        for record in event["Records"]:
            record["attributes"]["ApproximateReceiveCount"] = str(attempt)
        log_to_current_stdout(handler.logger)
        try:
            result: dict[str, Any] = handler.lambda_handler(event, LambdaContext(REMEDIATOR))
        except Exception as error:  # Powertools: every record failed
            result = {"error": str(error)}
        finally:
            self.lines = printed_json(self.capsys.readouterr().out)
        return result

    def new_container(self) -> None:
        runtime.cache_clear()
        handler._remediator.cache_clear()

    def metrics(self) -> dict[str, float]:
        return emf_metrics(self.lines)

    def logged(self, outcome: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("outcome") == outcome]


def name(resource: str) -> str:
    return resource.split(":function:")[1].replace(":", "-")


def violation(resource: str, event_id: str, caller: str = STRANGER) -> Violation:
    record = {
        "eventID": event_id,
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": REGION,
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "arn": caller, "accountId": caller.split(":")[4]},
        "requestParameters": {"functionName": resource},
    }
    return Violation(
        function=resource,
        event_id=event_id,
        caller=caller,
        reason=f"{caller} is not on the allowlist",
        event_time="2024-05-01T10:00:00Z",
        record=record,
    )


def message_body(resource: str, event_id: str) -> dict[str, Any]:
    v = violation(resource, event_id)
    return {
        "kind": "violation",
        "event_id": v.event_id,
        "function": v.function,
        "rule": "app",
        "mode": "enforce",
        "caller": v.caller,
        "reason": v.reason,
        "event_time": v.event_time,
        "record": v.record,
    }


def start_pipeline(
    server_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Pipeline:
    """Set the environment and wiring up; the caller calls `stop_pipeline` at the end."""
    reset_server(server_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server_endpoint)
    world = World(server_endpoint)
    allowlist = tmp_path / "allowlist.json"
    monkeypatch.setenv("ALLOWLIST_PATH", str(allowlist))
    # the pipeline's own functions, by exact ARN, as the stack passes them
    monkeypatch.setenv("OWN_FUNCTION_ARNS", ",".join(sorted(OWN_FUNCTIONS)))
    monkeypatch.setenv("BACKUP_BUCKET", BACKUP_BUCKET)
    monkeypatch.setenv("RATE_TABLE", RATE_TABLE)
    monkeypatch.setenv("TOPIC_ARN", world.topic)
    plan = FaultPlan()
    piped = Pipeline(world, plan, capsys, allowlist)
    # The Lambda's own wiring, with its clients under the fault plan and its back-off
    # recorded instead of slept; botocore's back-off between its own retries is skipped.
    monkeypatch.setattr(handler, "ClientFactory", lambda **kw: FaultyFactory(plan, **kw))
    monkeypatch.setattr(
        handler,
        "build_remediator",
        functools.partial(build_remediator, sleep=piped.sleeps.append, clock=piped.tick),
    )
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    piped.configure()
    return piped


def stop_pipeline(piped: Pipeline, server_endpoint: str) -> None:
    piped.new_container()
    reset_server(server_endpoint)
