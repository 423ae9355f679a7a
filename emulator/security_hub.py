"""Security Hub as invoke-audit uses it, closing moto 5.2.5's gaps for the tests and the demo.

What moto does, what AWS documents (Security Hub API reference: BatchImportFindings,
BatchUpdateFindings, GetFindings, Workflow), and how it is closed here:

- `BatchUpdateFindings` is missing (moto answers "not yet implemented"). AWS sets the given
  workflow status on each finding named by `FindingIdentifiers` (Id + ProductArn) and lists
  the others as `UnprocessedFindings` (`FindingNotFound`). Answered here, for every boto3
  client created after :func:`install` (a `before-call` handler, as
  :mod:`emulator.access_analyzer` answers its checks), on moto's own stored findings.
- `BatchImportFindings` of an existing `Id` replaces every field in moto, `Workflow`
  included. AWS ignores a provider's `Workflow` once the finding exists ("After a finding is
  created, BatchImportFindings cannot be used to update ... Workflow"), and resets it to NEW
  when `RecordState` goes from ARCHIVED to ACTIVE or `Compliance.Status` from PASSED to
  FAILED, WARNING or NOT_AVAILABLE. Kept so here.
- `GetFindings` ignores `Filters` in moto. AWS applies them; the string filters invoke-audit
  sends (`EQUALS` on top-level fields: ProductArn, GeneratorId, RecordState) are applied
  here, with NOT_EQUALS and PREFIX; any other filter is refused (InvalidInputException), so
  a test never passes on a filter the emulator silently ignored.

The stored findings are moto's (`moto.securityhub.models.securityhub_backends`), so the
in-process mock and the server on 127.0.0.1 both see the changes.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from botocore import handlers
from botocore.awsrequest import AWSResponse
from moto.securityhub.exceptions import InvalidInputException
from moto.securityhub.models import SecurityHubBackend, securityhub_backends
from moto.utilities.paginator import paginate

__all__ = ["install"]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"installed": False}
_RESET_COMPLIANCE = {"FAILED", "WARNING", "NOT_AVAILABLE"}
_FILTER_FIELDS = {"ProductArn", "GeneratorId", "RecordState", "AwsAccountId", "Id"}
_ORIGINAL_IMPORT = SecurityHubBackend.batch_import_findings


def _status(finding: dict[str, Any], field: str) -> str | None:
    value = finding.get(field)
    return value.get("Status") if isinstance(value, dict) else None


def _batch_import_findings(
    self: SecurityHubBackend, findings: list[dict[str, Any]]
) -> tuple[int, int, list[dict[str, Any]]]:
    """moto's import, with the workflow AWS keeps for an existing finding."""
    kept: dict[str, dict[str, Any] | None] = {}
    for incoming in findings:
        old = next((f.data for f in self.findings if f.id == incoming.get("Id")), None)
        if old is None:
            continue
        workflow = old.get("Workflow")
        reset = (
            old.get("RecordState") == "ARCHIVED" and incoming.get("RecordState") == "ACTIVE"
        ) or (
            _status(old, "Compliance") == "PASSED"
            and _status(incoming, "Compliance") in _RESET_COMPLIANCE
        )
        kept[str(incoming["Id"])] = {"Status": "NEW"} if reset else workflow
    answer = _ORIGINAL_IMPORT(self, findings)
    for finding in self.findings:
        if finding.id in kept:
            if kept[finding.id] is None:
                finding.data.pop("Workflow", None)
            else:
                finding.data["Workflow"] = kept[finding.id]
    return answer


def _matches(finding: dict[str, Any], filters: dict[str, Any] | None) -> bool:
    for field, conditions in (filters or {}).items():
        if field not in _FILTER_FIELDS:
            raise InvalidInputException(
                op="GetFindings", msg=f"the emulator does not apply the filter {field}"
            )
        value = str(finding.get(field, ""))
        for condition in conditions:
            wanted, comparison = condition.get("Value", ""), condition.get("Comparison")
            if comparison == "EQUALS" and value != wanted:
                return False
            if comparison == "NOT_EQUALS" and value == wanted:
                return False
            if comparison == "PREFIX" and not value.startswith(wanted):
                return False
            if comparison not in ("EQUALS", "NOT_EQUALS", "PREFIX"):
                raise InvalidInputException(
                    op="GetFindings", msg=f"the emulator does not apply {comparison}"
                )
    return True


# Named as moto's method: moto's paginator finds its settings by the function's name.
@paginate(pagination_model=SecurityHubBackend.PAGINATION_MODEL)
def get_findings(
    self: SecurityHubBackend,
    filters: dict[str, Any] | None = None,
    sort_criteria: list[dict[str, str]] | None = None,
    max_results: int | None = None,
) -> list[dict[str, Any]]:
    return [f.as_dict() for f in self.findings if _matches(f.data, filters)]


def _batch_update_findings(
    params: dict[str, Any], model: Any, **kwargs: Any
) -> tuple[AWSResponse, dict[str, Any]]:
    body = params.get("body") or b"{}"
    given = json.loads(body.decode() if isinstance(body, bytes) else body)
    processed: list[dict[str, str]] = []
    unprocessed: list[dict[str, Any]] = []
    for identifier in given.get("FindingIdentifiers", []):
        parts = str(identifier.get("ProductArn", "")).split(":")
        region, account = (parts[3], parts[4]) if len(parts) > 4 else ("", "")
        backend = securityhub_backends[account][region] if account and region else None
        found = next(
            (f for f in (backend.findings if backend else []) if f.id == identifier.get("Id")),
            None,
        )
        if found is None or found.data.get("ProductArn") != identifier.get("ProductArn"):
            unprocessed.append(
                {
                    "FindingIdentifier": identifier,
                    "ErrorCode": "FindingNotFound",
                    "ErrorMessage": "Finding Not Found",
                }
            )
            continue
        if "Workflow" in given:
            found.data["Workflow"] = {"Status": given["Workflow"]["Status"]}
        processed.append(identifier)
    parsed = {
        "ProcessedFindings": processed,
        "UnprocessedFindings": unprocessed,
        "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0},
    }
    return AWSResponse("https://emulated", 200, {}, None), parsed


def install() -> None:
    """Close the three gaps (module docstring); idempotent."""
    with _LOCK:
        if _STATE["installed"]:
            return
        SecurityHubBackend.batch_import_findings = _batch_import_findings  # type: ignore[method-assign]
        SecurityHubBackend.get_findings = get_findings  # type: ignore[method-assign]
        handlers.BUILTIN_HANDLERS.append(
            ("before-call.securityhub.BatchUpdateFindings", _batch_update_findings)
        )
        _STATE["installed"] = True
