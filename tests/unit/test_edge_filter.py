"""The allowlist compiled into EventBridge rules: which rules, what they say, and how they are
loosened to fit EventBridge's limits. Whether they deliver the right events is checked with
aws/event-ruler in tests/functional/test_edge_filter_ruler.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from models.allowlist import AllowlistConfig
from stacks.edge_filter import (
    MAX_OR_TERMS,
    PATTERN_SIZE_LIMIT,
    EdgeFilterError,
    combinations,
    compile_edge_rules,
    pattern_size,
)
from stacks.pattern import event_name_filter, event_pattern

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
BASE = event_pattern(own_function_arns=["arn:aws:lambda:r:1:function:ia-validator"])
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


def config(*rules: dict[str, Any], unmatched: str = "report") -> AllowlistConfig:
    return AllowlistConfig.model_validate(
        {"version": 1, "defaults": {"unmatched": unmatched}, "rules": list(rules)}
    )


def keys(cfg: AllowlistConfig, **kwargs: Any) -> list[str]:
    return [rule.key for rule in compile_edge_rules(BASE, cfg, **kwargs).rules]


def test_the_invoke_names_are_invoke_its_dated_forms_and_the_other_invocation_apis():
    assert event_name_filter() == [
        "Invoke",
        {"prefix": "Invoke20"},
        {"prefix": "InvokeAsync"},
        {"prefix": "InvokeWithResponseStream"},
    ]
    resources = BASE["detail"]["resources"]["ARN"]
    assert {"exists": False} in resources and None in resources  # no `resources`: selected


def test_one_rule_per_allowlist_rule_then_failed_padded_and_unmatched():
    api = {"name": "api", "functions": ["api-*"], "allow": [{"account": "222222222222"}]}
    assert keys(config(BLOG, api)) == [
        "rule-blog",
        "rule-api",
        "failed-invokes",
        "padded-1",
        "padded-2",
        "unmatched",
        "unmatched-versions",
    ]
    assert not any(k.startswith("unmatched") for k in keys(config(BLOG, api, unmatched="ignore")))


def test_every_rule_keeps_the_invoke_pattern_and_fits():
    rules = compile_edge_rules(BASE, config(BLOG)).rules
    for rule in rules:
        assert {k: v for k, v in rule.pattern.items() if k != "detail"} == {
            k: v for k, v in BASE.items() if k != "detail"
        }
        for key, value in BASE["detail"].items():
            assert rule.pattern["detail"][key] == value
        assert rule.size == pattern_size(rule.pattern) <= PATTERN_SIZE_LIMIT
        assert rule.combinations == combinations(rule.pattern) <= MAX_OR_TERMS


def test_the_rule_names_its_functions_in_every_form_and_each_way_a_caller_differs():
    (blog,) = [r for r in compile_edge_rules(BASE, config(BLOG)).rules if r.key == "rule-blog"]
    text = json.dumps(blog.pattern)
    for form in (
        '"BlogFunction"',
        '{"wildcard": "BlogFunction:*"}',
        '{"wildcard": "*:function:BlogFunction"}',
        '{"wildcard": "*:function:BlogFunction:*"}',
    ):
        assert form in text
    assert '"invokedBy": [{"anything-but": "s3.amazonaws.com"}, {"exists": false}, null]' in text
    assert '"sourceArn": [{"anything-but": "arn:aws:s3:::examplebucket"}]' in text
    assert f'"sourceAccount": [{{"anything-but": "{ACCOUNT}"}}]' in text
    assert '"invokedBy": ["s3.amazonaws.com"]' in text
    assert blog.filtering and blog.rules == ("blog",)


def test_the_failed_invokes_rule_selects_an_error_code():
    rules = {r.key: r for r in compile_edge_rules(BASE, config(BLOG)).rules}
    assert rules["failed-invokes"].pattern["detail"]["errorCode"] == [{"exists": True}]


def test_padded_names_are_delivered_for_every_whitespace_strip_removes():
    rules = [r for r in compile_edge_rules(BASE, config(BLOG)).rules if r.key.startswith("padded")]
    text = json.dumps([r.pattern for r in rules])
    for char in (" ", "\t", "\n", "\u2003", "\u3000"):
        wild = json.dumps({"wildcard": f"*{char}"})
        assert text.count(wild) == 2  # functionName and functionVersion


def test_unmatched_lists_what_surely_is_covered_without_or():
    rules = {r.key: r for r in compile_edge_rules(BASE, config(BLOG)).rules}
    by_name, by_version = rules["unmatched"].pattern, rules["unmatched-versions"].pattern
    assert "$or" not in json.dumps([by_name, by_version])
    (names,) = by_name["detail"]["requestParameters"]["functionName"]
    assert set(names["anything-but"]["wildcard"]) == {
        "BlogFunction",
        "BlogFunction:*",
        "*:function:BlogFunction",
        "*:function:BlogFunction:*",
    }
    assert by_version["detail"]["requestParameters"]["functionName"] == [{"exists": False}, None]
    (versions, *absent) = by_version["detail"]["additionalEventData"]["functionVersion"]
    assert set(versions["anything-but"]["wildcard"]) == {
        "*:function:BlogFunction",
        "*:function:BlogFunction:*",
    }
    assert absent == [{"exists": False}, None]


def _excluded(rule: Any) -> set[str]:
    (names,) = rule.pattern["detail"]["requestParameters"]["functionName"]
    return set(names["anything-but"]["wildcard"])


def test_unmatched_too_big_for_one_pattern_is_partitioned_on_how_names_begin():
    many = [
        {"name": f"r{i}", "functions": [f"{group}{i:02d}-fn"], "allow": [{"account": ACCOUNT}]}
        for i, group in enumerate(["svc", "team", "hook"] * 12)
    ]
    result = compile_edge_rules(BASE, config(*many))
    parts = [r for r in result.rules if r.key.startswith("unmatched-") and "versions" not in r.key]
    assert len(parts) >= 2 and not result.notes
    for part in parts:
        assert part.size <= PATTERN_SIZE_LIMIT and part.combinations == 1
    # Each covered name is listed exactly by one part, and left out by the others with a
    # wildcard of its partition's prefix (never one that matches a name of the part's own).
    for i, group in enumerate(["svc", "team", "hook"] * 12):
        name = f"{group}{i:02d}-fn"
        owners = [p for p in parts if name in _excluded(p)]
        assert len(owners) == 1
        for other in parts:
            if other is not owners[0]:
                wild = [w for w in _excluded(other) if w.endswith("*") and name.startswith(w[:-1])]
                assert wild, (name, other.key)
    for part in parts:
        owned = {w for w in _excluded(part) if not w.endswith("*") and "*" not in w}
        prefixes = {w[:-1] for w in _excluded(part) if w.endswith("*") and "*" not in w[:-1]}
        assert not any(n.startswith(p) for n in owned for p in prefixes)


def test_a_partition_prefix_that_begins_an_arn_or_an_account_is_not_a_bare_wildcard():
    many = [
        {"name": f"r{i}", "functions": [f"{group}{i:02d}-fn"], "allow": [{"account": ACCOUNT}]}
        for i, group in enumerate(["arnold", "1234", "zeta"] * 12)
    ]
    result = compile_edge_rules(BASE, config(*many))
    parts = [r for r in result.rules if r.key.startswith("unmatched")]
    text = json.dumps([r.pattern for r in parts])
    assert '"a*"' not in text and '"ar*"' not in text and '"arn*"' not in text
    assert not any(f'"{d}*"' in text for d in ("1", "12", "123", "1234"))


def test_a_rule_whose_callers_do_not_fit_in_one_pattern_gets_two():
    rule = {
        "name": "two",
        "functions": ["svc-api", "svc-worker"],
        "allow": [
            {"principal": f"arn:aws:iam::{ACCOUNT}:role/deployer"},
            {
                "service": "s3.amazonaws.com",
                "source_arn": "arn:aws:s3:::bucket-03",
                "source_account": ACCOUNT,
            },
            {
                "service": "apigateway.amazonaws.com",
                "source_arn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:api03/*",
            },
        ],
    }
    whole = compile_edge_rules(BASE, config(rule), limit=100_000)
    assert [r.key for r in whole.rules][:1] == ["rule-two"]
    result = compile_edge_rules(BASE, config(rule))
    by_name, by_version = result.rules[:2]
    assert (by_name.key, by_version.key) == ("rule-two", "rule-two-versions")
    assert by_name.filtering and by_version.filtering and not result.notes
    assert "additionalEventData" not in json.dumps(by_name.pattern)
    assert by_version.pattern["detail"]["requestParameters"]["functionName"][:2] == [
        {"exists": False},
        None,
    ]
    # Where the rules-per-bus setting leaves no room, one pattern (loosened) instead.
    tight = compile_edge_rules(BASE, config(rule), max_rules=6)
    assert "rule-two-versions" not in [r.key for r in tight.rules]


def test_an_arn_with_function_twice_is_delivered_by_the_padded_rules():
    rules = [r for r in compile_edge_rules(BASE, config(BLOG)).rules if r.key.startswith("padded")]
    text = json.dumps([r.pattern for r in rules])
    assert text.count(json.dumps({"wildcard": "*:function:*:function:*"})) == 2


def test_a_star_inside_a_name_is_never_taken_as_covered():
    rule = {"name": "w", "functions": ["a*b"], "allow": [{"account": "222222222222"}]}
    result = compile_edge_rules(BASE, config(rule))
    assert any("'a*b' is not compiled as covered" in n for n in result.notes)
    unmatched = [r for r in result.rules if r.key.startswith("unmatched")]
    assert [r.pattern for r in unmatched] == [BASE]  # nothing surely covered: all delivered


def test_an_arn_glob_is_matched_on_the_start_of_its_name():
    rule = {
        "name": "wf",
        "functions": ["arn:aws:lambda:us-east-1:111111111111:function:wf-*x"],
        "allow": [{"account": "222222222222"}],
    }
    (wf,) = [r for r in compile_edge_rules(BASE, config(rule)).rules if r.key == "rule-wf"]
    text = json.dumps(wf.pattern)
    assert '{"wildcard": "wf-*"}' in text and '{"wildcard": "*:function:wf-*"}' in text


def test_a_rule_that_allows_nobody_delivers_every_invoke_of_its_functions():
    (locked,) = compile_edge_rules(BASE, config({"name": "locked", "functions": ["vault"]})).rules[
        :1
    ]
    assert not locked.filtering and "userIdentity" not in json.dumps(locked.pattern)


def test_a_rule_too_big_for_the_limit_is_loosened_not_dropped():
    rule = {
        "name": "wide",
        "functions": [f"fn-{i}" for i in range(5)],
        "allow": [{"principal": f"arn:aws:iam::{ACCOUNT}:role/r{i}"} for i in range(5)]
        + [{"account": "222222222222"}],
    }
    full = compile_edge_rules(BASE, config(rule), limit=100_000).rules[0]
    tight = compile_edge_rules(BASE, config(rule), limit=1400)
    assert full.filtering and "222222222222" in json.dumps(full.pattern)
    loosened = tight.rules[0]
    assert loosened.size <= 1400 and loosened.size < full.size
    assert any("fit in" in n for n in tight.notes + tight.warnings)


def test_or_combinations_stay_within_eventbridges_limit():
    rule = {
        "name": "wide",
        "functions": ["f"],
        "allow": [
            {
                "service": "s3.amazonaws.com",
                "source_arn": f"arn:aws:s3:::b{i}",
                "source_account": f"{i:012d}",
            }
            for i in range(12)
        ],
    }
    for edge_rule in compile_edge_rules(BASE, config(rule), limit=10**7).rules:
        assert edge_rule.combinations <= MAX_OR_TERMS


def test_past_the_rules_per_bus_setting_the_rest_share_a_coarse_rule():
    many = [
        {"name": f"r{i}", "functions": [f"fn-{i}"], "allow": [{"account": "222222222222"}]}
        for i in range(10)
    ]
    result = compile_edge_rules(BASE, config(*many), max_rules=8)
    assert len(result.rules) == 8
    coarse = next(r for r in result.rules if r.key == "coarse")
    assert coarse.rules == tuple(f"r{i}" for i in range(2, 10)) and not coarse.filtering
    assert result.warnings and "rules-per-bus setting (8)" in result.warnings[0]
    with pytest.raises(EdgeFilterError, match="rules-per-bus setting"):
        compile_edge_rules(BASE, config(*many), max_rules=4)


def test_an_invoke_pattern_over_the_limit_is_refused():
    with pytest.raises(EdgeFilterError, match="over the pattern size setting"):
        compile_edge_rules(BASE, config(BLOG), limit=100)


def test_the_base_pattern_is_not_changed_and_the_result_is_deterministic():
    before = copy.deepcopy(BASE)
    first = compile_edge_rules(BASE, config(BLOG))
    second = compile_edge_rules(BASE, config(BLOG))
    assert before == BASE and first == second


def test_wildcards_never_hold_consecutive_stars():
    rule = {"name": "s", "functions": ["*-worker*"], "allow": [{"account": "222222222222"}]}
    for edge_rule in compile_edge_rules(BASE, config(rule)).rules:
        assert "**" not in json.dumps(edge_rule.pattern)
