"""Ports: what the flows need from AWS, as Protocols. Each has one boto3 implementation in
`lambdas.adapters` (named below) and may have in-memory fakes in tests.

| port              | used by                         | boto3 implementation              |
|-------------------|---------------------------------|-----------------------------------|
| `PolicyStore`     | remediation (remediate, restore) | `LambdaPolicies`                 |
| `BackupPort`      | remediation                     | `BackupStore`                     |
| `BackupSource`    | restore (`load_backup`)         | `BackupReader`                    |
| `RateLimitPort`   | remediation                     | `HourlyRateLimiter`               |
| `NotifierPort`    | remediation, runtime.report     | `Notifier`                        |
| `QueuePort`       | runtime.report                  | `ViolationQueue`                  |
| `NoticeMarksPort` | validator.scheduled             | `NoticeMarks`                     |
| `FindingsPort`    | runtime.findings                | `SecurityHubFindings`             |
| `FindingsSource`  | runtime.findings (reconcile)    | `FindingsReader`                  |
| `WorkflowPort`    | runtime.findings (resolved)     | `WorkflowUpdater`                 |
| `SightingsPort`   | runtime.findings                | `FindingCounter`                  |

Pure: no AWS SDK, no I/O (typing only).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from lambdas.core.findings import Sightings
from models.arns import FunctionRef

__all__ = [
    "BackupPort",
    "BackupSource",
    "BackupVerifier",
    "FindingsPort",
    "FindingsSource",
    "ImportResult",
    "NoticeMarksPort",
    "NotifierPort",
    "PolicyApi",
    "PolicyState",
    "PolicyStore",
    "QueuePort",
    "RateLimitPort",
    "SightingsPort",
    "WorkflowPort",
]

PolicyApi = Literal["resource-policy", "permission"]


@dataclass(frozen=True, slots=True)
class PolicyState:
    """A resource's policy as read (or as written): `document` None means no policy."""

    resource_arn: str
    document: dict[str, Any] | None
    revision_id: str | None
    api: PolicyApi


class PolicyStore(Protocol):
    """Reads and writes one resource's policy, with compare-and-swap on its RevisionId."""

    def read(self, ref: FunctionRef) -> PolicyState: ...

    def write(
        self, ref: FunctionRef, current: PolicyState, target: dict[str, Any] | None
    ) -> PolicyState: ...


class BackupPort(Protocol):
    """Backups of policies before they are changed: put, delete, find the latest."""

    def put(self, key: str, backup: dict[str, Any]) -> str: ...

    def delete(self, uri: str) -> None: ...

    def latest(self, prefix: str, suffix: str) -> tuple[str, dict[str, Any]] | None: ...


class BackupSource(Protocol):
    """Reads one backup by its URI."""

    def get(self, uri: str) -> dict[str, Any]: ...


class BackupVerifier(Protocol):
    """Checks a backup's signature with the deployment's key (lambdas.core.backups)."""

    def verify(self, backup: dict[str, Any]) -> bool: ...


class RateLimitPort(Protocol):
    """The hourly remediation budget."""

    @staticmethod
    def window(now: datetime) -> str: ...

    def try_acquire(self, limit: int, *, now: datetime | None = None) -> bool: ...

    def release(self, *, now: datetime) -> bool: ...

    def first_trip(self, *, now: datetime | None = None) -> bool: ...


class NotifierPort(Protocol):
    """Tells people: a subject, a text, and the facts as JSON."""

    def publish(self, subject: str, summary: str, details: dict[str, Any]) -> str: ...


class QueuePort(Protocol):
    """The FIFO queue of violations between the validator (or ingest) and the remediator."""

    def send(self, message: dict[str, Any], *, group_id: str, deduplication_id: str) -> str: ...


class NoticeMarksPort(Protocol):
    """What the scheduled notices already announced: claimed once, released on failure."""

    def claim(self, mark: str, *, now: datetime, keep_until: datetime, about: str) -> bool: ...

    def release(self, mark: str) -> None: ...


@dataclass
class ImportResult:
    """What Security Hub took and what it refused (each refusal: Id, ErrorCode, ErrorMessage)."""

    imported: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    unlisted: int = 0  # refused, counted in FailedCount but not listed

    @property
    def failed_count(self) -> int:
        return len(self.failed) + self.unlisted

    def add(self, other: ImportResult) -> None:
        self.imported += other.imported
        self.failed.extend(other.failed)
        self.unlisted += other.unlisted


class FindingsPort(Protocol):
    """Security Hub's finding import: creates, or replaces the finding of the same Id."""

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> ImportResult: ...


class FindingsSource(Protocol):
    """This product's active findings, as Security Hub returns them."""

    def active(self, product_arn: str, generator_id: str) -> Iterator[dict[str, Any]]: ...


class WorkflowPort(Protocol):
    """Sets the workflow status of findings (a responder's update)."""

    def set_status(self, product_arn: str, ids: Sequence[str], status: str) -> ImportResult: ...


class SightingsPort(Protocol):
    """How often and when each finding's caller was seen."""

    def seen(self, finding_id: str, at: datetime) -> Sightings: ...

    def current(self, finding_id: str, at: datetime) -> Sightings: ...
