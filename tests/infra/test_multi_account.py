"""The multi-account split: a member stack forwards and offers a role; the central stack
accepts the organization's events and may assume that role."""

from __future__ import annotations

import pytest

from stacks.member_stack import member_role_actions
from stacks.pattern import event_pattern
from tests.support.synth import CENTRAL_ACCOUNT, CENTRAL_BUS, ORG_ID

pytestmark = pytest.mark.infra


def test_the_central_default_bus_accepts_the_organization(synth):
    (policy,) = synth.resources("central", "AWS::Events::EventBusPolicy").values()
    props = policy["Properties"]
    assert props["EventBusName"] == "default"
    statement = props["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}
    assert "CentralBusArn" in synth.templates["central"]["Outputs"]
    assert synth.resources("standalone", "AWS::Events::EventBusPolicy") == {}


def test_the_central_remediators_role_has_the_name_members_trust(synth):
    roles = synth.resources("central", "AWS::IAM::Role").values()
    names = [str(r["Properties"].get("RoleName", "")) for r in roles]
    assert any("invoke-audit-remediator-" in name for name in names)


def test_the_member_forwards_invoke_events_to_the_central_bus(synth):
    (rule,) = synth.resources("member", "AWS::Events::Rule").values()
    props = rule["Properties"]
    pattern = props["EventPattern"]
    expected = event_pattern(own_function_arn_prefix="X")
    assert pattern["source"] == expected["source"]
    assert pattern["detail-type"] == expected["detail-type"]
    assert pattern["detail"]["eventName"] == ["Invoke"]
    (target,) = props["Targets"]
    assert target["Arn"] == CENTRAL_BUS
    assert target["RoleArn"]
    assert target["DeadLetterConfig"]["Arn"]


def test_the_member_records_invoke_data_events_and_runs_no_function(synth):
    assert synth.resources("member", "AWS::Lambda::Function") == {}
    (trail,) = synth.resources("member", "AWS::CloudTrail::Trail").values()
    selectors = trail["Properties"]["AdvancedEventSelectors"]
    assert any("Invoke" in str(s) for s in selectors)


def test_the_member_remediation_role_trusts_only_the_central_remediator(synth):
    roles = {
        r["Properties"].get("RoleName"): r["Properties"]
        for r in synth.resources("member", "AWS::IAM::Role").values()
    }
    role = roles["invoke-audit-remediation"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert f":iam::{CENTRAL_ACCOUNT}:root" in str(trust["Principal"]["AWS"])
    principal_arn = str(trust["Condition"]["ArnLike"]["aws:PrincipalArn"])
    assert f":iam::{CENTRAL_ACCOUNT}:role/invoke-audit-remediator-*" in principal_arn
    assert role["MaxSessionDuration"] == 3600


def test_the_member_remediation_role_may_only_rewrite_lambda_policies(synth):
    statements = []
    for policy in synth.resources("member", "AWS::IAM::Policy").values():
        if any("RemediationRole" in str(ref) for ref in policy["Properties"]["Roles"]):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    actions = member_role_actions()
    assert actions and all(a.startswith("lambda:") for a in actions)
    assert [sorted(s["Action"]) for s in allow] == [sorted(actions)]
    assert [sorted(s["Action"]) for s in deny] == [sorted(actions)]
    assert "function:invoke-audit-*" in str(deny[0]["Resource"])
