"""Policy backups in S3: written before every policy change, read by `invoke-audit restore`."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlparse

from lambdas.adapters._calls import call
from lambdas.core.exceptions import InputError

__all__ = ["BackupReader", "BackupWriter", "parse_s3_uri"]


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an `s3://bucket/key` URI."""
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise InputError(f"{uri}: not an s3://BUCKET/KEY location")
    return parsed.netloc, key


class BackupWriter:
    """Writes one backup object; the bucket (versioned, encrypted by default) is fixed."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("s3:PutObject",)

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, backup: dict[str, Any]) -> str:
        """Store `backup` as JSON under `key`; returns its s3:// location."""
        uri = f"s3://{self._bucket}/{key}"
        body = json.dumps(backup, indent=2, sort_keys=True, default=str).encode()
        call(
            "s3",
            "PutObject",
            uri,
            self._client.put_object,
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
        )
        return uri


class BackupReader:
    """Reads a backup object back."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("s3:GetObject",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, uri: str) -> dict[str, Any]:
        bucket, key = parse_s3_uri(uri)
        response = call("s3", "GetObject", uri, self._client.get_object, Bucket=bucket, Key=key)
        try:
            backup = json.loads(response["Body"].read())
        except ValueError as error:
            raise InputError(f"{uri}: not a JSON backup: {error}") from error
        if not isinstance(backup, dict):
            raise InputError(f"{uri}: a backup is a JSON object")
        return backup
