"""Builders shared by the adapter, validator, remediator, ingest and blog-scenario tests.

No tests here: functions that create moto resources, and a recorder of the IAM actions that
clients call (to compare with the adapters' IAM_ACTIONS).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import pytest
from botocore.loaders import Loader

from emulator import create_function as emulator_create_function
from emulator import emulated_aws
from models.arns import parse_function_arn

pytestmark = pytest.mark.functional

REGION = "us-east-1"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"


@contextmanager
def aws() -> Iterator[None]:
    """moto in-process with the project's Lambda policy extension (per-qualifier policies,
    the resource-policy API, RevisionId)."""
    with emulated_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def old_botocore_lambda_client(tmp_path: Path) -> Any:
    """A Lambda client whose service model predates the resource-policy API (as the Lambda
    runtime's bundled botocore may): the three operations are removed from the model."""
    source = Path(botocore.__file__).parent / "data" / "lambda" / "2015-03-31" / "service-2.json.gz"
    model = json.loads(gzip.decompress(source.read_bytes()))
    for operation in ("GetResourcePolicy", "PutResourcePolicy", "DeleteResourcePolicy"):
        del model["operations"][operation]
    target = tmp_path / "models" / "lambda" / "2015-03-31" / "service-2.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(model))
    core = botocore.session.Session()
    core.register_component("data_loader", Loader(extra_search_paths=[str(tmp_path / "models")]))
    return boto3.Session(botocore_session=core, region_name=REGION).client("lambda")


def create_function(name: str) -> str:
    """A function in moto; returns its unqualified ARN."""
    return str(emulator_create_function(client("lambda"), client("iam"), name))


def fifo_queue(name: str = "violations.fifo") -> str:
    sqs = client("sqs")
    return str(sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"])


def receive_all(queue_url: str, *, attributes: bool = False) -> list[dict[str, Any]]:
    """Every message currently visible (deleted as read)."""
    sqs = client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"] if attributes else [],
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)


def topic_with_inbox(name: str = "alerts") -> tuple[str, str]:
    """An SNS topic with an SQS queue subscribed (raw delivery off): (topic ARN, inbox URL)."""
    sns, sqs = client("sns"), client("sqs")
    topic = str(sns.create_topic(Name=name)["TopicArn"])
    inbox = str(sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"])
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    return topic, inbox


def notifications(inbox: str) -> list[dict[str, Any]]:
    """The SNS notifications (Subject, Message, ...) delivered to an inbox queue."""
    return [json.loads(m["Body"]) for m in receive_all(inbox)]


def rate_table(name: str = "rate") -> str:
    client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def bucket(name: str = "backups") -> str:
    client("s3").create_bucket(Bucket=name)
    return name


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a policy document that the test expects to exist."""
    assert document is not None, "expected a policy"
    return list(document["Statement"])


class CallRecorder:
    """Records the IAM action of every call a client makes: `service:Operation`, except for
    the operations whose IAM action has another name."""

    IAM_NAMES = {"s3:ListObjectsV2": "s3:ListBucket"}

    def __init__(self) -> None:
        self.actions: list[str] = []

    def attach(self, aws_client: Any) -> Any:
        prefix = aws_client.meta.service_model.signing_name
        if prefix == "monitoring":
            prefix = "cloudwatch"

        def record(model: Any, **_: Any) -> None:
            action = f"{prefix}:{model.name}"
            self.actions.append(self.IAM_NAMES.get(action, action))

        aws_client.meta.events.register("before-call.*.*", record)
        return aws_client


# --- configuration, events and Lambda contexts -------------------------------------------------

ALLOWLIST_YAML = f"""
version: 1
defaults:
  mode: enforce
  unmatched: report
protect:
  - "Protected*"
limits:
  max_remediations_per_hour: 20
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
        source_account: "{ACCOUNT}"
  - name: watched
    functions: ["Watched*"]
    mode: monitor
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
  - name: strict
    functions: ["Strict*"]
    deny_others: true
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
"""


def write_config(directory: Path, text: str = ALLOWLIST_YAML) -> Path:
    """The allowlist as the asset ships it: validated YAML compiled to JSON."""
    from cli.allowlist_file import parse_allowlist
    from lambdas.core.config import allowlist_to_json

    path = directory / "allowlist.json"
    path.write_text(allowlist_to_json(parse_allowlist(text, "test.yaml")))
    return path


def load_config(text: str = ALLOWLIST_YAML) -> Any:
    from cli.allowlist_file import parse_allowlist

    return parse_allowlist(text, "test.yaml")


class LambdaContext:
    """The attributes of a Lambda context that the handlers and Powertools read."""

    def __init__(self, name: str = "invoke-audit-validator", account: str = ACCOUNT) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{account}:function:{name}"
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/mallory"


def iam_user(arn: str = USER_ARN) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": arn,
        "accountId": arn.split(":")[4],
        "userName": arn.rsplit("/", 1)[-1],
    }


def s3_service() -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": "s3.amazonaws.com"}


def invoke_record(
    function: str,
    *,
    identity: dict[str, Any] | None = None,
    event_id: str = "11111111-2222-3333-4444-555555555555",
    **parameters: Any,
) -> dict[str, Any]:
    """A CloudTrail data event of an Invoke, shaped like the real ones."""
    return {
        "eventVersion": "1.08",
        "userIdentity": identity if identity is not None else iam_user(),
        "eventTime": "2025-01-02T03:04:05Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2",
        "requestParameters": {"functionName": function, **parameters},
        "responseElements": None,
        "requestID": "req-" + event_id[:8],
        "eventID": event_id,
        "readOnly": False,
        "resources": [
            {
                "accountId": ACCOUNT,
                "type": "AWS::Lambda::Function",
                "ARN": parse_function_arn(
                    function, default_region=REGION, default_account=ACCOUNT
                ).unqualified_arn,
            }
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
    }


def envelope(record: dict[str, Any], *, account: str = ACCOUNT, **overrides: Any) -> dict[str, Any]:
    """The EventBridge envelope of a CloudTrail record on the default bus."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": account,
        "time": record.get("eventTime"),
        "region": REGION,
        "resources": [],
        "detail": record,
    }
    event.update(overrides)
    return event


def printed_json(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one per line (Powertools logs and EMF metric blobs)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def emf_metrics(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Metric name -> value over the EMF blobs among `lines`."""
    values: dict[str, float] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                values[metric["Name"]] = values.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
    return values


def log_to_current_stdout(logger: Any) -> None:
    """Point a Powertools Logger at the current sys.stdout (pytest's capsys replaces it after
    the handler module bound the original)."""
    import sys

    # Assigned, not setStream(): that flushes the previous test's stream, closed by now.
    logger.registered_handler.stream = sys.stdout


# --- the remediator's world ---------------------------------------------------------------------


class World:
    """The backup bucket, rate table and topic (with an inbox queue) of one test, in moto."""

    def __init__(self) -> None:
        self.bucket = bucket("invoke-audit-backups")
        self.table = rate_table("invoke-audit-rate")
        self.topic, self.inbox = topic_with_inbox("invoke-audit-alerts")

    def backups(self) -> list[str]:
        listing = client("s3").list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def remediations_counted(self) -> int:
        items = client("dynamodb").scan(TableName=self.table)["Items"]
        return sum(int(item.get("remediations", {}).get("N", "0")) for item in items)

    def backup(self, key: str) -> dict[str, Any]:
        body = client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return dict(json.loads(body))


# The pipeline's own functions in these tests, by exact ARN (as the stack passes them).
OWN_FUNCTIONS = frozenset(
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-{name}"
    for name in ("validator", "remediator")
)


def remediator(world: World, config: Any = None, factory: Any = None, **options: Any) -> Any:
    """A Remediator wired to moto the way the Lambda wires it to AWS."""
    from lambdas.adapters.clients import ClientFactory
    from lambdas.remediation.wiring import build_remediator

    settings = {
        "backup_bucket": world.bucket,
        "rate_table": world.table,
        "topic_arn": world.topic,
        "own_account": ACCOUNT,
        "own_functions": OWN_FUNCTIONS,
    }
    return build_remediator(
        config if config is not None else load_config(),
        factory=factory or ClientFactory(region=REGION),
        **(settings | options),
    )


def blog_policy(resource: str) -> dict[str, Any]:
    """The blog's policy: anyone may invoke, and an S3 grant without SourceAccount."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            {
                "Sid": "public",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "lambda:InvokeFunction",
                "Resource": resource,
            },
            {
                "Sid": "s3-trigger",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": resource,
                "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"}},
            },
        ],
    }


def put_policy(resource: str, document: dict[str, Any]) -> str:
    """Set a resource's policy through the emulator; returns the RevisionId."""
    response = client("lambda").put_resource_policy(
        ResourceArn=resource, Policy=json.dumps(document)
    )
    return str(response["RevisionId"])


def get_policy(resource: str) -> tuple[Any, str | None]:
    """(document, RevisionId) of a resource, (None, None) when it has none."""
    lam = client("lambda")
    try:
        response = lam.get_resource_policy(ResourceArn=resource)
    except lam.exceptions.ResourceNotFoundException:
        return None, None
    return json.loads(response["Policy"]), str(response["RevisionId"])


def sqs_event(*messages: tuple[str, str, str]) -> dict[str, Any]:
    """An SQS FIFO event as Lambda delivers it: (message id, group id, body) per record."""
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1735787045000",
                    "SequenceNumber": "1",
                    "MessageGroupId": group,
                    "SenderId": "AIDAEXAMPLE",
                    "MessageDeduplicationId": message_id,
                    "ApproximateFirstReceiveTimestamp": "1735787045000",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:violations.fifo",
                "awsRegion": REGION,
            }
            for message_id, group, body in messages
        ]
    }
