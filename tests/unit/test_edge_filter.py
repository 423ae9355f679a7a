"""The allowlist compiled into the rule's event pattern: what it says, and how it shrinks to
fit EventBridge's limits. Whether it delivers the right events is checked through moto's rule
matching in tests/functional/test_edge_filter_moto.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from models.allowlist import AllowlistConfig
from stacks.edge_filter import (
    MAX_OR_TERMS,
    PATTERN_SIZE_LIMIT,
    edge_filtered_pattern,
    pattern_size,
)

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
PLAIN: dict[str, Any] = {
    "source": ["aws.lambda"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["lambda.amazonaws.com"],
        "eventName": ["Invoke"],
        "resources": {"ARN": [{"anything-but": {"prefix": "arn:aws:lambda:r:1:function:ia-"}}]},
    },
}
BLOG = {
    "name": "blog",
    "functions": ["BlogFunction"],
    "allow": [
        {
            "service": "s3.amazonaws.com",
            "source_arn": "arn:aws:s3:::examplebucket",
            "source_account": ACCOUNT,
        }
    ],
}


def config(*rules: dict[str, Any]) -> AllowlistConfig:
    return AllowlistConfig.model_validate({"version": 1, "rules": list(rules)})


def clauses(pattern: dict[str, Any]) -> list[dict[str, Any]]:
    return pattern["detail"]["$or"]


def test_the_plain_pattern_is_kept_and_one_or_of_deliver_clauses_added():
    result = edge_filtered_pattern(PLAIN, config(BLOG))
    assert result.filtered_rules == ("blog",) and result.warning is None and result.filtering
    assert {k: v for k, v in result.pattern["detail"].items() if k != "$or"} == PLAIN["detail"]
    assert {k: v for k, v in result.pattern.items() if k != "detail"} == {
        k: v for k, v in PLAIN.items() if k != "detail"
    }
    assert len(clauses(result.pattern)) >= 3


def test_function_names_other_than_the_rules_are_delivered():
    first = clauses(edge_filtered_pattern(PLAIN, config(BLOG)).pattern)[0]
    (name_filter,) = first["requestParameters"]["functionName"]
    assert set(name_filter["anything-but"]["wildcard"]) == {
        "BlogFunction",
        "BlogFunction:*",
        "*:function:BlogFunction",
        "*:function:BlogFunction:*",
    }


def test_invokes_without_a_function_name_fall_back_to_the_function_version():
    second = clauses(edge_filtered_pattern(PLAIN, config(BLOG)).pattern)[1]
    assert second["requestParameters"]["functionName"] == [{"exists": False}, None]
    version = second["additionalEventData"]["functionVersion"]
    assert {"exists": False} in version and None in version


def test_every_way_a_caller_differs_from_the_allow_entry_is_delivered():
    text = json.dumps(edge_filtered_pattern(PLAIN, config(BLOG)).pattern)
    assert '"invokedBy": [{"anything-but": "s3.amazonaws.com"}, {"exists": false}, null]' in text
    assert '"sourceArn": [{"anything-but": "arn:aws:s3:::examplebucket"}]' in text
    assert f'"sourceAccount": [{{"anything-but": "{ACCOUNT}"}}]' in text


def test_roles_are_matched_on_the_session_issuer_of_assumed_role_sessions_only():
    rule = {
        "name": "api",
        "functions": ["api-*"],
        "allow": [{"principal": f"arn:aws:iam::{ACCOUNT}:role/deploy*"}],
    }
    text = json.dumps(edge_filtered_pattern(PLAIN, config(rule)).pattern)
    assert '"type": [{"anything-but": "AssumedRole"}, {"exists": false}, null]' in text
    assert (
        f'"arn": [{{"anything-but": {{"wildcard": "arn:aws:iam::{ACCOUNT}:role/deploy*"}}}}' in text
    )


def test_accounts_and_users_are_compiled():
    rule = {
        "name": "partner",
        "functions": ["hook"],
        "allow": [{"account": "222222222222"}, {"principal": f"arn:aws:iam::{ACCOUNT}:user/ci"}],
    }
    text = json.dumps(edge_filtered_pattern(PLAIN, config(rule)).pattern)
    assert '"accountId": [{"anything-but": "222222222222"}' in text
    assert f'"anything-but": "arn:aws:iam::{ACCOUNT}:user/ci"' in text
    assert '"IAMUser"' in text and '"Root"' in text


@pytest.mark.parametrize(
    ("rule", "note"),
    [
        ({"name": "q", "functions": ["f?x"], "allow": [{"account": "222222222222"}]}, "function"),
        (
            {
                "name": "q",
                "functions": ["fx"],
                "qualifiers": ["p?od"],
                "allow": [{"account": "222222222222"}],
            },
            "qualifier",
        ),
        (
            {
                "name": "q",
                "functions": ["fx"],
                "allow": [{"principal": f"arn:aws:iam::{ACCOUNT}:role/r?"}],
            },
            "principal",
        ),
    ],
)
def test_what_a_pattern_cannot_say_exactly_is_named_in_a_note(rule, note):
    result = edge_filtered_pattern(PLAIN, config(rule))
    assert any(n.startswith(f"rule 'q': {note}") for n in result.notes)


def test_a_rule_with_a_glob_the_pattern_cannot_express_has_all_its_invokes_delivered():
    rule = {"name": "q", "functions": ["f?x"], "allow": [{"account": "222222222222"}]}
    result = edge_filtered_pattern(PLAIN, config(rule, BLOG))
    assert result.filtered_rules == ("blog",)
    assert {
        "requestParameters": {"functionName": [{"wildcard": "*:f*x*"}, {"wildcard": "f*x*"}]}
    } in (clauses(result.pattern))
    assert {"additionalEventData": {"functionVersion": [{"wildcard": "*:f*x*"}]}} in (
        clauses(result.pattern)
    )


def test_qualifier_rules_are_compiled_for_their_qualified_names_only():
    rule = {
        "name": "o",
        "functions": ["orders"],
        "qualifiers": ["prod"],
        "allow": [{"account": "222222222222"}],
    }
    first = clauses(edge_filtered_pattern(PLAIN, config(rule)).pattern)[0]
    names = first["requestParameters"]["functionName"][0]["anything-but"]["wildcard"]
    assert set(names) == {"orders:prod", "*:function:orders:prod"}


def test_no_rule_no_filtering_and_no_warning():
    result = edge_filtered_pattern(PLAIN, config())
    assert result.pattern == PLAIN and not result.filtering and result.warning is None


def test_a_rule_that_allows_nobody_filters_nothing():
    result = edge_filtered_pattern(PLAIN, config({"name": "locked", "functions": ["vault"]}))
    assert result.pattern == PLAIN and not result.filtering


def test_a_pattern_over_the_limit_falls_back_to_the_plain_pattern_with_a_warning():
    result = edge_filtered_pattern(PLAIN, config(BLOG), limit=pattern_size(PLAIN) + 50)
    assert result.pattern == PLAIN and not result.filtering
    assert result.warning and "plain pattern" in result.warning


def test_the_size_is_counted_as_compact_json_plus_the_allowance():
    result = edge_filtered_pattern(PLAIN, config(BLOG), size_allowance=7)
    assert result.size == len(json.dumps(result.pattern, separators=(",", ":"))) + 7
    assert result.size <= PATTERN_SIZE_LIMIT


def test_when_space_runs_out_the_function_version_goes_first_then_whole_rules():
    many = [
        {
            "name": f"r{i}",
            "functions": [f"fn-{i}"],
            "allow": [
                {"service": "s3.amazonaws.com", "source_arn": f"arn:aws:s3:::bucket-{i}"},
                {"principal": f"arn:aws:iam::{ACCOUNT}:role/role-{i}"},
            ],
        }
        for i in range(6)
    ]
    full = edge_filtered_pattern(PLAIN, config(*many), limit=100_000)
    assert full.notes == () and len(full.filtered_rules) == 6
    squeezed = edge_filtered_pattern(PLAIN, config(*many), limit=3000)
    assert squeezed.size <= 3000
    assert any("functionVersion is not compiled" in n for n in squeezed.notes)
    tight = edge_filtered_pattern(PLAIN, config(*many))
    assert tight.size <= PATTERN_SIZE_LIMIT and 0 < len(tight.filtered_rules) < 6
    assert tight.warning and "do not fit" in tight.warning
    # the rules left out are the last ones: put the busiest first
    assert tight.filtered_rules == tuple(f"r{i}" for i in range(len(tight.filtered_rules)))


def test_or_combinations_stay_within_eventbridges_limit():
    rule = {
        "name": "wide",
        "functions": ["f"],
        "allow": [
            {
                "service": f"svc{i}.amazonaws.com",
                "source_arn": f"arn:aws:s3:::b{i}",
                "source_account": ACCOUNT,
            }
            for i in range(8)
        ],
    }
    result = edge_filtered_pattern(PLAIN, config(rule), limit=10**7)
    assert not result.filtering and MAX_OR_TERMS == 1000  # 3**8 combinations do not fit


def test_rules_that_allow_the_same_callers_share_one_clause():
    one = {"name": "a", "functions": ["fa"], "allow": [{"account": "222222222222"}]}
    two = {"name": "b", "functions": ["fb"], "allow": [{"account": "222222222222"}]}
    result = edge_filtered_pattern(PLAIN, config(one, two), limit=100_000)
    (shared,) = [c for c in clauses(result.pattern) if "accountId" in json.dumps(c)]
    names, versions = sorted(shared["$or"], key=json.dumps)
    assert json.dumps(names).count("fa") == json.dumps(names).count("fb") > 0
    assert json.dumps(versions).count("fa") == json.dumps(versions).count("fb") > 0


def test_the_base_pattern_is_not_changed_and_the_result_is_deterministic():
    before = copy.deepcopy(PLAIN)
    first = edge_filtered_pattern(PLAIN, config(BLOG))
    second = edge_filtered_pattern(PLAIN, config(BLOG))
    assert before == PLAIN
    assert json.dumps(first.pattern) == json.dumps(second.pattern)


def test_a_base_pattern_that_already_uses_or_is_kept_with_a_warning():
    base = copy.deepcopy(PLAIN)
    base["detail"]["$or"] = [{"a": ["b"]}, {"c": ["d"]}]
    result = edge_filtered_pattern(base, config(BLOG))
    assert result.pattern == base and result.warning


def test_wildcards_never_hold_consecutive_stars():
    rule = {"name": "s", "functions": ["*-worker*"], "allow": [{"account": "222222222222"}]}
    text = json.dumps(edge_filtered_pattern(PLAIN, config(rule)).pattern)
    assert "**" not in text
