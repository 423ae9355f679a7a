"""The shared corpus: real CloudTrail records through `decide`, real policies through `rewrite`.

The corpus lives next to the repository (`<repo>/../shared/corpus`, see its SOURCES.md files);
the tests skip, saying why, when it is not there.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lambdas.core.decide import Verdict, decide
from lambdas.core.inputs import records_from_bytes
from lambdas.core.record import LAMBDA_SOURCE, base_event_name
from lambdas.core.rewrite import PolicyRewrite, rewrite_policy
from models.allowlist import Rule
from tests.support.allowlists import make_config, make_rule
from tests.support.corpus import POLICIES as POLICY_CORPUS
from tests.support.corpus import TRAILS, trail_files, trail_records

pytestmark = pytest.mark.unit

POLICIES = POLICY_CORPUS / "cloud-custodian"
BLOG_ACCOUNT = "012345679012"  # the account of the recorded Invoke records
OWNER = "644160558196"  # the function owner in the recorded GetPolicy responses
SHARED = "185106417252"  # the account Cloud Custodian's test allows

needs_trails = pytest.mark.skipif(
    not TRAILS.is_dir(), reason=f"the shared CloudTrail corpus is not at {TRAILS}"
)
needs_policies = pytest.mark.skipif(
    not POLICIES.is_dir(), reason=f"the shared policy corpus is not at {POLICIES}"
)

CORPUS_CONFIG = f"""
rules:
  - name: recorded
    functions: ["my-function-name"]
    allow:
      - principal: "arn:aws:iam::{BLOG_ACCOUNT}:role/My-RoleName-*"
      - service: events.amazonaws.com
        source_arn: "arn:aws:events:us-east-1:{BLOG_ACCOUNT}:rule/my-rule-name-*"
        source_account: "{BLOG_ACCOUNT}"
  - name: everything-else
    functions: ["*"]
    qualifiers: ["*"]
    allow: []
"""


def is_invoke(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("eventSource") == LAMBDA_SOURCE
        and base_event_name(str(record.get("eventName") or "")) == "Invoke"
    )


@needs_trails
def test_every_container_kind_is_in_the_corpus():
    names = [p.name for p in trail_files()]
    for suffix in (".json", ".jsonl", ".json.gz", ".jsonl.gz"):
        assert any(n.endswith(suffix) for n in names), suffix
    assert len(trail_records()) > 800


@needs_trails
@pytest.mark.parametrize("path", trail_files(), ids=lambda p: str(p.relative_to(TRAILS)))
def test_every_record_gets_a_decision(path: Path) -> None:
    config = make_config(CORPUS_CONFIG)
    records = list(records_from_bytes(path.read_bytes(), str(path)))
    assert records, f"{path} holds no records"
    for record in records:
        decision = decide(record, config)
        assert decision.reason
        assert isinstance(record, dict), "the corpus holds only objects"
        if is_invoke(record):
            assert decision.verdict is not Verdict.INVALID, decision.reason
        if record.get("eventSource") != LAMBDA_SOURCE:
            assert decision.verdict is Verdict.IGNORED, decision.reason


@needs_trails
def test_the_recorded_invokes_resolve_to_the_invoked_resources():
    config = make_config(CORPUS_CONFIG)
    invokes = [rec for _, rec in trail_records() if is_invoke(rec)]
    decisions = {d.event_id: d for d in (decide(rec, config) for rec in invokes)}
    assert len(invokes) >= 2
    base = f"arn:aws:lambda:us-east-1:{BLOG_ACCOUNT}:function:my-function-name"
    step_functions = decisions["b1e55492-d8be-4b9a-b794-a8a0a28162f0"]
    assert step_functions.function == f"{base}:23"
    assert step_functions.verdict is Verdict.ALLOWED
    assert f"arn:aws:iam::{BLOG_ACCOUNT}:role/My-RoleName-1746R4C1N6UFS" in (
        step_functions.caller or ""
    )
    eventbridge = decisions["32321ee4-ffd9-4fae-9207-a9bb12efc18c"]
    assert eventbridge.function == f"{base}:live"
    assert eventbridge.verdict is Verdict.ALLOWED
    assert (eventbridge.caller or "").startswith("events.amazonaws.com")


@needs_trails
def test_the_recorded_invokes_are_violations_under_an_empty_allowlist():
    config = make_config("rules: [{name: nobody, functions: ['*']}]")
    verdicts = Counter(decide(rec, config).verdict for _, rec in trail_records() if is_invoke(rec))
    assert verdicts == {Verdict.VIOLATION: len([1 for _, rec in trail_records() if is_invoke(rec)])}


@needs_trails
def test_the_recorded_invoke_execution_is_ignored():
    config = make_config(CORPUS_CONFIG)
    executions = [
        rec
        for _, rec in trail_records()
        if isinstance(rec, dict) and rec.get("eventName") == "InvokeExecution"
    ]
    assert executions
    assert {decide(rec, config).verdict for rec in executions} == {Verdict.IGNORED}


@needs_trails
def test_lambda_management_events_are_ignored_with_their_base_name():
    config = make_config(CORPUS_CONFIG)
    lambda_records = [
        rec
        for _, rec in trail_records()
        if isinstance(rec, dict) and rec.get("eventSource") == LAMBDA_SOURCE and not is_invoke(rec)
    ]
    assert len(lambda_records) > 10
    for rec in lambda_records:
        decision = decide(rec, config)
        assert decision.verdict is Verdict.IGNORED
        if rec.get("eventName") != "InvokeExecution":
            assert base_event_name(rec["eventName"]) in decision.reason
            assert "20150331" not in decision.reason


# --- policies ---------------------------------------------------------------------------------


def policy_files() -> list[Path]:
    return sorted(POLICIES.glob("*.json")) if POLICIES.is_dir() else []


def load_dump(path: Path) -> dict[str, Any]:
    dump = json.loads(path.read_text())
    assert set(dump) >= {"status_code", "data"}
    return dump


def function_of(response: dict[str, Any]) -> str:
    return json.loads(response["Policy"])["Statement"][0]["Resource"]


def rule_for_file(name: str) -> Rule:
    """A sensible rule for each recorded function (judged by this project's semantics)."""
    if name.startswith("test_aws_lambda_source"):
        allow = f'[{{service: iot.amazonaws.com, source_account: "{OWNER}"}}]'
    elif name.startswith("test_remove_permissions_event"):
        allow = (
            f'[{{service: events.amazonaws.com, source_account: "{OWNER}", '
            f'source_arn: "arn:aws:events:us-east-1:{OWNER}:rule/*"}}]'
        )
    elif name.startswith("test_cloudwatch_log_subscription"):
        allow = (
            "[{service: logs.us-east-1.amazonaws.com, "
            f'source_arn: "arn:aws:logs:us-east-1:{OWNER}:log-group:*"}}]'
        )
    else:
        allow = f'[{{account: "{SHARED}"}}]'
    return make_rule(f"rules: [{{name: r, functions: ['*'], allow: {allow}}}]")


@needs_policies
def test_the_policy_corpus_has_both_kinds_of_dump():
    statuses = Counter(load_dump(p)["status_code"] for p in policy_files())
    assert statuses[200] >= 8
    assert statuses[404] >= 1


@needs_policies
@pytest.mark.parametrize("path", policy_files(), ids=lambda p: p.stem)
def test_every_policy_goes_through_rewrite(path: Path) -> None:
    dump = load_dump(path)
    if dump["status_code"] != 200:
        # an error dump (ResourceNotFoundException): the function had no policy
        assert dump["data"]["Error"]["Code"] == "ResourceNotFoundException"
        pytest.skip(f"{path.name} is a {dump['status_code']} error dump, not a policy")
    response = dump["data"]
    function = function_of(response)
    for rule in (rule_for_file(path.name), make_rule("rules: [{name: none, functions: ['*']}]")):
        result = rewrite_policy(response, rule, function)
        assert result.revision_id == response.get("RevisionId")
        again = rewrite_policy(result.policy, rule, function)
        assert again.policy == result.policy
        assert not again.changed
    # with nobody allowed, no invoke grant survives
    nobody = rewrite_policy(response, make_rule("rules: [{name: n, functions: ['*']}]"), function)
    assert nobody.policy is None


def rewrite_file(name: str, rule: Rule | None = None) -> PolicyRewrite:
    dump = load_dump(POLICIES / f"{name}.json")
    response = dump["data"]
    return rewrite_policy(response, rule or rule_for_file(name), function_of(response))


def sids(result: PolicyRewrite) -> list[str]:
    return [s["Sid"] for s in (result.policy or {}).get("Statement", [])]


@needs_policies
def test_public_invoke_is_removed_and_shared_invoke_kept():
    result = rewrite_file("test_lambda_permission_matched__GetPolicy_1")
    assert sids(result) == ["SharedInvoke"]
    changes = {c.sid: c.kind for c in result.changes}
    assert changes == {"PublicInvoke": "removed", "SharedInvoke": "kept"}
    assert rewrite_file("test_lambda_permission_matched__GetPolicy_2").changed is False


@needs_policies
def test_shared_invoke_is_removed_when_that_account_is_not_allowed():
    other = make_rule('rules: [{name: r, functions: ["*"], allow: [{account: "111122223333"}]}]')
    result = rewrite_file("test_lambda_permission_matched__GetPolicy_1", other)
    # the public grant let 111122223333 in too: it is narrowed to it; SharedInvoke goes
    assert result.policy is not None
    assert [(s["Sid"], s["Principal"]) for s in result.policy["Statement"]] == [
        ("PublicInvoke", {"AWS": "arn:aws:iam::111122223333:root"})
    ]
    assert {c.sid: c.kind for c in result.changes} == {
        "PublicInvoke": "narrowed",
        "SharedInvoke": "removed",
    }


@needs_policies
@pytest.mark.parametrize(
    "name", ["test_lambda_permission_named__GetPolicy_1", "test_cross_account_lambda__GetPolicy_2"]
)
def test_public_grants_are_narrowed_to_the_allowed_account(name):
    result = rewrite_file(name)
    assert result.policy is not None
    assert [s["Principal"] for s in result.policy["Statement"]] == [
        {"AWS": f"arn:aws:iam::{SHARED}:root"}
    ]
    assert [(c.kind, c.principals) for c in result.changes] == [("narrowed", ("*",))]


@needs_policies
@pytest.mark.parametrize(
    "name",
    [
        "test_aws_lambda_source__GetPolicy_1",
        "test_aws_lambda_source__GetPolicy_2",
        "test_cloudwatch_log_subscription__GetPolicy_1",
    ],
)
def test_service_grants_with_the_owners_sources_are_kept_when_allowed(name):
    result = rewrite_file(name)
    assert [c.kind for c in result.changes] == ["kept"]
    dump = load_dump(POLICIES / f"{name}.json")
    assert result.policy == json.loads(dump["data"]["Policy"])


@needs_policies
def test_event_grant_gains_the_source_account_it_lacks():
    result = rewrite_file("test_remove_permissions_event__GetPolicy_1")
    assert [c.kind for c in result.changes] == ["tightened"]
    assert result.policy is not None
    (statement,) = result.policy["Statement"]
    assert statement["Condition"]["StringEquals"] == {"AWS:SourceAccount": OWNER}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith("rule/custodian-test")
    assert result.revision_id == "e493124d-3303-43be-a879-bc1b4e5332c3"


@needs_policies
@pytest.mark.parametrize(
    "name",
    [
        "test_aws_lambda_source__GetPolicy_1",
        "test_remove_permissions_event__GetPolicy_1",
        "test_cloudwatch_log_subscription__GetPolicy_1",
    ],
)
def test_service_grants_are_removed_when_the_service_is_not_allowed(name):
    result = rewrite_file(
        name, make_rule(f'rules: [{{name: r, functions: ["*"], allow: [{{account: "{OWNER}"}}]}}]')
    )
    assert result.policy is None


@needs_policies
def test_service_grants_with_a_foreign_source_account_are_removed():
    foreign = make_rule(
        'rules: [{name: r, functions: ["*"], allow: '
        '[{service: iot.amazonaws.com, source_account: "111122223333"}]}]'
    )
    assert rewrite_file("test_aws_lambda_source__GetPolicy_1", foreign).policy is None
