"""Every verdict of `decide`, with records shaped like the real ones (DESIGN.md: Decision)."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

import pytest

from lambdas.core.decide import Decision, Verdict, decide
from lambdas.core.record import base_event_name
from models.allowlist import AllowlistConfig
from tests.support import records as r
from tests.support.allowlists import make_config
from tests.support.records import ACCOUNT, FOREIGN_ACCOUNT, PARTNER_ACCOUNT, REGION

pytestmark = pytest.mark.unit

SFN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/My-RoleName-1746R4C1N6UFS"


def judge(record: Any, config: AllowlistConfig, **kwargs: Any) -> Decision:
    decision = decide(record, config, **kwargs)
    assert isinstance(decision.reason, str)
    assert decision.reason, "every decision says why"
    return decision


# --- allowed / violation by caller type -------------------------------------------------


def test_step_functions_null_request_parameters_uses_function_version(standard):
    record = r.step_functions_invoke()
    assert record["requestParameters"] is None
    d = judge(record, standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.function == r.function_arn("my-function-name", "23")
    assert d.rule == "sfn"
    assert d.mode == "enforce"
    assert d.account == ACCOUNT
    assert d.region == REGION
    assert d.event_id == record["eventID"]
    assert d.event_time == record["eventTime"]
    # the stable principal is the role behind the session, not the session ARN
    assert SFN_ROLE in (d.caller or "")
    assert "assumed-role" not in (d.caller or "")
    assert "states.amazonaws.com" in (d.caller or "")


def test_step_functions_role_not_on_allowlist_is_a_violation(standard):
    d = judge(r.step_functions_invoke(role="Other-Role"), standard)
    assert d.verdict is Verdict.VIOLATION
    assert d.rule == "sfn"
    assert "sfn" in d.reason


def test_step_functions_falls_back_to_unqualified_resource_without_function_version(standard):
    record = r.step_functions_invoke()
    del record["additionalEventData"]
    d = judge(record, standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.function == r.function_arn("my-function-name")


def test_eventbridge_alias_qualified_function_with_source_arn_is_allowed(standard):
    record = r.eventbridge_invoke()
    d = judge(record, standard)
    assert d.verdict is Verdict.ALLOWED, d.reason
    assert d.function == r.function_arn("my-function-name", "live")
    assert d.caller is not None
    assert d.caller.startswith("events.amazonaws.com")
    assert record["requestParameters"]["sourceArn"] in d.caller


def test_eventbridge_from_another_rule_is_a_violation(standard):
    d = judge(r.eventbridge_invoke(rule="someone-elses-rule"), standard)
    assert d.verdict is Verdict.VIOLATION
    assert "someone-elses-rule" in d.reason


def test_eventbridge_with_a_foreign_source_account_is_a_violation(standard):
    d = judge(r.eventbridge_invoke(source_account=FOREIGN_ACCOUNT), standard)
    assert d.verdict is Verdict.VIOLATION


def test_s3_from_the_allowed_bucket_is_allowed(standard):
    d = judge(r.s3_invoke(), standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.rule == "blog"
    assert d.function == r.function_arn("BlogFunction")
    assert "s3.amazonaws.com" in d.reason


def test_s3_from_another_bucket_is_a_violation(standard):
    d = judge(r.s3_invoke(bucket_arn="arn:aws:s3:::attackerbucket"), standard)
    assert d.verdict is Verdict.VIOLATION
    assert "attackerbucket" in d.reason
    assert "blog" in d.reason


def test_s3_from_a_foreign_account_is_a_violation(standard):
    d = judge(r.s3_invoke(source_account=FOREIGN_ACCOUNT), standard)
    assert d.verdict is Verdict.VIOLATION


def test_source_fields_are_compared_only_where_the_record_carries_them(standard):
    record = r.s3_invoke(source_account=None)
    del record["requestParameters"]["sourceArn"]
    assert judge(record, standard).verdict is Verdict.ALLOWED


def test_another_service_is_a_violation(standard):
    record = r.invoke("BlogFunction", r.aws_service("sns.amazonaws.com"))
    d = judge(record, standard)
    assert d.verdict is Verdict.VIOLATION
    assert "sns.amazonaws.com" in d.reason


def test_cross_account_aws_account_identity_allowed_by_account(standard):
    record = r.invoke("orders", r.aws_account(PARTNER_ACCOUNT), qualifier="prod")
    assert set(record["userIdentity"]) == {"type", "principalId", "accountId"}
    d = judge(record, standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.rule == "orders-prod"
    assert d.function == r.function_arn("orders", "prod")
    assert d.caller_account == PARTNER_ACCOUNT


def test_cross_account_caller_not_on_the_list_is_named(standard):
    d = judge(r.invoke("orders:prod", r.aws_account(FOREIGN_ACCOUNT)), standard)
    assert d.verdict is Verdict.VIOLATION
    assert f"account {FOREIGN_ACCOUNT}" in d.reason
    assert d.caller_account == FOREIGN_ACCOUNT


def test_principal_from_another_account_is_named_as_foreign(standard):
    d = judge(r.invoke("team-x", r.iam_user("eve", account=FOREIGN_ACCOUNT)), standard)
    assert d.verdict is Verdict.VIOLATION
    assert f"from another account ({FOREIGN_ACCOUNT})" in d.reason
    same = judge(r.invoke("team-x", r.iam_user("eve")), standard)
    assert "another account" not in same.reason


def test_assumed_role_principal_is_the_session_issuer(standard):
    d = judge(r.invoke("team-api", r.assumed_role("deployer")), standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.caller == f"arn:aws:iam::{ACCOUNT}:role/deployer"


def test_assumed_role_without_session_context_falls_back_to_the_sts_arn(standard):
    identity = r.assumed_role("deployer", with_issuer=False)
    assert "sessionContext" not in identity
    d = judge(r.invoke("team-api", identity), standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.caller == f"arn:aws:iam::{ACCOUNT}:role/deployer"


def test_assumed_role_of_another_role_is_a_violation(standard):
    d = judge(r.invoke("team-api", r.assumed_role("intruder")), standard)
    assert d.verdict is Verdict.VIOLATION
    assert "role/intruder" in d.reason


def test_root_caller_with_arn(standard):
    d = judge(r.invoke("team-api", r.root()), standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.caller == f"arn:aws:iam::{ACCOUNT}:root"


def test_root_caller_without_arn_gets_the_root_arn_of_its_account(standard):
    d = judge(r.invoke("team-api", r.root(with_arn=False)), standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.caller == f"arn:aws:iam::{ACCOUNT}:root"


def test_root_of_another_account_is_a_violation(standard):
    d = judge(r.invoke("team-api", r.root(account=FOREIGN_ACCOUNT)), standard)
    assert d.verdict is Verdict.VIOLATION


@pytest.mark.parametrize(("user", "verdict"), [("alice", "allowed"), ("mallory", "violation")])
def test_iam_user(standard, user, verdict):
    d = judge(r.invoke("team-api", r.iam_user(user)), standard)
    assert d.verdict == verdict
    assert d.caller == f"arn:aws:iam::{ACCOUNT}:user/{user}"


@pytest.mark.parametrize(
    ("account", "verdict"), [(PARTNER_ACCOUNT, "allowed"), (FOREIGN_ACCOUNT, "violation")]
)
def test_federated_user_is_judged_by_its_account(standard, account, verdict):
    d = judge(r.invoke("team-api", r.federated_user("bob", account=account)), standard)
    assert d.verdict == verdict
    assert d.caller == f"arn:aws:sts::{account}:federated-user/bob"


# --- resolving the invoked resource -------------------------------------------------------


@pytest.mark.parametrize("name", ["Invoke", "Invoke20150331", "Invoke20150331v2"])
def test_suffixed_invoke_event_names_are_invokes(standard, name):
    d = judge(r.s3_invoke() | {"eventName": name}, standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.event_name == name


@pytest.mark.parametrize("name", ["InvokeAsync", "InvokeAsync20141113", "InvokeAsync20150331v2"])
def test_invoke_async_is_an_invocation(standard, name):
    # the deprecated asynchronous invoke API runs the function: judged like Invoke
    allowed = judge(r.s3_invoke() | {"eventName": name}, standard)
    assert allowed.verdict is Verdict.ALLOWED
    record = r.invoke(
        "BlogFunction", r.iam_user("mallory", account=FOREIGN_ACCOUNT), event_name=name
    )
    off_the_list = judge(record, standard)
    assert off_the_list.verdict is Verdict.VIOLATION
    assert off_the_list.event_name == name


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("InvokeAsync20141113", "InvokeAsync"),
        ("GetFunction20150331", "GetFunction"),
        ("AddPermission20150331v2", "AddPermission"),
        ("UpdateFunctionCode20150331v2", "UpdateFunctionCode"),
        ("Invoke", "Invoke"),
        ("InvokeExecution", "InvokeExecution"),
        ("", ""),
    ],
)
def test_base_event_name(name, base):
    assert base_event_name(name) == base


def test_partial_arn_takes_the_region_from_the_record(standard):
    d = judge(r.invoke(f"{ACCOUNT}:function:BlogFunction", r.iam_user("x")), standard)
    assert d.function == r.function_arn("BlogFunction")
    assert d.rule == "blog"


def test_bare_name_takes_region_and_account_from_the_record(standard):
    record = r.invoke("team-api", r.iam_user("alice"), region="eu-west-1")
    d = judge(record, standard)
    assert d.function == r.function_arn("team-api", region="eu-west-1")
    assert d.region == "eu-west-1"
    assert d.verdict is Verdict.ALLOWED  # the rule's ARN pattern globs the region


def test_bare_name_account_falls_back_to_the_resources(standard):
    record = r.invoke("team-api", r.iam_user("alice"))
    del record["recipientAccountId"]
    d = judge(record, standard)
    assert d.function == r.function_arn("team-api")


def test_bare_name_without_a_region_is_invalid(standard):
    record = r.invoke("team-api", r.iam_user("alice"))
    del record["awsRegion"]
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID
    assert "region" in d.reason


def test_function_in_another_account_is_not_covered_by_an_arn_pattern(standard):
    record = r.invoke(r.function_arn("team-api", account=FOREIGN_ACCOUNT), r.iam_user("alice"))
    d = judge(record, standard)
    assert d.verdict is Verdict.UNMONITORED
    assert d.account == FOREIGN_ACCOUNT


def test_qualifier_parameter_qualifies_a_bare_name(standard):
    d = judge(r.invoke("orders", r.aws_account(PARTNER_ACCOUNT), qualifier="prod"), standard)
    assert d.function == r.function_arn("orders", "prod")
    assert d.rule == "orders-prod"


@pytest.mark.parametrize(
    ("function_name", "rule", "arn"),
    [
        ("orders:prod", "orders-prod", r.function_arn("orders", "prod")),
        (r.function_arn("orders", "prod"), "orders-prod", r.function_arn("orders", "prod")),
        ("orders:dev", "team", r.function_arn("orders", "dev")),
        ("orders:7", "team", r.function_arn("orders", "7")),
        ("orders", "team", r.function_arn("orders")),
        ("orders:$LATEST", "team", r.function_arn("orders")),
    ],
)
def test_qualifier_aware_rules_first_match_wins(standard, function_name, rule, arn):
    d = judge(r.invoke(function_name, r.aws_account(PARTNER_ACCOUNT)), standard)
    assert d.rule == rule
    assert d.function == arn
    assert d.verdict is Verdict.ALLOWED


def test_latest_qualifier_matches_a_latest_rule():
    config = make_config(
        """
        rules:
          - name: latest-only
            functions: [fn]
            qualifiers: ["$LATEST"]
            allow: [{account: "111122223333"}]
        """
    )
    unqualified = judge(r.invoke("fn", r.aws_account(PARTNER_ACCOUNT)), config)
    assert unqualified.rule == "latest-only"
    alias = judge(r.invoke("fn:prod", r.aws_account(PARTNER_ACCOUNT)), config)
    assert alias.verdict is Verdict.UNMONITORED


def test_string_booleans_and_extra_keys_are_tolerated(standard):
    record = r.s3_invoke() | {
        "readOnly": "false",
        "managementEvent": "False",
        "p_log_type": "AWS.CloudTrail",
        "tlsDetails": {"tlsVersion": "TLSv1.2"},
    }
    assert judge(record, standard).verdict is Verdict.ALLOWED


def test_numeric_account_ids_are_read_as_text(standard):
    record = r.invoke("orders", r.aws_account(PARTNER_ACCOUNT), qualifier="prod")
    record["recipientAccountId"] = int(ACCOUNT)
    record["userIdentity"]["accountId"] = int(PARTNER_ACCOUNT)
    record["resources"][0]["accountId"] = int(ACCOUNT)
    d = judge(record, standard)
    assert d.verdict is Verdict.ALLOWED
    assert d.account == ACCOUNT


def test_account_ids_that_are_not_12_digits_do_not_crash(standard):
    record = r.invoke("orders", r.aws_account("12345"), qualifier="prod")
    record["recipientAccountId"] = "0123"
    d = judge(record, standard)
    assert d.verdict is Verdict.VIOLATION
    assert d.function == "arn:aws:lambda:us-east-1:0123:function:orders:prod"


def test_own_qualified_arn_wins_over_the_qualifier_parameter(standard):
    record = r.invoke("orders:prod", r.aws_account(PARTNER_ACCOUNT), qualifier="prod")
    assert judge(record, standard).function == r.function_arn("orders", "prod")


# --- ignored ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["protected-thing", "vault"])
def test_protected_functions_are_ignored(standard, name):
    d = judge(r.invoke(name, r.iam_user("mallory")), standard)
    assert d.verdict is Verdict.IGNORED
    assert "protected" in d.reason
    assert d.function == r.function_arn(name)


def test_own_functions_are_ignored_by_exact_arn(standard):
    own = frozenset({r.function_arn("invoke-audit-validator")})
    record = r.invoke("invoke-audit-validator", r.aws_service("sqs.amazonaws.com"))
    d = judge(record, standard, own_functions=own)
    assert d.verdict is Verdict.IGNORED
    assert "own" in d.reason


@pytest.mark.parametrize("name", ["invoke-audit-anything", "invoke-audit-validator"])
def test_a_name_like_the_pipelines_is_judged_like_any_other(standard, name):
    # only the exact ARNs the deployment names are its own; no name prefix is a blind spot
    own = frozenset({r.function_arn("invoke-audit-dev-validator")})
    record = r.invoke(name, r.iam_user("mallory"))
    assert judge(record, standard, own_functions=own).verdict is Verdict.UNMONITORED
    assert judge(record, standard).verdict is Verdict.UNMONITORED


def test_invoke_execution_is_ignored_not_a_second_invocation(standard):
    d = judge(r.invoke_execution(), standard)
    assert d.verdict is Verdict.IGNORED
    assert "InvokeExecution" in d.reason


@pytest.mark.parametrize(
    "event_name", ["GetFunction20150331v2", "AddPermission20150331v2", "UpdateFunctionCode"]
)
def test_other_lambda_calls_are_ignored(standard, event_name):
    d = judge(r.management_event(event_name), standard)
    assert d.verdict is Verdict.IGNORED
    assert base_event_name(event_name) in d.reason


def test_other_services_records_are_ignored(standard):
    d = judge(r.other_service_record(), standard)
    assert d.verdict is Verdict.IGNORED
    assert "s3.amazonaws.com" in d.reason


def test_other_services_records_with_odd_fields_are_ignored_not_invalid(standard):
    record = r.other_service_record() | {"resources": ["not-an-object"], "readOnly": "maybe"}
    assert judge(record, standard).verdict is Verdict.IGNORED


def test_unmatched_report_gives_unmonitored(standard):
    d = judge(r.invoke("nobody-covers-me", r.iam_user("alice")), standard)
    assert d.verdict is Verdict.UNMONITORED
    assert d.rule is None
    assert d.mode is None


def test_unmatched_ignore_gives_ignored():
    config = make_config(
        """
        defaults: {unmatched: ignore}
        rules: [{name: a, functions: [a]}]
        """
    )
    d = judge(r.invoke("nobody-covers-me", r.iam_user("alice")), config)
    assert d.verdict is Verdict.IGNORED
    assert "unmatched" in d.reason


# --- failed calls -------------------------------------------------------------------------


def test_failed_call_is_reported_not_a_violation(standard):
    record = r.invoke("BlogFunction", r.iam_user("mallory"), error_code="AccessDeniedException")
    d = judge(record, standard)
    assert d.verdict is Verdict.FAILED_CALL
    assert "AccessDeniedException" in d.reason
    assert d.rule == "blog"
    assert d.function == r.function_arn("BlogFunction")


# --- modes --------------------------------------------------------------------------------


def test_monitor_rule_reports_a_violation_in_monitor_mode(standard):
    d = judge(r.invoke("watch-1", r.iam_user("alice")), standard)
    assert d.verdict is Verdict.VIOLATION
    assert d.mode == "monitor"
    assert d.rule == "watch"


def test_rule_without_mode_takes_the_default_mode():
    config = make_config(
        """
        defaults: {mode: monitor}
        rules:
          - {name: a, functions: [a]}
          - {name: b, functions: [b], mode: enforce}
        """
    )
    assert judge(r.invoke("a", r.iam_user("x")), config).mode == "monitor"
    assert judge(r.invoke("b", r.iam_user("x")), config).mode == "enforce"


def test_globs_on_names_use_question_mark_and_star(standard):
    assert judge(r.invoke("watch-1", r.iam_user("a")), standard).rule == "watch"
    assert judge(r.invoke("watch-a-b", r.iam_user("a")), standard).rule == "watch"
    assert judge(r.invoke("watch-12", r.iam_user("a")), standard).rule is None


def test_globs_are_case_sensitive(standard):
    assert judge(r.invoke("blogfunction", r.iam_user("a")), standard).rule is None


# --- invalid ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, 5, 1.5, "text", True, [r.s3_invoke()], []])
def test_non_objects_are_invalid(standard, raw):
    d = judge(raw, standard)
    assert d.verdict is Verdict.INVALID
    assert "object" in d.reason


def test_a_read_only_mapping_is_judged(standard):
    d = judge(MappingProxyType(r.s3_invoke()), standard)
    assert d.verdict is Verdict.ALLOWED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("userIdentity", "root"),
        ("userIdentity", ["IAMUser"]),
        ("requestParameters", ["BlogFunction"]),
        ("requestParameters", "BlogFunction"),
        ("additionalEventData", 7),
        ("resources", {"ARN": "x"}),
        ("eventTime", {"at": 1}),
        ("eventID", ["e"]),
    ],
)
def test_wrong_field_types_are_invalid_and_named(standard, field, value):
    record = r.s3_invoke()
    record[field] = value
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID
    assert field in d.reason


def test_no_user_identity_is_invalid(standard):
    d = judge(r.invoke("BlogFunction", None), standard)
    assert d.verdict is Verdict.INVALID
    assert "userIdentity" in d.reason
    assert d.function == r.function_arn("BlogFunction")


def test_identity_that_names_nobody_is_invalid(standard):
    d = judge(r.invoke("BlogFunction", {"type": "Unknown", "principalId": ""}), standard)
    assert d.verdict is Verdict.INVALID
    assert "Unknown" in d.reason


def test_no_function_is_invalid(standard):
    record = r.invoke(None, r.iam_user("alice"))
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID
    assert "function" in d.reason


@pytest.mark.parametrize("name", ["arn:aws:lambda:us-east-1", "has spaces", "a:b:c:d", 42, ""])
def test_unusable_function_names_are_invalid(standard, name):
    record = r.invoke("x", r.iam_user("alice"))
    record["requestParameters"]["functionName"] = name
    record["resources"] = []
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID


def test_no_event_source_is_invalid(standard):
    record = r.s3_invoke()
    del record["eventSource"]
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID
    assert "eventSource" in d.reason


def test_no_event_name_is_invalid(standard):
    record = r.s3_invoke()
    del record["eventName"]
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID
    assert "eventName" in d.reason


def test_a_huge_field_is_judged_and_the_reason_stays_short(standard):
    record = r.management_event("X" * 1_000_000)
    d = judge(record, standard)
    assert d.verdict is Verdict.IGNORED
    assert len(d.reason) < 1000


def test_decide_does_not_change_the_record(standard):
    record = r.step_functions_invoke()
    before = copy.deepcopy(record)
    judge(record, standard)
    assert record == before


def test_decision_to_dict_has_the_documented_fields(standard):
    row = judge(r.s3_invoke(), standard).to_dict()
    for key in ("event_id", "verdict", "function", "caller", "rule", "mode", "reason"):
        assert key in row
    assert row["verdict"] == "allowed"
    assert isinstance(row["verdict"], str)


def test_verdict_values_are_the_documented_strings():
    assert {v.value for v in Verdict} == {
        "allowed",
        "violation",
        "unmonitored",
        "ignored",
        "failed-call",
        "invalid",
        "broken",
    }


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("functionName", ["BlogFunction"], "requestParameters.functionName is a list"),
        ("functionName", {"name": "BlogFunction"}, "requestParameters.functionName is a dict"),
        ("functionName", 42, "requestParameters.functionName is a int"),
        ("functionVersion", ["x"], "additionalEventData.functionVersion is a list"),
    ],
)
def test_a_function_field_that_is_no_string_is_invalid_even_beside_a_usable_one(
    standard, field, value, named
):
    # EventBridge matches a list element by element, so no edge rule can be sure to deliver
    # such a record: it is not judged from the other field either.
    record = r.invoke("BlogFunction", r.iam_user("alice"))
    version = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:BlogFunction:$LATEST"
    record.setdefault("additionalEventData", {})["functionVersion"] = version
    if field == "functionName":
        record["requestParameters"]["functionName"] = value
    else:
        del record["requestParameters"]["functionName"]
        record["additionalEventData"]["functionVersion"] = value
    d = judge(record, standard)
    assert d.verdict is Verdict.INVALID
    assert named in d.reason
