"""`invoke-audit selftest` and `status` against the emulator.

The deployed stack is stood up in moto: its outputs (a CloudFormation stack), the canary
function, the validator's log group, the Invoke rule, the trail, the topic and the backup
bucket. CloudTrail -> EventBridge is emulated by a timer started when the canary is invoked:
it builds the Invoke's CloudTrail record (with that request id), wraps it in the EventBridge
envelope and runs the real validator handler on it, whose log lines are then written to the
validator's log group, as Lambda would. The self-test only sees AWS APIs.
"""

from __future__ import annotations

import io
import json
import shlex
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.allowlist_file import parse_allowlist
from cli.main import main
from cli.operate import CANARY_RULE, SelfTest, print_status, stack_outputs
from emulator import create_function, emulated_aws
from lambdas.core.config import allowlist_to_json
from lambdas.runtime.settings import runtime
from lambdas.validator import handler
from stacks.canary import canary_function_name, with_canary_rule
from tests.support import records as r
from tests.support.lambda_runtime import LambdaContext
from tests.support.records import ACCOUNT, REGION

pytestmark = pytest.mark.functional

STACK = "InvokeAudit-dev"
CANARY = canary_function_name("dev")
LOG_GROUP = "/aws/lambda/invoke-audit-validator"
RULE = "invoke-audit-dev-invoke-rule"
BACKUP_BUCKET = "invoke-audit-backups"
TRAIL_BUCKET = "invoke-audit-trail-logs"
ALLOWLIST = """\
version: 1
defaults: {mode: enforce}
rules:
  - name: orders
    functions: [orders]
    allow: [{account: "111122223333"}]
"""


@dataclass
class Deployed:
    """The emulated deployment, and the pipeline that turns a canary Invoke into a verdict."""

    trail_arn: str
    delay: float = 1.0
    delivered: list[str] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)

    def client(self, service: str) -> Any:
        client = boto3.client(service, region_name=REGION)
        if service == "lambda":
            client.meta.events.register("after-call.lambda.Invoke", self._on_invoke)
        return client

    def _on_invoke(self, parsed: dict[str, Any], **_: Any) -> None:
        request_id = parsed["ResponseMetadata"]["RequestId"]
        timer = threading.Timer(self.delay, self._deliver, args=(request_id,))
        self.timers.append(timer)
        timer.start()

    def _deliver(self, request_id: str) -> None:
        """CloudTrail records the Invoke, EventBridge runs the validator, Lambda ships its log."""
        record = r.invoke(CANARY, r.iam_user("operator"))
        record["requestID"] = request_id
        buffer = io.StringIO()
        handler.logger.registered_handler.stream = buffer  # type: ignore[attr-defined]
        handler.lambda_handler(r.envelope(record), LambdaContext())
        logs = boto3.client("logs", region_name=REGION)
        stream = f"2026/12/03/[$LATEST]{request_id[:8]}"
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        now = int(datetime.now(UTC).timestamp() * 1000)
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[
                {"timestamp": now, "message": line}
                for line in buffer.getvalue().splitlines()
                if line.strip()
            ],
        )
        self.delivered.append(request_id)


@pytest.fixture()
def deployed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    with emulated_aws():
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="invoke-audit-alerts")["TopicArn"]
        create_function(boto3.client("lambda", region_name=REGION), boto3.client("iam"), CANARY)
        boto3.client("logs", region_name=REGION).create_log_group(logGroupName=LOG_GROUP)
        boto3.client("events", region_name=REGION).put_rule(
            Name=RULE,
            EventPattern=json.dumps({"source": ["aws.lambda"]}),
            State="ENABLED",
        )
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BACKUP_BUCKET)
        s3.create_bucket(Bucket=TRAIL_BUCKET)
        cloudtrail = boto3.client("cloudtrail", region_name=REGION)
        trail = cloudtrail.create_trail(Name="invoke-audit-trail", S3BucketName=TRAIL_BUCKET)
        cloudtrail.put_event_selectors(
            TrailName="invoke-audit-trail",
            AdvancedEventSelectors=[
                {
                    "Name": "Lambda Invoke",
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Data"]},
                        {"Field": "resources.type", "Equals": ["AWS::Lambda::Function"]},
                    ],
                }
            ],
        )
        cloudtrail.start_logging(Name="invoke-audit-trail")
        outputs = {
            "CanaryFunctionName": CANARY,
            "ValidatorLogGroupName": LOG_GROUP,
            "InvokeRuleName": RULE,
            "TrailArn": trail["TrailARN"],
            "BackupBucketName": BACKUP_BUCKET,
            "AlertTopicArn": topic,
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(
                {
                    "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()},
                }
            ),
        )
        world = Deployed(trail_arn=trail["TrailARN"])
        config = with_canary_rule(parse_allowlist(ALLOWLIST), CANARY)
        path = tmp_path / "allowlist.json"
        path.write_text(allowlist_to_json(config))
        monkeypatch.setenv("ALLOWLIST_PATH", str(path))
        monkeypatch.setenv("TOPIC_ARN", topic)
        runtime.cache_clear()
        handler._reporter.cache_clear()
        yield world
        for timer in world.timers:
            timer.join()
        runtime.cache_clear()
        handler._reporter.cache_clear()


def run_selftest(world: Deployed, *, timeout: float) -> tuple[int, list[str], list[float]]:
    out = io.StringIO()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        threading.Event().wait(seconds)

    outputs = stack_outputs(world.client("cloudformation"), STACK)
    code = SelfTest(world.client, outputs, out, timeout=timeout, poll=0.2, sleep=sleep).run()
    return code, out.getvalue().splitlines(), sleeps


def test_selftest_waits_for_the_verdict_of_its_own_invoke_and_reports_each_hop(deployed):
    deployed.delay = 1.0
    code, lines, sleeps = run_selftest(deployed, timeout=15)
    assert code == 0, lines
    (request_id,) = deployed.delivered
    invoke, verdict, report, summary = lines
    assert invoke.startswith(f"  1. invoke {CANARY}")
    assert invoke.split()[3] == "ok" and invoke.endswith(f"request {request_id}")
    assert verdict.startswith(f"  2. verdict in {LOG_GROUP}")
    assert f"violation by rule {CANARY_RULE} (monitor)" in verdict
    # It waited: it polled while the pipeline ran, and the latency covers the pipeline's delay.
    assert len(sleeps) >= 3
    assert 1.0 <= float(verdict.split()[5]) < 15
    assert (
        report.startswith("  3. report (monitor mode)") and "notified on the alert topic" in report
    )
    assert summary.startswith("selftest passed: the canary's Invoke was judged ")


def test_the_verdict_of_another_invoke_is_not_taken_for_its_own(deployed):
    """An earlier canary Invoke's verdict is in the log group already: not the one awaited."""
    deployed.delay = 0.0
    code, _, _ = run_selftest(deployed, timeout=10)
    assert code == 0
    deployed.delay = 1.5
    code, lines, _ = run_selftest(deployed, timeout=10)
    assert code == 0
    assert len(deployed.delivered) == 2
    assert lines[0].endswith(f"request {deployed.delivered[1]}")
    assert float(lines[1].split()[5]) >= 1.5


def test_selftest_names_the_silent_hop_when_eventbridge_never_fires(deployed):
    deployed.delay = 3600  # the pipeline never delivers within the test
    code, lines, _ = run_selftest(deployed, timeout=1.0)
    for timer in deployed.timers:
        timer.cancel()
    assert code == 1
    assert lines[1].startswith("  2. Invoke -> CloudTrail -> EventBridge -> validator")
    assert " silent " in lines[1] and "no verdict for request" in lines[1]
    assert "logging Lambda data events" in lines[2]
    assert lines[3].startswith(f"  4. rule {RULE}") and "ENABLED, triggered 0 times" in lines[3]
    assert lines[-1].startswith(
        "selftest failed: CloudTrail -> EventBridge is silent: the rule was not triggered"
    )


def test_selftest_says_when_the_trail_is_not_logging(deployed):
    deployed.delay = 3600
    boto3.client("cloudtrail", region_name=REGION).stop_logging(Name="invoke-audit-trail")
    code, lines, _ = run_selftest(deployed, timeout=0.5)
    for timer in deployed.timers:
        timer.cancel()
    assert code == 1
    assert lines[-1] == (
        f"selftest failed: CloudTrail is silent: the trail {deployed.trail_arn} is not logging "
        "(aws cloudtrail start-logging)"
    )


def test_selftest_fails_when_the_canary_is_judged_otherwise(deployed, tmp_path, monkeypatch):
    config = parse_allowlist(f"protect: ['{CANARY}']\n" + ALLOWLIST)
    path = tmp_path / "protected.json"
    path.write_text(allowlist_to_json(with_canary_rule(config, CANARY)))
    monkeypatch.setenv("ALLOWLIST_PATH", str(path))
    runtime.cache_clear()
    deployed.delay = 0.2
    code, lines, _ = run_selftest(deployed, timeout=10)
    assert code == 1
    assert " failed " in lines[1] and "ignored" in lines[1] and "protected by" in lines[1]
    assert "expected a violation of rule invoke-audit-canary" in lines[-1]


def test_selftest_command_reads_the_stack_and_exits_1_on_silence(deployed, capsys):
    code = main(["selftest", "--region", REGION, "--timeout", "0.5", "--poll", "0.1"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert (
        out.splitlines()[0]
        == f"invoke-audit selftest: stack {STACK}, waiting up to 0 s for the verdict"
    )
    assert "selftest failed: CloudTrail -> EventBridge is silent" in out


def test_selftest_without_the_stack_exits_2(deployed, capsys):
    code = main(["selftest", "--region", REGION, "--environment", "prod"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == (
        "invoke-audit: error: stack InvokeAudit-prod not found in this account and region: "
        "deploy it first, or name it with --stack (or --environment)"
    )


# --- status -----------------------------------------------------------------------------------


def test_status_sums_verdicts_per_rule_and_lists_the_last_remediations(deployed):
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    now = datetime.now(UTC)
    for rule, metric, values, ago in (
        ("orders", "Allowed", [3, 4], 1),
        ("orders", "Violation", [2], 2),
        ("blog", "Allowed", [5], 3),
        ("blog", "Violation", [7], 30),  # outside the last 7 days
    ):
        for value in values:
            cloudwatch.put_metric_data(
                Namespace="InvokeAudit",
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [
                            {"Name": "service", "Value": "invoke-audit"},
                            {"Name": "rule", "Value": rule},
                        ],
                        "Timestamp": now - timedelta(days=ago),
                        "Value": value,
                        "Unit": "Count",
                    }
                ],
            )
    s3 = boto3.client("s3", region_name=REGION)
    keys = []
    for index, name in enumerate(("orders", "BlogFunction")):
        key = f"backups/{ACCOUNT}/{REGION}/{name}/@unqualified/2026-12-0{index + 1}T10:00:00.000000Z-ev-{index}.json"
        backup = {
            "function": r.function_arn(name),
            "time": f"2026-12-0{index + 1}T10:00:00+00:00",
            "event_id": f"ev-{index}",
            "changes": [{}] * (index + 1),
        }
        s3.put_object(Bucket=BACKUP_BUCKET, Key=key, Body=json.dumps(backup).encode())
        keys.append(key)
    out = io.StringIO()
    outputs = stack_outputs(deployed.client("cloudformation"), STACK)
    assert print_status(deployed.client, outputs, out, days=7, limit=1, now=now) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == "Verdicts per rule over the last 7 days (from the InvokeAudit metrics):"
    assert lines[1].split() == ["RULE", "ALLOWED", "VIOLATION", "FAILEDCALL"]
    assert lines[2].split() == ["blog", "5", "0", "0"]
    assert lines[3].split() == ["orders", "7", "2", "0"]
    assert lines[4] == "  no violation: blog"
    assert lines[6] == f"Last remediations (1 backup in {BACKUP_BUCKET}):"
    assert lines[7].split()[:4] == [
        "2026-12-02T10:00:00+00:00",
        r.function_arn("BlogFunction"),
        "2",
        "changes",
    ]
    undo = lines[8].strip().removeprefix("undo: ")
    assert shlex.split(undo) == ["invoke-audit", "restore", f"s3://{BACKUP_BUCKET}/{keys[1]}"]
