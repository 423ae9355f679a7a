"""The EventBridge pattern that selects the Invoke events the validator judges.

One function builds it so that the selection can change in one place (for example to drop, at
the rule, callers that every monitored function allows). It is plain data: the stack hands it
to EventBridge as is, and the infra tests run it through an emulated bus.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from models.allowlist import AllowlistConfig
from stacks.edge_filter import PATTERN_SIZE_LIMIT, edge_filtered_pattern

__all__ = ["INVOKE_DETAIL_TYPE", "EdgeFilterWarning", "event_pattern", "function_arn"]

INVOKE_DETAIL_TYPE = "AWS API Call via CloudTrail"


def function_arn(*, partition: str, region: str, account: str, name: str) -> str:
    """The unqualified ARN of function `name` (values may be CDK tokens)."""
    return f"arn:{partition}:lambda:{region}:{account}:function:{name}"


class EdgeFilterWarning(UserWarning):
    """The allowlist did not fit (wholly) into the rule's pattern: more reaches the validator."""


def event_pattern(
    *,
    own_function_arns: Sequence[str] = (),
    allowlist: AllowlistConfig | None = None,
    size_limit: int = PATTERN_SIZE_LIMIT,
) -> dict[str, Any]:
    """Invoke records of every function except this pipeline's own, left out by their exact
    unqualified ARNs (never by a name prefix: anyone may name a function like them).

    With `allowlist`, Invokes by callers it allows for the invoked function are left out
    (`stacks.edge_filter`); a warning says so when the pattern's size limit left part
    of the allowlist out.

    `detail.resources[].ARN` is the invoked function's unqualified ARN and is present on every
    Invoke record, also when `requestParameters` is null (Step Functions); EventBridge matches
    a field inside an array of objects against each element. `InvokeExecution` (the second
    record of an asynchronous invoke) has another eventName and is not selected.
    """
    detail: dict[str, Any] = {
        "eventSource": ["lambda.amazonaws.com"],
        "eventName": ["Invoke"],
    }
    if own_function_arns:
        detail["resources"] = {"ARN": [{"anything-but": sorted(set(own_function_arns))}]}
    plain = {"source": ["aws.lambda"], "detail-type": [INVOKE_DETAIL_TYPE], "detail": detail}
    if allowlist is None:
        return plain
    compiled = edge_filtered_pattern(plain, allowlist, limit=size_limit)
    if compiled.warning:
        warnings.warn(compiled.warning, EdgeFilterWarning, stacklevel=2)
    return compiled.pattern
