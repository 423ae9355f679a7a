"""The decision and rewrite code is pure: no boto3/botocore, enforced by a lint rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.files import REPO

pytestmark = pytest.mark.unit

RUFF = REPO / ".venv" / "bin" / "ruff"
USES_BOTO3 = 'import boto3\n\nCLIENT = boto3.client("s3")\n'
USES_BOTOCORE = "from botocore.exceptions import ClientError\n\nERRORS = (ClientError,)\n"


def ruff(filename: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(RUFF),
            "check",
            "--no-cache",
            "--config",
            str(REPO / "pyproject.toml"),
            "--stdin-filename",
            filename,
            "-",
        ],
        input=source,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


needs_ruff = pytest.mark.skipif(not RUFF.exists(), reason=f"{RUFF} is not installed")


@needs_ruff
@pytest.mark.parametrize("filename", ["lambdas/core/x.py", "models/x.py", "lambdas/core/sub/y.py"])
@pytest.mark.parametrize("source", [USES_BOTO3, USES_BOTOCORE])
def test_lint_bans_the_aws_sdk_in_pure_code(filename, source):
    done = ruff(filename, source)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TID251" in done.stdout
    assert "pure code" in done.stdout


@needs_ruff
@pytest.mark.parametrize(
    "filename", ["lambdas/adapters/x.py", "lambdas/remediator/x.py", "cli/x.py"]
)
def test_lint_allows_the_aws_sdk_where_aws_is_called(filename):
    done = ruff(filename, USES_BOTO3)
    assert done.returncode == 0, done.stdout + done.stderr


PROBE = """
import importlib, pkgutil, sys
import lambdas.core, models
names = []
for package in (lambdas.core, models):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
assert len(names) >= 8, names
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "s3transfer"))
print("LOADED", loaded)
"""


def test_pure_modules_import_no_aws_sdk_transitively():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout
