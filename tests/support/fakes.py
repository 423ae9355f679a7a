"""In-memory fakes of the ports (`lambdas.core.ports`), for unit tests of the flows.

Each keeps what it was given, so that a test asserts on what the flow did; the policy store
keeps a RevisionId per resource and refuses a write with a stale one (412), as Lambda does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lambdas.adapters.errors import PreconditionFailedError
from lambdas.core.findings import Sightings, asff_time
from lambdas.core.ports import (
    BackupPort,
    FindingsPort,
    FindingsSource,
    ImportResult,
    NoticeMarksPort,
    NotifierPort,
    PolicyState,
    PolicyStore,
    QueuePort,
    RateLimitPort,
    SightingsPort,
    WorkflowPort,
)
from lambdas.core.proof import Proof, ProofCheck
from models.arns import FunctionRef

__all__ = [
    "FakeBackups",
    "FakeNoticeMarks",
    "FakeNotifier",
    "FakePolicyStore",
    "FakeQueue",
    "FakeRateLimit",
    "FakeSecurityHub",
    "FakeSightings",
]


@dataclass
class FakePolicyStore:
    """Policies by resource ARN, each with a RevisionId that changes on every write."""

    policies: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)
    writes: int = 0

    def read(self, ref: FunctionRef) -> PolicyState:
        document = self.policies.get(ref.arn)
        revision = self.revisions.setdefault(ref.arn, str(uuid.uuid4()))
        return PolicyState(ref.arn, document, revision if document else None, "resource-policy")

    def write(
        self, ref: FunctionRef, current: PolicyState, target: dict[str, Any] | None
    ) -> PolicyState:
        stored = self.revisions.get(ref.arn)
        if current.revision_id is not None and current.revision_id != stored:
            raise PreconditionFailedError(
                service="lambda",
                operation="PutResourcePolicy",
                resource=ref.arn,
                code="PreconditionFailedException",
                status=412,
                message="the RevisionId does not match",
            )
        self.writes += 1
        self.policies[ref.arn] = target
        self.revisions[ref.arn] = str(uuid.uuid4())
        return self.read(ref)


@dataclass
class FakeBackups:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put(self, key: str, backup: dict[str, Any]) -> str:
        uri = f"s3://fake-backups/{key}"
        self.objects[uri] = backup
        return uri

    def delete(self, uri: str) -> None:
        self.objects.pop(uri, None)

    def latest(self, prefix: str, suffix: str) -> tuple[str, dict[str, Any]] | None:
        found = sorted(
            uri
            for uri in self.objects
            if uri.removeprefix("s3://fake-backups/").startswith(prefix) and uri.endswith(suffix)
        )
        return (found[-1], self.objects[found[-1]]) if found else None

    def get(self, uri: str) -> dict[str, Any]:
        return self.objects[uri]


@dataclass
class FakeRateLimit:
    """The hourly budget as a counter per hour."""

    used: dict[str, int] = field(default_factory=dict)
    tripped: set[str] = field(default_factory=set)

    @staticmethod
    def window(now: datetime) -> str:
        return now.strftime("%Y-%m-%dT%H")

    def try_acquire(self, limit: int, *, now: datetime | None = None) -> bool:
        hour = self.window(now or datetime.now())
        if self.used.get(hour, 0) >= limit:
            return False
        self.used[hour] = self.used.get(hour, 0) + 1
        return True

    def release(self, *, now: datetime) -> bool:
        hour = self.window(now)
        if not self.used.get(hour):
            return False
        self.used[hour] -= 1
        return True

    def first_trip(self, *, now: datetime | None = None) -> bool:
        hour = self.window(now or datetime.now())
        first = hour not in self.tripped
        self.tripped.add(hour)
        return first


@dataclass
class FakeNotifier:
    published: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, subject: str, summary: str, details: dict[str, Any]) -> str:
        self.published.append((subject, summary, details))
        return f"message-{len(self.published)}"


@dataclass
class FakeQueue:
    sent: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)

    def send(self, message: dict[str, Any], *, group_id: str, deduplication_id: str) -> str:
        self.sent.append((message, group_id, deduplication_id))
        return f"message-{len(self.sent)}"


@dataclass
class FakeNoticeMarks:
    """The recorded notices: mark -> (about, kept until)."""

    marks: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)

    def claim(self, mark: str, *, now: datetime, keep_until: datetime, about: str) -> bool:
        if mark in self.marks and self.marks[mark][1] > now:
            return False
        self.marks[mark] = (about, keep_until)
        return True

    def release(self, mark: str) -> None:
        self.released.append(mark)
        self.marks.pop(mark, None)


@dataclass
class FakeSecurityHub:
    """Findings by Id (an import replaces the finding of its Id, as Security Hub does); a
    provider's Workflow is kept only on creation, later set through `set_status`."""

    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    imports: int = 0
    refuse: set[str] = field(default_factory=set)  # Ids refused with HTTP 200

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> ImportResult:
        self.imports += 1
        result = ImportResult()
        for finding in findings:
            if finding["Id"] in self.refuse:
                result.failed.append(
                    {"Id": finding["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "refused"}
                )
                continue
            old = self.findings.get(finding["Id"])
            workflow = old["Workflow"] if old and "Workflow" in old else finding.get("Workflow")
            self.findings[finding["Id"]] = dict(finding) | {"Workflow": workflow}
            result.imported += 1
        return result

    def active(self, product_arn: str, generator_id: str) -> Iterator[dict[str, Any]]:
        for finding in list(self.findings.values()):
            if (
                finding["ProductArn"] == product_arn
                and finding["GeneratorId"] == generator_id
                and finding.get("RecordState") == "ACTIVE"
            ):
                yield finding

    def set_status(self, product_arn: str, ids: Sequence[str], status: str) -> ImportResult:
        result = ImportResult()
        for finding_id in ids:
            self.findings[finding_id]["Workflow"] = {"Status": status}
            result.imported += 1
        return result


@dataclass
class FakeSightings:
    """finding Id -> (count, first seen, last seen)."""

    seen_by_id: dict[str, Sightings] = field(default_factory=dict)

    def seen(self, finding_id: str, at: datetime) -> Sightings:
        old = self.seen_by_id.get(finding_id)
        moment = asff_time(at)
        new = Sightings((old.count if old else 0) + 1, old.first_seen if old else moment, moment)
        self.seen_by_id[finding_id] = new
        return new

    def current(self, finding_id: str, at: datetime) -> Sightings:
        moment = asff_time(at)
        return self.seen_by_id.get(finding_id) or Sightings(0, moment, moment)


# The fakes are what the ports say (checked by mypy).
_PORTS: tuple[
    type[PolicyStore],
    type[BackupPort],
    type[RateLimitPort],
    type[NotifierPort],
    type[QueuePort],
    type[NoticeMarksPort],
    type[FindingsPort],
    type[FindingsSource],
    type[WorkflowPort],
    type[SightingsPort],
] = (
    FakePolicyStore,
    FakeBackups,
    FakeRateLimit,
    FakeNotifier,
    FakeQueue,
    FakeNoticeMarks,
    FakeSecurityHub,
    FakeSecurityHub,
    FakeSecurityHub,
    FakeSightings,
)


class FakeProver:
    """Access Analyzer's two checks, answered PASS (or `answer`), and remembered."""

    def __init__(self, answer: Proof | None = None) -> None:
        self.answer = answer or Proof(
            (ProofCheck("CheckNoNewAccess", True), ProofCheck("CheckNoPublicAccess", True))
        )
        self.calls: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []

    def prove(self, resource: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Proof:
        self.calls.append((resource, old, new))
        return self.answer
