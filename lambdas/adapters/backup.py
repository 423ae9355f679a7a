"""Policy backups in S3: written before every policy change, read by `invoke-audit restore`."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlparse

from lambdas.adapters._calls import call
from models.exceptions import InputError

__all__ = ["BackupReader", "BackupStore", "parse_s3_uri"]


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an `s3://bucket/key` URI."""
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise InputError(f"{uri}: not an s3://BUCKET/KEY location")
    return parsed.netloc, key


def _json_object(body: bytes, uri: str) -> dict[str, Any]:
    try:
        backup = json.loads(body)
    except ValueError as error:
        raise InputError(f"{uri}: not a JSON backup: {error}") from None
    if not isinstance(backup, dict):
        raise InputError(f"{uri}: a backup is a JSON object")
    return backup


class BackupReader:
    """Reads a backup from any s3:// location (the operator's restore)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("s3:GetObject",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, uri: str) -> dict[str, Any]:
        bucket, key = parse_s3_uri(uri)
        response = call("s3", "GetObject", uri, self._client.get_object, Bucket=bucket, Key=key)
        return _json_object(response["Body"].read(), uri)


class BackupStore:
    """The remediator's backups in one bucket (versioned, encrypted by default)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetObject",
    )

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def put(self, key: str, backup: dict[str, Any]) -> str:
        """Store `backup` as JSON under `key`; returns its s3:// location."""
        uri = self.uri(key)
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

    def delete(self, uri: str) -> None:
        """Remove a backup of a write that did not happen (in the versioned bucket this
        leaves a delete marker: the object stays recoverable)."""
        bucket, key = parse_s3_uri(uri)
        if bucket != self._bucket:
            raise InputError(f"{uri}: not in the backup bucket {self._bucket}")
        call("s3", "DeleteObject", uri, self._client.delete_object, Bucket=bucket, Key=key)

    def latest(self, prefix: str, suffix: str) -> tuple[str, dict[str, Any]] | None:
        """The newest backup under `prefix` whose key ends with `suffix` (keys start with the
        time, so the newest sorts last), with its location; None if there is none."""
        keys: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix}
        while True:
            page = call(
                "s3", "ListObjectsV2", self.uri(prefix), self._client.list_objects_v2, **kwargs
            )
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
        if not keys:
            return None
        uri = self.uri(max(keys))
        response = call(
            "s3", "GetObject", uri, self._client.get_object, Bucket=self._bucket, Key=max(keys)
        )
        return uri, _json_object(response["Body"].read(), uri)
