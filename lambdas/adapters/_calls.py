"""One AWS call with botocore's errors turned into AwsError subclasses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.adapters.errors import translate_botocore_error, translate_client_error

__all__ = ["call"]


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
