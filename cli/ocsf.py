"""OCSF Detection Findings (class 2004) for `invoke-audit scan --format ocsf`.

One finding per function, caller and verdict (a `CallerGroup`): `count`, `start_time` and
`end_time` say how often and when the caller was seen; `finding_info.uid` is the same on every
run for the same function, caller and verdict, so a SIEM can de-duplicate repeated scans.
The verdict is the decision core's; this module only says it in OCSF's words.

Severity: a violation under an enforce rule is High, under a monitor rule Medium; a caller
denied after a rewrite (`broken`) is High; a function no rule covers (`unmonitored`) is
Informational.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib import metadata
from typing import Any

from cli.callers import CallerGroup
from models.names import PROJECT

__all__ = ["FINDING_VERDICTS", "OCSF_VERSION", "detection_finding", "epoch_ms"]

OCSF_VERSION = "1.7.0"
CLASS_UID = 2004  # Detection Finding
CATEGORY_UID = 2  # Findings
ACTIVITY_CREATE = 1
STATUS_NEW = 1
SEVERITY_CAPTIONS = {1: "Informational", 2: "Low", 3: "Medium", 4: "High"}

# The verdicts that are findings; other verdicts (allowed, ignored, ...) are not.
FINDING_VERDICTS = ("violation", "broken", "unmonitored")


def _product_version() -> str:
    try:
        return metadata.version(PROJECT)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def epoch_ms(value: str | None) -> int | None:
    """An ISO 8601 UTC time (as scan rows carry it) in milliseconds since the epoch."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


def _severity(group: CallerGroup) -> int:
    if group.verdict == "unmonitored":
        return 1
    if group.verdict == "violation" and group.mode == "monitor":
        return 3
    return 4


def _title(group: CallerGroup) -> str:
    caller = group.caller or "an unidentified caller"
    function = group.function or "an unidentified function"
    if group.verdict == "unmonitored":
        return f"{caller} invoked {function}, which no allowlist rule covers"
    if group.verdict == "broken":
        return f"{caller}, an allowed caller, was denied invoking {function} after a rewrite"
    return f"{caller} invoked {function} without an allowlist entry"


def finding_uid(group: CallerGroup) -> str:
    """Stable across runs: the function, the caller and the verdict, hashed."""
    text = "\n".join((group.function or "", group.caller or "", group.verdict))
    return f"{PROJECT}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _resource(group: CallerGroup) -> dict[str, Any]:
    arn = group.function or ""
    parts = arn.split(":")
    resource: dict[str, Any] = {"type": "AWS::Lambda::Function", "uid": arn}
    if len(parts) >= 7 and parts[0] == "arn":
        resource["name"] = parts[6] + (f":{parts[7]}" if len(parts) > 7 else "")
        resource["cloud_partition"] = parts[1]
        resource["region"] = parts[3]
    return resource


def detection_finding(group: CallerGroup, *, time_ms: int) -> dict[str, Any]:
    """The OCSF Detection Finding for one group; `time_ms`: when the finding was made."""
    if group.verdict not in FINDING_VERDICTS:
        raise ValueError(f"{group.verdict} is not a finding")
    severity = _severity(group)
    first, last = epoch_ms(group.first_seen), epoch_ms(group.last_seen)
    info: dict[str, Any] = {
        "uid": finding_uid(group),
        "title": _title(group),
        "desc": group.reason,
        "types": [f"Lambda invoke: {group.verdict}"],
        "created_time": time_ms,
    }
    finding: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "severity_id": severity,
        "severity": SEVERITY_CAPTIONS[severity],
        "status_id": STATUS_NEW,
        "status": "New",
        "is_alert": group.verdict != "unmonitored",
        "time": time_ms,
        "count": group.count,
        "message": _title(group),
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": PROJECT,
                "uid": PROJECT,
                "vendor_name": PROJECT,
                "version": _product_version(),
            },
            "log_name": "scan",
        },
        "finding_info": info,
        "resources": [_resource(group)],
        "cloud": {"provider": "AWS"},
        "unmapped": {
            "verdict": group.verdict,
            "caller": group.caller,
            "caller_account": group.caller_account,
            "rule": group.rule,
            "mode": group.mode,
            "event_ids": list(group.event_ids),
        },
    }
    if group.region:
        finding["cloud"]["region"] = group.region
    if group.account:
        finding["cloud"]["account"] = {"uid": group.account}
    if first is not None:
        finding["start_time"] = info["first_seen_time"] = first
    if last is not None:
        finding["end_time"] = info["last_seen_time"] = last
    return finding
