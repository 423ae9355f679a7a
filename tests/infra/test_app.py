"""`app.py`, run the way the CDK CLI runs it: offline, and failing cleanly on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.allowlist_file import load_allowlist
from models.exceptions import ConfigError
from tests.support.files import REPO
from tests.support.synth import cdk_json_context

pytestmark = pytest.mark.infra

BAD_ALLOWLIST = """\
version: 1
defaults:
  mode: enforce
  unmatched: report
rules:
  - name: blog
    functions: ["BlogFunction"]
    mode: enforse
    allow:
      - account: "12345"
"""


def _run_app(
    tmp_path: Path, *, region: str | None = None, **context: object
) -> subprocess.CompletedProcess[str]:
    """`python app.py` with the environment the CDK CLI gives it, no AWS credentials, and
    every proxy pointing at a closed local port, so that any network call fails."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "CDK_")) and key.lower() not in ("http_proxy", "https_proxy")
    }
    dead = "http://127.0.0.1:9"
    env.update(
        CDK_OUTDIR=str(tmp_path / "cdk.out"),
        CDK_CONTEXT_JSON=json.dumps({**cdk_json_context(), **context}),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        HTTP_PROXY=dead,
        HTTPS_PROXY=dead,
        http_proxy=dead,
        https_proxy=dead,
        NO_PROXY="",
        **({"CDK_DEFAULT_REGION": region} if region else {}),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_synth_works_offline_without_credentials(synth, tmp_path):
    # `synth` built and cached the assets: this run needs no package index either
    result = _run_app(tmp_path, **{"invoke-audit:environment": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "cdk.out"
    template = json.loads((out / "InvokeAudit-offline.template.json").read_text())
    assert any(r["Type"] == "AWS::Lambda::Function" for r in template["Resources"].values())
    manifest = json.loads((out / "manifest.json").read_text())
    stack = manifest["artifacts"]["InvokeAudit-offline"]
    assert stack["environment"] == "aws://unknown-account/unknown-region"
    assert "Traceback" not in result.stderr


def test_a_bad_allowlist_fails_synth_with_the_check_config_messages(tmp_path):
    bad = tmp_path / "allowlist.yaml"
    bad.write_text(BAD_ALLOWLIST)
    with pytest.raises(ConfigError) as expected:
        load_allowlist(bad)
    result = _run_app(tmp_path, **{"invoke-audit:allowlist": str(bad)})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(bad))]
    assert lines == expected.value.problems
    assert all(f"{bad}:" in line for line in lines)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_a_bad_context_value_fails_synth_naming_the_key(tmp_path):
    result = _run_app(tmp_path, **{"invoke-audit:account-role": "centre"})
    assert result.returncode == 2
    assert "cdk.json: context invoke-audit:account-role: expected one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_rule_outside_the_deploying_regions_partition_fails_synth(tmp_path):
    """The CDK CLI passes the credentials' region; a rule pinned to another partition could
    never match there."""
    china = tmp_path / "allowlist.yaml"
    china.write_text(
        "version: 1\nrules:\n  - name: beijing\n    functions:\n"
        '      - "arn:aws-cn:lambda:cn-north-1:111122223333:function:orders"\n'
    )
    result = _run_app(tmp_path, region="eu-west-1", **{"invoke-audit:allowlist": str(china)})
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{china}:4: rules[0].functions: rule 'beijing' can never match a function of this "
        "deployment (partition aws): its functions are all in aws-cn"
    )
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_synth_warns_of_expired_and_expiring_exceptions(tmp_path):
    """Stopped by the partition check (no assets to build), after the warnings."""
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text(
        "version: 1\nrules:\n  - name: beijing\n    functions:\n"
        '      - "arn:aws-cn:lambda:cn-north-1:111122223333:function:orders"\n'
        "    allow:\n"
        '      - account: "444455556666"\n'
        "        expires: 2020-01-31\n"
        "        ticket: SEC-1\n"
    )
    result = _run_app(tmp_path, region="eu-west-1", **{"invoke-audit:allowlist": str(allowlist)})
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"warning: {allowlist}:8: rules[0].allow[0].expires: the exception for account "
        "444455556666 in rule 'beijing' has expired: no longer allowed since 2020-02-01 00:00 UTC"
        ", ticket SEC-1; remove the entry or extend expires"
    )
