"""Security: nobody can use the pipeline to change what it must not.

- The remediator refuses protected functions and the pipeline's own, whatever a queue
  message claims (rule, mode, qualifier, ARN spelling), and re-decides monitor mode and
  "no rule" from its own allowlist: no write, no backup, nothing spent from the budget.
- The validator's role cannot write a resource policy, in every deployment variant: no Allow
  statement of its role covers a policy-writing action, even through a wildcard; the
  remediator's own explicit Deny covers every policy-writing action it is allowed.
- Events whose `source`, `detail-type` or `account` do not fit are rejected: see
  test_fuzz_validator.py (fuzzed envelopes).
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.adapters import VALIDATOR_ADAPTERS, LambdaPermissions, LambdaResourcePolicy
from tests.support.pipeline import Pipeline, message_body
from tests.support.policies import messy_policy
from tests.support.records import ACCOUNT, REGION
from tests.support.strategies import json_values

pytestmark = [pytest.mark.reliability]

# Every action that changes who may invoke a function.
POLICY_WRITES = frozenset(
    {
        "lambda:AddPermission",
        "lambda:RemovePermission",
        "lambda:PutResourcePolicy",
        "lambda:DeleteResourcePolicy",
        "lambda:CreateFunctionUrlConfig",
        "lambda:UpdateFunctionUrlConfig",
    }
)
WRITES = ("PutResourcePolicy", "DeleteResourcePolicy", "AddPermission", "RemovePermission")

# name -> the outcome the remediator must come to, whatever the message says.
UNTOUCHABLE = {
    "protected-db": "protected by 'protected-*'",
    "invoke-audit-remediator": "the pipeline's own function",
    "invoke-audit-validator": "the pipeline's own function",
    "watch-me": "monitor mode",
}


@st.composite
def lying_messages(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A violation message naming an untouchable function, claiming whatever helps."""
    function = draw(st.sampled_from(sorted(UNTOUCHABLE)))
    qualifier = draw(st.sampled_from([None, "live", "$LATEST"]))
    arn = _arn(function, qualifier)
    body = message_body(arn, draw(st.uuids()).hex)
    lies = st.fixed_dictionaries(
        {},
        optional={
            "rule": st.sampled_from(["app", "orders", "protected-too", "anything"]),
            "mode": st.sampled_from(["enforce", "ENFORCE", "monitor", None]),
            "protected": st.just(False),
            "own": st.just(False),
            "account": st.sampled_from([ACCOUNT, "999988887777"]),
            "force": st.just(True),
        },
    )
    body.update(draw(lies))
    return function, body


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_remediator_refuses_what_it_must_not_change_whatever_the_message_says(
    pipeline: Pipeline, data: Any
) -> None:
    p = pipeline
    if p.world.policy(_arn("watch-me")) is None:  # the first example builds the world
        for function in UNTOUCHABLE:
            p.resource(function, alias="live")
            p.world.put_policy(_arn(function), messy_policy(_arn(function)))
    function, body = data.draw(lying_messages())
    before = _revisions(p)

    result = p.deliver([("m1", body["function"], json.dumps(body))])

    assert result == {"batchItemFailures": []}
    (refused,) = p.logged("refused")
    assert UNTOUCHABLE[function] in refused["detail"]
    assert p.metrics() == {"Refused": 1}
    assert not any(p.plan.sent[w] for w in WRITES)
    assert p.plan.sent["PutObject"] == 0 and p.plan.sent["UpdateItem"] == 0
    assert _revisions(p) == before


def _arn(function: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _revisions(p: Pipeline) -> list[str]:
    lam = p.world.client("lambda")
    return [
        lam.get_resource_policy(ResourceArn=_arn(f, q))["RevisionId"]
        for f in sorted(UNTOUCHABLE)
        for q in (None, "live")
    ]


def test_a_message_for_a_function_no_rule_covers_changes_nothing(pipeline: Pipeline) -> None:
    p = pipeline
    arn = p.resource("nobody-covers-me")
    body = message_body(arn, "e1") | {"rule": "app", "mode": "enforce"}
    assert p.deliver([("m1", arn, json.dumps(body))]) == {"batchItemFailures": []}
    assert "no rule" in p.logged("refused")[0]["detail"]
    assert p.world.policy(arn) == messy_policy(arn)
    assert not any(p.plan.sent[w] for w in WRITES)


# --- what the roles may do ------------------------------------------------------------------


def _covers(patterns: list[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allowed_writes(statements: list[dict[str, Any]]) -> set[str]:
    """The policy-writing actions some Allow statement grants (wildcards and NotAction
    included), on any resource."""
    granted: set[str] = set()
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        for action in POLICY_WRITES:
            if "NotAction" in statement:
                if not _covers(_as_list(statement["NotAction"]), action):
                    granted.add(action)
            elif _covers(_as_list(statement["Action"]), action):
                granted.add(action)
    return granted


def _role_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    roles = [
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        # invoke-audit-<environment>-<function>
        and str(r["Properties"].get("FunctionName", "")).startswith("invoke-audit-")
        and str(r["Properties"].get("FunctionName", "")).endswith(f"-{function}")
    ]
    statements: list[dict[str, Any]] = []
    for role in roles:
        properties = resources[role]["Properties"]
        assert not properties.get("ManagedPolicyArns"), f"{role}: managed policies"
        for inline in properties.get("Policies", []):
            statements += inline["PolicyDocument"]["Statement"]
        for policy in resources.values():
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"].get(
                "Roles", []
            ):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_the_validator_declares_no_lambda_action() -> None:
    actions = {a for cls in VALIDATOR_ADAPTERS for a in cls.IAM_ACTIONS}
    assert actions and not _covers(sorted(actions), "lambda:*")
    assert not [a for a in actions if a.startswith("lambda:")]
    # ...while the adapters that write policies do declare the writes (the check bites).
    writers = set(LambdaResourcePolicy.IAM_ACTIONS) | set(LambdaPermissions.IAM_ACTIONS)
    assert POLICY_WRITES & writers


def test_the_validator_role_cannot_write_a_policy_in_any_variant(synth: Any) -> None:
    checked = 0
    for variant, template in synth.templates.items():
        for function in ("validator", "ingest"):
            statements = _role_statements(template, function)
            if not statements:
                continue
            checked += 1
            assert _allowed_writes(statements) == set(), f"{variant}/{function}"
            assert not _covers(
                [
                    a
                    for s in statements
                    if s["Effect"] == "Allow"
                    for a in _as_list(s.get("Action"))
                ],
                "sts:AssumeRole",
            ), f"{variant}/{function} may assume roles"
    assert checked >= 3  # standalone, central, existing validators and ingests
    remediator = _role_statements(synth.templates["standalone"], "remediator")
    assert _allowed_writes(remediator), "the check finds nothing even where writes are granted"


def test_the_remediators_deny_on_its_own_functions_covers_every_write_it_may_make(
    synth: Any,
) -> None:
    for variant, template in synth.templates.items():
        statements = _role_statements(template, "remediator")
        if not statements:
            continue
        allowed = _allowed_writes(statements)
        denied = {
            a
            for s in statements
            # the Deny on the pipeline's own functions, by their exact ARNs
            if s["Effect"] == "Deny" and ":function:invoke-audit-" in json.dumps(s["Resource"])
            for a in POLICY_WRITES
            if _covers(_as_list(s["Action"]), a)
        }
        assert allowed <= denied, f"{variant}: {sorted(allowed - denied)} not denied on own"


def test_the_rate_limit_alarm_watches_the_metric_the_remediator_emits(
    synth: Any, pipeline: Pipeline
) -> None:
    p = pipeline
    p.configure(max_remediations_per_hour=0)
    arn = p.resource("app-over-budget")
    assert "All records failed" in p.run(arn)["error"]
    (blob,) = [line for line in p.lines if "RateLimitTripped" in line]
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    emitted = (
        directive["Namespace"],
        {d: blob[d] for group in directive["Dimensions"] for d in group},
    )
    alarms = [
        r["Properties"]
        for r in synth.templates["standalone"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == "RateLimitTripped"
    ]
    assert alarms, "no alarm on RateLimitTripped"
    for alarm in alarms:
        watched = (alarm["Namespace"], {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])})
        assert watched == emitted
        assert alarm["Threshold"] <= 1 and alarm["AlarmActions"]


# What the remediator says of each kind of message that is no violation.
NOT_A_VIOLATION = {
    "kind": "not a violation message (kind must be one of violation, denied)",
    "json": "not a violation message (kind must be one of violation, denied)",
}


@st.composite
def invalid_messages(draw: st.DrawFn) -> tuple[str, str]:
    """(what is wrong, a queue message body the remediator cannot take as a violation)."""
    good = message_body(_arn("app-target"), "e1")
    kind = draw(st.sampled_from(["json", "text", "kind", "function"]))
    if kind == "json":
        return kind, json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict))))
    if kind == "text":
        text = draw(st.text(max_size=50).filter(lambda t: not t.strip().startswith(("{", "["))))
        return kind, text
    if kind == "kind":
        good["kind"] = draw(json_values.filter(lambda v: v not in ("violation", "denied")))
    else:
        good["function"] = draw(
            json_values.filter(lambda v: not isinstance(v, str) or ":function:" not in v)
            | st.sampled_from(["app-target", f"{ACCOUNT}:function:app-target", ""])
        )
    return kind, json.dumps(good)


def _expected_failure(kind: str, body: str) -> tuple[str, str]:
    """(exception name, start of its message) the failure log must show, by hand."""
    if kind == "text":
        try:
            value = json.loads(body)
        except ValueError:
            return "JSONDecodeError", ""
        assert not isinstance(value, dict)
        return "InputError", NOT_A_VIOLATION["json"]
    if kind in NOT_A_VIOLATION:
        return "InputError", NOT_A_VIOLATION[kind]
    function = json.loads(body)["function"]
    if not isinstance(function, str) or not function:
        return "InputError", "the violation message names no function"
    if function.endswith("app-target"):
        return "InputError", f"function {function!r} names no region and the record gives none"
    return "InputError", f"not a Lambda function name or ARN: {function!r}"


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(message=invalid_messages())
def test_a_message_that_is_no_violation_changes_nothing_and_fails_to_the_dlq(
    pipeline: Pipeline, message: tuple[str, str]
) -> None:
    p = pipeline
    kind, body = message
    if p.world.policy(_arn("app-target")) is None:
        p.resource("app-target")
    result = p.deliver([("m1", _arn("app-target"), body)])
    # One message in the batch, failed: Powertools fails the whole invocation.
    assert "All records failed" in result["error"]
    (failed,) = p.logged("failed")
    name, reason = _expected_failure(kind, body)
    assert failed["message_id"] == "m1"
    assert failed["exception_name"] == name, failed
    assert failed["message"].startswith(f"remediation failed: {reason}"), failed
    assert p.metrics() == {"RemediationFailed": 1}
    assert not any(p.plan.sent[w] for w in WRITES)
    assert p.world.policy(_arn("app-target")) == messy_policy(_arn("app-target"))
