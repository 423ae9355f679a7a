"""The gates every template passes: cdk-nag (AWS Solutions) and cfn-lint."""

from __future__ import annotations

import json
import re

import pytest
from cfnlint.api import lint

pytestmark = pytest.mark.infra

# Every acknowledged cdk-nag finding, by rule; a new one must be added here on purpose.
EXPECTED_ACKNOWLEDGEMENTS = {
    "AwsSolutions::AwsSolutions-L1",
    "AwsSolutions::AwsSolutions-S1",
    "AwsSolutions::AwsSolutions-SQS3",
    "AwsSolutions::AwsSolutions-IAM4",
    "AwsSolutions::AwsSolutions-IAM5",
}


def test_cdk_nag_reports_no_unacknowledged_finding(synth):
    assert synth.nag_error is None, synth.nag_error
    report = synth.outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text()).get("pluginReports", []):
            assert plugin["conclusion"] == "success", plugin


def test_every_acknowledged_finding_says_why(synth):
    acknowledged = {}
    for metadata in synth.metadata.values():
        for path, entries in metadata.items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        acknowledged[(path, rule)] = reason
    assert acknowledged, "expected the documented acknowledgements"
    for (path, rule), reason in acknowledged.items():
        assert len(reason.split()) >= 12, (path, rule, reason)
    kinds = {re.sub(r"\[.*\]$", "", rule) for _, rule in acknowledged}
    assert kinds <= EXPECTED_ACKNOWLEDGEMENTS, kinds - EXPECTED_ACKNOWLEDGEMENTS
    # the wildcard-resource ones are on IAM entities of ours, each for its own resource
    wildcard = sorted(rule for _, rule in acknowledged if "IAM5" in rule)
    assert all("[Resource::" in rule for rule in wildcard)


@pytest.mark.parametrize("variant", ["standalone", "central", "existing", "member", "regions"])
def test_cfn_lint_finds_no_error(synth, variant):
    matches = lint(json.dumps(synth.templates[variant]), regions=["us-east-1", "eu-west-1"])
    errors = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]
    errors = [e for e in errors if e.startswith("E")]
    assert not errors, "\n".join(errors)
