"""The AWS adapters against moto: what they send, what they return, and the IAM actions they
call, which must be exactly what each class declares (the stack grants those)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore
import botocore.session
import pytest

from lambdas.adapters import (
    ADAPTERS,
    INGEST_ADAPTERS,
    REMEDIATOR_ADAPTERS,
    VALIDATOR_ADAPTERS,
    BackupReader,
    BackupStore,
    HourlyRateLimiter,
    LambdaPermissions,
    LambdaPolicies,
    NoticeMarks,
    Notifier,
    RoleAssumer,
    TrailLogReader,
    ViolationQueue,
    iam_actions,
)
from lambdas.adapters.errors import AwsError, ResourceGoneError
from models.arns import parse_function_arn
from models.exceptions import InputError
from tests.support.aws import (
    CallRecorder,
    aws,
    bucket,
    client,
    create_function,
    fifo_queue,
    notifications,
    old_botocore_lambda_client,
    rate_table,
    receive_all,
    topic_with_inbox,
)
from tests.support.policies import statements
from tests.support.records import ACCOUNT, OTHER_ACCOUNT

pytestmark = pytest.mark.functional

REPO = Path(__file__).resolve().parents[2]


def test_queue_sends_one_fifo_message_grouped_by_function_and_deduplicated_by_event():
    with aws():
        url = fifo_queue()
        recorder = CallRecorder()
        queue = ViolationQueue(recorder.attach(client("sqs")), url)
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f:prod"
        first = queue.send({"kind": "violation"}, group_id=arn, deduplication_id="event-1")
        queue.send({"kind": "violation"}, group_id=arn, deduplication_id="event-1")
        messages = receive_all(url, attributes=True)
    assert first
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"]) == {"kind": "violation"}
    assert messages[0]["Attributes"]["MessageGroupId"] == arn
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "event-1"
    assert set(recorder.actions) == set(ViolationQueue.IAM_ACTIONS)


def test_queue_replaces_ids_sqs_would_refuse_by_their_hash():
    with aws():
        url = fifo_queue()
        queue = ViolationQueue(client("sqs"), url)
        odd = "évent\ud800 id"
        queue.send({"caller": odd}, group_id="g", deduplication_id=odd)
        queue.send({"caller": odd}, group_id="g", deduplication_id=odd)
        messages = receive_all(url, attributes=True)
    assert len(messages) == 1
    dedup = messages[0]["Attributes"]["MessageDeduplicationId"]
    assert len(dedup) == 64
    assert dedup.isalnum()
    assert json.loads(messages[0]["Body"]) == {"caller": odd}


def test_notifier_survives_text_utf_8_cannot_encode():
    with aws():
        topic, inbox = topic_with_inbox()
        Notifier(client("sns"), topic).publish("user/\ud800", "caller user/\ud800", {"c": "\ud800"})
        (note,) = notifications(inbox)
    assert note["Subject"] == "user/?"
    assert "user/\\ud800" in note["Message"]


def test_queue_hashes_a_group_id_longer_than_sqs_allows():
    with aws():
        url = fifo_queue()
        queue = ViolationQueue(client("sqs"), url)
        long_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{'f' * 64}:{'a' * 100}"
        queue.send({}, group_id=long_arn, deduplication_id="e")
        (message,) = receive_all(url, attributes=True)
    group = message["Attributes"]["MessageGroupId"]
    assert len(long_arn) > 128
    assert len(group) == 64
    assert group != long_arn


def test_notifier_publishes_summary_then_json_with_a_safe_subject():
    with aws():
        topic, inbox = topic_with_inbox()
        recorder = CallRecorder()
        notifier = Notifier(recorder.attach(client("sns")), topic)
        notifier.publish("invoke-audit: é\nremoved " + "x" * 200, "Removed `*`.", {"a": 1})
        (note,) = notifications(inbox)
    assert len(note["Subject"]) == 100
    assert "\n" not in note["Subject"]
    assert note["Subject"].isascii()
    summary, _, payload = note["Message"].partition("--- details (JSON) ---")
    assert summary.strip() == "Removed `*`."
    assert json.loads(payload) == {"a": 1}
    assert set(recorder.actions) == set(Notifier.IAM_ACTIONS)


def test_backup_round_trip_and_errors():
    with aws():
        name = bucket()
        recorder = CallRecorder()
        s3 = recorder.attach(client("s3"))
        uri = BackupStore(s3, name).put("backups/a/b.json", {"policy": None, "n": 1})
        reader = BackupReader(s3)
        assert uri == f"s3://{name}/backups/a/b.json"
        assert reader.get(uri) == {"policy": None, "n": 1}
        BackupStore(s3, name).delete(uri)
        with pytest.raises(InputError, match="not in the backup bucket"):
            BackupStore(s3, "other").delete(uri)
        with pytest.raises(ResourceGoneError, match="NoSuchKey"):
            reader.get(uri)  # deleted
        store = BackupStore(s3, name)
        for key in ("p/2025-01-01T00:00:00Z-ev.json", "p/2025-01-02T00:00:00Z-ev.json"):
            store.put(key, {"key": key})
        store.put("p/2025-01-03T00:00:00Z-other.json", {})
        latest = store.latest("p/", "-ev.json")
        assert latest == (
            f"s3://{name}/p/2025-01-02T00:00:00Z-ev.json",
            {"key": "p/2025-01-02T00:00:00Z-ev.json"},
        )
        assert store.latest("p/", "-missing.json") is None
        with pytest.raises(ResourceGoneError, match="NoSuchBucket"):
            BackupStore(s3, "no-such-bucket").put("k", {})
    with pytest.raises(InputError, match="not an s3://BUCKET/KEY"):
        reader.get("https://example.com/x")
    assert set(recorder.actions) == set(BackupStore.IAM_ACTIONS + BackupReader.IAM_ACTIONS)


def test_rate_limiter_counts_per_hour_and_refuses_past_the_limit():
    with aws():
        table = rate_table()
        recorder = CallRecorder()
        limiter = HourlyRateLimiter(recorder.attach(client("dynamodb")), table)
        now = datetime(2025, 1, 2, 3, 59, tzinfo=UTC)
        granted = [limiter.try_acquire(3, now=now) for _ in range(5)]
        released = limiter.release(now=now)
        regranted = limiter.try_acquire(3, now=now)
        next_hour = limiter.try_acquire(3, now=now + timedelta(minutes=1))
        zero = limiter.try_acquire(0, now=now)
        trips = [limiter.first_trip(now=now), limiter.first_trip(now=now)]
        item = client("dynamodb").get_item(
            TableName=table, Key={"pk": {"S": "remediations#2025-01-02T03"}}
        )["Item"]
        with pytest.raises(AwsError):
            HourlyRateLimiter(client("dynamodb"), "no-such-table").try_acquire(1, now=now)
    assert granted == [True, True, True, False, False]
    assert (released, regranted) == (True, True)
    assert trips == [True, False]
    assert next_hour is True
    assert zero is False
    assert item["remediations"] == {"N": "3"}
    assert int(item["expires_at"]["N"]) > now.timestamp()
    assert set(recorder.actions) == set(HourlyRateLimiter.IAM_ACTIONS)


def test_notice_marks_are_claimed_once_released_and_kept_apart_from_the_counters():
    with aws():
        table = rate_table()
        recorder = CallRecorder()
        marks = NoticeMarks(recorder.attach(client("dynamodb")), table)
        now = datetime(2027, 3, 26, 8, tzinfo=UTC)
        keep = now + timedelta(days=90)
        first = marks.claim("expiry-notice#a", now=now, keep_until=keep, about="rule r: x")
        second = marks.claim("expiry-notice#a", now=now, keep_until=keep, about="rule r: x")
        other = marks.claim("expiry-notice#b", now=now, keep_until=keep, about="rule r: y")
        marks.release("expiry-notice#a")
        after_release = marks.claim("expiry-notice#a", now=now, keep_until=keep, about="x")
        item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "expiry-notice#b"}})[
            "Item"
        ]
        with pytest.raises(AwsError):
            NoticeMarks(client("dynamodb"), "no-such-table").claim(
                "expiry-notice#c", now=now, keep_until=keep, about="z"
            )
    assert (first, second, other, after_release) == (True, False, True, True)
    assert item["about"] == {"S": "rule r: y"}
    assert item["expires_at"] == {"N": str(int(keep.timestamp()))}
    assert set(recorder.actions) == set(NoticeMarks.IAM_ACTIONS)


def test_role_assumer_builds_the_member_role_arn_and_caches_credentials():
    with aws():
        recorder = CallRecorder()
        assumer = RoleAssumer(recorder.attach(client("sts")), "invoke-audit-remediation")
        first = assumer.credentials(OTHER_ACCOUNT)
        second = assumer.credentials(OTHER_ACCOUNT)
    assert assumer.role_arn(OTHER_ACCOUNT) == (
        f"arn:aws:iam::{OTHER_ACCOUNT}:role/invoke-audit-remediation"
    )
    assert set(first) == {"AccessKeyId", "SecretAccessKey", "SessionToken"}
    assert first == second
    assert recorder.actions == ["sts:AssumeRole"]
    assert set(recorder.actions) == set(RoleAssumer.IAM_ACTIONS)


def test_trail_log_reader_returns_the_object_bytes():
    with aws():
        name = bucket("trail")
        client("s3").put_object(Bucket=name, Key="AWSLogs/x.json.gz", Body=b"\x1f\x8b")
        recorder = CallRecorder()
        body = TrailLogReader(recorder.attach(client("s3"))).read(name, "AWSLogs/x.json.gz")
    assert body == b"\x1f\x8b"
    assert set(recorder.actions) == set(TrailLogReader.IAM_ACTIONS)


def test_policies_fall_back_to_the_permission_api_when_botocore_lacks_the_new_one(tmp_path):
    with aws():
        arn = create_function("plain")
        client("lambda").add_permission(
            FunctionName="plain", StatementId="s3", Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
        )  # fmt: skip
        old = old_botocore_lambda_client(tmp_path)
        assert not hasattr(old, "get_resource_policy")
        recorder = CallRecorder()
        policies = LambdaPolicies(recorder.attach(old))
        state = policies.read(parse_function_arn(arn))
        again = policies.read(parse_function_arn(arn))
    assert state.api == "permission"
    assert policies.api == "permission"
    assert state.revision_id
    assert [s["Sid"] for s in statements(state.document)] == ["s3"]
    assert again.document == state.document
    assert recorder.actions == ["lambda:GetPolicy", "lambda:GetPolicy"]


def test_permissions_read_reports_no_policy_and_a_missing_function_apart():
    with aws():
        arn = create_function("bare")
        permissions = LambdaPermissions(client("lambda"))
        state = permissions.read(parse_function_arn(arn))
        with pytest.raises(ResourceGoneError, match="Function not found"):
            permissions.read(parse_function_arn(arn.replace("bare", "gone")))
    assert state.document is None
    assert state.revision_id is None


def test_permissions_write_turns_one_policy_into_another_with_revision_ids():
    with aws():
        arn = create_function("perm")
        lam = client("lambda")
        for sid, principal in (("public", "*"), ("s3", "s3.amazonaws.com")):
            lam.add_permission(
                FunctionName="perm", StatementId=sid, Action="lambda:InvokeFunction",
                Principal=principal,
            )  # fmt: skip
        recorder = CallRecorder()
        permissions = LambdaPermissions(recorder.attach(lam))
        ref = parse_function_arn(arn)
        current = permissions.read(ref)
        s3 = next(s for s in statements(current.document) if s["Sid"] == "s3")
        s3 = s3 | {
            "Condition": {
                "StringEquals": {"AWS:SourceAccount": ACCOUNT},
                "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"},
            }
        }
        target = {"Version": "2012-10-17", "Statement": [s3]}
        written = permissions.write(ref, current, target)
        stored = permissions.read(ref)
    assert [s["Sid"] for s in statements(stored.document)] == ["s3"]
    assert statements(stored.document)[0]["Condition"]["ArnLike"] == {
        "AWS:SourceArn": "arn:aws:s3:::examplebucket"
    }
    assert written.revision_id == stored.revision_id != current.revision_id
    assert set(recorder.actions) == set(LambdaPermissions.IAM_ACTIONS)


def test_resource_policy_api_round_trip_per_qualifier():
    with aws():
        arn = create_function("doc")
        lam = client("lambda")
        lam.publish_version(FunctionName="doc")
        lam.create_alias(FunctionName="doc", Name="prod", FunctionVersion="1")
        recorder = CallRecorder()
        policies = LambdaPolicies(recorder.attach(lam))
        alias = parse_function_arn(f"{arn}:prod")
        empty = policies.read(alias)
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "deny-others",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "lambda:InvokeFunction",
                    "Resource": alias.arn,
                    "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}},
                }
            ],
        }
        written = policies.write(alias, empty, document)
        unqualified = policies.read(parse_function_arn(arn))
        deleted = policies.write(alias, policies.read(alias), None)
        after = policies.read(alias)
    assert empty.document is None
    assert statements(written.document)[0]["Effect"] == "Deny"
    assert written.api == "resource-policy"
    assert unqualified.document is None  # the alias has its own policy
    assert deleted.document is None
    assert after.document is None
    assert set(recorder.actions) == set(LambdaPolicies.IAM_ACTIONS) - set(
        LambdaPermissions.IAM_ACTIONS
    )


def test_the_pinned_botocore_knows_the_resource_policy_api():
    # The Lambda asset bundles the botocore pinned in lambdas/requirements.txt (the runtime's
    # own can predate the API); it must be the one tested here, and its model must have it.
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "lambdas" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["botocore"].strip() == botocore.__version__
    model = botocore.session.get_session().get_service_model("lambda")
    assert {"GetResourcePolicy", "PutResourcePolicy", "DeleteResourcePolicy"} <= set(
        model.operation_names
    )


def test_every_adapter_declares_iam_actions_and_the_function_lists_use_known_adapters():
    for cls in ADAPTERS:
        assert cls.IAM_ACTIONS, cls
        assert all(":" in action for action in cls.IAM_ACTIONS), cls
    for group in (VALIDATOR_ADAPTERS, REMEDIATOR_ADAPTERS, INGEST_ADAPTERS):
        assert set(group) <= set(ADAPTERS)
    assert iam_actions(VALIDATOR_ADAPTERS) == (
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "sns:Publish",
        "sqs:SendMessage",
    )
    assert iam_actions(INGEST_ADAPTERS) == ("s3:GetObject", "sns:Publish", "sqs:SendMessage")
    remediator = iam_actions(REMEDIATOR_ADAPTERS)
    assert "lambda:PutResourcePolicy" in remediator
    # Its own queue only to delay a rate-limited message, the DLQ only for a policy Lambda
    # refuses as public; roles in other accounts only through the cross-account adapters.
    assert [a for a in remediator if a.startswith("sqs:")] == [
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
    ]
    assert not any(a.startswith("sts:") for a in remediator)
