"""Deployments side by side: two environments in one account, a member account in several
regions, and the defaults that avoid paying twice."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.settings import CONTEXT_DEFAULTS, DeploySettings

pytestmark = pytest.mark.infra

# Properties that carry a physical name, which must be unique per account (and region).
NAME_PROPERTIES = (
    "RoleName",
    "FunctionName",
    "LogGroupName",
    "TrailName",
    "DashboardName",
    "StatementId",
    "QueueName",
    "TableName",
    "BucketName",
    "TopicName",
    "Name",
)


def _names(templates: dict[str, dict[str, Any]]) -> set[str]:
    names = set()
    for template in templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] in ("AWS::Lambda::Permission", "Custom::S3BucketNotifications"):
                continue
            for key in NAME_PROPERTIES:
                value = resource.get("Properties", {}).get(key)
                if isinstance(value, str):
                    names.add(f"{resource['Type']}:{value}")
    return names


def test_two_environments_synthesize_in_one_account_without_a_name_clash(synth):
    # "standalone" and "regions" are two standalone environments of one account
    first = _names(synth.deployments["standalone"])
    second = _names(synth.deployments["regions"])
    assert {n.split(":", 2)[1] for n in first} >= {
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
    } or first
    assert any("invoke-audit-standalone-" in n for n in first)
    assert any("invoke-audit-regions-" in n for n in second)
    assert first and second
    assert not first & second
    # and within one deployment, every name once
    for variant, stacks in synth.deployments.items():
        listed = [n for n in _names({k: v for k, v in stacks.items()})]
        assert len(listed) == len(set(listed)), variant


def test_the_member_role_and_trail_are_created_once_per_account(synth):
    for variant in ("member", "member-regions"):
        stacks = synth.deployments[variant]
        roles = [
            r
            for template in stacks.values()
            for r in template["Resources"].values()
            if r["Type"] == "AWS::IAM::Role"
            and str(r["Properties"].get("RoleName", "")).endswith("-remediation")
        ]
        trails = [
            r
            for template in stacks.values()
            for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudTrail::Trail"
        ]
        assert len(roles) == 1, variant
        assert len(trails) == 1, variant
    # the extra region's stack holds only the forwarding rule and what it needs
    (_, forward) = list(synth.deployments["member-regions"].items())
    types = {r["Type"] for r in forward[1]["Resources"].values()}
    assert "AWS::CloudTrail::Trail" not in types
    assert types <= {
        "AWS::Events::Rule",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::CloudWatch::Alarm",
    }


def test_management_events_are_off_by_default():
    assert CONTEXT_DEFAULTS["invoke-audit:management-events"] is False
    assert DeploySettings().management_events is False


def test_physical_names_derive_from_the_environment():
    settings = DeploySettings(environment="prod")
    assert settings.function_name("validator") == "invoke-audit-prod-validator"
    assert settings.trail_name == "invoke-audit-prod-trail"
    assert settings.remediation_role_name == "invoke-audit-prod-remediation"
    assert settings.remediator_role_name == "invoke-audit-prod-remediator"
