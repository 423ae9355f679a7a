"""One AWS call with botocore's errors turned into AwsError subclasses; a DynamoDB claim."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.adapters.errors import AwsError, translate_botocore_error, translate_client_error

__all__ = ["call", "put_once"]


def call(
    service: str, operation: str, resource: str, fn: Callable[..., Any], **kwargs: Any
) -> dict[str, Any]:
    """`fn(**kwargs)`; an error becomes the AwsError subclass that says what to do."""
    where = {"service": service, "operation": operation, "resource": resource}
    try:
        response: dict[str, Any] = fn(**kwargs)
    except ClientError as error:
        raise translate_client_error(error, **where) from error
    except BotoCoreError as error:
        raise translate_botocore_error(error, **where) from error
    return response


def put_once(client: Any, table: str, item: dict[str, Any], key: str) -> bool:
    """PutItem of `item` unless the table holds an item with its key attribute `key`: True
    for the one caller that put it (concurrent and repeated claims of the same key get False)."""
    try:
        call(
            "dynamodb",
            "PutItem",
            table,
            client.put_item,
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": key},
        )
    except AwsError as error:
        if error.code == "ConditionalCheckFailedException":
            return False
        raise
    return True
