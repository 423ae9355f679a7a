"""The log files an S3 notification names, and the decisions over their records. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from lambdas.core.decide import Decision
from lambdas.core.inputs import records_from_bytes
from lambdas.core.trust import judge_record
from lambdas.runtime.settings import Runtime

__all__ = ["decisions", "log_objects"]

# CloudTrail writes digest and Insights files beside the logs: only logs hold records.
_LOG_FOLDER = "/CloudTrail/"


def log_objects(event: Any) -> list[tuple[str, str]]:
    """(bucket, key) of each CloudTrail log file an S3 event notification announces."""
    objects = []
    for record in (event or {}).get("Records") or []:
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = unquote_plus((s3.get("object") or {}).get("key") or "")
        if bucket and _LOG_FOLDER in f"/{key}":
            objects.append((bucket, key))
    return objects


def decisions(data: bytes, source: str, settings: Runtime) -> Iterator[tuple[Decision, Any]]:
    """(decision, record) for every record of one log file, as the validator would judge it."""
    now = datetime.now(UTC)
    for record in records_from_bytes(data, source):
        decision = judge_record(
            record,
            settings.config,
            own_functions=settings.own_functions,
            trusted=settings.trusted_accounts,
            now=now,
        )
        yield decision, record
