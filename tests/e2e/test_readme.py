"""The README's CLI tour runs as written (in a scratch copy of `demo-out`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.ocsf import detection_finding_problems

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _tour_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("let the demo leave its CloudTrail log")
    block = re.search(r"```sh\n(.*?)```", readme[start:], re.S)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def test_the_tour_has_every_offline_command():
    names = {command.split()[1] for command in _tour_commands()}
    assert names == {"demo", "scan", "report", "rewrite", "check-config", "learn", "history"}


ACCOUNT = "123456789012"
BLOG = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:BlogFunction"
PARTNER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:PartnerFunction"
REPORTS = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ReportsFunction"
BUCKET = "arn:aws:s3:::examplebucket"
NIGHTLY = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/nightly"

# What the demo's CloudTrail log holds, judged under the demo's allowlist, written by hand:
# (verdict, function, caller) per record.
JUDGED = [
    ("allowed", BLOG, f"s3.amazonaws.com for {BUCKET}"),
    ("violation", BLOG, f"arn:aws:iam::{ACCOUNT}:user/alice"),
    ("allowed", PARTNER, "account 111122223333"),
    ("violation", PARTNER, "account 444455556666"),
    ("ignored", None, None),  # the InvokeExecution of an asynchronous invoke
    ("unmonitored", REPORTS, f"events.amazonaws.com for {NIGHTLY}"),
]

# BlogFunction's policy under rule blog-s3-trigger: the public grant goes, the S3 grant
# gains the SourceAccount its allow entry names.
BLOG_REWRITTEN = {
    "Version": "2012-10-17",
    "Id": "default",
    "Statement": [
        {
            "Sid": "s3-invoke",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": BLOG,
            "Condition": {
                "ArnLike": {"AWS:SourceArn": BUCKET},
                "StringEquals": {"AWS:SourceAccount": ACCOUNT},
            },
        }
    ],
}

# Every caller seen, allowed where it was seen, in monitor mode.
LEARNED = {
    BLOG: [
        {"principal": f"arn:aws:iam::{ACCOUNT}:user/alice"},
        {"service": "s3.amazonaws.com", "source_account": ACCOUNT, "source_arn": BUCKET},
    ],
    PARTNER: [{"account": "111122223333"}, {"account": "444455556666"}],
    REPORTS: [
        {"service": "events.amazonaws.com", "source_account": ACCOUNT, "source_arn": NIGHTLY},
    ],
}


def _check_output(command: str, done: subprocess.CompletedProcess[str], scratch: Path) -> None:
    """What each tour command must print or write, beyond its exit code."""
    words = command.split()
    name = words[1]
    if name == "demo":
        assert done.returncode == 0
        assert "demo: OK" in done.stdout
    elif name == "scan" and "ocsf" in words:
        assert done.returncode == 1
        findings = [json.loads(line) for line in done.stdout.splitlines()]
        assert [detection_finding_problems(f) for f in findings] == [[], []]
        violating = [(f, c) for v, f, c in JUDGED if v == "violation"]
        assert [(f["resources"][0]["uid"], f["unmapped"]["caller"]) for f in findings] == violating
    elif name == "report":
        assert done.returncode == 1
        page = Path(words[words.index("-o") + 1].replace("demo-out", str(scratch))).read_text()
        for verdict, arn, caller in JUDGED:
            if verdict == "violation":
                assert f'<td class="caller">{caller}</td>' in page
                assert f"{arn}" in page
        assert page.count('<span class="del">') > 0  # the rewrites, from the kept policies
    elif name == "scan" and "jsonl" in words:
        assert done.returncode == 1  # violations found
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        only = words[words.index("--only") + 1].split(",") if "--only" in words else None
        expected = [j for j in JUDGED if only is None or j[0] in only]
        assert [(d["verdict"], d["function"], d["caller"]) for d in lines] == expected
    elif name == "scan":
        assert done.returncode == 1
        violations = [line for line in done.stdout.splitlines() if line.startswith("violation")]
        assert len(violations) == 2
        assert f"arn:aws:iam::{ACCOUNT}:user/alice" in violations[0]
        assert "account 444455556666" in violations[1]
        summary = "6 Lambda records from 1 file: 2 allowed, 2 violations, 1 unmonitored, 1 ignored"
        lines = done.stdout.splitlines()
        assert lines[lines.index(summary) + 1] == (
            "1 ignored record not shown (--only ignored shows them)"
        )
    elif name == "history":
        assert done.returncode == 1  # the same two violations as scan
        violations = [line for line in done.stdout.splitlines() if line.startswith("violation")]
        assert len(violations) == 2
        assert any(f"arn:aws:iam::{ACCOUNT}:user/alice" in line for line in violations)
        assert any("account 444455556666" in line for line in violations)
        assert done.stdout.rstrip().endswith("2 allowed, 2 violation, 1 unmonitored, 1 ignored")
    elif name == "rewrite":
        assert done.returncode == 0
        answer = json.loads(done.stdout)
        assert answer["rule"] == "blog-s3-trigger"
        assert answer["policy"] == BLOG_REWRITTEN
        assert [(c["kind"], c["sid"]) for c in answer["changes"]] == [
            ("removed", "public-test-access"),
            ("tightened", "s3-invoke"),
        ]
    elif name == "check-config":
        assert done.returncode == 0
        where = words[2].replace("demo-out", str(scratch)) if len(words) > 2 else "config/"
        assert done.stdout.startswith(where) and ": ok (" in done.stdout
    elif name == "learn":
        assert done.returncode == 0
        assert "3 functions, 5 allow entries" in done.stdout
        target = Path(words[words.index("-o") + 1].replace("demo-out", str(scratch)))
        learned = yaml.safe_load(target.read_text())
        assert learned["defaults"]["mode"] == "monitor"
        rules = {rule["functions"][0]: rule for rule in learned["rules"]}
        assert {f: rules[f]["allow"] for f in rules} == LEARNED
        # No rule sets its own mode: switching defaults.mode switches them all.
        assert all("mode" not in rule for rule in learned["rules"])
    else:
        raise AssertionError(f"no expected output for the tour command {command!r}")


def test_every_tour_command_runs_as_written(tmp_path: Path) -> None:
    scratch = tmp_path / "demo-out"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in _tour_commands():
        line = command.replace("demo-out", str(scratch)).replace(
            ".venv/bin/invoke-audit", str(Path(sys.executable).parent / "invoke-audit")
        )
        done = subprocess.run(
            line, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        assert "Traceback" not in done.stderr, command
        try:
            _check_output(command, done, scratch)
        except AssertionError as error:
            raise AssertionError(
                f"{command}: {error}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            ) from None
    assert (scratch / "learned.yaml").read_text().startswith("# Learned by `invoke-audit learn`")
