"""The EventBridge patterns that select the Invoke events the validator judges.

`event_pattern` is every recorded invocation except of this pipeline's own functions;
`edge_rules` narrows it, per allowlist rule, to the Invokes that need judging
(`stacks.edge_filter`). Both are plain data: the stack hands them to EventBridge as they are,
and the tests run them through aws/event-ruler, the matcher EventBridge uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from lambdas.core.record import INVOCATIONS, LAMBDA_SOURCE
from models.allowlist import AllowlistConfig
from stacks.edge_filter import PATTERN_SIZE_LIMIT, RULES_PER_BUS, EdgeRules, compile_edge_rules

__all__ = [
    "INVOKE_DETAIL_TYPE",
    "EdgeFilterWarning",
    "edge_rules",
    "event_name_filter",
    "event_pattern",
    "function_arn",
]

INVOKE_DETAIL_TYPE = "AWS API Call via CloudTrail"


def function_arn(*, partition: str, region: str, account: str, name: str) -> str:
    """The unqualified ARN of function `name` (values may be CDK tokens)."""
    return f"arn:{partition}:lambda:{region}:{account}:function:{name}"


class EdgeFilterWarning(UserWarning):
    """Part of the allowlist did not fit into the rules: more reaches the validator."""


def event_name_filter() -> list[Any]:
    """Every eventName `decide` reads as an invocation: the names, and the names with a date
    suffix (`Invoke20150331`, `InvokeAsync20141113`), but not `InvokeExecution`.

    A name that another invocation name starts with (`Invoke`) is listed as itself and as
    itself followed by `20` (the suffix is an API version date, 20YYMMDD); the others as
    prefixes (a longer name is judged `ignored`).
    """
    names = sorted(INVOCATIONS)
    out: list[Any] = []
    for name in names:
        if any(other != name and other.startswith(name) for other in names):
            out.append(name)
            out.append({"prefix": f"{name}20"})
        else:
            out.append({"prefix": name})
    return out


def event_pattern(*, own_function_arns: Sequence[str] = ()) -> dict[str, Any]:
    """Invoke records of every function except this pipeline's own, left out by their exact
    unqualified ARNs (never by a name prefix: anyone may name a function like them).

    `detail.resources[].ARN` is the invoked function's unqualified ARN, present on the Invoke
    records CloudTrail writes (also when `requestParameters` is null: Step Functions);
    EventBridge matches a field inside an array of objects against each element. A record
    without `resources` is selected too: `decide` does not need it.
    """
    detail: dict[str, Any] = {
        "eventSource": [LAMBDA_SOURCE],
        "eventName": event_name_filter(),
    }
    if own_function_arns:
        detail["resources"] = {
            "ARN": [
                {"anything-but": sorted(set(own_function_arns))},
                {"exists": False},
                None,
            ]
        }
    return {"source": ["aws.lambda"], "detail-type": [INVOKE_DETAIL_TYPE], "detail": detail}


def edge_rules(
    *,
    own_function_arns: Sequence[str],
    allowlist: AllowlistConfig,
    size_limit: int = PATTERN_SIZE_LIMIT,
    max_rules: int = RULES_PER_BUS,
) -> EdgeRules:
    """The rules that deliver the Invokes `decide` must see (`stacks.edge_filter`); a warning
    for each part of the allowlist that did not fit and is delivered whole."""
    compiled = compile_edge_rules(
        event_pattern(own_function_arns=own_function_arns),
        allowlist,
        limit=size_limit,
        max_rules=max_rules,
    )
    for warning in compiled.warnings:
        warnings.warn(warning, EdgeFilterWarning, stacklevel=2)
    return compiled
