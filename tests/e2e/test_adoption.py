"""The README's adoption steps, as written, on the emulator's server.

A new user's account: an ordinary trail (management events only), functions with the
policies real accounts have. The commands are read from the README's "Adopting it safely"
section and run as written (bucket names filled in); a deployment is the validator and the
remediator handlers run with the allowlist the stack would ship (the canary rule first, as
`cdk synth` puts it). Each step's output is checked, not only its exit status.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shlex
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import demo
from cli.allowlist_file import load_allowlist
from cli.demo_events import FUNCTIONS, PARTNER, STRANGER
from cli.main import main
from emulator import reset_server, running_server
from emulator.environment import fake_credentials, patched_environ
from lambdas.core.config import allowlist_to_json
from lambdas.remediator import handler as remediator
from lambdas.runtime.settings import runtime
from lambdas.validator import handler as validator
from stacks.canary import canary_function_name, with_canary_rule
from tests.support import records as r
from tests.support.lambda_runtime import LambdaContext
from tests.support.records import ACCOUNT, BUCKET_ARN, REGION

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ORDINARY_TRAIL = "org-trail-logs"
NEW_TRAIL = "invoke-audit-trail-logs"


def adoption_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Adopting it safely")
    return readme[start : readme.index("\n## ", start + 1)]


@dataclass
class Account:
    """The emulated account and the deployed pipeline's settings."""

    workdir: Path
    names: dict[str, str]
    trail_files: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)

    def cli(self, command: str) -> tuple[int, str, str]:
        """Run one README command line as written (`.venv/bin/invoke-audit ...`)."""
        argv = shlex.split(command)
        assert argv[0].endswith("invoke-audit"), command
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv[1:])
        assert "Traceback" not in err.getvalue()
        return code, out.getvalue(), err.getvalue()

    def log_to(self, bucket: str, records: list[dict[str, Any]]) -> None:
        """CloudTrail delivers a log file to the trail's bucket."""
        self.trail_files += 1
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/12/03/"
            f"{ACCOUNT}_CloudTrail_{REGION}_20261203T10{self.trail_files:02d}Z_x.json.gz"
        )
        body = gzip.compress(json.dumps({"Records": records}).encode())
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

    def deploy(self, allowlist: Path) -> None:
        """`cdk deploy`: the allowlist as the stack ships it, in the functions' containers."""
        shipped = with_canary_rule(load_allowlist(allowlist), canary_function_name("dev"))
        path = self.workdir / "shipped-allowlist.json"
        path.write_text(allowlist_to_json(shipped))
        runtime.cache_clear()
        validator._reporter.cache_clear()
        remediator._remediator.cache_clear()
        assert Path(self.names["ALLOWLIST_PATH"]) == path

    def invoke(self, *records: dict[str, Any]) -> list[dict[str, Any]]:
        """The Invokes happen: the trail records them, EventBridge hands them to the validator."""
        self.log_to(NEW_TRAIL, list(records))
        context = LambdaContext("invoke-audit-validator")
        found = [validator.lambda_handler(r.envelope(record), context) for record in records]
        self.results += found
        return found


@pytest.fixture()
def account(tmp_path: Path) -> Iterator[Account]:
    with running_server() as endpoint:
        reset_server(endpoint)  # moto's backends are shared by every server of this process
        with fake_credentials(REGION, endpoint_url=endpoint):
            clients = {
                s: boto3.client(s) for s in ("lambda", "sqs", "s3", "sns", "dynamodb", "iam")
            }
            names = demo._setup(clients)
            for bucket in (ORDINARY_TRAIL, NEW_TRAIL):
                clients["s3"].create_bucket(Bucket=bucket)
            env = {
                "ALLOWLIST_PATH": str(tmp_path / "shipped-allowlist.json"),
                "QUEUE_URL": names["queue"],
                "TOPIC_ARN": names["topic"],
                "BACKUP_BUCKET": demo.BUCKET,
                "RATE_TABLE": demo.TABLE,
                "OWN_FUNCTION_PREFIX": "invoke-audit-",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
            with patched_environ(env):
                yield Account(tmp_path, {**names, **env})
                # The containers' clients point at this server: later tests get new ones.
                runtime.cache_clear()
                validator._reporter.cache_clear()
                remediator._remediator.cache_clear()
        reset_server(endpoint)


def policy(name: str) -> dict[str, Any]:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    document: dict[str, Any] = json.loads(
        boto3.client("lambda").get_resource_policy(ResourceArn=arn)["Policy"]
    )
    return document


def strings(body: str) -> list[str]:
    """The texts in a notification: the message itself, or the strings of its JSON."""
    try:
        value = json.loads(body)
    except ValueError:
        return [body]
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found += strings(item) if item.lstrip().startswith("{") else [item]
        elif isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return found


def partner_invoke(account_id: str) -> dict[str, Any]:
    return r.invoke("PartnerFunction", r.aws_account(account_id))


def blog_invoke() -> dict[str, Any]:
    return r.s3_invoke("BlogFunction", bucket_arn=BUCKET_ARN, source_account=ACCOUNT)


def test_the_readme_adoption_steps_from_first_look_to_a_remediation(account, tmp_path):
    section = adoption_section()
    (learn_line,) = [line for line in section.splitlines() if "invoke-audit learn" in line]
    learn = learn_line.strip().strip("`")
    assert learn.startswith(".venv/bin/invoke-audit learn s3://TRAIL-BUCKET/AWSLogs/")
    allowlist = tmp_path / "config" / "allowlist.yaml"
    allowlist.parent.mkdir()
    learn = learn.replace("config/allowlist.yaml", str(allowlist))

    # 0. What a new user tries first: learn from the trail the account already has.
    account.log_to(
        ORDINARY_TRAIL,
        [
            r.management_event(),
            r.management_event("ListFunctions20150331"),
            r.other_service_record(),
        ],
    )
    code, out, err = account.cli(learn.replace("TRAIL-BUCKET", ORDINARY_TRAIL))
    assert code == 2
    assert out == ""
    assert not allowlist.exists()
    assert "no Lambda Invoke data events in 3 CloudTrail records from 1 file" in err
    assert "deploy invoke-audit in monitor mode first" in err

    # 1. Deploy in monitor mode, with the README's allowlist without rules.
    (first_yaml,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    allowlist.write_text(re.sub(r"^   ", "", first_yaml, flags=re.M))
    code, out, _ = account.cli(f".venv/bin/invoke-audit check-config {allowlist}")
    assert code == 0
    assert out.splitlines() == [f"{allowlist}: ok (0 rules, default mode monitor)"]
    account.deploy(allowlist)
    before = {name: policy(name) for name in FUNCTIONS}
    seen = account.invoke(
        partner_invoke(PARTNER), partner_invoke(PARTNER), blog_invoke(), blog_invoke()
    )
    assert [s["verdict"] for s in seen] == ["unmonitored"] * 4
    assert {name: policy(name) for name in FUNCTIONS} == before  # monitor changes nothing

    # 2. Learn from that trail's log files, as written.
    code, out, err = account.cli(learn.replace("TRAIL-BUCKET", NEW_TRAIL))
    assert code == 0, err
    assert out.strip() == (
        f"wrote {allowlist}: 2 functions, 2 allow entries from 4 Invokes in 1 file; "
        "defaults.mode is monitor"
    )
    text = allowlist.read_text()
    assert [line.strip() for line in text.splitlines() if re.match(r"\s*mode:", line)] == [
        "mode: monitor"
    ]
    assert f'- account: "{PARTNER}"' in text
    assert f'source_account: "{ACCOUNT}"' in text  # the S3 trigger, pinned to its account

    # 3. Review (nothing to remove here) and deploy; every rule is in monitor mode.
    code, out, _ = account.cli(".venv/bin/invoke-audit check-config " + str(allowlist))
    assert code == 0
    assert out.splitlines()[1:] == [
        "  BlogFunction     monitor  (from defaults.mode)",
        "  PartnerFunction  monitor  (from defaults.mode)",
    ]
    account.deploy(allowlist)

    # 4. Watch: learned callers are allowed; a stranger is reported, nothing is changed.
    seen = account.invoke(partner_invoke(PARTNER), blog_invoke(), partner_invoke(STRANGER))
    assert [(s["verdict"], s["mode"], s["action"]) for s in seen] == [
        ("allowed", "monitor", None),
        ("allowed", "monitor", None),
        ("violation", "monitor", "notified"),
    ]
    assert {name: policy(name) for name in FUNCTIONS} == before
    assert not demo._drain(boto3.client("sqs"), account.names["queue"])

    # 5. The one documented edit switches every rule to enforce.
    assert "`defaults.mode: monitor` -> `defaults.mode: enforce`" in section
    lines = allowlist.read_text().splitlines()
    defaults = lines.index("defaults:")
    assert lines[defaults + 1] == "  mode: monitor"
    lines[defaults + 1] = "  mode: enforce"
    allowlist.write_text("\n".join(lines) + "\n")
    code, out, _ = account.cli(f".venv/bin/invoke-audit check-config {allowlist}")
    assert out.splitlines()[1:] == [
        "  BlogFunction     enforce  (from defaults.mode)",
        "  PartnerFunction  enforce  (from defaults.mode)",
    ]
    account.deploy(allowlist)

    # ... and the stranger's next Invoke is remediated.
    seen = account.invoke(blog_invoke(), partner_invoke(STRANGER))
    assert [(s["verdict"], s["mode"], s["action"]) for s in seen] == [
        ("allowed", "enforce", None),
        ("violation", "enforce", "queued"),
    ]
    sqs = boto3.client("sqs")
    queued = demo._drain(sqs, account.names["queue"])
    assert len(queued) == 1
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=account.names["queue"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    result = remediator.lambda_handler(
        demo._sqs_event(queued, queue_arn), LambdaContext("invoke-audit-remediator")
    )
    assert not (result or {}).get("batchItemFailures")
    (statement,) = policy("PartnerFunction")["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{PARTNER}:root"}
    assert policy("BlogFunction") == before["BlogFunction"]  # no violation there
    texts = [text for m in demo._drain(sqs, account.names["inbox"]) for text in strings(m["Body"])]
    undo = [
        line.split("To undo: ", 1)[1]
        for text in texts
        for line in text.splitlines()
        if line.startswith("To undo: ")
    ]
    assert len(undo) == 1
    argv = shlex.split(undo[0])
    assert argv[:2] == ["invoke-audit", "restore"]
    assert "$" not in argv[2] and "/PartnerFunction/@unqualified/" in argv[2]
    code, out, err = account.cli(f"{undo[0]} --dry-run")  # pasted as printed
    assert code == 0, err
    assert json.loads(out)["outcome"] == "would-restore"
