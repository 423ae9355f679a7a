"""IAM grants, read from what the code declares.

Each adapter class in `lambdas/adapters` lists in `IAM_ACTIONS` the actions it calls, and
`lambdas.adapters` says which adapters each function uses. A function's role gets exactly
those actions, each on the resources of its service for that function (`ServiceScope`), plus
the KMS actions that encrypted resources need. An action of a service the function has no
scope for is an error at synth, so a new adapter call cannot go out without a grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from lambdas.adapters import (
    INGEST_ADAPTERS,
    REMEDIATOR_ADAPTERS,
    REMEDIATOR_CROSS_ACCOUNT_ADAPTERS,
    REMEDIATOR_FINDINGS_ADAPTERS,
    VALIDATOR_ADAPTERS,
    VALIDATOR_FINDINGS_ADAPTERS,
    iam_actions,
)

__all__ = [
    "CROSS_ACCOUNT_ACTIONS",
    "FINDINGS_ACTIONS",
    "FUNCTION_ACTIONS",
    "KMS_ACTIONS_FOR",
    "GrantError",
    "ServiceScope",
    "declared_statements",
    "function_actions",
    "grant_declared",
    "lambda_policy_scope",
    "remediation_guardrails",
    "security_hub_scope",
    "service_of",
]

# The functions' declared actions, by function (cross-account: the central remediator only).
FUNCTION_ACTIONS: dict[str, tuple[str, ...]] = {
    "validator": iam_actions(VALIDATOR_ADAPTERS),
    "remediator": iam_actions(REMEDIATOR_ADAPTERS),
    "ingest": iam_actions(INGEST_ADAPTERS),
}
CROSS_ACCOUNT_ACTIONS: tuple[str, ...] = iam_actions(REMEDIATOR_CROSS_ACCOUNT_ADAPTERS)
# Added only when Security Hub findings are on (invoke-audit:securityhub).
FINDINGS_ACTIONS: dict[str, tuple[str, ...]] = {
    "validator": iam_actions(VALIDATOR_FINDINGS_ADAPTERS),
    "remediator": iam_actions(REMEDIATOR_FINDINGS_ADAPTERS),
}

# What a call on a KMS-encrypted resource needs from the key.
KMS_ACTIONS_FOR: dict[str, tuple[str, ...]] = {
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "s3:PutObject": ("kms:GenerateDataKey",),
    "s3:GetObject": ("kms:Decrypt",),
}


class GrantError(Exception):
    """A declared action has no resource to be granted on."""


def function_actions(
    function: str, *, cross_account: bool = False, findings: bool = False
) -> tuple[str, ...]:
    """The declared actions of `function` (the remediator's include sts:AssumeRole when it
    works across accounts; with `findings`, the Security Hub calls)."""
    actions = set(FUNCTION_ACTIONS[function])
    if cross_account and function == "remediator":
        actions.update(CROSS_ACCOUNT_ACTIONS)
    if findings:
        actions.update(FINDINGS_ACTIONS.get(function, ()))
    return tuple(sorted(actions))


def service_of(action: str) -> str:
    return action.split(":", 1)[0]


@dataclass(frozen=True)
class ServiceScope:
    """Where one service's actions apply for one function."""

    resources: Sequence[str]
    key_arn: str | None = None  # the KMS key that encrypts those resources
    conditions: Mapping[str, Any] | None = None
    deny_resources: Sequence[str] = field(default_factory=tuple)  # explicit Deny, same actions
    # actions whose resource is of another type (s3:ListBucket acts on the bucket, not on
    # its objects): granted in a statement of their own
    per_action: Mapping[str, ServiceScope] = field(default_factory=dict)


def lambda_policy_scope(stack: cdk.Stack, own_function_arns: Sequence[str]) -> ServiceScope:
    """Every function of the stack's account, in every region (the trail is multi-region),
    with an explicit Deny on the pipeline's own functions, by their exact ARNs and those of
    their versions and aliases (a member account runs none: no Deny)."""
    functions = stack.format_arn(
        service="lambda",
        region="*",
        resource="function",
        resource_name="*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    deny = [form for arn in own_function_arns for form in (arn, f"{arn}:*")]
    return ServiceScope(resources=[functions], deny_resources=deny)


def security_hub_scope(stack: cdk.Stack) -> ServiceScope:
    """The stack's own Security Hub: findings are imported into its default product
    (`product/<account>/default`: only the finding's own account may import there), read and
    updated on its hub (resource types as the Service Authorization Reference lists them for
    Security Hub: `product` for BatchImportFindings, `hub` for GetFindings and
    BatchUpdateFindings)."""
    hub = stack.format_arn(service="securityhub", resource="hub", resource_name="default")
    product = stack.format_arn(
        service="securityhub", resource="product", resource_name=f"{stack.account}/default"
    )
    return ServiceScope(
        resources=[hub],
        per_action={"securityhub:BatchImportFindings": ServiceScope(resources=[product])},
    )


def remediation_guardrails() -> list[iam.PolicyStatement]:
    """Explicit Denies on a role that rewrites Lambda policies: it takes access away, so it
    never needs to grant everyone (`AddPermission` with `lambda:Principal` `*`) or to open a
    function URL.

    Condition keys as the Service Authorization Reference lists them for Lambda
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html):
    `lambda:AddPermission` takes `lambda:Principal` and `lambda:FunctionUrlAuthType`;
    `CreateFunctionUrlConfig` / `UpdateFunctionUrlConfig` are denied outright. No condition key
    covers the document `PutResourcePolicy` writes, so these Denies do not limit it: the
    rewrite and the proof before every write do (README, threat model).
    """
    return [
        iam.PolicyStatement(
            sid="NeverGrantEveryone",
            effect=iam.Effect.DENY,
            actions=["lambda:AddPermission"],
            resources=["*"],
            conditions={"StringEquals": {"lambda:Principal": "*"}},
        ),
        iam.PolicyStatement(
            sid="NeverOpenAFunctionUrl",
            effect=iam.Effect.DENY,
            actions=["lambda:CreateFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig"],
            resources=["*"],
        ),
    ]


def declared_statements(
    sid_prefix: str, actions: Iterable[str], scopes: Mapping[str, ServiceScope]
) -> list[iam.PolicyStatement]:
    """One Allow per service (and a Deny where the scope has one), one Allow per KMS key."""
    by_service: dict[str, list[str]] = {}
    for action in sorted(set(actions)):
        if "*" in action:
            raise GrantError(f"{action}: wildcard actions are never granted")
        by_service.setdefault(service_of(action), []).append(action)
    statements: list[iam.PolicyStatement] = []
    key_actions: dict[str, set[str]] = {}
    for service, service_actions in sorted(by_service.items()):
        scope = scopes.get(service)
        if scope is None:
            raise GrantError(
                f"{sid_prefix}: {', '.join(service_actions)} declared, but the stack gives "
                f"this function no {service} resource to call it on"
            )
        name = _sid(sid_prefix, service)
        own_scope = [a for a in service_actions if a not in scope.per_action]
        if own_scope:
            statements.append(
                iam.PolicyStatement(
                    sid=name,
                    actions=own_scope,
                    resources=list(scope.resources),
                    conditions=dict(scope.conditions) if scope.conditions else None,
                )
            )
        for action in service_actions:
            special = scope.per_action.get(action)
            if special is not None:
                statements.append(
                    iam.PolicyStatement(
                        sid=name + action.split(":", 1)[1],
                        actions=[action],
                        resources=list(special.resources),
                        conditions=dict(special.conditions) if special.conditions else None,
                    )
                )
        if scope.deny_resources:
            statements.append(
                iam.PolicyStatement(
                    sid=f"{name}DenyOwn",
                    effect=iam.Effect.DENY,
                    actions=service_actions,
                    resources=list(scope.deny_resources),
                )
            )
        if scope.key_arn is not None:
            for action in service_actions:
                key_actions.setdefault(scope.key_arn, set()).update(KMS_ACTIONS_FOR.get(action, ()))
    # KMS statements carry no Sid, so that identical ones added elsewhere (the dead-letter
    # queue's, the event source's) merge with them.
    for key_arn, kms_actions in key_actions.items():
        if kms_actions:
            statements.append(iam.PolicyStatement(actions=sorted(kms_actions), resources=[key_arn]))
    return statements


def grant_declared(
    role: iam.IRole,
    function: str,
    scopes: Mapping[str, ServiceScope],
    *,
    cross_account: bool = False,
    findings: bool = False,
    sid_prefix: str | None = None,
) -> None:
    """Give `role` exactly the actions `function`'s adapters declare, within `scopes`."""
    actions = function_actions(function, cross_account=cross_account, findings=findings)
    for statement in declared_statements(sid_prefix or function, actions, scopes):
        role.add_to_principal_policy(statement)


def _sid(prefix: str, service: str) -> str:
    return "".join(part.capitalize() for part in f"{prefix}-{service}".split("-") if part)
