"""The validator's daily scheduled run: a schedule rule that invokes the validator with
EventBridge's own Scheduled Event, and what the run needs (the notice table, the topic)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.synth import Synth, flat

pytestmark = pytest.mark.infra


def _validator(synth: Synth, variant: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, resource)
        for name, resource in synth.resources(variant, "AWS::Lambda::Function").items()
        if resource["Properties"].get("FunctionName") == f"invoke-audit-{variant}-validator"
    ]
    return found


def _schedule_rules(synth: Synth, variant: str) -> dict[str, dict[str, Any]]:
    return {
        name: rule
        for name, rule in synth.resources(variant, "AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
        and any(
            "Validator" in flat(target["Arn"]) for target in rule["Properties"].get("Targets", [])
        )
    }


@pytest.mark.parametrize("variant", ["standalone", "central"])
def test_one_daily_rule_invokes_the_validator_with_the_scheduled_event(synth, variant):
    validator, _ = _validator(synth, variant)
    rules = _schedule_rules(synth, variant)
    assert len(rules) == 1, rules
    ((_, rule),) = rules.items()
    properties = rule["Properties"]
    assert properties["ScheduleExpression"] == "cron(0 8 * * ? *)"
    assert properties.get("State", "ENABLED") == "ENABLED"
    (target,) = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [validator, "Arn"]}
    # No Input/InputPath: the validator gets EventBridge's own Scheduled Event (source
    # aws.events), which is how it tells the run from an Invoke envelope.
    assert not {"Input", "InputPath", "InputTransformer"} & set(target)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert "DeadLetterConfig" in target


@pytest.mark.parametrize("variant", ["standalone", "central"])
def test_only_the_daily_rule_may_invoke_the_validator_as_a_schedule(synth, variant):
    validator, _ = _validator(synth, variant)
    ((rule_name, _),) = _schedule_rules(synth, variant).items()
    permissions = [
        p["Properties"]
        for p in synth.resources(variant, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [validator, "Arn"]}
        and p["Properties"].get("SourceArn") == {"Fn::GetAtt": [rule_name, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [validator, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_name, "Arn"]},
        }
    ]


def test_the_validator_knows_the_notice_table_and_the_topic(synth):
    _, function = _validator(synth, "standalone")
    environment = function["Properties"]["Environment"]["Variables"]
    tables = synth.resources("standalone", "AWS::DynamoDB::Table")
    (table,) = tables
    assert environment["RATE_TABLE"] == {"Ref": table}
    topics = synth.resources("standalone", "AWS::SNS::Topic")
    assert environment["TOPIC_ARN"]["Ref"] in topics


def test_the_daily_rule_is_watched_for_tampering(synth):
    ((rule_name, _),) = _schedule_rules(synth, "standalone").items()
    watched = [
        rule
        for rule in synth.resources("standalone", "AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
        and f"<Ref:{rule_name}>" in flat(rule["Properties"]["EventPattern"])
    ]
    assert watched, "no tamper rule names the daily rule"
