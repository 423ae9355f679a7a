"""AWS errors, sorted by what the caller should do about them.

AwsError                   an AWS call failed (names the service, operation, resource, code)
├── PreconditionFailedError  412: the policy changed since it was read (re-read, recompute)
├── ThrottledError           429 / throttling: back off and retry
├── ResourceGoneError        the function, version or alias does not exist (nothing to do)
├── AccessDeniedError        not allowed: fix the role, the message goes to the DLQ
├── PolicyRejectedError      the policy itself was refused (too long, public, malformed)
├── ApiUnavailableError      the operation is unknown here (older SDK, or region without it)
└── UnreachableError         no answer (connection failed, timed out): it may have happened
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from models.exceptions import InvokeAuditError

__all__ = [
    "AccessDeniedError",
    "ApiUnavailableError",
    "AwsError",
    "PolicyRejectedError",
    "PreconditionFailedError",
    "ResourceGoneError",
    "ThrottledError",
    "UnreachableError",
    "translate_botocore_error",
    "translate_client_error",
]

_THROTTLING = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
    }
)
_ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "KMS.AccessDeniedException",
    }
)
_POLICY_REJECTED = frozenset(
    {
        "PolicyLengthExceededException",
        "PublicPolicyException",
        "MalformedPolicyDocumentException",
        "InvalidParameterValueException",
    }
)
_UNKNOWN_OPERATION = frozenset(
    {"UnknownOperationException", "UnknownOperation", "InvalidAction", "404"}
)


class AwsError(InvokeAuditError):
    """An AWS call failed; `code` is AWS's error code, `status` the HTTP status (0: none),
    `retry_attempts` how often botocore had retried before this answer."""

    def __init__(
        self,
        *,
        service: str,
        operation: str,
        resource: str,
        code: str,
        status: int,
        message: str,
        retry_attempts: int = 0,
    ) -> None:
        self.service = service
        self.operation = operation
        self.resource = resource
        self.code = code
        self.status = status
        self.aws_message = message
        self.retry_attempts = retry_attempts
        super().__init__(f"{service} {operation} on {resource}: {code} ({status}): {message}")


class PreconditionFailedError(AwsError):
    """The RevisionId no longer matches: someone changed the policy in between."""


class ThrottledError(AwsError):
    """AWS asked us to slow down."""


class ResourceGoneError(AwsError):
    """The function, version or alias no longer exists."""


class AccessDeniedError(AwsError):
    """Our credentials may not do this."""


class PolicyRejectedError(AwsError):
    """AWS refused the policy document itself."""


class ApiUnavailableError(AwsError):
    """The operation does not exist for this SDK or endpoint."""


class UnreachableError(AwsError):
    """No answer came back (network error, timeout): the call may or may not have happened."""


def _error_class(code: str, status: int, message: str) -> type[AwsError]:
    if code in ("PreconditionFailedException", "PreconditionFailed") or status == 412:
        return PreconditionFailedError
    if code in _THROTTLING or status == 429:
        return ThrottledError
    if code in _ACCESS_DENIED or status == 403:
        return AccessDeniedError
    if code in _UNKNOWN_OPERATION:
        # A 404 whose code is not ResourceNotFoundException is the route, not the resource.
        return ApiUnavailableError
    if code in (
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NotFound",
        "NoSuchKey",
        "NoSuchBucket",
    ):
        return ResourceGoneError
    if code in _POLICY_REJECTED:
        return PolicyRejectedError
    return AwsError


def translate_client_error(
    error: ClientError, *, service: str, operation: str, resource: str
) -> AwsError:
    """The AwsError subclass that says what to do about a botocore ClientError."""
    response: dict[str, Any] = dict(error.response or {})
    details: dict[str, Any] = dict(response.get("Error") or {})
    code = str(details.get("Code") or "Unknown")
    message = str(details.get("Message") or details.get("message") or "")
    metadata: dict[str, Any] = dict(response.get("ResponseMetadata") or {})
    status = int(metadata.get("HTTPStatusCode") or 0)
    cls = _error_class(code, status, message)
    return cls(
        service=service,
        operation=operation,
        resource=resource,
        code=code,
        status=status,
        message=message,
        retry_attempts=int(metadata.get("RetryAttempts") or 0),
    )


def translate_botocore_error(
    error: BotoCoreError, *, service: str, operation: str, resource: str
) -> AwsError:
    """A botocore error that is no AWS answer (connection, timeout, bad parameter)."""
    return UnreachableError(
        service=service,
        operation=operation,
        resource=resource,
        code=type(error).__name__,
        status=0,
        message=str(error),
    )
