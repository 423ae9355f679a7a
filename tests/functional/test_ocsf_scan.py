"""`invoke-audit scan --format ocsf` over the demo's CloudTrail records: every line is an OCSF
Detection Finding that passes the vendored schema facts."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from tests.support.demo_logs import write_demo_files
from tests.support.ocsf import detection_finding_problems

pytestmark = pytest.mark.functional


def _scan(tmp_path, capsys, *extra):
    log, allowlist, _ = write_demo_files(tmp_path)
    code = main(["scan", "--config", str(allowlist), "--format", "ocsf", *extra, str(log)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_the_demos_violations_are_two_valid_findings(tmp_path, capsys):
    code, findings, _ = _scan(tmp_path, capsys)
    assert code == 1  # violations, as with every other format
    for finding in findings:
        assert detection_finding_problems(finding) == []
    # The demo has two violations: alice on BlogFunction, an unknown account on PartnerFunction
    got = sorted((f["resources"][0]["name"], f["unmapped"]["caller"]) for f in findings)
    assert got == [
        ("BlogFunction", "arn:aws:iam::123456789012:user/alice"),
        ("PartnerFunction", "account 444455556666"),
    ]
    assert {f["severity"] for f in findings} == {"High"}


def test_unmonitored_functions_only_when_asked(tmp_path, capsys):
    code, findings, _ = _scan(tmp_path, capsys, "--only", "unmonitored")
    assert code == 1  # the exit status still counts the violations
    (finding,) = findings
    assert detection_finding_problems(finding) == []
    assert finding["resources"][0]["name"] == "ReportsFunction"
    assert finding["severity_id"] == 1


def test_a_verdict_that_is_no_finding_is_a_one_line_error(tmp_path, capsys):
    code, findings, err = _scan(tmp_path, capsys, "--only", "allowed")
    assert code == 2
    assert findings == []
    assert err.strip().splitlines() == [
        "invoke-audit: error: --format ocsf: allowed is no finding; --only chooses from "
        "violation,broken,unmonitored"
    ]
