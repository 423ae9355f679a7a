"""What the CLI tells a person whose input holds nothing it can judge, and how to fix it."""

from __future__ import annotations

__all__ = ["no_invokes", "plural"]


def plural(count: int, singular: str, many: str | None = None) -> str:
    """`1 file`, `2 files`, `0 files`."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def no_invokes(records: int, files: int) -> list[str]:
    """Lines explaining that the input holds no Lambda Invoke data events, and what to do."""
    return [
        f"no Lambda Invoke data events in {plural(records, 'CloudTrail record')} from "
        f"{plural(files, 'file')}: the trail that wrote them does not record Lambda data "
        "events (most trails record management events only).",
        "To see who invokes your functions: deploy invoke-audit in monitor mode first (README, "
        "'Adopting it safely'); its trail records every Invoke and nothing is changed. After "
        "some days of traffic, learn from that trail's log files: invoke-audit learn "
        "s3://TRAIL-BUCKET/AWSLogs/ -o config/allowlist.yaml (TRAIL-BUCKET: the stack output "
        "TrailBucketName).",
    ]
