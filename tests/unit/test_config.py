"""The allowlist: strict validation, errors that name file, line and field (DESIGN.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli.allowlist_file import load_allowlist, parse_allowlist
from lambdas.core.config import allowlist_notes, allowlist_to_json
from lambdas.runtime.settings import load_allowlist_json
from models.arns import FunctionRef, parse_function_arn
from models.exceptions import ConfigError
from models.globs import glob_error, has_magic, matches
from tests.support.allowlists import STANDARD_YAML, make_config
from tests.support.files import REPO

pytestmark = pytest.mark.unit

LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<rest>.*)$")


def problems(text: str, source: str = "allow.yaml") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        make_config(text, source)
    found = caught.value.problems
    assert found
    for problem in found:
        assert "\n" not in problem
        assert LINE.match(problem), problem
        assert problem.startswith(f"{source}:")
    return found


def only(text: str) -> tuple[int, str]:
    """The single problem of `text`: (line, 'field: reason')."""
    found = problems(text)
    assert len(found) == 1, found
    match = LINE.match(found[0])
    assert match
    return int(match["line"]), match["rest"]


def test_the_shipped_example_is_valid():
    config = load_allowlist(REPO / "config" / "allowlist.yaml")
    blog = config.rules[0]
    assert blog.name == "blog-s3-trigger"
    assert blog.functions == ["BlogFunction"]
    assert blog.allow[0].service == "s3.amazonaws.com"
    assert blog.allow[0].source_arn == "arn:aws:s3:::examplebucket"
    assert config.is_protected(parse_function_arn("arn:aws:lambda:us-east-1:1:function:x")) is None
    # The pipeline's own functions are excluded by exact ARN (lambdas.core.guard), never by a
    # name prefix in the shipped allowlist: a name anyone may choose is no protection.
    assert config.protect == []
    assert (
        config.is_protected(
            parse_function_arn("arn:aws:lambda:us-east-1:123456789012:function:invoke-audit-x")
        )
        is None
    )
    assert allowlist_notes(config) == []


def test_defaults():
    config = make_config("rules: [{name: a, functions: [a]}]")
    assert config.version == 1
    assert config.defaults.mode == "enforce"
    assert config.defaults.unmatched == "report"
    assert config.limits.max_remediations_per_hour == 20
    rule = config.rules[0]
    assert rule.qualifiers == ["*"]
    assert rule.mode is None
    assert config.mode_of(rule) == "enforce"
    assert rule.deny_others is False
    assert rule.allow == []


def test_typo_in_a_key_names_line_and_field():
    line, rest = only(
        """\
        version: 1
        rules:
          - name: a
            functions: [a]
            allow:
              - acount: "111122223333"
        """
    )
    assert line == 6
    assert rest.startswith("rules[0].allow[0].acount:")
    assert "unknown key" in rest


def test_typo_in_a_top_level_key():
    line, rest = only("version: 1\nrulez: []\n")
    assert line == 2
    assert "rulez" in rest


def test_duplicate_keys_are_errors():
    line, rest = only(
        """\
        version: 1
        rules:
          - name: a
            functions: [a]
            name: b
        """
    )
    assert line == 5
    assert rest.startswith("rules[0].name:")
    assert "duplicate key" in rest


def test_broken_yaml_names_the_line():
    line, rest = only("version: 1\nrules:\n  - name: [a\n  - b: c\n")
    assert line >= 3
    assert "not valid YAML" in rest


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(text):
    line, rest = only(text)
    assert line == 1
    assert "empty" in rest


@pytest.mark.parametrize("text", ["5", "- a\n- b\n", "just text"])
def test_not_a_mapping(text):
    assert "mapping" in only(text)[1]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[abc", "unclosed"),
        ("Blog[a[b]]", "nested"),
        (" Blog", "whitespace"),
        ("Blog Function", "function name pattern"),
        ("arn:aws:lambda:us-east-1:123456789012:BlogFunction", "bad Lambda ARN"),
        ("arn:aws:s3:us-east-1:123456789012:function:BlogFunction", "bad Lambda ARN"),
        ("arn:aws:lambda:us-east-1:12345:function:BlogFunction", "not 12 digits"),
        ("arn:aws:lambda:us-east-1:12345678901a:function:BlogFunction", "not 12 digits"),
    ],
)
def test_bad_function_patterns(pattern, reason):
    line, rest = only(
        f"""\
        rules:
          - name: a
            functions:
              - "{pattern}"
        """
    )
    assert line == 4
    assert rest.startswith("rules[0].functions")
    assert reason in rest


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:lambda:*:123456789012:function:Blog*",
        "arn:aws:lambda:us-east-1:*:function:Blog",
        "arn:aws:lambda:us-east-1:1234567890??:function:Blog",
        "arn:aws:lambda:us-east-1:123456789012:function:Blog:prod",
        "Blog[0-9]",
        "Blog?",
    ],
)
def test_good_function_patterns(pattern):
    assert make_config(f'rules: [{{name: a, functions: ["{pattern}"]}}]').rules[0].functions


@pytest.mark.parametrize(
    "account", ['"1234"', '"12345678901a"', '"1234567890123"', '" 123456789012"', '""']
)
def test_bad_account_ids(account):
    line, rest = only(
        f"""\
        rules:
          - name: a
            functions: [a]
            allow:
              - account: {account}
        """
    )
    assert line == 5
    assert rest.startswith("rules[0].allow[0].account:")
    assert "12 digits" in rest


def test_unquoted_account_number_says_to_quote_it():
    line, rest = only(
        """\
        rules:
          - name: a
            functions: [a]
            allow:
              - service: s3.amazonaws.com
                source_account: 111122223333
        """
    )
    assert line == 6
    assert rest.startswith("rules[0].allow[0].source_account:")
    assert "quotes" in rest


@pytest.mark.parametrize(
    ("entry", "field", "reason"),
    [
        ('{service: "s3"}', "service", "bad service principal"),
        ('{service: "S3.AMAZONAWS.COM"}', "service", "bad service principal"),
        ('{principal: "arn:aws:iam::1234:role/x"}', "principal", "bad principal"),
        ('{principal: "arn:aws:sts::123456789012:assumed-role/x/y"}', "principal", "bad principal"),
        ('{principal: "deployer"}', "principal", "bad principal"),
        ('{principal: "arn:aws:iam::123456789012:role/[x"}', "principal", "bad glob"),
        (
            '{service: s3.amazonaws.com, source_arn: "examplebucket"}',
            "source_arn",
            "bad source ARN",
        ),
        ('{service: s3.amazonaws.com, source_arn: "arn:aws:s3:::[x"}', "source_arn", "bad glob"),
        ('{account: "111122223333", service: s3.amazonaws.com}', "", "exactly one"),
        ("{}", "", "exactly one"),
        ('{account: "111122223333", source_account: "111122223333"}', "", "only go with service"),
        ('{account: "111122223333", sourceArn: "x"}', "sourceArn", "unknown key"),
    ],
)
def test_bad_allow_entries(entry, field, reason):
    line, rest = only(
        f"""\
        rules:
          - name: a
            functions: [a]
            allow:
              - {entry}
        """
    )
    assert line == 5
    assert rest.startswith(f"rules[0].allow[0]{'.' + field if field else ''}")
    assert reason in rest


def test_principal_globs_are_allowed():
    config = make_config(
        """
        rules:
          - name: a
            functions: [a]
            allow:
              - principal: "arn:aws:iam::123456789012:role/ci-*"
              - principal: "arn:aws:iam::*:root"
              - principal: "arn:aws:iam::123456789012:user/alice"
        """
    )
    assert len(config.rules[0].allow) == 3


def test_duplicate_rule_names():
    line, rest = only(
        """\
        rules:
          - name: a
            functions: [a]
          - name: a
            functions: [b]
        """
    )
    assert line == 4
    assert rest.startswith("rules[1].name:")
    assert "duplicate rule name" in rest


def test_same_function_pattern_in_two_rules():
    line, rest = only(
        """\
        rules:
          - name: a
            functions: [a, b]
            qualifiers: [prod, "dev*"]
          - name: b
            functions: [c, b]
            qualifiers: [dev-eu]
        """
    )
    assert line == 6
    assert rest.startswith("rules[1].functions:")
    assert "'b'" in rest
    assert "also in rule 'a'" in rest
    assert "qualifier 'dev-eu'" in rest


def test_same_function_pattern_for_different_qualifiers_is_fine():
    config = make_config(
        """\
        rules:
          - {name: live, functions: [orders], qualifiers: [live]}
          - {name: beta, functions: [orders], qualifiers: [beta, "4"]}
          - {name: rest, functions: [orders]}
        """
    )
    ref = parse_function_arn("arn:aws:lambda:us-east-1:111122223333:function:orders")
    rules = [config.rule_for(ref.with_qualifier(q)) for q in ("live", "beta", "4", None)]
    assert [rule.name if rule else None for rule in rules] == [
        "live",
        "beta",
        "beta",
        "rest",
    ]


def test_a_qualifier_rule_after_a_catch_all_rule_for_the_same_pattern_is_an_error():
    line, rest = only(
        """\
        rules:
          - {name: all, functions: [orders]}
          - {name: live, functions: [orders], qualifiers: [live]}
        """
    )
    assert line == 3
    assert "also in rule 'all'" in rest


def test_same_pattern_twice_in_one_rule():
    line, rest = only("rules:\n  - name: a\n    functions: [a, a]\n")
    assert line == 3
    assert "twice" in rest


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ('functions: ["Blog*"]', 'functions: ["BlogFunction"]'),
        ('functions: ["*"]', 'functions: ["x", "y"]'),
        (
            'functions: ["Blog*"]',
            'functions: ["arn:aws:lambda:us-east-1:123456789012:function:Blog1"]',
        ),
        (
            'functions: ["arn:aws:lambda:*:123456789012:function:*"]',
            'functions: ["arn:aws:lambda:us-east-1:123456789012:function:x"]',
        ),
        ('functions: ["api-*"]', 'functions: ["api-?"]'),
        (
            'functions: ["x"]\n    qualifiers: ["*"]',
            'functions: ["x", "x*"]\n    qualifiers: ["p?"]',
        ),
    ],
)
def test_shadowed_rules_are_errors(earlier, later):
    text = f"rules:\n  - name: first\n    {earlier}\n  - name: second\n    {later}\n"
    found = problems(text)
    assert any("never applies" in p or "also in rule" in p for p in found), found
    assert all("rules[1]" in p for p in found)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        # a narrower glob first does not take every call of a broader one
        ('functions: ["api-?"]', 'functions: ["api-*"]'),
        ('functions: ["api-*-x"]', 'functions: ["api-*"]'),
        # a qualifier-aware rule first, the catch-all second
        ('functions: ["x"]\n    qualifiers: ["prod"]', 'functions: ["x*"]'),
        ('functions: ["x"]\n    qualifiers: ["v?"]', 'functions: ["x*"]\n    qualifiers: ["v*"]'),
        # an ARN pattern does not cover a bare name: the name matches in every account
        ('functions: ["arn:aws:lambda:*:123456789012:function:*"]', 'functions: ["x"]'),
        ('functions: ["Blog[0-9]"]', 'functions: ["Blog[0-9a]"]'),
    ],
)
def test_rules_that_are_not_shadowed_are_accepted(earlier, later):
    text = f"rules:\n  - name: first\n    {earlier}\n  - name: second\n    {later}\n"
    assert [r.name for r in make_config(text).rules] == ["first", "second"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("defaults: {mode: enforced}\n", "defaults.mode"),
        ("defaults: {unmatched: drop}\n", "defaults.unmatched"),
        ("version: 2\n", "version"),
        ("limits: {max_remediations_per_hour: -1}\n", "limits.max_remediations_per_hour"),
        ('limits: {max_remediations_per_hour: "20"}\n', "limits.max_remediations_per_hour"),
        ("rules: [{name: a, functions: [a], deny_others: yes please}]\n", "rules[0].deny_others"),
        ('rules: [{name: a, functions: [a], deny_others: "true"}]\n', "rules[0].deny_others"),
        ("rules: [{name: a, functions: []}]\n", "rules[0].functions"),
        ("rules: [{name: a}]\n", "rules[0].functions"),
        ("rules: [{name: 'a b', functions: [a]}]\n", "rules[0].name"),
        ("rules: [{name: a, functions: [a], qualifiers: ['[x']}]\n", "rules[0].qualifiers"),
        ("rules: [{name: a, functions: [a], mode: off}]\n", "rules[0].mode"),
        ("rules: 5\n", "rules"),
        ('protect: ["[x"]\n', "protect"),
    ],
)
def test_wrong_values_name_the_field(text, field):
    found = problems(text)
    assert any(LINE.match(p)["rest"].startswith(field) for p in found), found  # type: ignore[index]


def test_several_problems_are_all_reported():
    found = problems(
        """\
        version: 1
        defaults: {mode: enforced}
        rules:
          - name: a
            functions: ["[x"]
            allow:
              - account: "1"
        """
    )
    assert len(found) >= 3
    lines = {int(LINE.match(p)["line"]) for p in found}  # type: ignore[index]
    assert {2, 5, 7} <= lines


def test_load_allowlist_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text("version: 1\nrulez: []\n")
    with pytest.raises(ConfigError) as caught:
        load_allowlist(path)
    assert caught.value.problems[0].startswith(f"{path}:2: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_allowlist(tmp_path / "nope.yaml")
    assert "cannot read" in str(caught.value)
    assert "nope.yaml" in str(caught.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"version: 1\n\xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        load_allowlist(path)
    assert "UTF-8" in str(caught.value)


def test_json_round_trip(tmp_path: Path) -> None:
    config = make_config(STANDARD_YAML)
    path = tmp_path / "allowlist.json"
    path.write_text(allowlist_to_json(config))
    again = load_allowlist_json(path)
    assert again == config
    assert [r.name for r in again.rules] == [r.name for r in config.rules]


def test_json_config_is_validated_again(tmp_path: Path) -> None:
    path = tmp_path / "allowlist.json"
    path.write_text('{"version": 1, "rules": [{"name": "a", "functions": ["[x"]}]}')
    with pytest.raises(ConfigError) as caught:
        load_allowlist_json(path)
    assert "rules[0].functions" in str(caught.value)
    with pytest.raises(ConfigError):
        load_allowlist_json(tmp_path / "missing.json")


def test_parse_allowlist_default_source_name():
    with pytest.raises(ConfigError) as caught:
        parse_allowlist("rulez: 1\n")
    assert caught.value.problems[0].startswith("<allowlist>:1:")


def test_config_is_immutable():
    config = make_config("rules: [{name: a, functions: [a]}]")
    with pytest.raises(ValueError):
        config.rules[0].name = "b"  # type: ignore[misc]


def test_rule_for_and_protection(standard):
    def ref(text: str) -> FunctionRef:
        return parse_function_arn(text, default_region="us-east-1", default_account="123456789012")

    prod, plain = standard.rule_for(ref("orders:prod")), standard.rule_for(ref("orders"))
    assert prod is not None and prod.name == "orders-prod"
    assert plain is not None and plain.name == "team"
    assert standard.rule_for(ref("nothing")) is None
    assert standard.is_protected(ref("protected-x")) == "protected-*"
    assert standard.is_protected(ref("vault")) == "arn:aws:lambda:*:123456789012:function:vault"
    assert standard.is_protected(ref("vault2")) is None
    # the cache returns the same answer
    assert standard.rule_for(ref("orders:prod")) is standard.rule_for(ref("orders:prod"))


# --- globs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "error"),
    [("", "empty"), ("[a", "unclosed"), ("[a[b]]", "nested"), (" a", "whitespace"), ("a*", None)],
)
def test_glob_error(pattern, error):
    problem = glob_error(pattern)
    assert (problem is None) if error is None else (error in (problem or ""))


def test_glob_matching():
    assert matches("Blog*", "BlogFunction")
    assert not matches("Blog*", "blogFunction")
    assert matches("Blog?", "Blog1")
    assert not matches("Blog?", "Blog12")
    assert matches("Blog[0-9]", "Blog7")
    assert matches("a.b", "a.b")
    assert not matches("a.b", "axb")
    assert not matches("Blog", "BlogX")
    assert has_magic("a*") and has_magic("a?") and has_magic("a[b]") and not has_magic("ab")


# --- garbage limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "rules: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "".join("  " * i + f"k{i}:\n" for i in range(3000)),
    ],
    ids=["lists", "mappings"],
)
def test_deep_nesting_is_a_config_error(text):
    line, rest = only(text)
    assert line == 1
    assert "nested too deeply" in rest


def test_alias_expansion_is_bounded():
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    line, rest = only("\n".join(levels) + "\n")
    assert "too large" in rest
    assert line >= 1


def test_anchors_and_aliases_within_reason_are_fine():
    config = make_config(
        """
        rules:
          - name: a
            functions: [a]
            allow: &shared
              - account: "111122223333"
          - name: b
            functions: [b]
            allow: *shared
        """
    )
    assert config.rules[0].allow == config.rules[1].allow


def test_many_problems_are_capped_and_lines_stay_short():
    functions = ", ".join(f'"[bad{i}"' for i in range(200))
    found = problems(f"rules:\n  - name: a\n    functions: [{functions}]\n")
    assert len(found) == 51
    assert "150 more problems not shown" in found[-1]
    long_name = "a" * 5000
    found = problems(f"rules:\n  - name: a\n    functions: ['{long_name}!']\n")
    assert all(len(p) < 500 for p in found)


@pytest.mark.parametrize("field", ["source_arn", "principal"])
def test_bracket_globs_are_refused_where_they_become_iam_conditions(field):
    value = (
        '"arn:aws:s3:::bucket-[ab]"'
        if field == "source_arn"
        else '"arn:aws:iam::123456789012:role/[ab]"'
    )
    entry = (
        f"{{service: s3.amazonaws.com, source_arn: {value}}}"
        if field == "source_arn"
        else f"{{principal: {value}}}"
    )
    found = problems(f"version: 1\nrules:\n  - name: r\n    functions: [f]\n    allow: [{entry}]\n")
    assert len(found) == 1
    assert f".{field}: " in found[0] and "only * and ? globs here" in found[0]


def test_an_oversized_allowlist_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\n# " + "x" * 1_100_000 + "\n")
    with pytest.raises(ConfigError) as error:
        load_allowlist(path)
    assert error.value.problems == [f"{path}:1: too large for an allowlist (over 1000000 bytes)"]
