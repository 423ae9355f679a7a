"""AWS Security Hub: findings in, findings read back, the workflow of resolved ones; and the
counter that tells how often a caller was seen (ASFF has no such field).

BatchImportFindings answers HTTP 200 even when it refused findings: the refused ones are in
`FailedFindings` (Id, ErrorCode, ErrorMessage). They are returned to the caller in an
`ImportResult`, never dropped: the functions log each one and count them
(metric `FindingsFailed`). At most 100 findings go in one call (the API's limit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from lambdas.adapters._calls import call
from lambdas.core.findings import Sightings, asff_time
from lambdas.core.ports import ImportResult

__all__ = [
    "BATCH_LIMIT",
    "FindingCounter",
    "FindingsReader",
    "ImportResult",
    "SecurityHubFindings",
    "WorkflowUpdater",
]

BATCH_LIMIT = 100  # findings per BatchImportFindings / BatchUpdateFindings call
_PAGE_SIZE = 100  # GetFindings MaxResults (1..100)


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SecurityHubFindings:
    """Imports findings (creates or, for an `Id` already there, replaces them)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("securityhub:BatchImportFindings",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> ImportResult:
        """Import in batches of 100; a call that fails raises (AwsError), nothing is retried
        here beyond botocore's own retries."""
        result = ImportResult()
        for batch in _batches(findings, BATCH_LIMIT):
            answer = call(
                "securityhub",
                "BatchImportFindings",
                batch[0]["ProductArn"],
                self._client.batch_import_findings,
                Findings=list(batch),
            )
            failed = [
                {
                    "Id": str(item.get("Id", "")),
                    "ErrorCode": str(item.get("ErrorCode", "")),
                    "ErrorMessage": str(item.get("ErrorMessage", "")),
                }
                for item in answer.get("FailedFindings") or []
            ]
            # FailedCount is authoritative should FailedFindings ever list fewer.
            unlisted = max(0, int(answer.get("FailedCount") or 0) - len(failed))
            result.add(ImportResult(int(answer.get("SuccessCount") or 0), failed, unlisted))
        return result


class FindingsReader:
    """Reads this product's active findings (GetFindings, every page)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("securityhub:GetFindings",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def active(self, product_arn: str, generator_id: str) -> Iterator[dict[str, Any]]:
        """The ACTIVE findings of `product_arn` made by `generator_id`."""
        filters = {
            "ProductArn": [{"Value": product_arn, "Comparison": "EQUALS"}],
            "GeneratorId": [{"Value": generator_id, "Comparison": "EQUALS"}],
            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        }
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": _PAGE_SIZE}
            if token:
                kwargs["NextToken"] = token
            page = call(
                "securityhub", "GetFindings", product_arn, self._client.get_findings, **kwargs
            )
            yield from page.get("Findings") or []
            token = page.get("NextToken")
            if not token:
                return


class WorkflowUpdater:
    """Sets the workflow status of findings (BatchUpdateFindings: what a responder sets once
    it has fixed the issue; a provider's own import cannot change the workflow)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("securityhub:BatchUpdateFindings",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def set_status(self, product_arn: str, ids: Sequence[str], status: str) -> ImportResult:
        result = ImportResult()
        for batch in _batches(ids, BATCH_LIMIT):
            answer = call(
                "securityhub",
                "BatchUpdateFindings",
                product_arn,
                self._client.batch_update_findings,
                FindingIdentifiers=[{"Id": i, "ProductArn": product_arn} for i in batch],
                Workflow={"Status": status},
            )
            failed = [
                {
                    "Id": str((item.get("FindingIdentifier") or {}).get("Id", "")),
                    "ErrorCode": str(item.get("ErrorCode", "")),
                    "ErrorMessage": str(item.get("ErrorMessage", "")),
                }
                for item in answer.get("UnprocessedFindings") or []
            ]
            result.add(ImportResult(len(answer.get("ProcessedFindings") or []), failed))
        return result


class FindingCounter:
    """How often each finding's caller was seen: one item per finding `Id` in the rate-limit
    table, counted atomically (concurrent validators never lose a sighting), expiring 90 days
    after the last one (Security Hub deletes a finding not updated for 90 days).

    At-least-once delivery (EventBridge, retries) may count one Invoke twice."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("dynamodb:UpdateItem",)
    PARTITION_KEY: ClassVar[str] = "pk"
    TTL_ATTRIBUTE: ClassVar[str] = "expires_at"
    KEEP = timedelta(days=90)

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def key(finding_id: str) -> str:
        return "finding#" + hashlib.sha256(finding_id.encode()).hexdigest()

    def seen(self, finding_id: str, at: datetime) -> Sightings:
        """Count one more sighting at `at`; the counts and times after it."""
        return self._update(finding_id, at, "ADD #count :one SET #last = :at, ", {":one": 1})

    def current(self, finding_id: str, at: datetime) -> Sightings:
        """The sightings so far, without counting one (a remediation reports on them)."""
        return self._update(finding_id, at, "SET #last = if_not_exists(#last, :at), ", {})

    def _update(
        self, finding_id: str, at: datetime, update: str, numbers: dict[str, int]
    ) -> Sightings:
        moment = asff_time(at)
        values: dict[str, Any] = {
            ":at": {"S": moment},
            ":expires": {"N": str(int((at + self.KEEP).timestamp()))},
        } | {name: {"N": str(value)} for name, value in numbers.items()}
        answer = call(
            "dynamodb",
            "UpdateItem",
            self._table,
            self._client.update_item,
            TableName=self._table,
            Key={self.PARTITION_KEY: {"S": self.key(finding_id)}},
            UpdateExpression=update + "#first = if_not_exists(#first, :at), #ttl = :expires",
            ExpressionAttributeNames={
                "#last": "last_seen",
                "#first": "first_seen",
                "#ttl": self.TTL_ATTRIBUTE,
            }
            | ({"#count": "seen"} if numbers else {}),
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        item = answer.get("Attributes") or {}
        return Sightings(
            count=int((item.get("seen") or {}).get("N", "0")),
            first_seen=(item.get("first_seen") or {}).get("S", moment),
            last_seen=(item.get("last_seen") or {}).get("S", moment),
        )
