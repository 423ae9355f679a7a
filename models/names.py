"""The pipeline's names: one place for what the stacks create and the functions look for.

The stacks name resources from these, the functions read their defaults from them, and the
CLI and the demo use them for their defaults; a deployment may change the prefix (CDK
context `invoke-audit:function-prefix`). The pipeline's own functions are known by their
exact ARNs only (env OWN_FUNCTION_ARNS for the functions): a name prefix is no identity, since
anyone may name a function like them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_PREFIX",
    "DENY_SID",
    "FUNCTIONS",
    "METRICS_NAMESPACE",
    "PROJECT",
    "SERVICE_NAME",
    "function_name",
    "own_function_arns",
]

PROJECT: Final = "invoke-audit"
# The prefix of every resource a deployment creates, and of its own functions' names.
DEFAULT_PREFIX: Final = f"{PROJECT}-"
# Powertools' service name (logs, metrics dimension) and the CloudWatch metrics namespace.
SERVICE_NAME: Final = PROJECT
METRICS_NAMESPACE: Final = "InvokeAudit"
# The Sid of the explicit Deny a rule with `deny_others: true` adds to a policy.
DENY_SID: Final = "InvokeAuditDenyOthers"
# The pipeline's functions: `lambdas/<name>/handler.py`, deployed as `<prefix><name>`.
FUNCTIONS: Final = ("validator", "remediator", "ingest")


def function_name(function: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`validator` -> `invoke-audit-validator`: a pipeline function's deployed name."""
    return f"{prefix}{function}"


def own_function_arns(listed: str | None) -> frozenset[str]:
    """The pipeline's own functions from OWN_FUNCTION_ARNS (comma-separated unqualified ARNs)."""
    return frozenset(arn.strip() for arn in (listed or "").split(",") if arn.strip())
