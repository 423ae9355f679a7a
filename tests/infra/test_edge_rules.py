"""The deployed edge rules, as synthesized: accepted by aws/event-ruler (EventBridge's matcher),
within EventBridge's limits, and each one a source the validator's permissions name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.event_ruler import EventRuler
from stacks.edge_filter import MAX_OR_TERMS, PATTERN_SIZE_LIMIT, pattern_size
from stacks.events_rules import VALIDATOR_SOURCES_MAX
from tests.event_ruler import ruler
from tests.support.synth import Synth

pytestmark = pytest.mark.infra

__all__ = ["ruler"]

# The longest values the deploy-time placeholders take: partition, region, account.
LONGEST = {
    "AWS::Partition": "aws-us-gov",
    "AWS::Region": "ap-southeast-4",
    "AWS::AccountId": "1" * 12,
}


def _resolved(pattern: Any) -> dict[str, Any]:
    """A rule's EventPattern (JSON text joined around Refs) with the longest real values."""
    if isinstance(pattern, dict) and "Fn::Join" in pattern:
        sep, parts = pattern["Fn::Join"]
        text = sep.join(p if isinstance(p, str) else LONGEST[p["Ref"]] for p in parts)
        return dict(json.loads(text))
    return dict(json.loads(pattern) if isinstance(pattern, str) else pattern)


def _validator(synth: Synth, variant: str) -> str:
    (validator,) = [
        logical_id
        for logical_id, resource in synth.resources(variant, "AWS::Lambda::Function").items()
        if str(resource["Properties"].get("FunctionName", "")).endswith("-validator")
    ]
    return validator


def _edge_rules(synth: Synth, variant: str) -> dict[str, dict[str, Any]]:
    """The rules whose target is the validator, but its daily schedule."""
    target = {"Fn::GetAtt": [_validator(synth, variant), "Arn"]}
    return {
        logical_id: rule
        for logical_id, rule in synth.resources(variant, "AWS::Events::Rule").items()
        if any(t["Arn"] == target for t in rule["Properties"]["Targets"])
        and "ScheduleExpression" not in rule["Properties"]
    }


@pytest.mark.parametrize("variant", ["standalone", "central", "existing"])
def test_every_rule_pattern_is_accepted_by_event_ruler_within_the_limits(
    synth: Synth, ruler: EventRuler, variant: str
) -> None:
    rules = _edge_rules(synth, variant)
    assert 3 <= len(rules) <= VALIDATOR_SOURCES_MAX
    for logical_id, rule in rules.items():
        pattern = _resolved(rule["Properties"]["EventPattern"])
        assert pattern_size(pattern) <= PATTERN_SIZE_LIMIT, logical_id
        assert ruler.check(pattern) <= MAX_OR_TERMS, logical_id


@pytest.mark.parametrize("variant", ["standalone", "central", "existing"])
def test_the_validators_permissions_name_every_rule_as_a_source(synth: Synth, variant: str) -> None:
    validator = _validator(synth, variant)
    sources = set()
    for resource in synth.resources(variant, "AWS::Lambda::Permission").values():
        props = resource["Properties"]
        if props["FunctionName"] == {"Fn::GetAtt": [validator, "Arn"]}:
            assert props["Principal"] == "events.amazonaws.com"
            assert props["Action"] == "lambda:InvokeFunction"
            sources.add(props["SourceArn"]["Fn::GetAtt"][0])
    schedules = {
        logical_id
        for logical_id, rule in synth.resources(variant, "AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
        and {"Fn::GetAtt": [validator, "Arn"]} in [t["Arn"] for t in rule["Properties"]["Targets"]]
    }
    assert len(schedules) == 1  # the daily run (tests/infra/test_daily_run.py)
    assert sources == set(_edge_rules(synth, variant)) | schedules
