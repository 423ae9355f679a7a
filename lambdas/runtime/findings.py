"""Security Hub findings from the functions (off unless SECURITY_HUB_FINDINGS is `on`, which
the stack sets with the context key `invoke-audit:securityhub`).

- the validator: each violation (monitor and enforce) -> its finding, counted;
- the remediator: a rewrite made -> the finding PASSED, with the undo command, and its
  workflow RESOLVED;
- the validator's daily run: the active findings whose caller the allowlist allows now ->
  ARCHIVED.

Nothing here raises into a handler: Security Hub is a report, and a report that fails must not
fail (and so repeat) the decision or the remediation it reports on. Every failure, the
findings Security Hub refused with HTTP 200 included, comes back in `Published` for the
handler to log one by one and count (`FindingsFailed`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.security_hub import (
    FindingCounter,
    FindingsReader,
    SecurityHubFindings,
    WorkflowUpdater,
)
from lambdas.core.decide import Decision
from lambdas.core.findings import (
    GENERATOR_ID,
    FindingSubject,
    HubLocation,
    Sightings,
    archived_finding,
    no_longer_violating,
    resolved_finding,
    subject_from_decision,
    violation_finding,
)
from lambdas.core.ports import FindingsPort, FindingsSource, SightingsPort, WorkflowPort
from lambdas.runtime.settings import FINDINGS_FLAG
from models.allowlist import AllowlistConfig
from models.exceptions import ConfigError

__all__ = [
    "FindingsPublisher",
    "Published",
    "account_for",
    "hub_location",
    "publisher_from_env",
]


@dataclass
class Published:
    """What one report to Security Hub did."""

    ids: list[str] = field(default_factory=list)
    imported: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # Id, ErrorCode, ErrorMessage
    unlisted: int = 0  # refused without being listed
    error: str | None = None  # the call itself failed
    archived: int = 0
    kept: int = 0  # reconcile: still violations

    @property
    def failed_count(self) -> int:
        return len(self.failed) + self.unlisted + (len(self.ids) if self.error else 0)


def _moment(text: str | None, default: datetime) -> datetime:
    """A CloudTrail eventTime, else `default`."""
    if text:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return default
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return default


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class FindingsPublisher:
    """Turns decisions and remediations into findings and sends them."""

    hub: HubLocation
    findings: FindingsPort
    counter: SightingsPort
    workflow: WorkflowPort | None = None
    reader: FindingsSource | None = None
    clock: Callable[[], datetime] = utcnow

    def _send(self, findings: list[dict[str, Any]], published: Published) -> Published:
        try:
            result = self.findings.import_findings(findings)
        except Exception as error:  # reported, never raised (module docstring)
            published.error = f"BatchImportFindings failed: {error}"
            return published
        published.imported += result.imported
        published.failed.extend(result.failed)
        published.unlisted += result.unlisted
        return published

    def violation(self, decision: Decision, record: Any) -> Published:
        """The finding of a violation: one more sighting of the caller, FAILED / NEW (naming
        the owner and ticket of the expired exception the decision names)."""
        subject = subject_from_decision(decision, record)
        published = Published(ids=[subject.id])
        now = self.clock()
        try:
            sightings = self.counter.seen(subject.id, _moment(subject.event_time, now))
            finding = violation_finding(subject, self.hub, sightings, now)
        except Exception as error:
            published.error = f"the finding could not be made: {error}"
            return published
        return self._send([finding], published)

    def resolved(self, subject: FindingSubject, *, backup: str | None, detail: str) -> Published:
        """The finding of a remediated violation: PASSED, then its workflow RESOLVED."""
        published = Published(ids=[subject.id])
        now = self.clock()
        try:
            seen = self.counter.current(subject.id, _moment(subject.event_time, now))
            sightings = Sightings(max(seen.count, 1), seen.first_seen, seen.last_seen)
            finding = resolved_finding(
                subject, self.hub, sightings, now, backup=backup, detail=detail
            )
        except Exception as error:
            published.error = f"the finding could not be made: {error}"
            return published
        self._send([finding], published)
        if published.error or published.failed or self.workflow is None:
            return published
        try:
            result = self.workflow.set_status(self.hub.product_arn, [subject.id], "RESOLVED")
        except Exception as error:
            published.error = f"BatchUpdateFindings failed: {error}"
            return published
        published.failed.extend(result.failed)
        return published

    def reconcile(
        self, config: AllowlistConfig, own_functions: AbstractSet[str] = frozenset()
    ) -> Published:
        """Archive the active findings whose caller `config` no longer makes a violation."""
        published = Published()
        if self.reader is None:
            published.error = "no reader: GetFindings is not available to this function"
            return published
        now = self.clock()
        archive: list[dict[str, Any]] = []
        try:
            for finding in self.reader.active(self.hub.product_arn, GENERATOR_ID):
                # Only this product's own findings, whatever the filter did.
                if (
                    finding.get("ProductArn") != self.hub.product_arn
                    or finding.get("GeneratorId") != GENERATOR_ID
                    or finding.get("RecordState", "ACTIVE") != "ACTIVE"
                ):
                    continue
                why = no_longer_violating(finding, config, own_functions, now)
                if why is None:
                    published.kept += 1
                    continue
                archive.append(archived_finding(finding, now, why))
        except Exception as error:
            published.error = f"GetFindings failed: {error}"
            # Archive what was read before the failure: each finding is judged on its own.
        published.ids = [str(f["Id"]) for f in archive]
        if archive:
            reading_error, published.error = published.error, None
            self._send(archive, published)
            published.error = published.error or reading_error
            published.archived = published.imported
        return published


def hub_location(function_arn: str) -> HubLocation:
    """The Security Hub of the function's own account, region and partition (from the ARN
    the function was invoked by, `context.invoked_function_arn`)."""
    arn = function_arn
    parts = arn.split(":")
    if len(parts) < 5 or not parts[4]:
        raise ConfigError([f"cannot tell the account from the function ARN {arn!r}"])
    region = parts[3] or os.environ.get("AWS_REGION", "")
    return HubLocation(account=parts[4], region=region, partition=parts[1] or "aws")


def publisher_from_env(
    function_arn: str,
    factory: ClientFactory | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> FindingsPublisher | None:
    """A publisher when SECURITY_HUB_FINDINGS is on (RATE_TABLE keeps the counts), else None."""
    env = os.environ if environ is None else environ
    if env.get(FINDINGS_FLAG, "").strip().lower() != "on":
        return None
    table = env.get("RATE_TABLE")
    if not table:
        raise ConfigError(
            [f"{FINDINGS_FLAG} is on but RATE_TABLE is not set: findings cannot count"]
        )
    clients = factory or ClientFactory()
    hub = clients.client("securityhub")
    return FindingsPublisher(
        hub=hub_location(function_arn),
        findings=SecurityHubFindings(hub),
        counter=FindingCounter(clients.client("dynamodb"), table),
        workflow=WorkflowUpdater(hub),
        reader=FindingsReader(hub),
    )


def account_for(published: Published, logger: Any, count: Callable[[str, int], None]) -> None:
    """Log every finding Security Hub refused or that could not be sent, one line each, and
    count them (`FindingsImported`, `FindingsFailed`)."""
    for refused in published.failed:
        logger.error(
            f"Security Hub refused finding {refused['Id']}: "
            f"{refused['ErrorCode']}: {refused['ErrorMessage']}",
            extra={"finding_id": refused["Id"], "error_code": refused["ErrorCode"]},
        )
    if published.unlisted:
        logger.error(f"Security Hub refused {published.unlisted} finding(s) without listing them")
    if published.error:
        logger.error(f"findings not sent: {published.error}", extra={"finding_ids": published.ids})
    if published.imported:
        count("FindingsImported", published.imported)
    if published.failed_count:
        count("FindingsFailed", published.failed_count)
