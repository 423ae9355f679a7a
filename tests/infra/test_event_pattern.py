"""The rule's event pattern, run through an emulated EventBridge bus (moto): put_rule with the
pattern, an SQS target, put_events of real-shaped CloudTrail envelopes, and what arrives.

moto 5.2.5 matches a pattern field only against object keys: it does not look inside arrays
of objects, which EventBridge does ("the array structure is crushed out": `resources.ARN`
matches the ARN of each element of `resources`, see aws/event-ruler, JSON Array Matching).
`eventbridge_flattening` teaches moto that documented behaviour for these tests only;
`test_moto_alone_does_not_look_into_arrays_of_objects` notices when moto learns it itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.eventbridge import eventbridge_array_matching
from stacks.pattern import INVOKE_DETAIL_TYPE, event_pattern, function_arn

pytestmark = pytest.mark.infra

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
OWN = [
    function_arn(partition="aws", region=REGION, account=ACCOUNT, name=f"invoke-audit-dev-{name}")
    for name in ("validator", "remediator", "ingest")
]
CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "cloudtrail"


@pytest.fixture
def eventbridge_flattening() -> Iterator[None]:
    with eventbridge_array_matching():
        yield


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


Deliver = Callable[..., bool]


@pytest.fixture
def deliver(aws_env: None, eventbridge_flattening: None) -> Iterator[Deliver]:
    yield from _bus(event_pattern(own_function_arns=OWN))


def _bus(pattern: dict[str, Any]) -> Generator[Deliver, None, None]:
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="matched")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(Name="invoke-audit-invoke", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="invoke-audit-invoke", Targets=[{"Id": "q", "Arn": queue_arn}])

        def deliver(
            record: dict[str, Any],
            *,
            source: str = "aws.lambda",
            detail_type: str = INVOKE_DETAIL_TYPE,
        ) -> bool:
            answer = events.put_events(
                Entries=[
                    {"Source": source, "DetailType": detail_type, "Detail": json.dumps(record)}
                ]
            )
            assert answer["FailedEntryCount"] == 0
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            assert len(messages) <= 1
            if messages:
                body = json.loads(messages[0]["Body"])
                assert body["detail"]["eventID"] == record["eventID"]
            return bool(messages)

        yield deliver


def _function_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{REGION}:{account}:function:{name}"


def invoke_record(
    name: str,
    *,
    event_name: str = "Invoke",
    account: str = ACCOUNT,
    user_identity: dict[str, Any] | None = None,
    request_parameters: dict[str, Any] | str | None = "default",
) -> dict[str, Any]:
    """A Lambda data event shaped like the recorded ones (aidansteele-blog in the corpus)."""
    arn = _function_arn(name, account)
    return {
        "eventVersion": "1.08",
        "userIdentity": user_identity
        or {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:session",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/session",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{ACCOUNT}:role/deployer",
                    "accountId": ACCOUNT,
                }
            },
        },
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": event_name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15",
        "requestParameters": (
            {"functionName": arn, "invocationType": "RequestResponse"}
            if request_parameters == "default"
            else request_parameters
        ),
        "responseElements": None,
        "requestID": f"req-{name}-{event_name}",
        "eventID": f"evt-{name}-{event_name}-{account}",
        "readOnly": False,
        "resources": [{"accountId": account, "type": "AWS::Lambda::Function", "ARN": arn}],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
    }


EVENTBRIDGE = {"type": "AWSService", "invokedBy": "events.amazonaws.com"}


def test_a_monitored_functions_invoke_matches(deliver):
    assert deliver(invoke_record("BlogFunction"))


def test_an_invoke_by_name_with_a_qualifier_by_a_service_matches(deliver):
    record = invoke_record(
        "BlogFunction",
        user_identity=EVENTBRIDGE,
        request_parameters={"functionName": "BlogFunction:live", "invocationType": "Event"},
    )
    assert deliver(record)


def test_a_step_functions_invoke_without_request_parameters_matches(deliver):
    record = invoke_record(
        "BlogFunction",
        request_parameters=None,
        user_identity={
            "type": "AssumedRole",
            "invokedBy": "states.amazonaws.com",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/sfn/session",
            "accountId": ACCOUNT,
        },
    )
    assert deliver(record)


def test_a_function_named_like_ours_in_another_account_matches(deliver):
    assert deliver(invoke_record("invoke-audit-dev-validator", account="999999999999"))


@pytest.mark.parametrize("name", ["invoke-audit-backdoor", "invoke-audit-dev-validator2"])
def test_a_function_named_like_ours_in_our_account_matches(deliver, name):
    # only the exact ARNs are left out: a name is no blind spot
    assert deliver(invoke_record(name))


@pytest.mark.parametrize("own", ["validator", "remediator", "ingest"])
def test_the_pipelines_own_invocations_do_not_match(deliver, own):
    record = invoke_record(f"invoke-audit-dev-{own}", user_identity=EVENTBRIDGE)
    assert not deliver(record)


def test_invoke_execution_does_not_match(deliver):
    record = invoke_record(
        "BlogFunction",
        event_name="InvokeExecution",
        request_parameters=None,
        user_identity={"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
    )
    assert not deliver(record)


def test_other_lambda_api_calls_do_not_match(deliver):
    record = invoke_record("BlogFunction", event_name="GetFunction20150331v2")
    record["eventCategory"] = "Management"
    assert not deliver(record)


def test_other_services_events_do_not_match(deliver):
    record = invoke_record("BlogFunction")
    record.update(
        eventSource="s3.amazonaws.com",
        eventName="PutObject",
        resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::examplebucket/key"}],
    )
    assert not deliver(record, source="aws.s3")
    assert not deliver(invoke_record("BlogFunction"), source="aws.s3")
    assert not deliver(invoke_record("BlogFunction"), detail_type="Object Created")


def test_recorded_invoke_events_from_the_corpus(deliver):
    path = CORPUS / "aidansteele-blog" / "lambda-cloudtrail-data-events.json"
    if not path.is_file():
        pytest.skip(f"corpus not found at {path}")
    records = json.loads(path.read_text())
    assert records
    for record in records:
        expected = record["eventName"] in ("Invoke", "Invoke20150331")
        assert deliver(record) is expected, record["eventName"]


def test_moto_alone_does_not_look_into_arrays_of_objects(aws_env):
    """If this fails, moto now matches inside arrays of objects itself: drop
    `eventbridge_flattening`."""
    pattern = event_pattern(own_function_arns=OWN)
    # Only the element filter: `{"exists": false}` would match what moto does not look into.
    pattern["detail"]["resources"]["ARN"] = pattern["detail"]["resources"]["ARN"][:1]
    bus = _bus(pattern)
    deliver_with_plain_moto = next(bus)
    try:
        assert not deliver_with_plain_moto(invoke_record("BlogFunction"))
    finally:
        bus.close()


@pytest.mark.parametrize("name", ["Invoke20150331", "InvokeAsync", "InvokeWithResponseStream"])
def test_the_other_invocation_names_match(deliver, name):
    assert deliver(invoke_record("BlogFunction", event_name=name))


def test_a_record_without_resources_matches(deliver):
    record = invoke_record("BlogFunction")
    del record["resources"]
    assert deliver(record)
