"""The moto world of the tests: moto in-process (`aws()`) or the emulator's server, the
pipeline's resources (backup bucket, rate table, alert topic with an inbox queue, FIFO queue),
functions and their policies, a remediator wired the way the Lambda wires it, and a recorder
of the IAM actions clients call (to compare with the adapters' IAM_ACTIONS)."""

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
from emulator.environment import CREDENTIAL_SOURCES, fake_credentials_environ
from tests.support.records import ACCOUNT, OWN_FUNCTIONS, REGION

BACKUP_BUCKET = "invoke-audit-backups"
RATE_TABLE = "invoke-audit-rate"
ALERT_TOPIC = "invoke-audit-alerts"


def use_fake_credentials(monkeypatch: pytest.MonkeyPatch, region: str = REGION) -> None:
    """moto's fake credentials for one test (the `fake_credentials` fixture): nothing from the
    machine's profiles, config files or endpoints reaches boto3."""
    values = fake_credentials_environ(region)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in CREDENTIAL_SOURCES:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def aws() -> Iterator[None]:
    """moto in-process with the project's Lambda policy extension (per-qualifier policies,
    the resource-policy API, RevisionId)."""
    with emulated_aws():
        yield


def hmac_key(kms: Any) -> str:
    """A KMS HMAC key (as the stack's BackupMacKey): its ARN."""
    key = kms.create_key(
        KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="backup signatures"
    )
    return str(key["KeyMetadata"]["Arn"])


def client(service: str, endpoint_url: str | None = None) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint_url)


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


def receive_all(
    queue_url: str, *, attributes: bool = False, sqs: Any = None
) -> list[dict[str, Any]]:
    """Every message currently visible (deleted as read)."""
    sqs = sqs or client("sqs")
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


def topic_with_inbox(name: str = "alerts", *, sns: Any = None, sqs: Any = None) -> tuple[str, str]:
    """An SNS topic with an SQS queue subscribed (raw delivery off): (topic ARN, inbox URL)."""
    sns, sqs = sns or client("sns"), sqs or client("sqs")
    topic = str(sns.create_topic(Name=name)["TopicArn"])
    inbox = str(sqs.create_queue(QueueName=f"{name}-inbox")["QueueUrl"])
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    return topic, inbox


def notifications(inbox: str, *, sqs: Any = None) -> list[dict[str, Any]]:
    """The SNS notifications (Subject, Message, ...) delivered to an inbox queue."""
    return [json.loads(m["Body"]) for m in receive_all(inbox, sqs=sqs)]


def rate_table(name: str = "rate", *, dynamodb: Any = None) -> str:
    (dynamodb or client("dynamodb")).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def bucket(name: str = "backups", *, s3: Any = None) -> str:
    (s3 or client("s3")).create_bucket(Bucket=name)
    return name


def put_policy(resource: str, document: dict[str, Any], *, lam: Any = None) -> str:
    """Set a resource's policy through the emulator; returns the RevisionId."""
    response = (lam or client("lambda")).put_resource_policy(
        ResourceArn=resource, Policy=json.dumps(document)
    )
    return str(response["RevisionId"])


def get_policy(resource: str, *, lam: Any = None) -> tuple[Any, str | None]:
    """(document, RevisionId) of a resource, (None, None) when it has none."""
    lam = lam or client("lambda")
    try:
        response = lam.get_resource_policy(ResourceArn=resource)
    except lam.exceptions.ResourceNotFoundException:
        return None, None
    return json.loads(response["Policy"]), str(response["RevisionId"])


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


class World:
    """The AWS side of the remediation for one test: the backup bucket, the rate table and the
    alert topic (with an inbox queue), functions and their policies. `endpoint_url` None means
    moto in-process (create the World inside `aws()`), else the emulator's server."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.clients: dict[str, Any] = {}
        self.bucket = bucket(BACKUP_BUCKET, s3=self.client("s3"))
        self.table = rate_table(RATE_TABLE, dynamodb=self.client("dynamodb"))
        self.topic, self.inbox = topic_with_inbox(
            ALERT_TOPIC, sns=self.client("sns"), sqs=self.client("sqs")
        )

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = client(service, self.endpoint_url)
        return self.clients[service]

    def function(self, name: str, *, alias: str | None = None) -> str:
        """Create a function (and an alias on version 1); returns the ARN whose policy counts."""
        from tests.support.records import function_arn

        lam = self.client("lambda")
        emulator_create_function(lam, self.client("iam"), name)
        if alias is None:
            return function_arn(name)
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        return function_arn(name, alias)

    def put_policy(self, resource: str, document: dict[str, Any]) -> str:
        """Set a policy as compact JSON (as a policy near the size limit is written)."""
        response = self.client("lambda").put_resource_policy(
            ResourceArn=resource, Policy=json.dumps(document, separators=(",", ":"))
        )
        return str(response["RevisionId"])

    def policy(self, resource: str) -> dict[str, Any] | None:
        document: dict[str, Any] | None = get_policy(resource, lam=self.client("lambda"))[0]
        return document

    def backups(self) -> list[str]:
        """The keys of every backup object, sorted."""
        listing = self.client("s3").list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def backup(self, key: str) -> dict[str, Any]:
        body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return dict(json.loads(body))

    def backup_documents(self, resource: str | None = None) -> list[dict[str, Any]]:
        """Every backup object (of one resource), as stored, with its key under `_key`."""
        found: list[dict[str, Any]] = []
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix="backups/"):
            for item in page.get("Contents", []):
                backup = self.backup(item["Key"])
                if resource is None or backup["function"] == resource:
                    found.append(backup | {"_key": item["Key"]})
        return found

    def remediations_counted(self) -> int:
        """The rate limiter's count of remediations, over all hours."""
        items = self.client("dynamodb").scan(TableName=self.table)["Items"]
        return sum(int(item.get("remediations", {}).get("N", "0")) for item in items)

    def alerts(self) -> list[dict[str, Any]]:
        """SNS notifications delivered to the topic's inbox queue (deleted as read)."""
        return notifications(self.inbox, sqs=self.client("sqs"))

    def remediator(self, allowlist: Any = None, *, factory: Any = None, **options: Any) -> Any:
        """A remediator with its own session and clients, as one Lambda container has (against
        the emulator's server when AWS_ENDPOINT_URL names it); back-off is not slept unless
        `sleep` says otherwise."""
        from lambdas.adapters.clients import ClientFactory
        from lambdas.remediation.wiring import build_remediator
        from tests.support.allowlists import load_config

        settings: dict[str, Any] = {
            "backup_bucket": self.bucket,
            "rate_table": self.table,
            "topic_arn": self.topic,
            "own_account": ACCOUNT,
            "own_functions": OWN_FUNCTIONS,
            "sleep": lambda _seconds: None,
        }
        return build_remediator(
            allowlist if allowlist is not None else load_config(),
            factory=factory or ClientFactory(region=REGION),
            **(settings | options),
        )


def remediator(world: World, config: Any = None, factory: Any = None, **options: Any) -> Any:
    """A Remediator wired to moto the way the Lambda wires it to AWS."""
    return world.remediator(config, factory=factory, **options)
