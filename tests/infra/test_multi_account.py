"""The multi-account split: a member stack forwards and offers a role; the central stack
accepts the listed members' Lambda events and may assume that role."""

from __future__ import annotations

import pytest

from stacks.member_stack import member_role_actions
from stacks.pattern import event_pattern
from tests.support.synth import CENTRAL_ACCOUNT, CENTRAL_BUS, MEMBER_ACCOUNT, ORG_ID, flat

pytestmark = pytest.mark.infra


def test_the_central_default_bus_accepts_only_the_listed_members_and_lambda_events(synth):
    (policy,) = synth.resources("central", "AWS::Events::EventBusPolicy").values()
    props = policy["Properties"]
    assert props["EventBusName"] == "default"
    statement = props["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "events:PutEvents"
    assert [flat(p) for p in statement["Principal"]["AWS"]] == [
        f"arn:<Ref:AWS::Partition>:iam::{account}:root"
        for account in (MEMBER_ACCOUNT, "555566667777")
    ]
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {"events:source": ["aws.lambda"]},
        "StringEquals": {"aws:PrincipalOrgID": ORG_ID},
    }
    assert "CentralBusArn" in synth.templates["central"]["Outputs"]
    assert synth.resources("standalone", "AWS::Events::EventBusPolicy") == {}


def test_the_central_remediators_role_has_the_exact_name_members_trust(synth):
    roles = synth.resources("central", "AWS::IAM::Role").values()
    names = [str(r["Properties"].get("RoleName", "")) for r in roles]
    assert "invoke-audit-central-remediator" in names
    assert "RemediatorRoleArn" in synth.templates["central"]["Outputs"]


def test_the_member_forwards_every_invoke_event_to_the_central_bus(synth):
    (rule,) = synth.resources("member", "AWS::Events::Rule").values()
    props = rule["Properties"]
    # a member account runs no pipeline function: nothing is left out, by name or ARN
    assert props["EventPattern"] == event_pattern()
    assert "resources" not in props["EventPattern"]["detail"]
    (target,) = props["Targets"]
    assert target["Arn"] == CENTRAL_BUS
    assert target["RoleArn"]
    assert target["DeadLetterConfig"]["Arn"]


def test_the_member_records_every_invoke_and_runs_no_function(synth):
    assert synth.resources("member", "AWS::Lambda::Function") == {}
    (trail,) = synth.resources("member", "AWS::CloudTrail::Trail").values()
    selectors = trail["Properties"]["AdvancedEventSelectors"]
    assert any("Invoke" in str(s) for s in selectors)
    assert "resources.ARN" not in str(selectors)


def _member_role(synth, variant):
    roles = {
        r["Properties"].get("RoleName"): r["Properties"]
        for r in synth.resources(variant, "AWS::IAM::Role").values()
    }
    return roles[f"invoke-audit-{synth.settings[variant].environment}-remediation"]


def test_the_member_role_trusts_exactly_the_central_remediator_of_the_organization(synth):
    role = _member_role(synth, "member")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert (
        flat(trust["Principal"]["AWS"]) == f"arn:<Ref:AWS::Partition>:iam::{CENTRAL_ACCOUNT}:root"
    )
    # exactly one role ARN (StringEquals, no wildcard), and the organization
    assert set(trust["Condition"]) == {"StringEquals"}
    condition = trust["Condition"]["StringEquals"]
    assert flat(condition["aws:PrincipalArn"]) == (
        f"arn:<Ref:AWS::Partition>:iam::{CENTRAL_ACCOUNT}:role/invoke-audit-central-remediator"
    )
    assert condition["aws:PrincipalOrgID"] == ORG_ID
    assert role["MaxSessionDuration"] == 3600
    # without an organization id configured, the exact role ARN alone
    (trust,) = _member_role(synth, "member-regions")["AssumeRolePolicyDocument"]["Statement"]
    assert set(trust["Condition"]["StringEquals"]) == {"aws:PrincipalArn"}


def test_the_member_role_may_only_rewrite_lambda_policies_and_never_open_them(synth):
    statements = []
    for policy in synth.resources("member", "AWS::IAM::Policy").values():
        if any("RemediationRole" in str(ref) for ref in policy["Properties"]["Roles"]):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    allow = [s for s in statements if s["Effect"] == "Allow"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    actions = member_role_actions()
    assert actions and all(a.startswith("lambda:") for a in actions)
    assert [sorted(s["Action"]) for s in allow] == [sorted(actions)]
    # no Deny by name (a member runs no pipeline function); the two guardrails
    assert deny == [
        {
            "Sid": "NeverGrantEveryone",
            "Effect": "Deny",
            "Action": "lambda:AddPermission",
            "Resource": "*",
            "Condition": {"StringEquals": {"lambda:Principal": "*"}},
        },
        {
            "Sid": "NeverOpenAFunctionUrl",
            "Effect": "Deny",
            "Action": ["lambda:CreateFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig"],
            "Resource": "*",
        },
    ]
