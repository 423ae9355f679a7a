"""Acknowledging cdk-nag findings: every one with the reason it is right here."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

__all__ = ["PLUGIN", "acknowledge", "arn_of", "partition_shown"]


PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge `rule` (e.g. `AwsSolutions-IAM5[Resource::...]`) on `scope` and below."""
    if len(reason) < 40:
        raise ValueError(f"{rule}: say why the finding is acceptable here")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def arn_of(resource: cdk.CfnResource) -> str:
    """How cdk-nag writes the ARN attribute of `resource` in a finding: `<LogicalId.Arn>`."""
    stack = cdk.Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(resource))}.Arn>"


def partition_shown(scope: IConstruct) -> str:
    """How cdk-nag writes the stack's partition in a finding: `<AWS::Partition>`, or the
    partition itself when the stack's region is known at synth."""
    partition = cdk.Stack.of(scope).partition
    return "<AWS::Partition>" if cdk.Token.is_unresolved(partition) else partition
