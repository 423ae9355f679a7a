"""`invoke-audit demo`: the whole pipeline on a local AWS emulator (moto on 127.0.0.1).

Real code all the way: the validator and remediator handlers run unchanged, configured by
environment to the emulator, on real-shaped CloudTrail events. The demo checks each step and
exits 1 if one did not do what it should, so it doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.allowlist_file import parse_allowlist
from cli.demo_events import ACCOUNT, ALLOWLIST_YAML, FUNCTIONS, REGION, events
from cli.policy_diff import policy_diff
from cli.runner import run as cli
from emulator.environment import fake_credentials, patched_environ
from emulator.lambda_context import LambdaContext
from lambdas.core.config import allowlist_to_json
from lambdas.core.decide import decide
from lambdas.core.notices import undo_command
from models.names import DEFAULT_PREFIX, METRICS_NAMESPACE, SERVICE_NAME, function_name

__all__ = ["register", "run_demo"]

QUEUE = f"{DEFAULT_PREFIX}violations.fifo"
BUCKET = f"{DEFAULT_PREFIX}demo-backups"
TOPIC = f"{DEFAULT_PREFIX}notifications"
TABLE = f"{DEFAULT_PREFIX}rate-limit"


def _context(name: str) -> LambdaContext:
    """The context Lambda would pass the demo's handlers."""
    return LambdaContext(name, account=ACCOUNT, region=REGION, log_stream_name="demo")


class DemoFailed(Exception):
    """A step of the demo did not do what it should."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


class _Printer:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        print(f"\n== {title} " + "=" * max(0, 70 - len(title)))

    def line(self, text: str = "") -> None:
        print(text)


def _synth_summary(out: _Printer) -> None:
    """Synthesize the stack and say what `cdk deploy` would create."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "app.py").exists():
        out.line("(no app.py next to the code: synth skipped)")
        return
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("CDK_OUTDIR", None)
    env.pop("CDK_CONTEXT_JSON", None)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    _check(result.returncode == 0, f"cdk synth failed: {(result.stderr or result.stdout)[-2000:]}")
    for template in sorted((root / "cdk.out").glob("*.template.json")):
        resources = json.loads(template.read_text())["Resources"]
        kinds: dict[str, int] = {}
        for resource in resources.values():
            kinds[resource["Type"]] = kinds.get(resource["Type"], 0) + 1
        out.line(
            f"{template.name}: {len(resources)} resources "
            f"(synthesized in {time.monotonic() - started:.1f}s)"
        )
        for kind in sorted(kinds):
            if kind.split("::")[1] in {
                "CloudTrail",
                "Events",
                "Lambda",
                "SQS",
                "S3",
                "SNS",
                "DynamoDB",
                "CloudWatch",
                "KMS",
            }:
                out.line(f"  {kinds[kind]:>3} x {kind}")


def _policy(client: Any, name: str) -> dict[str, Any] | None:
    try:
        response = client.get_resource_policy(ResourceArn=_function_arn(name))
    except client.exceptions.ResourceNotFoundException:
        return None
    document: dict[str, Any] = json.loads(response["Policy"])
    return document


def _function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _setup(clients: dict[str, Any]) -> dict[str, str]:
    """What the handlers need, and the sample functions with their policies."""
    from emulator import create_function

    sqs, s3, sns, ddb = clients["sqs"], clients["s3"], clients["sns"], clients["dynamodb"]
    dlq = sqs.create_queue(
        QueueName=f"{DEFAULT_PREFIX}violations-dlq.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=QUEUE,
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "120",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    inbox = sqs.create_queue(QueueName="demo-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=inbox_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for name, policy in FUNCTIONS.items():
        create_function(clients["lambda"], clients["iam"], name)
        clients["lambda"].put_resource_policy(
            ResourceArn=_function_arn(name), Policy=json.dumps(policy)
        )
    return {"queue": queue, "dlq": dlq, "topic": topic, "inbox": inbox}


def _drain(sqs: Any, url: str, wait: int = 0) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get(
                        "ApproximateReceiveCount", "1"
                    ),
                    "MessageGroupId": m.get("Attributes", {}).get("MessageGroupId", ""),
                    "MessageDeduplicationId": m.get("Attributes", {}).get(
                        "MessageDeduplicationId", ""
                    ),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                },
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _play(out: _Printer, clients: dict[str, Any], names: dict[str, str], workdir: Path) -> None:
    config = parse_allowlist(ALLOWLIST_YAML, "demo allowlist")
    validator = importlib.import_module("lambdas.validator.handler")
    remediator = importlib.import_module("lambdas.remediator.handler")
    lam, sqs, s3 = clients["lambda"], clients["sqs"], clients["s3"]
    before = {name: _policy(lam, name) for name in FUNCTIONS}
    (workdir / "allowlist.yaml").write_text(ALLOWLIST_YAML)
    for name, policy in before.items():
        (workdir / f"{name}.policy.json").write_text(json.dumps(policy, indent=2) + "\n")

    out.step("2. CloudTrail Invoke events through the validator")
    played = events()
    violations = 0
    for what, event in played:
        record = event["detail"]
        result = validator.lambda_handler(event, _context(function_name("validator")))
        _check(result["verdict"] == decide(record, config).verdict, f"{what}: unexpected verdict")
        violations += result["verdict"] == "violation"
        out.line(f"- {what}\n    {result['verdict'].upper()}: {result['reason']}")
    queued = _drain(sqs, names["queue"])
    out.line(f"\n{len(queued)} violation(s) queued for the remediator")
    _check(
        violations == 2 and len(queued) == violations,
        f"expected 2 queued violations, got {len(queued)} (decided {violations})",
    )

    out.step("3. The remediator rewrites the invoked functions' policies")
    queue_arn = sqs.get_queue_attributes(QueueUrl=names["queue"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    result = remediator.lambda_handler(
        _sqs_event(queued, queue_arn), _context(function_name("remediator"))
    )
    failures = (result or {}).get("batchItemFailures", [])
    _check(not failures, f"the remediator failed messages: {failures}")
    after = {name: _policy(lam, name) for name in FUNCTIONS}
    for name in FUNCTIONS:
        diff = policy_diff(before[name], after[name])
        out.line(f"\n{name}: " + ("policy changed" if diff else "policy unchanged"))
        for line in diff[2:]:
            out.line(f"    {line}")
    blog, partner = after["BlogFunction"] or {}, after["PartnerFunction"] or {}
    _check(
        all(s.get("Principal") != "*" for s in blog.get("Statement", [])),
        "the * grant is still there",
    )
    s3_grant: dict[str, Any] = next(
        (
            s
            for s in blog.get("Statement", [])
            if s.get("Principal") == {"Service": "s3.amazonaws.com"}
        ),
        {},
    )
    _check(
        "StringEquals" in s3_grant.get("Condition", {}), "the S3 grant did not get SourceAccount"
    )
    _check("444455556666" not in json.dumps(partner), "the unknown account still has access")
    _check("111122223333" in json.dumps(partner), "the partner account lost access")
    _check(
        after["ReportsFunction"] == before["ReportsFunction"], "an unmonitored function was changed"
    )

    out.step("4. Backups and notifications")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    _check(len(keys) == 2, f"expected 2 backups, found {len(keys)}")
    for key in keys:
        out.line(f"backup: s3://{BUCKET}/{key}")
    notes = _drain(sqs, names["inbox"])
    _check(len(notes) >= 2, f"expected a notification per change, got {len(notes)}")
    proven = [n for n in notes if "Proof: proven by IAM Access Analyzer" in n["Body"]]
    _check(len(proven) == 2, "a write went out without the Access Analyzer proof")
    out.line(
        "\nEach write was proven first: IAM Access Analyzer's CheckNoNewAccess and "
        "CheckNoPublicAccess\n(answered here by the emulator: an emulation, not AWS's analysis)."
    )
    out.line("\nFirst notification, as the email reads:")
    for line in notes[0]["Body"].splitlines()[:25]:
        out.line(f"    {line}")

    out.step("5. The same event again changes nothing")
    _, again = events()[1]  # a fresh copy of alice's event, under a new event id
    again["id"], again["detail"]["eventID"] = "eb-0002-alice-again", "0002-alice-again"
    validator.lambda_handler(again, _context(function_name("validator")))
    queued = _drain(sqs, names["queue"])
    remediator.lambda_handler(_sqs_event(queued, queue_arn), _context(function_name("remediator")))
    _check(
        _policy(lam, "BlogFunction") == after["BlogFunction"], "a repeated event changed the policy"
    )
    count = len(s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    _check(count == 2, "a repeated event wrote another backup")
    out.line("BlogFunction's policy is unchanged; no new backup, no new write.")

    out.step("5b. An allowed caller denied after the rewrite: the broken-caller watch")
    alice_function = decide(events()[1][1]["detail"], config).function
    allowed = next(
        event
        for _, event in events()
        if decide(event["detail"], config).verdict == "allowed"
        and decide(event["detail"], config).function == alice_function
    )
    allowed["id"] = "eb-0003-allowed-but-denied"
    allowed["detail"].update(
        eventID="0003-allowed-but-denied",
        eventTime=(datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        errorCode="AccessDeniedException",
        errorMessage="not authorized to perform: lambda:InvokeFunction",
    )
    result = validator.lambda_handler(allowed, _context(function_name("validator")))
    out.line(f"validator: {result['verdict'].upper()} ({result['action']})")
    queued = _drain(sqs, names["queue"])
    remediator.lambda_handler(_sqs_event(queued, queue_arn), _context(function_name("remediator")))
    alerts = [n for n in _drain(sqs, names["inbox"]) if "The most likely cause" in n["Body"]]
    _check(len(alerts) == 1, f"expected one broken-caller alert, got {len(alerts)}")
    out.line("remediator: BROKEN, one alert:")
    for line in alerts[0]["Body"].split("--- details")[0].rstrip().splitlines():
        out.line(f"    {line}")

    out.step("6. Undo: invoke-audit restore")
    blog_key = next(k for k in keys if "/BlogFunction/" in k)
    # A script has no terminal to confirm on (--yes); the original policy lets anyone invoke,
    # which the allowlist does not allow (--force). The backup's signature is verified.
    out.line(f"$ {undo_command(f's3://{BUCKET}/{blog_key}')} --yes --force")
    shipped = os.environ["ALLOWLIST_PATH"]
    with (
        contextlib.redirect_stdout(io.StringIO()) as printed,  # its JSON report: checked below
        contextlib.redirect_stderr(io.StringIO()),  # the diff it shows
    ):
        code = cli(
            ["restore", f"s3://{BUCKET}/{blog_key}", "--config", shipped, "--yes", "--force"]
        )
    _check(json.loads(printed.getvalue())["outcome"] == "restored", "restore did not restore")
    _check(code == 0, f"restore exited {code}")
    _check(
        _policy(lam, "BlogFunction") == before["BlogFunction"],
        "restore did not bring the original back",
    )
    out.line("BlogFunction's original policy is back (compare-and-swap on its RevisionId).")

    out.step("7. Adopting it: learn from the events, then scan with what was learned")
    logs = workdir / "cloudtrail.json"
    logs.write_text(json.dumps({"Records": [event["detail"] for _, event in events()]}))
    learned = workdir / "learned.yaml"
    _check(cli(["learn", str(logs), "-o", str(learned)]) == 0, "learn failed")
    code = cli(["scan", "--config", str(learned), "--format", "table", str(logs)])
    _check(code == 0, f"scan with the learned allowlist found violations (exit {code})")


def run_demo(*, synth: bool = True, keep: Path | None = None) -> int:
    """Run the demo; with `keep`, its CloudTrail log, allowlists and the original policies
    stay in that folder for trying the CLI on."""
    from emulator import running_server

    out = _Printer()
    try:
        with tempfile.TemporaryDirectory(prefix=f"{DEFAULT_PREFIX}demo-") as tmp:
            workdir = Path(tmp) if keep is None else keep
            workdir.mkdir(parents=True, exist_ok=True)
            if synth:
                out.step("1. cdk synth: what `cdk deploy` would create")
                _synth_summary(out)
            with running_server() as endpoint:
                _run_on(endpoint, out, workdir)
    except DemoFailed as exc:
        print(f"\ndemo: FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"invoke-audit: error: {keep}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if keep is not None:
        print(f"\nkept in {keep}: cloudtrail.json, allowlist.yaml, learned.yaml, *.policy.json")
    print(f"\ndemo: OK, every step did what it should ({time.monotonic() - out.started:.1f}s)")
    return 0


def _run_on(endpoint: str, out: _Printer, workdir: Path) -> None:
    import boto3

    config_json = workdir / "allowlist.json"
    config_json.write_text(allowlist_to_json(parse_allowlist(ALLOWLIST_YAML, "demo allowlist")))
    with fake_credentials(REGION, endpoint_url=endpoint):
        clients = {
            s: boto3.client(s, region_name=REGION)
            for s in ("lambda", "sqs", "s3", "sns", "dynamodb", "iam")
        }
        out.step(f"AWS emulator (moto) on {endpoint}")
        names = _setup(clients)
        # The HMAC key the remediator signs each backup with, and restore verifies it with.
        mac_key = boto3.client("kms", region_name=REGION).create_key(
            KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="backup signatures"
        )["KeyMetadata"]["Arn"]
        out.line(
            "created: SQS FIFO queue + DLQ, versioned backup bucket, SNS topic, rate-limit table,"
        )
        out.line("         HMAC key for backup signatures,")
        out.line(f"         functions {', '.join(FUNCTIONS)} with their policies")
        env = {
            "ALLOWLIST_PATH": str(config_json),
            "QUEUE_URL": names["queue"],
            "TOPIC_ARN": names["topic"],
            "BACKUP_BUCKET": BUCKET,
            "BACKUP_MAC_KEY_ARN": mac_key,  # the remediator's
            "BACKUP_MAC_KEY": mac_key,  # restore's
            "RATE_TABLE": TABLE,
            "OWN_FUNCTION_ARNS": ",".join(
                _context(function_name(f)).invoked_function_arn for f in ("validator", "remediator")
            ),
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        with patched_environ(env):
            _play(out, clients, names, workdir)


def _command(args: argparse.Namespace) -> int:
    return run_demo(synth=not args.no_synth, keep=args.keep)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on a local AWS emulator",
        description="Start moto on 127.0.0.1, create sample functions, and play CloudTrail "
        "Invoke events through the real validator and remediator. Exits 1 if a step fails.",
    )
    parser.add_argument("--no-synth", action="store_true", help="skip the cdk synth summary")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="leave the demo's CloudTrail log, allowlists and original policies in DIR",
    )
    parser.set_defaults(func=_command)
