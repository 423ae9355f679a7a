"""The pipeline stack's outputs, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk

from stacks.canary import CANARY_RULE
from stacks.trail import trail_selectors

if TYPE_CHECKING:
    from stacks.pipeline_stack import InvokeAuditStack

__all__ = ["pipeline_outputs"]


def pipeline_outputs(stack: InvokeAuditStack) -> None:
    """The stack's outputs: what operators, `selftest` and `status` read."""
    cdk.CfnOutput(stack, "QueueUrl", value=stack.queue.queue.queue_url)
    cdk.CfnOutput(stack, "AlertTopicArn", value=stack.alerts.topic.topic_arn)
    cdk.CfnOutput(stack, "TamperTopicArn", value=stack.tamper.topic.topic_arn)
    cdk.CfnOutput(stack, "BackupBucketName", value=stack.backups.bucket.bucket_name)
    # What `invoke-audit restore` checks a backup with: the signing key, the own functions.
    cdk.CfnOutput(stack, "BackupMacKeyArn", value=stack.backup_mac.key.key_arn)
    cdk.CfnOutput(stack, "OwnFunctionArns", value=cdk.Fn.join(",", list(stack.own_function_arns)))
    # What `invoke-audit selftest` and `status` read.
    cdk.CfnOutput(stack, "CanaryFunctionName", value=stack.canary.function.function_name)
    cdk.CfnOutput(stack, "ValidatorLogGroupName", value=stack.validator.log_group.log_group_name)
    # The edge rule that delivers the canary's Invokes (its allowlist rule comes first).
    canary_rule = stack.rules.by_key.get(f"rule-{CANARY_RULE}", stack.rules.rules[0])
    cdk.CfnOutput(stack, "InvokeRuleName", value=canary_rule.rule_name)
    trail = stack.trail.trail
    if trail is not None:
        cdk.CfnOutput(stack, "TrailBucketName", value=trail.bucket.bucket_name)
        cdk.CfnOutput(stack, "TrailArn", value=trail.trail_arn)
        return
    cdk.CfnOutput(
        stack,
        "RequiredTrailSelectors",
        description="Put these advanced event selectors on the existing trail",
        value=stack.to_json_string(
            trail_selectors(management_events=stack.settings.management_events)
        ),
    )
