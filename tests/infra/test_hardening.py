"""Security hardening of the synthesized templates, per deployment variant: no blind spot by
name, every listed region forwarded, a closed input surface, tamper alarms, data protection.

Event patterns are checked by event-ruler (the engine EventBridge uses, in `shared/tools`)
where it is present: hand-written events in, match / no match out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks.pattern import INVOKE_DETAIL_TYPE, event_name_filter
from stacks.tamper import PipelineResources, tamper_patterns
from tests.support.synth import CENTRAL_BUS, HOME_REGION, OTHER_REGION, VARIANTS, Synth, flat

pytestmark = pytest.mark.infra

MATCH = Path(__file__).resolve().parents[3] / "shared" / "tools" / "event-ruler" / "match"


def _templates(synth: Synth) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for variant, stacks in synth.deployments.items():
        for artifact, template in stacks.items():
            yield variant, artifact, template


def _of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _statements(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in template["Resources"].values():
        for key, value in _walk(resource.get("Properties", {})):
            if key == "Statement":
                yield from value if isinstance(value, list) else [value]


# -- 1. no blind spot by name -----------------------------------------------------------


def test_every_variant_is_synthesized(synth):
    assert set(synth.deployments) == set(VARIANTS)
    # two regions: the home stack and one forwarding stack
    assert len(synth.deployments["regions"]) == 2
    assert len(synth.deployments["member-regions"]) == 2


def test_no_name_prefix_in_selectors_patterns_or_denies(synth):
    prefix_matchers = re.compile(r'"(prefix|wildcard|suffix)"\s*:\s*"[^"]*invoke-audit')
    name_glob = re.compile(r"invoke-audit-[A-Za-z0-9-]*\*")
    for variant, artifact, template in _templates(synth):
        for trail in _of_type(template, "AWS::CloudTrail::Trail"):
            text = json.dumps(trail["AdvancedEventSelectors"])
            for selector in trail["AdvancedEventSelectors"]:
                for field in selector["FieldSelectors"]:
                    if field["Field"] != "eventName":  # `Invoke*`: event names, not functions
                        assert not {"StartsWith", "EndsWith"} & set(field), (variant, artifact)
            assert "invoke-audit" not in text, (variant, artifact)
        for rule in _of_type(template, "AWS::Events::Rule"):
            if "EventPattern" not in rule:  # the daily schedule: no pattern
                continue
            text = flat(rule["EventPattern"])
            assert not prefix_matchers.search(text), (variant, artifact, text)
            assert not name_glob.search(text), (variant, artifact)
        for statement in _statements(template):
            if statement.get("Effect") == "Deny":
                text = flat(statement.get("Resource", ""))
                if isinstance(statement.get("Resource"), list):
                    text = " ".join(flat(r) for r in statement["Resource"])
                assert not name_glob.search(text), (variant, artifact, statement)
        outputs = json.dumps(template.get("Outputs", {}))
        assert "NotStartsWith" not in outputs and "EndsWith" not in outputs


def test_member_accounts_exclude_nothing(synth):
    for variant in ("member", "member-regions"):
        for artifact, template in synth.deployments[variant].items():
            for rule in _of_type(template, "AWS::Events::Rule"):
                assert "resources" not in rule["EventPattern"]["detail"], (variant, artifact)
            for statement in _statements(template):
                if statement.get("Effect") == "Deny":
                    assert ":function:" not in json.dumps(statement), statement


# -- 2. every listed region -------------------------------------------------------------


def test_each_listed_region_gets_a_forwarding_stack_to_the_home_bus(synth):
    stacks = synth.deployments["regions"]
    _, forward = list(stacks)
    assert forward == f"InvokeAuditForward-regions-{OTHER_REGION}"
    (rule,) = _of_type(stacks[forward], "AWS::Events::Rule")
    assert rule["EventPattern"]["detail"]["eventName"] == event_name_filter()
    (target,) = rule["Targets"]
    assert flat(target["Arn"]) == (
        f"arn:aws:events:{HOME_REGION}:<Ref:AWS::AccountId>:event-bus/default"
    )
    assert target["RoleArn"] and target["DeadLetterConfig"]["Arn"]
    (role,) = _of_type(stacks[forward], "AWS::IAM::Role")
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "events.amazonaws.com"
    }
    assert _of_type(stacks[forward], "AWS::CloudWatch::Alarm")
    # one region listed or none: no forwarding stack
    assert len(synth.deployments["standalone"]) == 1


def test_a_members_other_regions_forward_to_the_central_bus(synth):
    stacks = synth.deployments["member-regions"]
    for template in stacks.values():
        (rule,) = _of_type(template, "AWS::Events::Rule")
        (target,) = rule["Targets"]
        assert target["Arn"] == CENTRAL_BUS


def test_the_validator_accepts_the_listed_regions_only(synth):
    for function in synth.resources("regions", "AWS::Lambda::Function").values():
        if "Environment" not in function["Properties"]:
            continue  # the canary: no pipeline code
        env = function["Properties"]["Environment"]["Variables"]
        assert env["WATCHED_REGIONS"] == f"{HOME_REGION},{OTHER_REGION}"


# -- 3. member trust: see test_multi_account ------------------------------------------------
# -- 4. the input surface ---------------------------------------------------------------


def _role_of(synth: Synth, variant: str, function: str) -> str:
    for resource in synth.resources(variant, "AWS::Lambda::Function").values():
        if resource["Properties"]["FunctionName"] == f"invoke-audit-{variant}-{function}":
            return str(resource["Properties"]["Role"]["Fn::GetAtt"][0])
    raise AssertionError(function)


@pytest.mark.parametrize(
    ("variant", "senders"),
    [("standalone", ["validator"]), ("central", ["validator", "ingest"])],
)
def test_only_the_validator_and_ingest_may_send_violations(synth, variant, senders):
    resources = synth.templates[variant]["Resources"]
    fifo = [k for k, r in resources.items() if r["Properties"].get("RedrivePolicy")]
    (queue_id,) = fifo
    (policy,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and r["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    (deny,) = [
        s for s in policy["PolicyDocument"]["Statement"] if s.get("Action") == "sqs:SendMessage"
    ]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [{"Fn::GetAtt": [_role_of(synth, variant, f), "Arn"]} for f in senders]


def test_only_the_edge_rules_may_invoke_the_validator(synth):
    for variant in ("standalone", "central", "regions"):
        resources = synth.templates[variant]["Resources"]
        validator = next(
            k
            for k, r in resources.items()
            if r["Type"] == "AWS::Lambda::Function"
            and r["Properties"]["FunctionName"].endswith("-validator")
        )
        permissions = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::Permission"
            and r["Properties"]["FunctionName"] == {"Fn::GetAtt": [validator, "Arn"]}
        ]
        assert len(permissions) >= 3, variant  # one per edge rule
        for permission in permissions:
            assert permission["Principal"] == "events.amazonaws.com"
            rule_id = permission["SourceArn"]["Fn::GetAtt"][0]
            assert resources[rule_id]["Type"] == "AWS::Events::Rule"
            targets = resources[rule_id]["Properties"]["Targets"]
            assert [t["Arn"] for t in targets] == [{"Fn::GetAtt": [validator, "Arn"]}]


# -- 6. tamper rules --------------------------------------------------------------------


def _tamper(synth: Synth, variant: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in synth.templates[variant]["Resources"].items()
        if logical_id.startswith("Tamper")
    }


def test_tamper_rules_alert_a_topic_whose_key_is_not_the_pipeline_key(synth):
    for variant in ("standalone", "central", "existing", "regions"):
        tamper = _tamper(synth, variant)
        (topic_id,) = [k for k, r in tamper.items() if r["Type"] == "AWS::SNS::Topic"]
        (key_id,) = [k for k, r in tamper.items() if r["Type"] == "AWS::KMS::Key"]
        key_ref = tamper[topic_id]["Properties"]["KmsMasterKeyId"]
        assert key_ref == {"Fn::GetAtt": [key_id, "Arn"]}
        alerts = [
            r["Properties"]
            for k, r in synth.templates[variant]["Resources"].items()
            if r["Type"] == "AWS::SNS::Topic" and k != topic_id
        ]
        assert [a["KmsMasterKeyId"] for a in alerts] != [key_ref]
        rules = {k: r["Properties"] for k, r in tamper.items() if r["Type"] == "AWS::Events::Rule"}
        names = {re.sub(r"[A-F0-9]{8}$", "", k) for k in rules}
        expected = {"TamperRules", "TamperFunctions", "TamperQueue", "TamperKeys"}
        expected |= {"TamperDirectInvoke"}
        if variant != "existing" or synth.settings[variant].existing_trail_arn:
            expected.add("TamperTrail")
        assert names == expected, variant
        for rule in rules.values():
            assert [t["Arn"] for t in rule["Targets"]] == [{"Ref": topic_id}]


def test_tamper_rules_watch_the_pipelines_own_resources(synth):
    tamper = _tamper(synth, "standalone")
    patterns = {
        re.sub(r"[A-F0-9]{8}$", "", k): r["Properties"]["EventPattern"]
        for k, r in tamper.items()
        if r["Type"] == "AWS::Events::Rule"
    }
    trail = flat(patterns["TamperTrail"])
    assert "invoke-audit-standalone-trail" in trail
    assert sorted(patterns["TamperTrail"]["detail"]["eventName"]) == sorted(
        ["StopLogging", "DeleteTrail", "PutEventSelectors", "PutAdvancedEventSelectors"]
    )
    functions = flat(patterns["TamperFunctions"])
    assert "invoke-audit-standalone-validator" in functions
    assert '"<Ref:RemediatorFunctionSqsEventSource' in functions  # the event source mapping
    assert '"<Ref:InvokeRule' in flat(patterns["TamperRules"])
    assert '"<Ref:RemediationQueue' in flat(patterns["TamperQueue"])
    keys = flat(patterns["TamperKeys"])
    assert "PipelineKey" in keys and "TrailKey" in keys and "TamperKey" in keys
    direct = patterns["TamperDirectInvoke"]["detail"]
    assert direct["userIdentity"] == {"type": [{"anything-but": ["AWSService"]}]}


WATCHED = PipelineResources(
    trails=["invoke-audit-dev-trail", "arn:aws:cloudtrail:us-east-1:123456789012:trail/x"],
    rules=["invoke-audit-dev-invoke"],
    functions=["invoke-audit-dev-validator"],
    event_source_mappings=["a1b2c3d4-5678-90ab-cdef-11111EXAMPLE"],
    queue_urls=["https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"],
    keys=["1234abcd-12ab-34cd-56ef-1234567890ab"],
    function_arns=["arn:aws:lambda:us-east-1:123456789012:function:invoke-audit-dev-validator"],
)


def _api_call(source: str, name: str, parameters: Any, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "1",
        "source": f"aws.{source}",
        "detail-type": INVOKE_DETAIL_TYPE,
        "account": "123456789012",
        "region": "us-east-1",
        "time": "2026-12-03T10:00:00Z",
        "resources": [],
        "detail": {
            "eventSource": f"{source}.amazonaws.com",
            "eventName": name,
            "requestParameters": parameters,
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/mallory"},
            **detail,
        },
    }


# (rule, event, expected): hand-written CloudTrail shapes of each call.
CASES = [
    ("Trail", _api_call("cloudtrail", "StopLogging", {"name": "invoke-audit-dev-trail"}), True),
    ("Trail", _api_call("cloudtrail", "StopLogging", {"name": "someone-elses-trail"}), False),
    (
        "Trail",
        _api_call(
            "cloudtrail",
            "PutEventSelectors",
            {"trailName": "arn:aws:cloudtrail:us-east-1:123456789012:trail/x"},
        ),
        True,
    ),
    ("Trail", _api_call("cloudtrail", "CreateTrail", {"name": "invoke-audit-dev-trail"}), False),
    ("Rules", _api_call("events", "DisableRule", {"name": "invoke-audit-dev-invoke"}), True),
    (
        "Rules",
        _api_call("events", "RemoveTargets", {"rule": "invoke-audit-dev-invoke", "ids": ["1"]}),
        True,
    ),
    ("Rules", _api_call("events", "DisableRule", {"name": "other"}), False),
    (
        "Functions",
        _api_call(
            "lambda",
            "UpdateFunctionCode20150331v2",
            {"functionName": "invoke-audit-dev-validator"},
        ),
        True,
    ),
    (
        "Functions",
        _api_call(
            "lambda",
            "PutFunctionConcurrency20171031",
            {"functionName": "invoke-audit-dev-validator", "reservedConcurrentExecutions": 0},
        ),
        True,
    ),
    (
        "Functions",
        _api_call(
            "lambda",
            "DeleteEventSourceMapping20150331",
            {"uUID": "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE"},
        ),
        True,
    ),
    (
        "Functions",
        _api_call(
            "lambda", "UpdateFunctionCode20150331v2", {"functionName": "invoke-audit-backdoor"}
        ),
        False,
    ),
    (
        "Queue",
        _api_call(
            "sqs",
            "PurgeQueue",
            {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"},
        ),
        True,
    ),
    (
        "Keys",
        _api_call(
            "kms",
            "ScheduleKeyDeletion",
            {"keyId": "arn:aws:kms:us-east-1:123456789012:alias/x", "pendingWindowInDays": 7},
            resources=[
                {
                    "ARN": "1234abcd-12ab-34cd-56ef-1234567890ab",
                    "accountId": "123456789012",
                    "type": "AWS::KMS::Key",
                }
            ],
        ),
        True,
    ),
    (
        "Keys",
        _api_call("kms", "DisableKey", {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
        True,
    ),
    ("Keys", _api_call("kms", "DisableKey", {"keyId": "another-key"}), False),
    (
        "DirectInvoke",
        _api_call(
            "lambda",
            "Invoke",
            {"functionName": "invoke-audit-dev-validator"},
            resources=[{"ARN": WATCHED.function_arns[0], "type": "AWS::Lambda::Function"}],
        ),
        True,
    ),
    (
        "DirectInvoke",
        _api_call(
            "lambda",
            "Invoke",
            None,
            resources=[{"ARN": WATCHED.function_arns[0], "type": "AWS::Lambda::Function"}],
            userIdentity={"type": "AWSService", "invokedBy": "events.amazonaws.com"},
        ),
        False,
    ),
]


@pytest.mark.skipif(
    not MATCH.is_file() or not shutil.which("java"), reason="event-ruler (shared/tools) absent"
)
@pytest.mark.parametrize("rule", sorted({case[0] for case in CASES}))
def test_tamper_patterns_match_as_event_ruler_says(tmp_path, rule):
    pattern = tamper_patterns(WATCHED)[rule]
    cases = [(event, expected) for name, event, expected in CASES if name == rule]
    pattern_file = tmp_path / "pattern.json"
    pattern_file.write_text(json.dumps(pattern))
    events = "\n".join(json.dumps(event) for event, _ in cases)
    result = subprocess.run(
        [str(MATCH), str(pattern_file), "-"],
        input=events,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(expected).lower() for _, expected in cases]


def test_the_heartbeat_alarm_is_off_by_default_and_breaches_on_silence(synth):
    def heartbeats(variant: str) -> list[dict[str, Any]]:
        return [
            a
            for a in synth.resources(variant, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Metrics")
        ]

    assert heartbeats("standalone") == []
    (alarm,) = heartbeats("regions")
    props = alarm["Properties"]
    assert props["TreatMissingData"] == "breaching"
    assert props["ComparisonOperator"] == "LessThanThreshold"
    assert props["Threshold"] == 1
    periods = {m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m}
    assert periods == {6 * 3600}
    tamper = _tamper(synth, "regions")
    (topic_id,) = [k for k, r in tamper.items() if r["Type"] == "AWS::SNS::Topic"]
    assert props["AlarmActions"] == [{"Ref": topic_id}]


# -- 8. data protection -----------------------------------------------------------------


def test_key_policies_delegate_administration_and_use_through_the_services_only(synth):
    for variant, artifact, template in _templates(synth):
        for key in _of_type(template, "AWS::KMS::Key"):
            if key.get("KeySpec") == "HMAC_256":
                continue  # the backup signing key: its own test below
            statements = key["KeyPolicy"]["Statement"]
            account = [s for s in statements if "AWS" in s["Principal"]]
            admin, use = account
            assert not {"kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant"} & set(
                admin["Action"]
            ), (variant, artifact)
            assert "kms:Decrypt" not in admin["Action"]
            assert sorted(use["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
            assert set(use["Condition"]["StringEquals"]) == {"kms:CallerAccount", "kms:ViaService"}
            for service in (s for s in statements if "Service" in s["Principal"]):
                assert service["Condition"], (variant, artifact, service["Sid"])


def test_object_lock_is_opt_in_for_the_backup_and_trail_buckets(synth):
    locked = [
        b
        for b in synth.resources("regions", "AWS::S3::Bucket").values()
        if b["Properties"].get("ObjectLockEnabled")
    ]
    assert len(locked) == 2  # backups, trail logs (not the access logs)
    for bucket in locked:
        assert bucket["Properties"]["ObjectLockConfiguration"] == {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
        }
    for variant in ("standalone", "central", "member"):
        for bucket in synth.resources(variant, "AWS::S3::Bucket").values():
            assert "ObjectLockEnabled" not in bucket["Properties"]


# -- 7. restore trusts only signed backups ---------------------------------------------------


def _mac_keys(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::KMS::Key" and r["Properties"].get("KeySpec") == "HMAC_256"
    }


@pytest.mark.parametrize("variant", ["standalone", "central", "regions"])
def test_backups_are_signed_with_a_dedicated_hmac_key_only_the_remediator_may_sign_with(
    synth, variant
):
    template = synth.templates[variant]
    ((name, key),) = _mac_keys(template).items()
    assert key["KeyUsage"] == "GENERATE_VERIFY_MAC"
    assert "EnableKeyRotation" not in key  # KMS rotates no HMAC key
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert set(statements) == {
        "AccountAdministersTheKeyThroughIam",
        "AccountVerifiesBackupsThroughIam",
        "RemediatorSignsBackups",
    }
    admin = statements["AccountAdministersTheKeyThroughIam"]
    assert not {"kms:GenerateMac", "kms:VerifyMac", "kms:CreateGrant"} & set(admin["Action"])
    verify = statements["AccountVerifiesBackupsThroughIam"]
    assert verify["Action"] == "kms:VerifyMac"
    assert verify["Effect"] == "Allow"
    assert "root" in flat(verify["Principal"])
    sign = statements["RemediatorSignsBackups"]
    assert sorted(sign["Action"]) == ["kms:GenerateMac", "kms:VerifyMac"]
    assert re.fullmatch(r'\{"AWS": "<GetAtt:Remediator\w*Role\w*\.Arn>"\}', flat(sign["Principal"]))
    # Nothing else in the template may sign: GenerateMac appears in no other statement.
    signers = [s for s in _statements(template) if "kms:GenerateMac" in flat(s.get("Action"))]
    remediator_policy = [
        s for s in signers if s is not sign and f"<GetAtt:{name}.Arn>" in flat(s["Resource"])
    ]
    assert len(signers) == 2 and len(remediator_policy) == 1
    assert sorted(remediator_policy[0]["Action"]) == ["kms:GenerateMac", "kms:VerifyMac"]
    # The remediator is told the key; restore reads it (and the own functions) from outputs.
    functions = _of_type(template, "AWS::Lambda::Function")
    remediator = [f for f in functions if "BACKUP_MAC_KEY_ARN" in flat(f.get("Environment"))]
    assert len(remediator) == 1
    assert remediator[0]["Environment"]["Variables"]["BACKUP_MAC_KEY_ARN"] == {
        "Fn::GetAtt": [name, "Arn"]
    }
    outputs = template["Outputs"]
    assert outputs["BackupMacKeyArn"]["Value"] == {"Fn::GetAtt": [name, "Arn"]}
    own = flat(outputs["OwnFunctionArns"]["Value"])
    assert "validator" in own and "remediator" in own
    # Disabling or deleting the key is tampering.
    assert name in flat(template["Resources"])  # referenced by the tamper key rule below
    tamper_keys = [
        r["Properties"]["EventPattern"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and "TamperKeys" in k
    ]
    assert tamper_keys and all(name in flat(p) for p in tamper_keys)


@pytest.mark.parametrize("variant", ["member", "member-regions"])
def test_member_accounts_hold_no_backup_key(synth, variant):
    for artifact, template in synth.deployments[variant].items():
        assert _mac_keys(template) == {}, artifact
