"""CloudTrail log files delivered to the trail bucket, read by the ingest function."""

from __future__ import annotations

from typing import Any, ClassVar

from lambdas.adapters._calls import call

__all__ = ["TrailLogReader"]


class TrailLogReader:
    """Reads one log file object (gzipped JSON `{"Records": [...]}`) as bytes."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("s3:GetObject",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, bucket: str, key: str) -> bytes:
        response = call(
            "s3",
            "GetObject",
            f"s3://{bucket}/{key}",
            self._client.get_object,
            Bucket=bucket,
            Key=key,
        )
        body: bytes = response["Body"].read()
        return body
