"""Policy backups in S3: written (and signed) before every policy change, read and verified
by `invoke-audit restore`.

The signature is an HMAC made by KMS (`GenerateMac` / `VerifyMac`, HMAC_SHA_256) with the
deployment's dedicated HMAC key over `lambdas.core.backups.signed_message`. `expected_owner`
(an account id) is sent as `ExpectedBucketOwner` on every S3 call: a bucket of that name in
another account answers 403 instead of being read or written.
"""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar
from urllib.parse import urlparse

from lambdas.adapters._calls import call
from lambdas.adapters.errors import AwsError
from lambdas.core.backups import MAC_ALGORITHM, SIGNATURE_FIELD, signed_message
from models.exceptions import InputError

__all__ = ["BackupMacVerifier", "BackupReader", "BackupSigner", "BackupStore", "parse_s3_uri"]


def _owner(expected_owner: str | None) -> dict[str, str]:
    return {"ExpectedBucketOwner": expected_owner} if expected_owner else {}


class BackupSigner:
    """Signs a backup with the HMAC key (the remediator's)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("kms:GenerateMac",)

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def sign(self, backup: dict[str, Any]) -> dict[str, Any]:
        """`backup` with its `signature` field: {algorithm, key, mac (base64)}."""
        response = call(
            "kms",
            "GenerateMac",
            self._key_id,
            self._client.generate_mac,
            KeyId=self._key_id,
            MacAlgorithm=MAC_ALGORITHM,
            Message=signed_message(backup),
        )
        signature = {
            "algorithm": MAC_ALGORITHM,
            "key": self._key_id,
            "mac": base64.b64encode(response["Mac"]).decode(),
        }
        return {**backup, SIGNATURE_FIELD: signature}


class BackupMacVerifier:
    """Verifies a backup's signature with the deployment's HMAC key, whatever key the file
    names (a file signed with another key fails)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("kms:VerifyMac",)

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def verify(self, backup: dict[str, Any]) -> bool:
        signature = backup.get(SIGNATURE_FIELD)
        if not isinstance(signature, dict) or not isinstance(signature.get("mac"), str):
            return False
        if signature.get("algorithm") != MAC_ALGORITHM:
            return False
        try:
            mac = base64.b64decode(signature["mac"], validate=True)
        except ValueError:
            return False
        try:
            response = call(
                "kms",
                "VerifyMac",
                self._key_id,
                self._client.verify_mac,
                KeyId=self._key_id,
                MacAlgorithm=MAC_ALGORITHM,
                Message=signed_message(backup),
                Mac=mac,
            )
        except AwsError as error:
            if error.code == "KMSInvalidMacException":
                return False
            raise
        return bool(response.get("MacValid"))


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
    """Reads a backup from an s3:// location (the operator's restore)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("s3:GetObject",)

    def __init__(self, client: Any, *, expected_owner: str | None = None) -> None:
        self._client = client
        self._owner = _owner(expected_owner)

    def get(self, uri: str) -> dict[str, Any]:
        bucket, key = parse_s3_uri(uri)
        response = call(
            "s3", "GetObject", uri, self._client.get_object, Bucket=bucket, Key=key, **self._owner
        )
        return _json_object(response["Body"].read(), uri)


class BackupStore:
    """The remediator's backups in one bucket (versioned, encrypted by default)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:GetObject",
    )

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        expected_owner: str | None = None,
        signer: BackupSigner | None = None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._owner = _owner(expected_owner)
        self._signer = signer

    @property
    def bucket(self) -> str:
        return self._bucket

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def put(self, key: str, backup: dict[str, Any]) -> str:
        """Store `backup` as JSON under `key`, signed when there is a signer; returns its
        s3:// location."""
        uri = self.uri(key)
        if self._signer is not None:
            # Signed as it will read back: what JSON turns into strings, a string.
            backup = self._signer.sign(json.loads(json.dumps(backup, default=str)))
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
            **self._owner,
        )
        return uri

    def delete(self, uri: str) -> None:
        """Remove a backup of a write that did not happen (in the versioned bucket this
        leaves a delete marker: the object stays recoverable)."""
        bucket, key = parse_s3_uri(uri)
        if bucket != self._bucket:
            raise InputError(f"{uri}: not in the backup bucket {self._bucket}")
        call(
            "s3",
            "DeleteObject",
            uri,
            self._client.delete_object,
            Bucket=bucket,
            Key=key,
            **self._owner,
        )

    def latest(self, prefix: str, suffix: str) -> tuple[str, dict[str, Any]] | None:
        """The newest backup under `prefix` whose key ends with `suffix` (keys start with the
        time, so the newest sorts last), with its location; None if there is none."""
        keys: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, **self._owner}
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
            "s3",
            "GetObject",
            uri,
            self._client.get_object,
            Bucket=self._bucket,
            Key=max(keys),
            **self._owner,
        )
        return uri, _json_object(response["Body"].read(), uri)
