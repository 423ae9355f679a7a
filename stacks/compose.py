"""Builds the stacks of one deployment into a CDK app, with the cdk-nag gate."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lambdas.core.config import allowlist_to_json
from models.allowlist import AllowlistConfig
from stacks.assets import LAMBDA_TARGET, BuiltAsset, Target, build_assets
from stacks.member_stack import InvokeAuditMemberStack
from stacks.pipeline_stack import InvokeAuditStack
from stacks.settings import AccountRole, DeploySettings

__all__ = ["add_nag_checks", "add_stack", "build_stack", "functions_for", "stack_id"]


def stack_id(settings: DeploySettings) -> str:
    kind = "InvokeAuditMember" if settings.account_role is AccountRole.MEMBER else "InvokeAudit"
    return f"{kind}-{settings.environment}"


def add_stack(
    app: cdk.App,
    *,
    settings: DeploySettings,
    allowlist: AllowlistConfig,
    assets: Mapping[str, BuiltAsset],
) -> cdk.Stack:
    """The stack for `settings.account_role`; environment-agnostic (no lookups: synth works
    offline and the account and region come from the deploying credentials)."""
    description = (
        f"invoke-audit ({settings.account_role.value}, {settings.environment}): "
        "watches Lambda Invoke calls and takes access away from callers not on the allowlist"
    )
    stack: cdk.Stack
    if settings.account_role is AccountRole.MEMBER:
        stack = InvokeAuditMemberStack(
            app, stack_id(settings), settings=settings, description=description
        )
    else:
        stack = InvokeAuditStack(
            app,
            stack_id(settings),
            settings=settings,
            allowlist=allowlist,
            assets=assets,
            description=description,
        )
    cdk.Tags.of(stack).add("project", "invoke-audit")
    cdk.Tags.of(stack).add("environment", settings.environment)
    return stack


def add_nag_checks(app: cdk.App) -> None:
    """cdk-nag's AWS Solutions pack; any finding not acknowledged (with a reason) fails synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def functions_for(settings: DeploySettings) -> tuple[str, ...]:
    """The functions a deployment runs (a member account runs none)."""
    if settings.account_role is AccountRole.MEMBER:
        return ()
    return (
        ("validator", "remediator", "ingest") if settings.s3_ingest else ("validator", "remediator")
    )


def build_stack(
    app: cdk.App,
    *,
    settings: DeploySettings,
    allowlist: AllowlistConfig,
    target: Target = LAMBDA_TARGET,
) -> cdk.Stack:
    """Build the functions' assets (cached; the validated `allowlist` goes into each), then the
    stack, which compiles the same `allowlist` into its rule."""
    assets = build_assets(
        allowlist_json=allowlist_to_json(allowlist),
        target=target,
        functions=functions_for(settings),
    )
    return add_stack(app, settings=settings, allowlist=allowlist, assets=assets)
