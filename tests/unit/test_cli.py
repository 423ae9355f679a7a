"""The `invoke-audit` CLI: scan, rewrite, check-config — output formats, exit codes, and
garbage in (one-line errors naming file, line and field; never a traceback)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from lambdas.core.config import globs_overlap
from tests.support import records as r
from tests.support.files import REPO, Writer
from tests.support.records import ACCOUNT, BUCKET_ARN

pytestmark = pytest.mark.unit

CONFIG = f"""\
version: 1
protect: ["invoke-audit-*"]
rules:
  - name: blog
    functions: [BlogFunction]
    allow:
      - service: s3.amazonaws.com
        source_arn: "{BUCKET_ARN}"
        source_account: "{ACCOUNT}"
  - name: sfn
    functions: [my-function-name]
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/My-RoleName-*"
"""
JSONL_KEYS = {"event_id", "verdict", "function", "caller", "rule", "mode", "reason"}
INVOKE_AUDIT = REPO / ".venv" / "bin" / "invoke-audit"


@pytest.fixture()
def config(write: Writer) -> Path:
    return write("allowlist.yaml", CONFIG)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def scan(
    capsys: pytest.CaptureFixture[str], config: Path, *paths: str | Path, fmt: str = "jsonl"
) -> tuple[int, str, str]:
    return run(capsys, "scan", "--config", config, "--format", fmt, "--jobs", "1", *paths)


def rows(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def one_line_error(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "an error was expected on stderr"
    assert all(line.startswith("invoke-audit: error: ") for line in lines), lines
    for needle in needles:
        assert any(needle in line for line in lines), (needle, lines)
    return lines[0]


# --- scan: inputs and formats --------------------------------------------------------------


@pytest.fixture()
def folder(write: Writer, tmp_path: Path) -> Path:
    """A tree of every container, with an allowed call, a violation and noise."""
    allowed, violation = r.s3_invoke(), r.s3_invoke(bucket_arn="arn:aws:s3:::attackerbucket")
    sfn, execution = r.step_functions_invoke(), r.invoke_execution()
    write("trail/a.json", json.dumps([allowed, r.other_service_record()]))
    write("trail/2023/03/21/b.json.gz", r.log_file_bytes([violation], gz=True))
    write("trail/2023/03/22/c.jsonl", r.json_lines_bytes([r.envelope(sfn)]))
    write("trail/2023/03/22/d.jsonl.gz", r.json_lines_bytes([r.log_file([execution])], gz=True))
    write("trail/notes.txt", "not a log file")
    write("trail/.hidden/e.json", "{broken")
    return tmp_path / "trail"


def test_scan_folder_recursive_jsonl(capsys, config, folder):
    code, out, err = scan(capsys, config, folder)
    assert code == 1, err
    found = rows(out)
    assert len(found) == 4  # the S3 record of another service is skipped
    for row in found:
        assert set(row) >= JSONL_KEYS
    verdicts = sorted(row["verdict"] for row in found)
    assert verdicts == ["allowed", "allowed", "ignored", "violation"]
    violation = next(row for row in found if row["verdict"] == "violation")
    assert violation["function"] == r.function_arn("BlogFunction")
    assert violation["rule"] == "blog"
    assert violation["mode"] == "enforce"
    assert "attackerbucket" in violation["caller"]
    assert violation["source"].endswith("b.json.gz")
    sfn = next(row for row in found if row["rule"] == "sfn")
    assert sfn["function"] == r.function_arn("my-function-name", "23")
    assert err == ""


def test_scan_json_format_is_one_array(capsys, config, folder):
    code, out, _ = scan(capsys, config, folder, fmt="json")
    assert code == 1
    found = json.loads(out)
    assert isinstance(found, list)
    assert len(found) == 4
    assert all(set(row) >= JSONL_KEYS for row in found)


def test_scan_json_format_without_records(capsys, config, write):
    code, out, _ = scan(capsys, config, write("empty.json", "[]"), fmt="json")
    assert code == 0
    assert json.loads(out) == []


def test_scan_table_ends_with_a_summary_by_verdict(capsys, config, folder):
    code, out, _ = scan(capsys, config, folder, fmt="table")
    assert code == 1
    lines = out.rstrip("\n").splitlines()
    assert lines[0].split()[:4] == ["VERDICT", "MODE", "EVENT_TIME", "FUNCTION"]
    body = lines[1 : lines.index("")]
    assert sum(line.startswith("violation") for line in body) == 1
    assert any("BlogFunction" in line for line in body)
    assert len(body) == 3  # the ignored InvokeExecution is counted, not shown
    summary = lines.index("4 Lambda records from 4 files: 2 allowed, 1 violation, 1 ignored")
    assert lines[summary + 1] == "1 ignored record not shown (--only ignored shows them)"


def test_scan_exit_0_without_violations(capsys, config, write):
    path = write("ok.json", json.dumps(r.log_file([r.s3_invoke(), r.invoke_execution()])))
    code, out, _ = scan(capsys, config, path, fmt="table")
    assert code == 0
    assert "\n2 Lambda records from 1 file: 1 allowed, 1 ignored\n" in out


def test_scan_trusts_the_accounts_it_is_given(capsys, config, write, monkeypatch):
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    ours, theirs = r.s3_invoke(), r.s3_invoke(account=r.FOREIGN_ACCOUNT)
    path = write("two.json", json.dumps(r.log_file([ours, theirs])))
    _, out, _ = scan(capsys, config, path)
    assert [row["verdict"] for row in rows(out)] == ["allowed", "allowed"]
    _, out, _ = scan(capsys, config, "--trust-account", ACCOUNT, path)
    first, second = rows(out)
    assert first["verdict"] == "allowed"
    assert second["verdict"] == "invalid"
    assert second["reason"] == (
        f"account {r.FOREIGN_ACCOUNT} is not a monitored account (trusted: {ACCOUNT})"
    )
    monkeypatch.setenv("ALLOWED_ACCOUNTS", f"{ACCOUNT},{r.FOREIGN_ACCOUNT}")
    _, out, _ = scan(capsys, config, path)
    assert [row["verdict"] for row in rows(out)] == ["allowed", "allowed"]


def test_scan_reports_every_verdict(capsys, config, write):
    records = [
        r.s3_invoke(),
        r.s3_invoke(bucket_arn="arn:aws:s3:::x"),
        r.invoke("unknown-fn", r.iam_user("a")),
        r.invoke("invoke-audit-validator", r.aws_service("sqs.amazonaws.com")),
        r.invoke("BlogFunction", r.iam_user("a"), error_code="AccessDenied"),
        r.invoke("BlogFunction", None),
    ]
    code, out, _ = scan(capsys, config, write("all.json", json.dumps(records)))
    assert code == 1
    assert [row["verdict"] for row in rows(out)] == [
        "allowed",
        "violation",
        "unmonitored",
        "ignored",
        "failed-call",
        "invalid",
    ]


def test_scan_an_envelope_file(capsys, config, write):
    path = write("event.json", json.dumps(r.envelope(r.s3_invoke())))
    code, out, _ = scan(capsys, config, path)
    assert code == 0
    assert [row["verdict"] for row in rows(out)] == ["allowed"]


def test_scan_a_file_named_explicitly_is_read_whatever_its_name(capsys, config, write):
    path = write("events.log", r.json_lines_bytes([r.s3_invoke()]))
    code, out, _ = scan(capsys, config, path)
    assert code == 0
    assert len(rows(out)) == 1


def test_scan_several_paths(capsys, config, write):
    a = write("a.json", json.dumps([r.s3_invoke()]))
    b = write("b.json", json.dumps([r.s3_invoke()]))
    code, out, _ = scan(capsys, config, a, b)
    assert code == 0
    assert len(rows(out)) == 2


# --- scan: garbage in ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("noise.json", bytes((i * 131 + 7) % 256 for i in range(4096)), "not valid JSON"),
        ("cut.json.gz", r.log_file_bytes([r.s3_invoke()] * 20, gz=True)[:40], "gzip"),
        ("magic.json.gz", b"\x1f\x8b\x08\x00garbage", "gzip"),
        ("records5.json", b'{"Records": 5}', "field Records"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        ("broken.json", b'[\n{"eventSource": "lambda.amazonaws.com",\n', "not valid JSON"),
        ("lines.jsonl", b'{"a": 1}\n{"b": \n', "lines.jsonl:2"),
    ],
    ids=["noise", "cut-gzip", "gzip-magic", "records-5", "deep", "broken", "bad-line"],
)
def test_unreadable_input_is_a_one_line_error_and_exit_2(
    capsys, config, write, name, content, needle
):
    path = write(name, content)
    code, _, err = scan(capsys, config, path)
    assert code == 2
    line = one_line_error(err, needle)
    assert str(path) in line
    assert len(err.splitlines()) == 1


def test_an_unreadable_file_does_not_stop_the_others(capsys, config, write):
    good = write("a.json", json.dumps([r.s3_invoke(bucket_arn="arn:aws:s3:::x")]))
    bad = write("b.json", "{broken")
    code, out, err = scan(capsys, config, good, bad)
    assert code == 1  # violations are always reported; the unreadable file is named
    assert [row["verdict"] for row in rows(out)] == ["violation"]
    one_line_error(err, str(bad), "1 file could not be read")


@pytest.mark.parametrize(
    ("content", "count"), [(b"5", 1), (b"[1, 2, 3]", 3), (b'["x", null]', 2), (b"[[[[1]]]]", 1)]
)
def test_wrong_shaped_records_are_invalid_verdicts(capsys, config, write, content, count):
    code, out, err = scan(capsys, config, write("shapes.json", content))
    assert code == 0
    found = rows(out)
    assert len(found) == count
    assert {row["verdict"] for row in found} == {"invalid"}
    assert all("object" in row["reason"] for row in found)
    assert err == ""


def test_a_huge_field_gets_a_verdict(capsys, config, write):
    record = r.s3_invoke()
    record["requestParameters"]["payload"] = "x" * 10_000_000
    code, out, err = scan(capsys, config, write("huge.json", json.dumps([record])))
    assert code == 0
    assert [row["verdict"] for row in rows(out)] == ["allowed"]
    assert err == ""


def test_a_huge_event_name_keeps_the_output_line_short(capsys, config, write):
    record = r.s3_invoke() | {"eventName": "X" * 10_000_000}
    code, out, _ = scan(capsys, config, write("huge.json", json.dumps([record])), fmt="table")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) < 1000


def test_missing_path(capsys, config, tmp_path):
    code, _, err = scan(capsys, config, tmp_path / "nope")
    assert code == 2
    one_line_error(err, "nope", "no such file")


def test_no_path(capsys, config):
    code, _, err = run(capsys, "scan", "--config", config)
    assert code == 2
    one_line_error(err, "PATH")


def test_scan_with_a_bad_config_reads_no_file(capsys, write, folder):
    bad = write("bad.yaml", "version: 1\nrulez: []\n")
    code, out, err = scan(capsys, bad, folder)
    assert code == 2
    assert out == ""
    one_line_error(err, f"{bad}:2: rulez: unknown key")


def test_unknown_format_is_a_usage_error(capsys, config, folder):
    with pytest.raises(SystemExit) as caught:
        main(["scan", "--config", str(config), "--format", "xml", str(folder)])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --- check-config -----------------------------------------------------------------------------


def test_check_config_ok(capsys, config):
    code, out, err = run(capsys, "check-config", config)
    assert code == 0
    assert out.splitlines() == [
        f"{config}: ok (2 rules, default mode enforce)",
        "  blog  enforce  (from defaults.mode)",
        "  sfn   enforce  (from defaults.mode)",
    ]
    # CONFIG protects `invoke-audit-*`, a name no rule covers.
    assert err.splitlines() == [
        f"invoke-audit: note: {config}:2: protect[0]: 'invoke-audit-*' matches no function "
        "that any rule covers: such a function is never changed anyway, so this entry protects "
        "nothing (a typo, or a rule that is missing?)"
    ]


def test_check_config_notes_a_protect_entry_that_matches_no_rule_scope(capsys, write):
    text = (
        "protect:\n"
        "  - payments-*\n"  # no rule names a payments- function: protects nothing
        "  - blog-admin\n"  # inside rule a's blog-*
        "  - arn:aws:lambda:*:111122223333:function:batch-?\n"  # inside rule b's batch-*
        "  - arn:aws:lambda:*:111122223333:function:report\n"  # rule b is pinned elsewhere
        "rules:\n"
        "  - name: a\n"
        "    functions: [blog-*]\n"
        "  - name: b\n"
        "    functions: ['arn:aws:lambda:eu-west-1:444455556666:function:report',\n"
        "                batch-*]\n"
    )
    path = write("protect.yaml", text)
    code, out, err = run(capsys, "check-config", path)
    assert code == 0
    assert out.startswith(f"{path}: ok")
    assert err.splitlines() == [
        f"invoke-audit: note: {path}:2: protect[0]: 'payments-*' matches no function that any "
        "rule covers: such a function is never changed anyway, so this entry protects nothing "
        "(a typo, or a rule that is missing?)",
        f"invoke-audit: note: {path}:5: protect[3]: "
        "'arn:aws:lambda:*:111122223333:function:report' matches no function that any "
        "rule covers: such a function is never changed anyway, so this entry protects nothing "
        "(a typo, or a rule that is missing?)",
    ]


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("a*", "*b", True),
        ("a*", "b*", False),
        ("abc", "a?c", True),
        ("a?c", "abcd", False),
        ("x[0-9]", "x5", True),
        ("pay-*-prod", "pay-eu-*", True),
        ("pay-*-prod", "pay-*-dev", False),
        ("*", "", True),
        ("a", "", False),
    ],
)
def test_globs_overlap(first, second, overlap):
    assert globs_overlap(first, second) is overlap
    assert globs_overlap(second, first) is overlap


def test_check_config_warns_of_an_s3_entry_without_source_account(capsys, write):
    text = (
        "rules:\n"
        "  - name: a\n"
        "    functions: [f]\n"
        "    allow:\n"
        "      - service: s3.amazonaws.com\n"
        "        source_arn: arn:aws:s3:::examplebucket\n"
        "      - service: s3.amazonaws.com\n"
        "        source_arn: arn:aws:s3:::otherbucket\n"
        '        source_account: "123456789012"\n'
    )
    path = write("s3.yaml", text)
    code, out, err = run(capsys, "check-config", path)
    assert code == 0
    assert out.startswith(f"{path}: ok")
    (warning,) = err.splitlines()
    assert warning.startswith(f"invoke-audit: warning: {path}:5: rules[0].allow[0]: ")
    assert "without source_account" in warning and "Lambda.1" in warning


BAD_CONFIGS = [
    ("broken yaml", "version: 1\nrules:\n\t- name: a\n", 3, "not valid YAML"),
    ("typo", "version: 1\nrulez: []\n", 2, "rulez: unknown key"),
    ("duplicate key", "version: 1\nversion: 1\n", 2, "version: duplicate key"),
    (
        "bad glob",
        "rules:\n  - name: a\n    functions: ['[abc']\n",
        3,
        "rules[0].functions[0]: bad glob",
    ),
    (
        "bad arn",
        "rules:\n  - name: a\n    functions: ['arn:aws:lambda:us-east-1:1:function:x']\n",
        3,
        "rules[0].functions[0]: bad Lambda ARN",
    ),
    (
        "bad account",
        "rules:\n  - name: a\n    functions: [a]\n    allow:\n      - account: '12345'\n",
        5,
        "rules[0].allow[0].account: account id must be 12 digits",
    ),
    (
        "unquoted account",
        "rules:\n  - name: a\n    functions: [a]\n    allow:\n      - account: 111122223333\n",
        5,
        "in quotes",
    ),
    (
        "duplicate rule names",
        "rules:\n  - {name: a, functions: [a]}\n  - {name: a, functions: [b]}\n",
        3,
        "rules[1].name: duplicate rule name",
    ),
    (
        "same pattern in two rules",
        "rules:\n  - {name: a, functions: [a]}\n  - {name: b, functions: [a]}\n",
        3,
        "rules[1].functions: pattern 'a' is also in rule 'a'",
    ),
    (
        "shadowed rule",
        "rules:\n  - {name: a, functions: ['*']}\n  - {name: b, functions: [x]}\n",
        3,
        "never applies",
    ),
    ("empty", "", 1, "empty"),
    ("not a mapping", "[1, 2]\n", 1, "mapping"),
]


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_check_config_errors_name_file_line_and_field(capsys, write, content, line, needle):
    path = write("allow.yaml", content)
    code, out, err = run(capsys, "check-config", path)
    assert code == 2
    assert out == ""
    first = one_line_error(err, needle)
    assert first.startswith(f"invoke-audit: error: {path}:{line}: ")


def test_check_config_missing_and_binary_files(capsys, tmp_path, write):
    code, _, err = run(capsys, "check-config", tmp_path / "missing.yaml")
    assert code == 2
    one_line_error(err, "missing.yaml", "cannot read")
    code, _, err = run(capsys, "check-config", write("bin.yaml", b"\xff\xfe\x00"))
    assert code == 2
    one_line_error(err, "UTF-8")


# --- rewrite ------------------------------------------------------------------------------------


def policy_response(*statements: dict[str, Any]) -> str:
    document = {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}
    return json.dumps({"Policy": json.dumps(document), "RevisionId": "rev-1"})


PUBLIC = {
    "Sid": "PublicInvoke",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunction",
    "Resource": r.function_arn("BlogFunction"),
}
S3 = {
    "Sid": "s3",
    "Effect": "Allow",
    "Principal": {"Service": "s3.amazonaws.com"},
    "Action": "lambda:InvokeFunction",
    "Resource": r.function_arn("BlogFunction"),
}


def test_rewrite_prints_the_new_policy_and_the_changes(capsys, config, write):
    path = write("policy.json", policy_response(PUBLIC, S3))
    code, out, err = run(
        capsys, "rewrite", "--config", config, "--function", r.function_arn("BlogFunction"), path
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result) >= {"policy", "changes"}
    assert [s["Sid"] for s in result["policy"]["Statement"]] == ["s3"]
    assert result["policy"]["Statement"][0]["Condition"] == {
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }
    assert [(c["kind"], c["sid"]) for c in result["changes"]] == [
        ("removed", "PublicInvoke"),
        ("tightened", "s3"),
    ]
    assert result["function"] == r.function_arn("BlogFunction")
    assert result["rule"] == "blog"


def test_rewrite_that_fails_its_post_condition_prints_the_failing_request(capsys, config, write):
    # S3's source ARN is taken under every operator a narrowing could add a condition with
    unnarrowable = S3 | {
        "Condition": {
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::example*"},
            "ArnEquals": {"AWS:SourceArn": "arn:aws:s3:::examp*"},
            "StringLike": {"AWS:SourceArn": "arn:aws:s3:::ex*"},
        }
    }
    path = write("policy.json", policy_response(unnarrowable))
    code, out, err = run(
        capsys, "rewrite", "--config", config, "--function", r.function_arn("BlogFunction"), path
    )
    assert code == 2
    assert out == ""
    assert "service s3.amazonaws.com lambda:InvokeFunction" in err
    assert BUCKET_ARN in err and "would be not allowed" in err


def test_rewrite_of_a_public_document_to_the_allowed_caller(capsys, config, write):
    document = {"Version": "2012-10-17", "Statement": PUBLIC}
    path = write("policy.json", json.dumps(document))
    code, out, _ = run(
        capsys, "rewrite", "--config", config, "--function", r.function_arn("BlogFunction"), path
    )
    assert code == 0
    # everyone could invoke: now only S3 from the allowed bucket of the allowed account
    (statement,) = json.loads(out)["policy"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": BUCKET_ARN},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }


@pytest.mark.parametrize(
    ("function", "needle"),
    [
        ("BlogFunction", "names no region"),
        ("arn:aws:lambda:us-east-1:123456789012:function:invoke-audit-remediator", "protected"),
        ("arn:aws:lambda:us-east-1:123456789012:function:Other", "no rule"),
        ("not an arn", "not a Lambda"),
    ],
)
def test_rewrite_refuses_functions(capsys, config, write, function, needle):
    path = write("policy.json", policy_response(PUBLIC))
    code, out, err = run(capsys, "rewrite", "--config", config, "--function", function, path)
    assert code == 2
    assert out == ""
    one_line_error(err, needle)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{broken", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("5", "JSON object"),
        ('{"Version": "2012-10-17"}', "no Statement"),
        ('{"Statement": [{"Effect": "Permit"}]}', "Effect"),
        (b"\xff\xfe", "cannot read"),
    ],
)
def test_rewrite_unreadable_policies(capsys, config, write, content, needle):
    path = write("policy.json", content)
    code, _, err = run(
        capsys, "rewrite", "--config", config, "--function", r.function_arn("BlogFunction"), path
    )
    assert code == 2
    line = one_line_error(err, needle)
    assert "policy.json" in line
    assert len(err.splitlines()) == 1


def test_rewrite_missing_policy_file(capsys, config, tmp_path):
    code, _, err = run(
        capsys,
        "rewrite",
        "--config",
        config,
        "--function",
        r.function_arn("BlogFunction"),
        tmp_path / "nope.json",
    )
    assert code == 2
    one_line_error(err, "nope.json")


# --- through a real process ---------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    return env


def test_console_script_scans_a_folder_in_parallel(config, folder):
    assert INVOKE_AUDIT.exists(), "make setup installs the invoke-audit console script"
    done = subprocess.run(
        [
            str(INVOKE_AUDIT),
            "scan",
            "--config",
            str(config),
            "--format",
            "jsonl",
            "--jobs",
            "2",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    found = rows(done.stdout)
    assert sorted(row["verdict"] for row in found) == ["allowed", "allowed", "ignored", "violation"]


def test_module_reads_stdin(config):
    data = r.json_lines_bytes([r.s3_invoke(), r.s3_invoke(bucket_arn="arn:aws:s3:::x")], gz=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "scan",
            "--config",
            str(config),
            "--format",
            "jsonl",
            "-",
        ],
        input=data,
        capture_output=True,
        timeout=60,
        cwd=REPO,
        env=_env(),
    )
    assert done.returncode == 1, done.stderr
    assert [row["verdict"] for row in rows(done.stdout.decode())] == ["allowed", "violation"]
    assert all(row["source"] == "<stdin>" for row in rows(done.stdout.decode()))


def test_module_garbage_gives_no_traceback(tmp_path, config):
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(gzip.compress(b'{"Records": [')[:-6])
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "scan", "--config", str(config), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=_env(),
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"invoke-audit: error: {bad}")


def test_default_config_is_the_shipped_example():
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("config/allowlist.yaml: ok")
