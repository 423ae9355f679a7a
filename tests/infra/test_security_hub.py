"""Security Hub findings in the templates: off by default (no grant, no setting); with
`invoke-audit:securityhub` on (the "regions" variant) exactly the Security Hub calls the
adapters declare, on the stack's own product and hub."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.settings import SettingsError, settings_from_mapping
from tests.support.synth import Synth, cdk_json_context, flat

pytestmark = pytest.mark.infra

# The "regions" stack is pinned to its home region (us-east-1), so partition and region are known.
ACCOUNT = "<Ref:AWS::AccountId>"
PRODUCT = f"arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default"
HUB = f"arn:aws:securityhub:us-east-1:{ACCOUNT}:hub/default"


def _function(synth: Synth, variant: str, name: str) -> dict[str, Any]:
    (found,) = [
        r
        for r in synth.resources(variant, "AWS::Lambda::Function").values()
        if r["Properties"].get("FunctionName") == f"invoke-audit-{variant}-{name}"
    ]
    return found


def _grants(synth: Synth, variant: str, name: str) -> dict[str, set[str]]:
    """service action -> the resources it is allowed on, for one function's role."""
    role = _function(synth, variant, name)["Properties"]["Role"]["Fn::GetAtt"][0]
    grants: dict[str, set[str]] = {}
    for policy in synth.resources(variant, "AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in resources if isinstance(resources, list) else [resources]:
                    grants.setdefault(action, set()).add(flat(resource))
    return grants


@pytest.mark.parametrize("variant", ["standalone", "central", "existing"])
@pytest.mark.parametrize("name", ["validator", "remediator"])
def test_off_by_default_no_grant_and_no_setting(synth, variant, name):
    assert not [a for a in _grants(synth, variant, name) if a.startswith("securityhub:")]
    environment = _function(synth, variant, name)["Properties"]["Environment"]["Variables"]
    assert "SECURITY_HUB_FINDINGS" not in environment


def test_on_the_validator_may_import_and_read_findings_on_its_own_hub(synth):
    grants = _grants(synth, "regions", "validator")
    hub = {a: r for a, r in grants.items() if a.startswith("securityhub:")}
    assert hub == {"securityhub:BatchImportFindings": {PRODUCT}, "securityhub:GetFindings": {HUB}}
    (table,) = grants["dynamodb:UpdateItem"]
    assert table.startswith("<GetAtt:RateLimit")
    environment = _function(synth, "regions", "validator")["Properties"]["Environment"]["Variables"]
    assert environment["SECURITY_HUB_FINDINGS"] == "on"
    assert flat(environment["RATE_TABLE"]).startswith("<Ref:RateLimit")


def test_on_the_remediator_may_import_findings_and_resolve_them(synth):
    grants = _grants(synth, "regions", "remediator")
    hub = {a: r for a, r in grants.items() if a.startswith("securityhub:")}
    assert hub == {
        "securityhub:BatchImportFindings": {PRODUCT},
        "securityhub:BatchUpdateFindings": {HUB},
    }
    environment = _function(synth, "regions", "remediator")["Properties"]["Environment"][
        "Variables"
    ]
    assert environment["SECURITY_HUB_FINDINGS"] == "on"


@pytest.mark.parametrize(
    ("given", "expected"), [("true", True), (True, True), ("false", False), (False, False)]
)
def test_the_context_key_is_a_boolean(given, expected):
    context = {**cdk_json_context(), "invoke-audit:securityhub": given}
    assert settings_from_mapping(context).security_hub is expected


def test_a_bad_value_names_the_key():
    context = {**cdk_json_context(), "invoke-audit:securityhub": "maybe"}
    with pytest.raises(SettingsError, match="invoke-audit:securityhub"):
        settings_from_mapping(context)
