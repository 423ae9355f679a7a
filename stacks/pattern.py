"""The EventBridge pattern that selects the Invoke events the validator judges.

One function builds it so that the selection can change in one place (for example to drop, at
the rule, callers that every monitored function allows). It is plain data: the stack hands it
to EventBridge as is, and the infra tests run it through an emulated bus.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INVOKE_DETAIL_TYPE", "event_pattern", "own_function_arn_prefix"]

INVOKE_DETAIL_TYPE = "AWS API Call via CloudTrail"


def own_function_arn_prefix(*, partition: str, region: str, account: str, prefix: str) -> str:
    """The start of every ARN of this pipeline's own functions (values may be CDK tokens)."""
    return f"arn:{partition}:lambda:{region}:{account}:function:{prefix}"


def event_pattern(*, own_function_arn_prefix: str) -> dict[str, Any]:
    """Invoke records of every function except this pipeline's own.

    `detail.resources[].ARN` is the invoked function's unqualified ARN and is present on every
    Invoke record, also when `requestParameters` is null (Step Functions); EventBridge matches
    a field inside an array of objects against each element. `InvokeExecution` (the second
    record of an asynchronous invoke) has another eventName and is not selected.
    """
    return {
        "source": ["aws.lambda"],
        "detail-type": [INVOKE_DETAIL_TYPE],
        "detail": {
            "eventSource": ["lambda.amazonaws.com"],
            "eventName": ["Invoke"],
            "resources": {
                "ARN": [{"anything-but": {"prefix": own_function_arn_prefix}}],
            },
        },
    }
