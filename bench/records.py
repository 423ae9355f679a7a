"""Deterministic, real-shaped CloudTrail records for the benchmarks.

`invoke_mix(rng)` draws one Lambda Invoke from a catalogue of the callers a deployment of
`bench/allowlist.yaml` sees: mostly allowed (S3 from the right bucket, API Gateway, the
deployer role, Step Functions with its role and a null `requestParameters`, EventBridge, a
partner account), some violations (a wrong bucket, account, role or API; an IAM user; root),
and the rest (functions no rule covers, a qualifier rule, the pipeline's own functions, failed
calls, records without a userIdentity). Shapes follow the recorded events in
`shared/corpus/cloudtrail/aidansteele-blog`. `other_record(rng)` draws a record of another
service (S3, EC2, STS, IAM, DynamoDB, KMS) or a non-Invoke Lambda call, for log files.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import records

ACCOUNT = "111111111111"
PARTNER = "222222222222"
FOREIGN = "999988887777"
REGION = "us-east-1"
ALLOWLIST = Path(__file__).resolve().parent / "allowlist.yaml"
OWN_PREFIX = "invoke-audit-"
OWN_FUNCTIONS = frozenset(
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{OWN_PREFIX}{name}"
    for name in ("validator", "remediator")
)

Record = dict[str, Any]


def function_arn(name: str, qualifier: str | None = None, account: str = ACCOUNT) -> str:
    return records.function_arn(name, qualifier, account=account, region=REGION)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _time(rng: random.Random) -> str:
    return f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"


# -- identities (the tests' builders; a role's session name is drawn) ----------------------

service = records.aws_service
aws_account = records.aws_account


def role(
    name: str, rng: random.Random, *, account: str = ACCOUNT, via: str | None = None
) -> Record:
    return records.assumed_role(
        name, account=account, session=f"s{rng.getrandbits(40):010x}", invoked_by=via
    )


def iam_user(name: str, *, account: str = ACCOUNT) -> Record:
    return records.iam_user(name, account=account)


def root(account: str = ACCOUNT) -> Record:
    return records.root(account=account)


# -- records -----------------------------------------------------------------------------


def invoke(
    rng: random.Random,
    name: str,
    identity: Record | None,
    *,
    form: str = "arn",
    qualifier: str | None = None,
    source_arn: str | None = None,
    source_account: str | None = None,
    step_functions: bool = False,
    error_code: str | None = None,
    event_name: str = "Invoke",
) -> Record:
    """One Lambda data event (the tests' builder, its ids, time and details drawn from `rng`).
    `form`: how `functionName` names the function (arn, name, partial); `step_functions`: a
    null `requestParameters`, the function in `functionVersion`."""
    version = str(rng.randint(1, 40))
    target: str | None = None
    invocation_type: str | None = None
    if not step_functions:
        target = {
            "arn": function_arn(name, qualifier),
            "name": f"{name}:{qualifier}" if qualifier else name,
            "partial": f"{ACCOUNT}:function:{name}" + (f":{qualifier}" if qualifier else ""),
        }[form]
        invocation_type = rng.choice(("Event", "RequestResponse"))
    caller = (identity or {}).get("invokedBy") or "203.0.113.10"
    event_time = _time(rng)
    request_id = _uuid(rng)
    extra: Record = {"errorMessage": "Rate exceeded"} if error_code else {}
    return records.invoke(
        target,
        identity,
        source_arn=source_arn or None,
        source_account=source_account or None,
        event_name=event_name,
        region=REGION,
        account=ACCOUNT,
        error_code=error_code or None,
        event_id=_uuid(rng),
        event_time=event_time,
        invocation_type=invocation_type,
        requestID=request_id,
        sourceIPAddress=caller,
        userAgent=caller if "amazonaws" in caller else "Boto3/1.34.0 Python/3.11.7",
        additionalEventData={"functionVersion": function_arn(name, version)},
        resources=[
            {"accountId": ACCOUNT, "type": "AWS::Lambda::Function", "ARN": function_arn(name)}
        ],
        **({"requestParameters": None} if step_functions else {}),
        **extra,
    )


BUCKET = "arn:aws:s3:::examplebucket"
API = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123"
EVENTS_RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly-run"

Maker = Callable[[random.Random], Record]


def _pick(rng: random.Random, *values: str) -> str:
    return rng.choice(values)


# (weight, kind, maker); kind is what the record is meant to be (decide is the judge).
CATALOGUE: list[tuple[int, str, Maker]] = [
    # allowed
    (
        18,
        "allowed",
        lambda r: invoke(
            r,
            "BlogFunction",
            service("s3.amazonaws.com"),
            source_arn=BUCKET,
            source_account=ACCOUNT,
        ),
    ),
    (
        16,
        "allowed",
        lambda r: invoke(
            r,
            _pick(r, "api-orders", "api-users"),
            service("apigateway.amazonaws.com"),
            qualifier=_pick(r, "live", "live", "7"),
            source_arn=f"{API}/prod/GET/items",
        ),
    ),
    (
        8,
        "allowed",
        lambda r: invoke(
            r, "api-users", role("deployer", r), form=_pick(r, "name", "arn", "partial")
        ),
    ),
    (
        12,
        "allowed",
        lambda r: invoke(
            r,
            _pick(r, "wf-ingest", "wf-report"),
            role("StatesRole-1746R4C1N6UFS", r, via="states.amazonaws.com"),
            step_functions=True,
        ),
    ),
    (
        6,
        "allowed",
        lambda r: invoke(
            r,
            "wf-nightly",
            service("events.amazonaws.com"),
            qualifier="live",
            source_arn=EVENTS_RULE,
            source_account=ACCOUNT,
        ),
    ),
    (6, "allowed", lambda r: invoke(r, "partner-hook", aws_account(PARTNER))),
    (3, "allowed", lambda r: invoke(r, "orders", aws_account(PARTNER), qualifier="prod")),
    # violations
    (
        2,
        "violation",
        lambda r: invoke(
            r,
            "BlogFunction",
            service("s3.amazonaws.com"),
            source_arn="arn:aws:s3:::otherbucket",
            source_account=ACCOUNT,
        ),
    ),
    (
        1,
        "violation",
        lambda r: invoke(
            r,
            "BlogFunction",
            service("s3.amazonaws.com"),
            source_arn=BUCKET,
            source_account=FOREIGN,
        ),
    ),
    (
        1,
        "violation",
        lambda r: invoke(r, "BlogFunction", iam_user("alice"), form=_pick(r, "name", "arn")),
    ),
    (1, "violation", lambda r: invoke(r, "api-orders", role("intruder", r, account=FOREIGN))),
    (
        1,
        "violation",
        lambda r: invoke(
            r,
            "api-orders",
            service("apigateway.amazonaws.com"),
            source_arn=f"arn:aws:execute-api:{REGION}:{FOREIGN}:zzz999/prod/GET/x",
        ),
    ),
    (
        1,
        "violation",
        lambda r: invoke(
            r, "wf-ingest", role("OtherRole", r, via="states.amazonaws.com"), step_functions=True
        ),
    ),
    (1, "violation", lambda r: invoke(r, "wf-nightly", root())),
    (1, "violation", lambda r: invoke(r, "partner-hook", aws_account(FOREIGN))),
    (1, "violation", lambda r: invoke(r, "orders", aws_account(FOREIGN), qualifier="prod")),
    (
        1,
        "violation",
        lambda r: invoke(
            r,
            "wf-nightly",
            service("events.amazonaws.com"),
            source_arn=EVENTS_RULE,
            source_account=FOREIGN,
        ),
    ),
    # the rest
    (8, "unmonitored", lambda r: invoke(r, f"misc-{r.randint(1, 30)}", role("deployer", r))),
    (2, "unmonitored", lambda r: invoke(r, "orders", aws_account(PARTNER), qualifier="dev")),
    (
        2,
        "ignored",
        lambda r: invoke(
            r, f"{OWN_PREFIX}validator", service("events.amazonaws.com"), source_arn=EVENTS_RULE
        ),
    ),
    (
        1,
        "failed-call",
        lambda r: invoke(r, "BlogFunction", iam_user("bob"), error_code="TooManyRequestsException"),
    ),
    (1, "invalid", lambda r: invoke(r, "api-users", None)),
]

_WEIGHTS = [weight for weight, _, _ in CATALOGUE]


def invoke_mix(rng: random.Random) -> Record:
    ((_, _, make),) = rng.choices(CATALOGUE, weights=_WEIGHTS)
    return make(rng)


def invoke_set(count: int, seed: int = 6) -> list[Record]:
    rng = random.Random(seed)
    return [invoke_mix(rng) for _ in range(count)]


# -- other services (log files) ----------------------------------------------------------

_OTHER = [
    (
        "s3.amazonaws.com",
        "GetObject",
        lambda r: {
            "bucketName": "examplebucket",
            "key": f"data/{r.getrandbits(32):08x}.json",
            "Host": "examplebucket.s3.us-east-1.amazonaws.com",
        },
    ),
    (
        "s3.amazonaws.com",
        "PutObject",
        lambda r: {
            "bucketName": "logs-bucket",
            "key": f"app/{r.getrandbits(32):08x}.log",
            "x-amz-acl": "private",
        },
    ),
    (
        "ec2.amazonaws.com",
        "DescribeInstances",
        lambda r: {
            "instancesSet": {},
            "filterSet": {
                "items": [{"name": "tag:team", "valueSet": {"items": [{"value": "core"}]}}]
            },
        },
    ),
    (
        "sts.amazonaws.com",
        "AssumeRole",
        lambda r: {
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer",
            "roleSessionName": f"s{r.getrandbits(32):08x}",
            "durationSeconds": 3600,
        },
    ),
    ("iam.amazonaws.com", "GetRole", lambda r: {"roleName": "deployer"}),
    (
        "dynamodb.amazonaws.com",
        "GetItem",
        lambda r: {"tableName": "orders", "key": {"pk": {"S": f"order#{r.randint(1, 10**6)}"}}},
    ),
    (
        "kms.amazonaws.com",
        "Decrypt",
        lambda r: {
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "keyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
    ),
    (
        "lambda.amazonaws.com",
        "GetFunction20150331v2",
        lambda r: {"functionName": function_arn("api-users")},
    ),
    ("lambda.amazonaws.com", "ListFunctions20150331", lambda r: None),
]


def other_record(rng: random.Random) -> Record:
    source, name, params = rng.choice(_OTHER)
    identity = rng.choice(
        (role("deployer", rng), iam_user("alice"), service("cloudformation.amazonaws.com"))
    )
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": _time(rng),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "requestParameters": params(rng),
        "responseElements": None,
        "requestID": _uuid(rng),
        "eventID": _uuid(rng),
        "readOnly": name.startswith(("Get", "Describe", "List")),
        "eventType": "AwsApiCall",
        "managementEvent": source != "s3.amazonaws.com",
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management" if source != "s3.amazonaws.com" else "Data",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{source.split('.')[0]}.{REGION}.amazonaws.com",
        },
    }


def invoke_execution(rng: random.Random) -> Record:
    """The second record of an asynchronous invoke (not a second invocation)."""
    record = invoke(
        rng,
        "BlogFunction",
        service("lambda.amazonaws.com"),
        step_functions=True,
        event_name="InvokeExecution",
    )
    return record
