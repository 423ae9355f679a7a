"""The adoption path, point by point: what a new user meets between `learn` and `enforce`.

Inputs without Invoke data events, learned modes and entries, region typos, qualifier
overlaps, shell-safe undo commands, and scan output a CI gate can trust."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import main
from cli.scan import iso_utc
from lambdas.core.config import allowlist_warnings, check_partition
from lambdas.core.decide import decide
from lambdas.core.learn import Observations, learned_config, render_yaml
from lambdas.core.notices import undo_command
from lambdas.remediation.remediate import backup_key, backup_prefix
from lambdas.remediation.restore import backup_locations
from models.arns import parse_function_arn
from models.exceptions import ConfigError
from models.regions import KNOWN_REGIONS, closest_region, partition_of_region
from tests.support import records as r
from tests.support.allowlists import make_config
from tests.support.files import Writer
from tests.support.records import ACCOUNT, BUCKET_ARN, PARTNER_ACCOUNT

pytestmark = pytest.mark.unit

CONFIG = f"""\
version: 1
protect: ["invoke-audit-*"]
rules:
  - name: blog
    functions: [BlogFunction]
    mode: monitor
    allow:
      - service: s3.amazonaws.com
        source_arn: "{BUCKET_ARN}"
        source_account: "{ACCOUNT}"
  - name: sfn
    functions: [my-function-name]
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/My-RoleName-*"
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture()
def config(write: Writer) -> Path:
    return write("allowlist.yaml", CONFIG)


def management_trail(write: Writer) -> Path:
    """What most trails hold: management events (Lambda's and other services'), no Invoke."""
    records = [r.management_event(), r.management_event("ListFunctions20150331")]
    records += [r.other_service_record() for _ in range(3)]
    return write("trail/mgmt.json", json.dumps(r.log_file(records)))


# --- 1. no Invoke data events in the input -------------------------------------------------


def test_learn_from_a_trail_without_data_events_says_why_and_what_to_do(capsys, write, tmp_path):
    trail = management_trail(write)
    out_file = tmp_path / "learned.yaml"
    code, out, err = run(capsys, "learn", trail, "-o", out_file)
    assert code == 2
    assert out == ""
    assert not out_file.exists()
    assert "no Lambda Invoke data events in 5 CloudTrail records from 1 file" in err
    assert "does not record Lambda data events" in err
    assert "deploy invoke-audit in monitor mode first" in err
    assert "invoke-audit learn s3://TRAIL-BUCKET/AWSLogs/" in err


def test_scan_of_a_trail_without_data_events_notes_it_on_stderr(capsys, config, write):
    code, out, err = run(capsys, "scan", "--config", config, "--jobs", "1", management_trail(write))
    assert code == 0  # nothing wrong was found: a gate over a quiet hour passes
    assert "invoke-audit: note: no Lambda Invoke data events in 5 CloudTrail records" in err
    assert "2 Lambda records from 1 file: 2 ignored" in out


def test_scan_with_invokes_has_no_such_note(capsys, config, write):
    path = write("ok.json", json.dumps(r.log_file([r.s3_invoke(), r.management_event()])))
    code, _, err = run(capsys, "scan", "--config", config, "--jobs", "1", path)
    assert code == 0
    assert err == ""


# --- 2. learn puts the mode in defaults only; effective modes are visible ------------------


def learned_from(*records: dict[str, Any]) -> dict[str, Any]:
    observations = Observations()
    observations.add_all(records)
    return learned_config(observations)


def test_learned_rules_carry_no_mode_so_one_edit_switches_them_all():
    data = learned_from(r.s3_invoke(), r.step_functions_invoke())
    assert data["defaults"]["mode"] == "monitor"
    assert data["rules"] and all("mode" not in rule for rule in data["rules"])
    observations = Observations()
    observations.add_all([r.s3_invoke(), r.step_functions_invoke()])
    text = render_yaml(observations, sources=1)
    assert [line.strip() for line in text.splitlines() if "mode:" in line.split("#")[0]] == [
        "mode: monitor"
    ]
    switched = make_config(text.replace("  mode: monitor", "  mode: enforce"))
    assert {switched.mode_of(rule) for rule in switched.rules} == {"enforce"}


def test_check_config_prints_the_effective_mode_of_each_rule(capsys, config):
    code, out, err = run(capsys, "check-config", config)
    assert code == 0, err
    assert out.splitlines() == [
        f"{config}: ok (2 rules, default mode enforce)",
        "  blog  monitor  (set on the rule)",
        "  sfn   enforce  (from defaults.mode)",
    ]


def test_scan_table_has_a_mode_column(capsys, config, write):
    path = write(
        "mixed.json",
        json.dumps([r.s3_invoke(bucket_arn="arn:aws:s3:::x"), r.step_functions_invoke()]),
    )
    code, out, _ = run(capsys, "scan", "--config", config, "--jobs", "1", path)
    assert code == 1
    header, first, second = out.splitlines()[:3]
    assert header.split()[:3] == ["VERDICT", "MODE", "EVENT_TIME"]
    assert first.split()[:2] == ["violation", "monitor"]
    assert second.split()[:2] == ["allowed", "enforce"]


# --- 3. regions in ARNs ----------------------------------------------------------------------


def arn(region: str, partition: str = "aws") -> str:
    return f"arn:{partition}:lambda:{region}:{ACCOUNT}:function:orders"


def test_a_region_typo_is_a_warning_with_the_likely_region(capsys, write):
    path = write("typo.yaml", f"rules:\n  - name: a\n    functions:\n      - {arn('us-esat-1')}\n")
    code, out, err = run(capsys, "check-config", path)
    assert code == 0
    assert out.startswith(f"{path}: ok")
    assert err.splitlines() == [
        f"invoke-audit: warning: {path}:4: rules[0].functions[0]: unknown region 'us-esat-1' "
        f"in '{arn('us-esat-1')}': no function there will ever match; did you mean us-east-1?"
    ]


def test_scan_repeats_the_region_warning(capsys, write):
    path = write("typo.yaml", f"rules:\n  - name: a\n    functions: ['{arn('eu-wset-1')}']\n")
    log = write("log.json", json.dumps([r.invoke("orders", r.iam_user("a"), region="eu-west-1")]))
    code, out, err = run(capsys, "scan", "--config", path, "--jobs", "1", log)
    assert code == 0
    assert "unknown region 'eu-wset-1'" in err and "did you mean eu-west-1?" in err
    assert "unmonitored" in out


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        (arn("useast1"), "'useast1' is not a region name"),
        (arn("US-EAST-1"), "is not a region name"),
        (arn("cn-north-1"), "region cn-north-1 is in partition aws-cn, not aws"),
        (arn("us-east-1", "aws-us-gov"), "region us-east-1 is in partition aws, not aws-us-gov"),
    ],
)
def test_a_region_that_cannot_be_is_an_error(pattern, needle):
    with pytest.raises(ConfigError) as caught:
        make_config(f"rules:\n  - name: a\n    functions: ['{pattern}']\n")
    assert needle in caught.value.problems[0]


@pytest.mark.parametrize(
    "pattern",
    [arn("*"), arn("us-*"), arn("cn-north-1", "aws-cn"), arn("us-gov-west-1", "aws-us-gov")],
)
def test_globs_and_regions_of_their_partition_pass_without_warning(pattern):
    config = make_config(f"rules:\n  - name: a\n    functions: ['{pattern}']\n")
    assert allowlist_warnings(config) == []


def test_a_rule_outside_the_deployments_partition_is_an_error(capsys, write):
    text = f"rules:\n  - name: china\n    functions: ['{arn('cn-north-1', 'aws-cn')}']\n"
    text += "  - name: any\n    functions: [x]\n"
    path = write("cn.yaml", text)
    config = make_config(text, str(path))
    check_partition(config, "aws-cn")  # fine where it is deployed
    with pytest.raises(ConfigError) as caught:
        check_partition(config, "aws")
    assert caught.value.problems == [
        f"{path}:3: rules[0].functions: rule 'china' can never match a function of this "
        "deployment (partition aws): its functions are all in aws-cn"
    ]
    code, _, err = run(capsys, "check-config", "--partition", "aws", path)
    assert code == 2
    assert "rule 'china' can never match" in err


def test_known_regions_are_botocores_lambda_regions():
    """An independent source: botocore's endpoint data, partition by partition."""
    import botocore.session

    session = botocore.session.get_session()
    for partition in session.get_available_partitions():
        for region in session.get_available_regions("lambda", partition_name=partition):
            assert KNOWN_REGIONS.get(region) == partition, region
            assert partition_of_region(region) == partition


def test_closest_region_is_the_typo_not_a_lookalike():
    assert closest_region("us-esat-1") == "us-east-1"
    assert closest_region("eu-wset-1") == "eu-west-1"
    assert closest_region("zz-nowhere-7") is None


# --- 4. learn the role behind a service, and the source account ------------------------------


def test_step_functions_is_learned_as_its_role_not_as_the_service():
    (rule,) = learned_from(r.step_functions_invoke())["rules"]
    assert rule["allow"] == [
        {"principal": f"arn:aws:iam::{ACCOUNT}:role/My-RoleName-1746R4C1N6UFS"}
    ]


def test_any_assumed_role_with_invoked_by_is_learned_as_the_role():
    identity = r.assumed_role(
        "pipes-role", account=PARTNER_ACCOUNT, invoked_by="pipes.amazonaws.com"
    )
    (rule,) = learned_from(r.invoke("orders", identity))["rules"]
    assert rule["allow"] == [{"principal": f"arn:aws:iam::{PARTNER_ACCOUNT}:role/pipes-role"}]


def test_the_learned_role_entry_allows_that_role_and_no_other_state_machine():
    record = r.step_functions_invoke()
    observations = Observations()
    observations.add(record)
    config = make_config(render_yaml(observations, sources=1))
    assert decide(record, config).verdict.value == "allowed"
    other = r.step_functions_invoke(role="SomeoneElsesRole")
    assert decide(other, config).verdict.value == "violation"
    elsewhere = r.step_functions_invoke()
    elsewhere["userIdentity"] = r.assumed_role(
        "My-RoleName-1746R4C1N6UFS", account=PARTNER_ACCOUNT, invoked_by="states.amazonaws.com"
    )
    assert decide(elsewhere, config).verdict.value == "violation"


def test_a_service_entry_gets_the_source_account_from_the_source_arn():
    record = r.eventbridge_invoke()
    del record["requestParameters"]["sourceAccount"]
    (rule,) = learned_from(record)["rules"]
    (entry,) = rule["allow"]
    assert entry == {
        "service": "events.amazonaws.com",
        "source_arn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/my-rule-name-VMA1FQWKHEIL",
        "source_account": ACCOUNT,
    }


def test_a_service_entry_without_any_source_account_is_flagged_in_the_file():
    record = r.s3_invoke(source_account=None)
    observations = Observations()
    observations.add(record)
    (entry,) = learned_config(observations)["rules"][0]["allow"]
    assert entry == {"service": "s3.amazonaws.com", "source_arn": BUCKET_ARN}
    text = render_yaml(observations, sources=1)
    assert "no source account in the records, narrow it by hand" in text


# --- 5. qualifiers in the overlap check -----------------------------------------------------


def test_two_rules_for_one_function_with_different_aliases_are_accepted(capsys, write):
    path = write(
        "aliases.yaml",
        """\
        rules:
          - {name: orders-live, functions: [orders], qualifiers: [live], mode: enforce}
          - {name: orders-beta, functions: [orders], qualifiers: [beta], mode: monitor}
        """,
    )
    code, out, err = run(capsys, "check-config", path)
    assert code == 0, err
    assert "orders-live  enforce" in out and "orders-beta  monitor" in out


def test_two_rules_that_both_take_an_alias_are_still_an_error():
    with pytest.raises(ConfigError) as caught:
        make_config(
            """\
            rules:
              - {name: a, functions: [orders], qualifiers: ["l*"]}
              - {name: b, functions: [orders], qualifiers: [live]}
            """
        )
    assert "the first rule would always win with qualifier 'live'" in caught.value.problems[0]


# --- 6. backup keys and undo commands a shell leaves alone --------------------------------


def test_backup_keys_hold_no_dollar_and_no_alias_can_collide():
    moment = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    ref = parse_function_arn(r.function_arn("BlogFunction"))
    key = backup_key(ref, moment, "ev-1")
    assert (
        key
        == f"backups/{ACCOUNT}/us-east-1/BlogFunction/@unqualified/2026-11-22T10:00:00.000000Z-ev-1.json"
    )
    assert shlex.split(key) == [key]  # a shell word as it is
    assert backup_prefix(ref.with_qualifier("prod")).endswith("/BlogFunction/prod/")
    # Lambda alias names take letters, digits, - and _ only: "@unqualified" is never an alias.
    assert re.fullmatch(r"(?!^[0-9]+$)[a-zA-Z0-9_-]+", "@unqualified") is None


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/backups/1/BlogFunction/@unqualified/t-e.json",
        "s3://my bucket/backups/x/$UNQUALIFIED/2026-11-22T10:00:00Z-e.json",
        "s3://b/it's/$(rm -rf ~)/`x`.json",
    ],
)
def test_the_undo_command_survives_a_shell(uri):
    command = undo_command(uri)
    assert shlex.split(command) == ["invoke-audit", "restore", uri]


def test_restore_finds_an_old_key_whose_dollar_the_shell_ate():
    written = (
        f"s3://b/backups/{ACCOUNT}/us-east-1/BlogFunction/$UNQUALIFIED/2026-11-22T10:00:00Z-e.json"
    )
    pasted = shlex.split(written.replace("$UNQUALIFIED", ""))[0]  # what `$X` unset becomes
    locations = backup_locations(pasted)
    assert locations[0] == pasted
    assert written in locations
    assert backup_locations(written) == [written]


# --- 9. exit codes and tables for a CI gate ----------------------------------------------------


def test_a_json_file_that_is_not_cloudtrail_is_an_error_not_zero_records(capsys, config, write):
    policy = write("policy.json", json.dumps({"Version": "2012-10-17", "Statement": []}))
    code, out, err = run(capsys, "scan", "--config", config, "--jobs", "1", policy)
    assert code == 2
    assert err.startswith(
        f"invoke-audit: error: {policy}: not CloudTrail: none of its 1 JSON object"
    )
    assert "0 Lambda records from 1 file: none" in out


def test_violations_exit_1_even_beside_a_corrupt_file_which_is_listed(capsys, config, write):
    write("logs/a-bad.json", "{broken")
    write("logs/b.json", json.dumps([r.s3_invoke(bucket_arn="arn:aws:s3:::x")]))
    code, out, err = run(capsys, "scan", "--config", config, "--jobs", "1", config.parent / "logs")
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith("invoke-audit: error: ") and "a-bad.json" in lines[0]
    assert lines[-1] == (
        "invoke-audit: error: 1 file could not be read (listed above); "
        "the violations found in the others are reported"
    )
    assert "violation" in out


def test_a_corrupt_file_without_violations_exits_2(capsys, config, write):
    write("logs/a-bad.json", "{broken")
    write("logs/b.json", json.dumps([r.s3_invoke()]))
    code, _, err = run(capsys, "scan", "--config", config, "--jobs", "1", config.parent / "logs")
    assert code == 2
    assert "a-bad.json" in err


def test_an_empty_folder_is_nothing_judged(capsys, config, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "scan", "--config", config, tmp_path / "empty")
    assert code == 2
    assert "no log files in" in err


def test_only_filters_rows_but_not_the_summary_or_exit(capsys, config, write):
    path = write(
        "mixed.json",
        json.dumps([r.s3_invoke(), r.s3_invoke(bucket_arn="arn:aws:s3:::x"), r.invoke_execution()]),
    )
    base = ("scan", "--config", config, "--jobs", "1")
    code, out, _ = run(capsys, *base, "--format", "jsonl", "--only", "allowed", path)
    assert code == 1
    assert [json.loads(line)["verdict"] for line in out.splitlines()] == ["allowed"]
    code, out, _ = run(capsys, *base, "--only", "ignored,violation", path)
    body = out.splitlines()[1 : out.splitlines().index("")]
    assert sorted(line.split()[0] for line in body) == ["ignored", "violation"]
    assert "3 Lambda records from 1 file: 1 allowed, 1 violation, 1 ignored" in out
    code, _, err = run(capsys, *base, "--only", "allowd", path)
    assert code == 2
    assert "--only: unknown verdict allowd" in err


def test_long_values_are_cut_in_the_table_and_whole_in_jsonl(capsys, config, write):
    name = "f" * 60
    path = write("long.json", json.dumps([r.invoke(name, r.iam_user("u" * 80))]))
    base = ("scan", "--config", config, "--jobs", "1", path)
    _, out, _ = run(capsys, *base)
    row = out.splitlines()[1]
    assert name not in row and name[:25] + "..." in row
    assert "Long values are cut; --format jsonl shows them whole." in out
    _, out, _ = run(capsys, *base, "--format", "jsonl")
    (found,) = [json.loads(line) for line in out.splitlines()]
    assert found["function"].endswith(f":function:{name}")
    assert found["caller"].endswith("u" * 80)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023-03-21T05:32:03Z", "2023-03-21T05:32:03Z"),
        ("2023-03-21T07:32:03+02:00", "2023-03-21T05:32:03Z"),
        ("2023-03-21 05:32:03", "2023-03-21T05:32:03Z"),
        ("2023-03-21T05:32:03.250Z", "2023-03-21T05:32:03.250000Z"),
        (1679376723, "2023-03-21T05:32:03Z"),
        (1679376723000, "2023-03-21T05:32:03Z"),
        ("yesterday", "yesterday"),
        (None, None),
    ],
)
def test_times_are_iso_8601_utc(raw, expected):
    assert iso_utc(raw) == expected


def test_scan_writes_times_in_utc(capsys, config, write):
    record = r.s3_invoke() | {"eventTime": "2023-03-21T07:32:03+02:00"}
    _, out, _ = run(
        capsys,
        "scan",
        "--config",
        config,
        "--format",
        "jsonl",
        write("t.json", json.dumps([record])),
    )
    assert json.loads(out)["event_time"] == "2023-03-21T05:32:03Z"


def test_plurals_in_the_summary(capsys, config, write):
    path = write(
        "two.json",
        json.dumps(
            [r.s3_invoke(bucket_arn="arn:aws:s3:::x"), r.s3_invoke(bucket_arn="arn:aws:s3:::y")]
        ),
    )
    _, out, _ = run(capsys, "scan", "--config", config, "--jobs", "1", path)
    assert "2 Lambda records from 1 file: 2 violations" in out


def test_the_table_comes_after_the_errors(capsys, config, write, tmp_path):
    """Errors go to stderr as they are found; the table is written only once all is read."""
    write("logs/a.json", json.dumps([r.s3_invoke(bucket_arn="arn:aws:s3:::x")]))
    write("logs/b.json", "{broken")
    order: list[str] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        def write(self, text: str) -> int:
            order.append(self.name)
            return len(text)

        def writelines(self, lines: Any) -> None:
            for line in lines:
                self.write(line)

        def isatty(self) -> bool:
            return False

    from cli.scan import run_scan

    out, err = Recorder("out"), Recorder("err")
    code = run_scan([str(tmp_path / "logs")], str(config), "table", out, err, jobs=1)  # type: ignore[arg-type]
    assert code == 1
    assert order.index("out") > order.index("err")


def test_learn_does_not_overwrite_without_force(capsys, write, tmp_path):
    trail = write("t.json", json.dumps([r.s3_invoke()]))
    target = write("allowlist.yaml", "# my reviewed file\n")
    code, _, err = run(capsys, "learn", trail, "-o", target)
    assert code == 2
    assert "exists; learn does not overwrite it" in err and "--force" in err
    assert target.read_text() == "# my reviewed file\n"
    code, out, _ = run(capsys, "learn", trail, "-o", target, "--force")
    assert code == 0
    assert out.strip() == (
        f"wrote {target}: 1 function, 1 allow entry from 1 Invoke in 1 file; defaults.mode is monitor"
    )
    assert yaml.safe_load(target.read_text())["defaults"]["mode"] == "monitor"


@pytest.mark.parametrize(
    ("written", "needle"),
    [
        (
            "011122223333",
            'YAML reads the digits as an octal number); if you wrote 011122223333, write "011122223333"',
        ),
        ("111122223333", 'YAML read it as the number 111122223333; write "111122223333"'),
        ("1.5e+11", "YAML read it as the number 150000000000.0"),
    ],
)
def test_an_unquoted_account_id_says_what_yaml_read(written, needle):
    with pytest.raises(ConfigError) as caught:
        make_config(
            f"rules:\n  - name: a\n    functions: [a]\n    allow:\n      - account: {written}\n"
        )
    (problem,) = caught.value.problems
    assert problem.startswith(
        "test.yaml:5: rules[0].allow[0].account: account id must be 12 digits"
    )
    assert needle in problem
