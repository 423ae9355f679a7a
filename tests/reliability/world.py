"""An AWS world for remediation tests, in moto in-process or on the emulator's server: functions
(with aliases) and their policies, the backup bucket, the rate table, the alert topic, and
remediators built the way the Lambda builds them, each with its own boto3 clients.

No tests here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from emulator import create_function
from lambdas.adapters.clients import ClientFactory
from lambdas.remediation.remediate import Remediator, Violation
from lambdas.remediation.wiring import build_remediator
from models.allowlist import AllowlistConfig
from tests.reliability.support import ACCOUNT, BUCKET_ARN, DEPLOYER, OTHER_ACCOUNT, REGION

BACKUP_BUCKET = "invoke-audit-backups"
RATE_TABLE = "invoke-audit-rate"
TOPIC = "invoke-audit-alerts"
STRANGER = "arn:aws:iam::999988887777:user/stranger"

# The allowlist of the remediation tests: `app-*` keeps the deployer and the S3 trigger of the
# example bucket, `orders-*` also adds the explicit Deny (deny_others), `watch-*` is monitored.
REMEDIATION_CONFIG: dict[str, Any] = {
    "version": 1,
    "protect": ["invoke-audit-*", "protected-*"],
    "limits": {"max_remediations_per_hour": 1000},
    "rules": [
        {
            "name": "app",
            "functions": ["app-*", "BlogFunction"],
            "allow": [
                {
                    "service": "s3.amazonaws.com",
                    "source_arn": BUCKET_ARN,
                    "source_account": ACCOUNT,
                },
                {"principal": DEPLOYER},
            ],
        },
        {
            "name": "orders",
            "functions": ["orders-*"],
            "deny_others": True,
            "allow": [{"account": OTHER_ACCOUNT}, {"principal": DEPLOYER}],
        },
        {"name": "protected-too", "functions": ["protected-*", "invoke-audit-*"], "allow": []},
        {"name": "watch", "functions": ["watch-*"], "mode": "monitor", "allow": []},
    ],
}


def config(**limits: int) -> AllowlistConfig:
    data = json.loads(json.dumps(REMEDIATION_CONFIG))
    data["limits"].update(limits)
    return AllowlistConfig.model_validate(data)


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def statement(sid: str, principal: Any, resource: str, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
    } | extra


def messy_policy(resource: str) -> dict[str, Any]:
    """A policy with something of every kind: public and stranger grants to remove, a mixed
    grant to narrow, an S3 grant to tighten, allowed grants, a Deny and a non-invoke grant."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            statement("public", "*", resource),
            statement("s3", {"Service": "s3.amazonaws.com"}, resource),
            statement("deployer", {"AWS": DEPLOYER}, resource),
            statement("partner", {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, resource),
            statement("mixed", {"AWS": [DEPLOYER, STRANGER]}, resource),
            {
                "Sid": "deny-old",
                "Effect": "Deny",
                "Principal": {"AWS": STRANGER},
                "Action": "lambda:InvokeFunction",
                "Resource": resource,
            },
            {
                "Sid": "read",
                "Effect": "Allow",
                "Principal": {"AWS": STRANGER},
                "Action": "lambda:GetFunction",
                "Resource": resource,
            },
        ],
    }


@dataclass
class World:
    """The AWS side of the pipeline; `endpoint_url` None means moto in-process."""

    endpoint_url: str | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    topic_arn: str = ""
    inbox_url: str = ""

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service, region_name=REGION, endpoint_url=self.endpoint_url
            )
        return self.clients[service]

    def create(self) -> World:
        self.client("s3").create_bucket(Bucket=BACKUP_BUCKET)
        self.client("dynamodb").create_table(
            TableName=RATE_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns, sqs = self.client("sns"), self.client("sqs")
        self.topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
        self.inbox_url = sqs.create_queue(QueueName=f"{TOPIC}-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=self.inbox_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=inbox_arn)
        return self

    def function(self, name: str, *, alias: str | None = None) -> str:
        """Create a function (and an alias on version 1); returns the ARN whose policy counts."""
        lam = self.client("lambda")
        create_function(lam, self.client("iam"), name)
        if alias is None:
            return function_arn(name)
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        return function_arn(name, alias)

    def put_policy(self, resource: str, document: dict[str, Any]) -> str:
        response = self.client("lambda").put_resource_policy(
            ResourceArn=resource, Policy=json.dumps(document, separators=(",", ":"))
        )
        return str(response["RevisionId"])

    def policy(self, resource: str) -> dict[str, Any] | None:
        lam = self.client("lambda")
        try:
            response = lam.get_resource_policy(ResourceArn=resource)
        except lam.exceptions.ResourceNotFoundException:
            return None
        document: dict[str, Any] = json.loads(response["Policy"])
        return document

    def backups(self, resource: str | None = None) -> list[dict[str, Any]]:
        """Every backup object (of one resource), as stored."""
        s3 = self.client("s3")
        found: list[dict[str, Any]] = []
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BACKUP_BUCKET, Prefix="backups/"):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=BACKUP_BUCKET, Key=item["Key"])["Body"].read()
                backup = json.loads(body)
                if resource is None or backup["function"] == resource:
                    found.append(backup | {"_key": item["Key"]})
        return found

    def remediations_counted(self) -> int:
        """The rate limiter's count of remediations, over all hours."""
        items = self.client("dynamodb").scan(TableName=RATE_TABLE)["Items"]
        return sum(int(item.get("remediations", {}).get("N", "0")) for item in items)

    def alerts(self) -> list[dict[str, Any]]:
        """SNS notifications delivered to the topic's inbox queue (deleted as read)."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return found
            for message in batch:
                sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=message["ReceiptHandle"])
                found.append(json.loads(message["Body"]))

    def remediator(self, allowlist: AllowlistConfig, **options: Any) -> Remediator:
        """A remediator with its own session and clients, as one Lambda container has (against
        the emulator's server when AWS_ENDPOINT_URL names it, as in the demo)."""
        return build_remediator(
            allowlist,
            factory=ClientFactory(region=REGION),
            backup_bucket=BACKUP_BUCKET,
            rate_table=RATE_TABLE,
            topic_arn=self.topic_arn or None,
            own_account=ACCOUNT,
            sleep=lambda _seconds: None,
            **options,
        )


def violation(resource: str, event_id: str, caller: str = STRANGER) -> Violation:
    record = {
        "eventID": event_id,
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": REGION,
        "recipientAccountId": ACCOUNT,
        "userIdentity": {"type": "IAMUser", "arn": caller, "accountId": caller.split(":")[4]},
        "requestParameters": {"functionName": resource},
    }
    return Violation(
        function=resource,
        event_id=event_id,
        caller=caller,
        reason=f"{caller} is not on the allowlist",
        event_time="2024-05-01T10:00:00Z",
        record=record,
    )
