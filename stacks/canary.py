"""The canary: a function that does nothing, watched by a rule of its own in monitor mode, so
that `invoke-audit selftest` can invoke it as a caller not on that rule's list and follow the
verdict through the whole pipeline.

Its name does not start with the pipeline's own prefix: the trail records its Invokes and the
validator judges them like any other function's. Its rule allows no caller and is in monitor
mode, so every Invoke of it is a reported violation and no policy is ever changed.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cli.operate import CANARY_RULE
from models.allowlist import AllowlistConfig
from models.exceptions import ConfigError
from stacks.functions import ARCHITECTURE, RUNTIME, retention
from stacks.nag import acknowledge

__all__ = ["CANARY_RULE", "Canary", "canary_function_name", "with_canary_rule"]

_SOURCE = (
    '"""invoke-audit canary: invoked by `invoke-audit selftest`; does nothing."""\n\n\n'
    "def handler(event, context):\n"
    '    return {"canary": True}\n'
)


def canary_function_name(environment: str) -> str:
    """`invokeaudit-canary-<environment>`: unique per deployment, outside the own prefix."""
    return f"invokeaudit-canary-{environment}"


def with_canary_rule(config: AllowlistConfig, function_name: str) -> AllowlistConfig:
    """`config` with the canary's rule first (monitor mode, no caller allowed), validated again.

    First, so that no user rule (a `*`, say) takes the canary's Invokes."""
    if any(rule.name == CANARY_RULE for rule in config.rules):
        raise ConfigError(
            [f"rules: the rule name {CANARY_RULE!r} is reserved for the self-test's canary"]
        )
    data: dict[str, Any] = config.model_dump(mode="json")
    rule = {"name": CANARY_RULE, "functions": [function_name], "mode": "monitor", "allow": []}
    data["rules"] = [rule, *data["rules"]]
    return AllowlistConfig.model_validate(data)


class Canary(Construct):
    """The canary function, with a role that may only write its own log group."""

    def __init__(
        self, scope: Construct, construct_id: str, *, function_name: str, log_retention_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.function_name = function_name
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: writes its own log group, nothing else",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description="invoke-audit self-test canary: does nothing; its Invokes are judged",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="index.handler",
            code=lambda_.Code.from_inline(_SOURCE),
            role=self.role,
            log_group=self.log_group,
            timeout=cdk.Duration.seconds(3),
            memory_size=128,
            reserved_concurrent_executions=1,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "The canary runs the same Python runtime as the pipeline's functions, which moves "
            "with stacks.assets.LAMBDA_TARGET.",
        )
