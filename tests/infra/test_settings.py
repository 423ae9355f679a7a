"""Deployment settings from the CDK context: defaults, parsing, and what each role needs."""

from __future__ import annotations

import pytest

from stacks.settings import (
    CONTEXT_DEFAULTS,
    AccountRole,
    DeploySettings,
    SettingsError,
    settings_from_mapping,
)
from tests.support.synth import cdk_json_context

pytestmark = pytest.mark.infra

CENTRAL = {
    "invoke-audit:account-role": "central",
    "invoke-audit:organization-id": "o-a1b2c3d4e5",
    "invoke-audit:member-account-ids": "222233334444",
}
MEMBER = {
    "invoke-audit:account-role": "member",
    "invoke-audit:central-account-id": "111122223333",
    "invoke-audit:central-bus-arn": "arn:aws:events:us-east-1:111122223333:event-bus/default",
}


def test_cdk_json_lists_every_setting_with_its_default():
    context = cdk_json_context()
    ours = {k: v for k, v in context.items() if k.startswith("invoke-audit:")}
    assert ours == CONTEXT_DEFAULTS
    assert settings_from_mapping(context) == DeploySettings()
    assert settings_from_mapping({}) == DeploySettings()


def test_cdk_json_enables_the_recommended_feature_flags():
    context = cdk_json_context()
    flags = [k for k in context if k.startswith("@aws-cdk")]
    assert len(flags) > 50
    assert context["@aws-cdk/aws-iam:minimizePolicies"] is True


@pytest.mark.parametrize(
    ("given", "expected"),
    [(True, True), ("true", True), ("yes", True), ("false", False), ("0", False)],
)
def test_command_line_booleans_are_parsed(given, expected):
    settings = settings_from_mapping({"invoke-audit:s3-ingest": given})
    assert settings.s3_ingest is expected


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"invoke-audit:s3-ingest": "maybe"}, "invoke-audit:s3-ingest: expected true or false"),
        ({"invoke-audit:log-retention-days": 10}, "invoke-audit:log-retention-days"),
        ({"invoke-audit:alert-email": "nobody"}, "invoke-audit:alert-email"),
        ({"invoke-audit:function-prefix": "Audit"}, "invoke-audit:function-prefix"),
        ({"invoke-audit:account-role": "central"}, "invoke-audit:organization-id: required"),
        (
            {**CENTRAL, "invoke-audit:member-account-ids": ""},
            "invoke-audit:member-account-ids: required",
        ),
        ({**CENTRAL, "invoke-audit:member-account-ids": "1234"}, "not a 12-digit account id"),
        ({"invoke-audit:account-role": "member"}, "invoke-audit:central-account-id: required"),
        (
            {**MEMBER, "invoke-audit:central-account-id": "999999999999"},
            "its account is not invoke-audit:central-account-id",
        ),
        ({**MEMBER, "invoke-audit:s3-ingest": True}, "not available when account-role is member"),
        (
            {
                "invoke-audit:existing-trail-arn": "arn:aws:cloudtrail:us-east-1:111122223333:trail/t",
                "invoke-audit:s3-ingest": True,
            },
            "invoke-audit:existing-trail-bucket: required",
        ),
    ],
)
def test_bad_settings_name_the_key(context, message):
    with pytest.raises(SettingsError, match=message):
        settings_from_mapping(context)


def test_role_settings_are_read():
    central = settings_from_mapping(
        {**CENTRAL, "invoke-audit:member-account-ids": ["555566667777", "222233334444"]}
    )
    assert central.account_role is AccountRole.CENTRAL
    assert central.member_account_ids == ("222233334444", "555566667777")
    member = settings_from_mapping(MEMBER)
    assert member.account_role is AccountRole.MEMBER
    assert member.remediation_role_name == "invoke-audit-dev-remediation"
    assert member.function_name("validator") == "invoke-audit-dev-validator"


@pytest.mark.parametrize(("given", "expected"), [(2048, 2048), ("4096", 4096), (3000, 3000)])
def test_pattern_size_limit_is_read(given, expected):
    context = {"invoke-audit:event-pattern-size-limit": given}
    assert settings_from_mapping(context).pattern_size_limit == expected


@pytest.mark.parametrize("given", [1024, 4097, "big", True, 2048.5])
def test_pattern_size_limit_outside_eventbridge_quota_is_refused(given):
    with pytest.raises(SettingsError, match="invoke-audit:event-pattern-size-limit"):
        settings_from_mapping({"invoke-audit:event-pattern-size-limit": given})


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"invoke-audit:regions": "us-east-1,us-esat"}, "'us-esat' is not a region name"),
        ({"invoke-audit:regions": "us-east-1,us-east-1"}, "listed twice"),
        ({"invoke-audit:heartbeat-hours": 25}, "expected 0 to 24 hours"),
        ({"invoke-audit:object-lock-days": 400}, "longer than invoke-audit:trail-retention-days"),
        (
            {"invoke-audit:environment": "e" * 24, "invoke-audit:function-prefix": "p" * 30 + "-"},
            "exceed IAM's 64",
        ),
    ],
)
def test_hardening_settings_are_checked(context, message):
    with pytest.raises(SettingsError, match=message):
        settings_from_mapping(context)


def test_regions_list_the_home_region_first():
    settings = settings_from_mapping({"invoke-audit:regions": ["eu-west-1", "us-east-1"]})
    assert settings.home_region == "eu-west-1"
    assert settings.forwarded_regions == ("us-east-1",)
    assert DeploySettings().home_region is None
    assert DeploySettings().forwarded_regions == ()
