"""Builds the stacks of one deployment into a CDK app, with the cdk-nag gate."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lambdas.core.config import allowlist_to_json
from models.allowlist import AllowlistConfig
from models.names import PROJECT
from stacks.assets import LAMBDA_TARGET, BuiltAsset, Target, build_assets
from stacks.canary import canary_function_name, with_canary_rule
from stacks.forwarding import ForwardingStack
from stacks.member_stack import InvokeAuditMemberStack
from stacks.pipeline_stack import InvokeAuditStack
from stacks.settings import AccountRole, DeploySettings

__all__ = [
    "add_forwarding_stacks",
    "add_nag_checks",
    "add_stack",
    "build_stack",
    "functions_for",
    "stack_id",
]


def stack_id(settings: DeploySettings) -> str:
    kind = "InvokeAuditMember" if settings.account_role is AccountRole.MEMBER else "InvokeAudit"
    return f"{kind}-{settings.environment}"


def _environment(region: str | None) -> cdk.Environment | None:
    # The account always comes from the deploying credentials; the region too unless
    # `invoke-audit:regions` lists it.
    return cdk.Environment(region=region) if region else None


def _tag(stack: cdk.Stack, settings: DeploySettings) -> None:
    cdk.Tags.of(stack).add("project", PROJECT)
    cdk.Tags.of(stack).add("environment", settings.environment)


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
    env = _environment(settings.home_region)
    stack: cdk.Stack
    if settings.account_role is AccountRole.MEMBER:
        stack = InvokeAuditMemberStack(
            app, stack_id(settings), settings=settings, description=description, env=env
        )
    else:
        stack = InvokeAuditStack(
            app,
            stack_id(settings),
            settings=settings,
            allowlist=allowlist,
            assets=assets,
            description=description,
            env=env,
        )
    _tag(stack, settings)
    return stack


def add_forwarding_stacks(app: cdk.App, *, settings: DeploySettings) -> list[ForwardingStack]:
    """One `ForwardingStack` per listed region other than the home one: it sends that
    region's Invoke events to the home region's bus (a member: to the central bus)."""
    stacks = []
    for region in settings.forwarded_regions:
        stack = ForwardingStack(
            app,
            f"InvokeAuditForward-{settings.environment}-{region}",
            settings=settings,
            description=(
                f"invoke-audit ({settings.account_role.value}, {settings.environment}): "
                f"forwards the Lambda Invoke events of {region}"
            ),
            env=_environment(region),
        )
        stacks.append(stack)
        _tag(stack, settings)
    return stacks


def add_nag_checks(app: cdk.App) -> None:
    """cdk-nag's AWS Solutions pack; any finding not acknowledged (with a reason) fails synth."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def functions_for(settings: DeploySettings) -> tuple[str, ...]:
    """The functions a deployment runs (a member account runs none)."""
    return settings.functions


def build_stack(
    app: cdk.App,
    *,
    settings: DeploySettings,
    allowlist: AllowlistConfig,
    target: Target = LAMBDA_TARGET,
) -> cdk.Stack:
    """Build the functions' assets (cached; the validated `allowlist` goes into each), then the
    stack, which compiles the same `allowlist` into its rule. A pipeline's allowlist gets the
    self-test canary's rule first (stacks.canary)."""
    if settings.account_role is not AccountRole.MEMBER:
        allowlist = with_canary_rule(allowlist, canary_function_name(settings.environment))
    assets = build_assets(
        allowlist_json=allowlist_to_json(allowlist),
        target=target,
        functions=functions_for(settings),
    )
    stack = add_stack(app, settings=settings, allowlist=allowlist, assets=assets)
    add_forwarding_stacks(app, settings=settings)
    return stack
