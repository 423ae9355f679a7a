"""The findings flow (lambdas.runtime.findings) on in-memory fakes of Security Hub and the
sightings counter: repeats update one finding, a remediation resolves it, the reconcile
archives only what the allowlist allows now, refusals come back and nothing raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cli.allowlist_file import parse_allowlist
from lambdas.core.decide import Decision, Verdict, decide
from lambdas.core.findings import HubLocation, finding_id, subject_from_decision
from lambdas.runtime.findings import FindingsPublisher
from models.allowlist import AllowlistConfig
from tests.support.fakes import FakeSecurityHub, FakeSightings
from tests.support.records import ACCOUNT, iam_user, invoke

pytestmark = pytest.mark.unit

HUB = HubLocation(account=ACCOUNT, region="us-east-1")
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders"
MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"
EVE = f"arn:aws:iam::{ACCOUNT}:user/eve"


def config(allow: str = "") -> AllowlistConfig:
    return parse_allowlist(
        "version: 1\nrules:\n  - name: orders\n    functions: ['orders']\n    allow:\n"
        f"      - account: '999999999999'\n{allow}",
        "t.yaml",
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def setup() -> tuple[FindingsPublisher, FakeSecurityHub, Clock]:
    hub, clock = FakeSecurityHub(), Clock()
    publisher = FindingsPublisher(
        hub=HUB, findings=hub, counter=FakeSightings(), workflow=hub, reader=hub, clock=clock
    )
    return publisher, hub, clock


def violation(name: str, event_time: str, event_id: str) -> tuple[Decision, dict[str, Any]]:
    record = invoke("orders", iam_user(name), event_time=event_time, event_id=event_id)
    decision = decide(record, config())
    assert decision.verdict is Verdict.VIOLATION
    return decision, record


def test_repeats_update_one_finding_and_a_remediation_resolves_it():
    publisher, hub, clock = setup()
    publisher.violation(*violation("mallory", "2026-12-03T10:00:00Z", "e1"))
    clock.now += timedelta(minutes=5)
    published = publisher.violation(*violation("mallory", "2026-12-03T11:30:00Z", "e2"))
    assert (published.imported, published.failed, published.error) == (1, [], None)
    assert list(hub.findings) == [finding_id(FUNCTION, MALLORY)]
    finding = hub.findings[finding_id(FUNCTION, MALLORY)]
    assert finding["ProductFields"]["invoke-audit/Count"] == "2"
    assert (finding["FirstObservedAt"], finding["LastObservedAt"], finding["UpdatedAt"]) == (
        "2026-12-03T10:00:00.000Z",
        "2026-12-03T11:30:00.000Z",
        "2026-12-03T13:05:00.000Z",
    )
    assert (finding["Compliance"], finding["Workflow"]) == ({"Status": "FAILED"}, {"Status": "NEW"})

    decision, record = violation("mallory", "2026-12-03T11:30:00Z", "e2")
    resolved = publisher.resolved(
        subject_from_decision(decision, record), backup="s3://b/k.json", detail="removed 1 grant"
    )
    assert (resolved.imported, resolved.failed, resolved.error) == (1, [], None)
    finding = hub.findings[finding_id(FUNCTION, MALLORY)]
    assert finding["Compliance"] == {"Status": "PASSED"}
    assert finding["Workflow"] == {"Status": "RESOLVED"}  # set by the workflow update
    assert finding["ProductFields"]["invoke-audit/Count"] == "2"  # resolving is no sighting
    assert "invoke-audit restore s3://b/k.json" in finding["Remediation"]["Recommendation"]["Text"]


def test_the_reconcile_archives_only_callers_allowed_now():
    publisher, hub, _ = setup()
    publisher.violation(*violation("mallory", "2026-12-03T10:00:00Z", "e1"))
    publisher.violation(*violation("eve", "2026-12-03T10:00:00Z", "e2"))
    published = publisher.reconcile(config(f"      - principal: '{EVE}'\n"))
    assert (published.archived, published.kept, published.error) == (1, 1, None)
    assert hub.findings[finding_id(FUNCTION, EVE)]["RecordState"] == "ARCHIVED"
    assert hub.findings[finding_id(FUNCTION, MALLORY)]["RecordState"] == "ACTIVE"
    assert publisher.reconcile(config(f"      - principal: '{EVE}'\n")).archived == 0


def test_refusals_come_back_and_no_workflow_update_follows_them():
    publisher, hub, _ = setup()
    decision, record = violation("mallory", "2026-12-03T10:00:00Z", "e1")
    hub.refuse.add(finding_id(FUNCTION, MALLORY))
    published = publisher.violation(decision, record)
    assert published.imported == 0 and published.failed_count == 1
    resolved = publisher.resolved(
        subject_from_decision(decision, record), backup=None, detail="removed"
    )
    assert resolved.failed[0]["Id"] == finding_id(FUNCTION, MALLORY)
    assert hub.findings == {}


def test_a_failing_counter_is_reported_not_raised():
    publisher, hub, _ = setup()

    class Broken(FakeSightings):
        def seen(self, finding_id, at):
            raise RuntimeError("table gone")

    publisher.counter = Broken()
    published = publisher.violation(*violation("mallory", "2026-12-03T10:00:00Z", "e1"))
    assert published.error == "the finding could not be made: table gone"
    assert published.failed_count == 1 and hub.imports == 0
