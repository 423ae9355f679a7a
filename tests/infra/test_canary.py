"""The self-test canary: a do-nothing function with a role that only writes its logs, its own
monitor-mode rule first in the allowlist every pipeline function ships, and the outputs
`invoke-audit selftest` reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli.allowlist_file import parse_allowlist
from models.exceptions import ConfigError
from stacks.canary import canary_function_name, with_canary_rule

pytestmark = pytest.mark.infra


def _canary(synth: Any, variant: str) -> tuple[str, dict[str, Any]]:
    name = canary_function_name(synth.settings[variant].environment)
    found = [
        (logical, resource)
        for logical, resource in synth.resources(variant, "AWS::Lambda::Function").items()
        if resource["Properties"].get("FunctionName") == name
    ]
    assert len(found) == 1, f"no canary {name} in {variant}"
    return found[0]


@pytest.mark.parametrize("variant", ["standalone", "central", "existing"])
def test_every_pipeline_has_a_canary_named_outside_the_own_prefix(synth, variant):
    _, canary = _canary(synth, variant)
    props = canary["Properties"]
    assert props["FunctionName"] == f"invokeaudit-canary-{variant}"
    assert not props["FunctionName"].startswith(synth.settings[variant].function_prefix)
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["Handler"] == "index.handler"
    assert "def handler(event, context)" in props["Code"]["ZipFile"]
    assert "Environment" not in props  # it reads nothing
    outputs = synth.templates[variant]["Outputs"]
    assert {"CanaryFunctionName", "ValidatorLogGroupName", "InvokeRuleName"} <= set(outputs)


def test_the_canarys_role_may_only_write_its_own_log_group(synth):
    _, canary = _canary(synth, "standalone")
    role = canary["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        p
        for p in synth.resources("standalone", "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert [sorted(s["Action"]) for s in statements] == [
        ["logs:CreateLogStream", "logs:PutLogEvents"]
    ]
    roles = synth.resources("standalone", "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in roles[role]["Properties"]


def test_the_member_stack_has_no_canary(synth):
    functions = synth.resources("member", "AWS::Lambda::Function").values()
    assert not any("canary" in str(f["Properties"].get("FunctionName")) for f in functions)


def test_the_shipped_allowlist_starts_with_the_canarys_monitor_rule(synth):
    validator = next(
        r
        for r in synth.resources("standalone", "AWS::Lambda::Function").values()
        if str(r["Properties"].get("FunctionName", "")).endswith("validator")
    )
    key = validator["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    shipped = json.loads((synth.outdir / f"asset.{key}" / "allowlist.json").read_text())
    first = shipped["rules"][0]
    assert first["name"] == "invoke-audit-canary"
    assert first["functions"] == ["invokeaudit-canary-standalone"]
    assert first["mode"] == "monitor"
    assert first["allow"] == []


def test_the_canary_rule_name_is_reserved():
    config = parse_allowlist("rules:\n  - {name: invoke-audit-canary, functions: [x]}\n")
    with pytest.raises(ConfigError, match="reserved for the self-test's canary"):
        with_canary_rule(config, "invokeaudit-canary-dev")


def test_the_canary_rule_comes_before_a_catch_all_rule():
    config = with_canary_rule(
        parse_allowlist("rules:\n  - {name: all, functions: ['*'], mode: enforce}\n"),
        "invokeaudit-canary-dev",
    )
    assert [rule.name for rule in config.rules] == ["invoke-audit-canary", "all"]
    assert config.mode_of(config.rules[0]) == "monitor"
