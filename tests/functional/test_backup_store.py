"""BackupStore and BackupReader against botocore's Stubber: `latest` pages through every listing
page, and each failing call says which service, operation and location it was about."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambdas.adapters.backup import (
    BackupMacVerifier,
    BackupReader,
    BackupSigner,
    BackupStore,
    parse_s3_uri,
)
from lambdas.adapters.errors import AwsError
from lambdas.core.backups import signed_message
from models.exceptions import InputError
from tests.support.aws import aws, bucket, client, hmac_key

pytestmark = pytest.mark.functional

BUCKET = "backups"
PREFIX = "backups/1/us-east-1/f/$UNQUALIFIED/"


@pytest.fixture
def s3() -> Any:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _page(*keys: str, token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"Contents": [{"Key": k} for k in keys], "IsTruncated": bool(token)}
    if token:
        page["NextContinuationToken"] = token
    return page


def _body(document: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(document).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw))}


def test_latest_reads_every_page_and_takes_the_newest_match(s3: Any) -> None:
    client, stubber = s3
    newest = f"{PREFIX}2025-01-02T00:00:00.000000Z-e1.json"
    stubber.add_response(
        "list_objects_v2",
        _page(f"{PREFIX}2025-01-01T00:00:00.000000Z-e1.json", f"{PREFIX}x-e2.json", token="t1"),
        {"Bucket": BUCKET, "Prefix": PREFIX},
    )
    stubber.add_response(
        "list_objects_v2",
        _page(newest, f"{PREFIX}2025-01-03T00:00:00.000000Z-e2.json"),
        {"Bucket": BUCKET, "Prefix": PREFIX, "ContinuationToken": "t1"},
    )
    stubber.add_response("get_object", _body({"n": 2}), {"Bucket": BUCKET, "Key": newest})
    found = BackupStore(client, BUCKET).latest(PREFIX, "-e1.json")
    assert found == (f"s3://{BUCKET}/{newest}", {"n": 2})


def test_latest_keeps_the_first_pages_matches(s3: Any) -> None:
    client, stubber = s3
    only = f"{PREFIX}2025-01-02T00:00:00.000000Z-e1.json"
    stubber.add_response("list_objects_v2", _page(only, token="t1"))
    stubber.add_response("list_objects_v2", {"IsTruncated": False})
    stubber.add_response("get_object", _body({"n": 1}), {"Bucket": BUCKET, "Key": only})
    assert BackupStore(client, BUCKET).latest(PREFIX, "-e1.json") == (
        f"s3://{BUCKET}/{only}",
        {"n": 1},
    )


def test_latest_finds_none_in_an_empty_listing(s3: Any) -> None:
    client, stubber = s3
    stubber.add_response("list_objects_v2", {"IsTruncated": False})
    assert BackupStore(client, BUCKET).latest(PREFIX, "-e1.json") is None


def test_a_failed_listing_names_its_call_and_place(s3: Any) -> None:
    client, stubber = s3
    stubber.add_client_error("list_objects_v2", "AccessDenied", "no", 403)
    with pytest.raises(AwsError) as caught:
        BackupStore(client, BUCKET).latest(PREFIX, "-e1.json")
    error = caught.value
    assert (error.service, error.operation, error.resource) == (
        "s3",
        "ListObjectsV2",
        f"s3://{BUCKET}/{PREFIX}",
    )


def test_a_failed_read_names_its_call_and_place(s3: Any) -> None:
    client, stubber = s3
    key = f"{PREFIX}2025-01-02T00:00:00.000000Z-e1.json"
    stubber.add_response("list_objects_v2", _page(key))
    stubber.add_client_error("get_object", "AccessDenied", "no", 403)
    with pytest.raises(AwsError) as caught:
        BackupStore(client, BUCKET).latest(PREFIX, "-e1.json")
    error = caught.value
    assert (error.service, error.operation, error.resource) == (
        "s3",
        "GetObject",
        f"s3://{BUCKET}/{key}",
    )


def test_a_backup_that_is_no_json_object_names_its_place(s3: Any) -> None:
    client, stubber = s3
    key = f"{PREFIX}2025-01-02T00:00:00.000000Z-e1.json"
    stubber.add_response("list_objects_v2", _page(key))
    raw = b"[1, 2]"
    stubber.add_response("get_object", {"Body": StreamingBody(io.BytesIO(raw), len(raw))})
    expected = re.escape(f"s3://{BUCKET}/{key}: a backup is a JSON object")
    with pytest.raises(InputError, match=f"^{expected}$"):
        BackupStore(client, BUCKET).latest(PREFIX, "-e1.json")


def test_a_backup_that_is_no_json_names_its_place_and_the_parse_error(s3: Any) -> None:
    client, stubber = s3
    raw = b"{not json"
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(raw), len(raw))},
        {"Bucket": "elsewhere", "Key": "old/b.json"},
    )
    with pytest.raises(InputError) as caught:
        BackupReader(client).get("s3://elsewhere/old/b.json")
    assert str(caught.value) == (
        "s3://elsewhere/old/b.json: not a JSON backup: Expecting property name enclosed in"
        " double quotes: line 1 column 2 (char 1)"
    )


def test_the_reader_reads_a_backup_from_any_location(s3: Any) -> None:
    client, stubber = s3
    stubber.add_response(
        "get_object", _body({"policy": None}), {"Bucket": "elsewhere", "Key": "old/b.json"}
    )
    assert BackupReader(client).get("s3://elsewhere/old/b.json") == {"policy": None}


def test_a_failed_reader_call_names_its_call_and_place(s3: Any) -> None:
    client, stubber = s3
    stubber.add_client_error("get_object", "NoSuchKey", "gone", 404)
    with pytest.raises(AwsError) as caught:
        BackupReader(client).get("s3://elsewhere/old/b.json")
    error = caught.value
    assert (error.service, error.operation, error.resource, error.code) == (
        "s3",
        "GetObject",
        "s3://elsewhere/old/b.json",
        "NoSuchKey",
    )


def test_a_failed_delete_names_its_call_and_place(s3: Any) -> None:
    client, stubber = s3
    uri = f"s3://{BUCKET}/{PREFIX}2025-01-02T00:00:00.000000Z-e1.json"
    stubber.add_client_error("delete_object", "AccessDenied", "no", 403)
    with pytest.raises(AwsError) as caught:
        BackupStore(client, BUCKET).delete(uri)
    error = caught.value
    assert (error.service, error.operation, error.resource) == ("s3", "DeleteObject", uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b/k.json", ("b", "k.json")),
        ("s3://b//XX/k.json", ("b", "XX/k.json")),
        ("s3://b/X/k.json", ("b", "X/k.json")),
    ],
)
def test_an_s3_uri_is_its_bucket_and_key(uri: str, expected: tuple[str, str]) -> None:
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["s3://b", "s3://b/", "https://b/k", "s3:///k", "b/k"])
def test_an_s3_uri_without_bucket_or_key_is_refused(uri: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_s3_uri(uri)
    assert str(caught.value) == f"{uri}: not an s3://BUCKET/KEY location"


@pytest.fixture
def kms() -> Any:
    client = boto3.client(
        "kms", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


KEY = "arn:aws:kms:us-east-1:123456789012:key/mac"
BACKUP = {"function": "arn:aws:lambda:us-east-1:123456789012:function:f", "policy": None}


def test_a_backup_is_signed_over_its_message_with_the_hmac_key(kms: Any) -> None:
    client, stubber = kms
    stubber.add_response(
        "generate_mac",
        {"Mac": b"\x01\x02", "MacAlgorithm": "HMAC_SHA_256", "KeyId": KEY},
        {"KeyId": KEY, "MacAlgorithm": "HMAC_SHA_256", "Message": signed_message(BACKUP)},
    )
    assert BackupSigner(client, KEY).sign(BACKUP) == BACKUP | {
        "signature": {"algorithm": "HMAC_SHA_256", "key": KEY, "mac": "AQI="}
    }


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "AQI=",
        {"algorithm": "HMAC_SHA_256"},
        {"algorithm": "HMAC_SHA_256", "mac": 5},
        {"algorithm": "HMAC_SHA_512", "mac": "AQI="},
        {"mac": "AQI="},
        {"algorithm": "HMAC_SHA_256", "mac": "not base64!"},
        {"algorithm": "HMAC_SHA_256", "mac": "AQ I="},  # base64 with a stray character
    ],
)
def test_a_signature_of_the_wrong_shape_fails_without_asking_kms(kms: Any, signature: Any) -> None:
    client, _ = kms
    assert BackupMacVerifier(client, KEY).verify(BACKUP | {"signature": signature}) is False


@pytest.mark.parametrize(("valid", "expected"), [(True, True), (False, False)])
def test_a_signature_is_verified_with_the_deployments_key(
    kms: Any, valid: bool, expected: bool
) -> None:
    client, stubber = kms
    signed = BACKUP | {"signature": {"algorithm": "HMAC_SHA_256", "key": "other", "mac": "AQI="}}
    stubber.add_response(
        "verify_mac",
        {"KeyId": KEY, "MacValid": valid, "MacAlgorithm": "HMAC_SHA_256"},
        {
            "KeyId": KEY,
            "MacAlgorithm": "HMAC_SHA_256",
            "Message": signed_message(BACKUP),
            "Mac": b"\x01\x02",
        },
    )
    assert BackupMacVerifier(client, KEY).verify(signed) is expected


def test_an_invalid_mac_fails_and_other_kms_errors_are_raised(kms: Any) -> None:
    client, stubber = kms
    signed = BACKUP | {"signature": {"algorithm": "HMAC_SHA_256", "mac": "AQI="}}
    stubber.add_client_error("verify_mac", "KMSInvalidMacException", "no", 400)
    stubber.add_client_error("verify_mac", "AccessDeniedException", "no", 400)
    verifier = BackupMacVerifier(client, KEY)
    assert verifier.verify(signed) is False
    with pytest.raises(AwsError) as caught:
        verifier.verify(signed)
    assert (caught.value.service, caught.value.operation, caught.value.resource) == (
        "kms",
        "VerifyMac",
        KEY,
    )


def test_every_call_of_the_store_and_reader_names_the_bucket_owner(s3: Any) -> None:
    client, stubber = s3
    owner = {"ExpectedBucketOwner": "123456789012"}
    key = f"{PREFIX}2025-01-02T00:00:00.000000Z-e1.json"
    stubber.add_response(
        "put_object",
        {},
        {
            "Bucket": BUCKET,
            "Key": key,
            "Body": b'{\n  "n": 1\n}',
            "ContentType": "application/json",
        }
        | owner,
    )
    stubber.add_response(
        "list_objects_v2", _page(key), {"Bucket": BUCKET, "Prefix": PREFIX} | owner
    )
    stubber.add_response("get_object", _body({"n": 1}), {"Bucket": BUCKET, "Key": key} | owner)
    stubber.add_response("delete_object", {}, {"Bucket": BUCKET, "Key": key} | owner)
    stubber.add_response("get_object", _body({"n": 1}), {"Bucket": BUCKET, "Key": key} | owner)
    store = BackupStore(client, BUCKET, expected_owner="123456789012")
    assert store.put(key, {"n": 1}) == f"s3://{BUCKET}/{key}"
    assert store.latest(PREFIX, "-e1.json") == (f"s3://{BUCKET}/{key}", {"n": 1})
    store.delete(f"s3://{BUCKET}/{key}")
    reader = BackupReader(client, expected_owner="123456789012")
    assert reader.get(f"s3://{BUCKET}/{key}") == {"n": 1}


def test_a_delete_outside_the_backup_bucket_is_refused(s3: Any) -> None:
    client, _ = s3
    with pytest.raises(InputError) as refused:
        BackupStore(client, BUCKET).delete("s3://elsewhere/k.json")
    assert str(refused.value) == f"s3://elsewhere/k.json: not in the backup bucket {BUCKET}"


def test_a_signed_backup_is_signed_as_it_reads_back(s3: Any, kms: Any) -> None:
    client, stubber = s3
    kms_client, kms_stubber = kms
    moment = datetime(2025, 1, 2, tzinfo=UTC)
    as_read = {"time": "2025-01-02 00:00:00+00:00", "n": 1}
    kms_stubber.add_response(
        "generate_mac",
        {"Mac": b"\x01", "MacAlgorithm": "HMAC_SHA_256", "KeyId": KEY},
        {"KeyId": KEY, "MacAlgorithm": "HMAC_SHA_256", "Message": signed_message(as_read)},
    )
    signed = as_read | {"signature": {"algorithm": "HMAC_SHA_256", "key": KEY, "mac": "AQ=="}}
    body = json.dumps(signed, indent=2, sort_keys=True).encode()
    stubber.add_response(
        "put_object",
        {},
        {"Bucket": BUCKET, "Key": "k.json", "Body": body, "ContentType": "application/json"},
    )
    store = BackupStore(client, BUCKET, signer=BackupSigner(kms_client, KEY))
    store.put("k.json", {"time": moment, "n": 1})


def test_a_failed_signature_names_its_call_and_key(kms: Any) -> None:
    client, stubber = kms
    stubber.add_client_error("generate_mac", "DisabledException", "off", 400)
    with pytest.raises(AwsError) as caught:
        BackupSigner(client, KEY).sign(BACKUP)
    assert (caught.value.service, caught.value.operation, caught.value.resource) == (
        "kms",
        "GenerateMac",
        KEY,
    )


def test_a_failed_write_names_its_call_and_place(s3: Any) -> None:
    client, stubber = s3
    stubber.add_client_error("put_object", "AccessDenied", "no", 403)
    with pytest.raises(AwsError) as caught:
        BackupStore(client, BUCKET).put("k.json", {"n": 1})
    error = caught.value
    assert (error.service, error.operation, error.resource, error.code) == (
        "s3",
        "PutObject",
        f"s3://{BUCKET}/k.json",
        "AccessDenied",
    )


def test_an_unsigned_backup_stores_a_time_as_its_text(s3: Any) -> None:
    client, stubber = s3
    body = b'{\n  "n": 1,\n  "time": "2025-01-02 00:00:00+00:00"\n}'
    stubber.add_response(
        "put_object",
        {},
        {"Bucket": BUCKET, "Key": "k.json", "Body": body, "ContentType": "application/json"},
    )
    stored = BackupStore(client, BUCKET).put(
        "k.json", {"time": datetime(2025, 1, 2, tzinfo=UTC), "n": 1}
    )
    assert stored == f"s3://{BUCKET}/k.json"


def test_a_stored_signed_backup_verifies_and_any_change_to_it_fails() -> None:
    with aws():
        kms, s3 = client("kms"), client("s3")
        key, other_key = hmac_key(kms), hmac_key(kms)
        name = bucket(s3=s3)
        store = BackupStore(s3, name, signer=BackupSigner(kms, key))
        uri = store.put("k.json", {"time": datetime(2025, 1, 2, tzinfo=UTC), "policy": None})
        stored = BackupReader(s3).get(uri)
        verifier = BackupMacVerifier(kms, key)
        mac = stored["signature"]["mac"]
        assert stored["time"] == "2025-01-02 00:00:00+00:00"
        assert verifier.verify(stored) is True
        assert verifier.verify(stored | {"policy": {"Statement": []}}) is False
        # the same bytes once the stray character is dropped: still not the signature
        loose = stored | {"signature": stored["signature"] | {"mac": f"{mac[:4]}*{mac[4:]}"}}
        assert verifier.verify(loose) is False
        assert BackupMacVerifier(kms, other_key).verify(stored) is False
