"""Real-shaped CloudTrail records: the one builder of the tests and the bench.

Every builder returns a fresh dict shaped like what CloudTrail writes for Lambda data events
(compare `shared/corpus/cloudtrail/aidansteele-blog/lambda-cloudtrail-data-events.json`):
`Invoke` by Step Functions (null `requestParameters`, `functionVersion`), by EventBridge
(alias-qualified `functionName`, `sourceArn`, `sourceAccount`), by S3, the async
`InvokeExecution`, and the userIdentity variants (AWSService, AssumedRole, IAMUser, Root,
AWSAccount, FederatedUser). Containers: the S3 log file and the EventBridge envelope.
"""

from __future__ import annotations

import gzip
import itertools
import json
import uuid
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
FOREIGN_ACCOUNT = "999988887777"
PARTNER_ACCOUNT = "111122223333"
OTHER_ACCOUNT = "210987654321"
BUCKET_ARN = "arn:aws:s3:::examplebucket"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/mallory"
OWN_PREFIX = "invoke-audit-"
# The pipeline's own functions, by exact ARN (as the stack passes them)
OWN_FUNCTIONS = frozenset(
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{OWN_PREFIX}{name}"
    for name in ("validator", "remediator")
)
LAMBDA = "lambda.amazonaws.com"
EVENT_ID = "11111111-2222-3333-4444-555555555555"

_ids = itertools.count(1)


def new_id() -> str:
    """A deterministic, unique UUID-shaped id (eventID, requestID)."""
    return str(uuid.UUID(int=next(_ids)))


def function_arn(
    name: str, qualifier: str | None = None, *, account: str = ACCOUNT, region: str = REGION
) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


# --- userIdentity variants -------------------------------------------------------------


def aws_service(service: str) -> dict[str, Any]:
    """`AWSService`: only `type` and `invokedBy`."""
    return {"type": "AWSService", "invokedBy": service}


def assumed_role(
    role: str,
    *,
    account: str = ACCOUNT,
    session: str = "wozynIhxRGfTvfRlXhHKONdyrIaAmRyN",
    invoked_by: str | None = None,
    with_issuer: bool = True,
    path: str = "",
) -> dict[str, Any]:
    """`AssumedRole`: the session ARN is `sts`, the stable principal is the issuer (the role)."""
    identity: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEZGVVXB2VC:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAEXAMPLEQMIZPFY5",
    }
    if invoked_by:
        identity["invokedBy"] = invoked_by
    if with_issuer:
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLEZGVVXB2VC",
                "arn": f"arn:aws:iam::{account}:role/{path}{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2023-03-21T05:32:03Z", "mfaAuthenticated": "false"},
        }
    return identity


def iam_user(name: str = "mallory", *, account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEUSER",
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": "AKIAEXAMPLE",
        "userName": name,
    }


def root(*, account: str = ACCOUNT, with_arn: bool = True) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": "Root", "principalId": account, "accountId": account}
    if with_arn:
        identity["arn"] = f"arn:aws:iam::{account}:root"
    return identity


def aws_account(account: str) -> dict[str, Any]:
    """`AWSAccount`: a caller from another account; only `accountId` and `principalId`."""
    return {"type": "AWSAccount", "principalId": "AIDAEXAMPLEREMOTE", "accountId": account}


def federated_user(name: str, *, account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "type": "FederatedUser",
        "principalId": f"{account}:{name}",
        "arn": f"arn:aws:sts::{account}:federated-user/{name}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEUSER",
                "arn": f"arn:aws:iam::{account}:user/federator",
                "accountId": account,
                "userName": "federator",
            }
        },
    }


# --- records ------------------------------------------------------------------------------


def invoke(
    function_name: str | None,
    identity: dict[str, Any] | None,
    *,
    qualifier: str | None = None,
    source_arn: str | None = None,
    source_account: str | None = None,
    event_name: str = "Invoke",
    region: str = REGION,
    account: str = ACCOUNT,
    error_code: str | None = None,
    event_id: str | None = None,
    event_time: str = "2023-03-21T05:32:03Z",
    invocation_type: str | None = "RequestResponse",
    parameters: dict[str, Any] | None = None,
    resource_arn: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Lambda Invoke data event; `function_name` goes to `requestParameters.functionName`
    (with `parameters` beside it), `extra` to the record's top level."""
    params: dict[str, Any] | None = None
    if function_name is not None:
        params = {"functionName": function_name}
        if invocation_type is not None:
            params["invocationType"] = invocation_type
        params.update(parameters or {})
        if qualifier is not None:
            params["qualifier"] = qualifier
        if source_arn is not None:
            params["sourceArn"] = source_arn
        if source_account is not None:
            params["sourceAccount"] = source_account
    request_id = new_id()
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": event_time,
        "eventSource": LAMBDA,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-sdk-python/1.34",
        "requestParameters": params,
        "responseElements": None,
        "requestID": request_id,
        "eventID": event_id or new_id(),
        "readOnly": False,
        "resources": [
            {
                "accountId": account,
                "type": "AWS::Lambda::Function",
                "ARN": resource_arn
                or function_arn(_bare_name(function_name), account=account, region=region),
            }
        ]
        if function_name
        else [],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": account,
        "eventCategory": "Data",
    }
    if identity is None:
        del record["userIdentity"]
    if error_code is not None:
        record["errorCode"] = error_code
        record["errorMessage"] = f"{error_code}: the call failed"
    record.update(extra)
    return record


def invoke_record(
    function: str,
    *,
    identity: dict[str, Any] | None = None,
    event_id: str = EVENT_ID,
    **parameters: Any,
) -> dict[str, Any]:
    """An Invoke of `function` by IAM user mallory (unless `identity` says who), with
    `parameters` in `requestParameters`, as the handler tests send it."""
    from models.arns import parse_function_arn

    return invoke(
        function,
        identity if identity is not None else iam_user(),
        event_id=event_id,
        event_time="2025-01-02T03:04:05Z",
        invocation_type=None,
        parameters=parameters,
        resource_arn=parse_function_arn(
            function, default_region=REGION, default_account=ACCOUNT
        ).unqualified_arn,
        requestID="req-" + event_id[:8],
        sourceIPAddress="203.0.113.7",
        userAgent="aws-cli/2",
    )


def _bare_name(function_name: str | None) -> str:
    text = function_name or "unknown"
    if ":function:" in text:
        return text.split(":function:")[1].split(":")[0]
    return text.split(":")[0]


def step_functions_invoke(
    name: str = "my-function-name",
    version: str = "23",
    *,
    role: str = "My-RoleName-1746R4C1N6UFS",
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """Step Functions: AssumedRole + invokedBy states, `requestParameters: null`,
    the version in `additionalEventData.functionVersion`, `resources[].ARN` unqualified."""
    record = invoke(
        name,
        assumed_role(role, account=account, invoked_by="states.amazonaws.com"),
        account=account,
    )
    record["requestParameters"] = None
    record["sourceIPAddress"] = record["userAgent"] = "states.amazonaws.com"
    record["additionalEventData"] = {
        "customerEniId": "eni-02258670f86ec5c51",
        "functionVersion": function_arn(name, version, account=account),
    }
    return record


def eventbridge_invoke(
    name: str = "my-function-name",
    alias: str = "live",
    *,
    rule: str = "my-rule-name-VMA1FQWKHEIL",
    source_account: str = ACCOUNT,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """EventBridge: AWSService events, alias-qualified ARN as functionName, sourceArn/Account."""
    record = invoke(
        function_arn(name, alias, account=account),
        aws_service("events.amazonaws.com"),
        source_arn=f"arn:aws:events:{REGION}:{source_account}:rule/{rule}",
        source_account=source_account,
        account=account,
    )
    record["requestParameters"]["invocationType"] = "Event"
    record["sourceIPAddress"] = record["userAgent"] = "events.amazonaws.com"
    record["additionalEventData"] = {"functionVersion": function_arn(name, "14", account=account)}
    record["sharedEventID"] = new_id()
    return record


def s3_invoke(
    name: str = "BlogFunction",
    *,
    bucket_arn: str = BUCKET_ARN,
    source_account: str | None = ACCOUNT,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """S3 event notification: AWSService s3, sourceArn (bucket) and sourceAccount."""
    record = invoke(
        name,
        aws_service("s3.amazonaws.com"),
        source_arn=bucket_arn,
        source_account=source_account,
        account=account,
    )
    record["requestParameters"]["invocationType"] = "Event"
    record["requestParameters"]["contentType"] = ""
    return record


def invoke_execution(name: str = "my-function-name", version: str = "14") -> dict[str, Any]:
    """The asynchronous run of an earlier Invoke: AWSService lambda, null requestParameters."""
    record = invoke(name, aws_service(LAMBDA), event_name="InvokeExecution")
    record["requestParameters"] = None
    record["additionalEventData"] = {
        "customerEniId": "eni-0fe91c93d7934f8a0",
        "functionVersion": function_arn(name, version),
    }
    return record


def management_event(event_name: str = "GetFunction20150331v2", **extra: Any) -> dict[str, Any]:
    """A Lambda management event (not an Invoke)."""
    record = invoke("BlogFunction", iam_user("alice"), event_name=event_name)
    record.update(eventCategory="Management", managementEvent=True, readOnly=True)
    record.update(extra)
    return record


def other_service_record() -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": iam_user("alice"),
        "eventTime": "2023-03-21T05:32:03Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateBucket",
        "awsRegion": REGION,
        "requestParameters": {"bucketName": "examplebucket"},
        "eventID": new_id(),
        "recipientAccountId": ACCOUNT,
    }


# --- containers ---------------------------------------------------------------------------


def log_file(records: list[Any]) -> dict[str, Any]:
    """A CloudTrail log file as delivered to S3."""
    return {"Records": records}


def envelope(record: dict[str, Any], *, account: str = ACCOUNT, **overrides: Any) -> dict[str, Any]:
    """The EventBridge "AWS API Call via CloudTrail" envelope of one record (default bus)."""
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


def log_file_bytes(records: list[Any], *, gz: bool = False) -> bytes:
    data = json.dumps(log_file(records)).encode()
    return gzip.compress(data, mtime=0) if gz else data


def json_lines_bytes(items: list[Any], *, gz: bool = False) -> bytes:
    data = "".join(json.dumps(item) + "\n" for item in items).encode()
    return gzip.compress(data, mtime=0) if gz else data
