"""`invoke-audit selftest` and `invoke-audit status`: is the deployed pipeline working, and
what has it seen. Both use the caller's AWS credentials and read the stack's outputs.

selftest invokes the stack's canary function (its rule allows no caller, in monitor mode:
nothing is ever changed) and waits until the validator's log group holds the verdict for that
exact Invoke (found by its request id). It prints each hop with its latency; when the verdict
does not come, it checks each hop in turn (the trail, the EventBridge rule and its metrics,
the validator's metrics) and names the first one that is silent.

status sums the validator's per-rule verdict metrics over the last days and lists the last
remediations from the backup bucket, each with the command that undoes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from cli.advice import plural
from lambdas.core.notices import undo_command
from models.exceptions import InputError

__all__ = [
    "CANARY_RULE",
    "METRICS_NAMESPACE",
    "SelfTest",
    "print_status",
    "register",
    "stack_outputs",
]

CANARY_RULE = "invoke-audit-canary"  # stacks.canary names it so
METRICS_NAMESPACE = "InvokeAudit"  # the functions' POWERTOOLS_METRICS_NAMESPACE
SERVICE = "invoke-audit"
VERDICT_METRICS = ("Allowed", "Violation", "FailedCall", "Unmonitored", "Ignored", "Invalid")
REQUIRED_OUTPUTS = ("CanaryFunctionName", "ValidatorLogGroupName", "InvokeRuleName")

Clients = Callable[[str], Any]


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs by key; InputError when the stack cannot be read."""
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:
        if "does not exist" in str(exc):
            raise InputError(
                f"stack {stack} not found in this account and region: deploy it first, or "
                "name it with --stack (or --environment)"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}


@dataclass(slots=True)
class Hop:
    name: str
    state: str  # ok | failed | silent | checked
    seconds: float | None
    detail: str

    def line(self, number: int) -> str:
        took = f"{self.seconds:7.2f} s" if self.seconds is not None else "      - "
        return f"  {number}. {self.name:<44} {self.state:<7} {took}  {self.detail}"


@dataclass
class SelfTest:
    """One self-test run. `clients(service)` gives boto3 clients; time is injected for tests."""

    clients: Clients
    outputs: dict[str, str]
    out: IO[str]
    timeout: float = 300.0
    poll: float = 5.0
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    hops: list[Hop] = field(default_factory=list)

    def run(self) -> int:
        missing = [key for key in REQUIRED_OUTPUTS if key not in self.outputs]
        if missing:
            raise InputError(
                f"the stack has no output {', '.join(missing)}: deploy this version of "
                "invoke-audit first (the self-test needs its canary)"
            )
        canary = self.outputs["CanaryFunctionName"]
        log_group = self.outputs["ValidatorLogGroupName"]
        invoked_at, request_id = self._invoke(canary)
        if request_id is None:
            return self._finish(None)
        verdict = self._wait(log_group, request_id, invoked_at)
        if verdict is None:
            self._record(
                Hop(
                    "Invoke -> CloudTrail -> EventBridge -> validator",
                    "silent",
                    self.timeout,
                    f"no verdict for request {request_id} in {log_group} after "
                    f"{self.timeout:.0f} s",
                )
            )
            return self._finish(self._diagnose(invoked_at))
        return self._finish(self._judge(verdict, invoked_at))

    # -- hops ----------------------------------------------------------------------------

    def _record(self, hop: Hop) -> None:
        self.hops.append(hop)
        self.out.write(hop.line(len(self.hops)) + "\n")
        self.out.flush()

    def _invoke(self, canary: str) -> tuple[float, str | None]:
        started, invoked_at = self.clock(), self.wall()
        try:
            response = self.clients("lambda").invoke(
                FunctionName=canary, Payload=b'{"invoke-audit": "selftest"}'
            )
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._record(Hop(f"invoke {canary}", "failed", None, reason))
            return invoked_at, None
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        problem = response.get("FunctionError")
        detail = f"request {request_id}" + (f" (the canary failed: {problem})" if problem else "")
        self._record(Hop(f"invoke {canary}", "ok", self.clock() - started, detail))
        return invoked_at, request_id

    def _wait(self, log_group: str, request_id: str, invoked_at: float) -> dict[str, Any] | None:
        """The validator's log line for `request_id`, polled until the timeout."""
        logs = self.clients("logs")
        deadline = self.clock() + self.timeout
        start_ms = int((invoked_at - 300) * 1000)  # clocks differ; CloudTrail is not early
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": log_group,
                "startTime": start_ms,
                "filterPattern": f'"{request_id}"',
            }
            while True:
                page = logs.filter_log_events(**kwargs)
                for event in page.get("events", []):
                    line = _json_line(event.get("message", ""))
                    if line is not None and line.get("request_id") == request_id:
                        return line | {"_logged_at": event["timestamp"] / 1000}
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            if self.clock() >= deadline:
                return None
            self.sleep(min(self.poll, max(deadline - self.clock(), 0.0)))

    def _judge(self, verdict: dict[str, Any], invoked_at: float) -> str | None:
        seconds = max(verdict["_logged_at"] - invoked_at, 0.0)
        found = f"{verdict.get('verdict')} by rule {verdict.get('rule')} ({verdict.get('mode')})"
        expected = verdict.get("verdict") == "violation" and verdict.get("rule") == CANARY_RULE
        where = self.outputs["ValidatorLogGroupName"]
        if not expected:
            reason = f"{found}: {verdict.get('reason') or verdict.get('message')}"
            self._record(Hop(f"verdict in {where}", "failed", seconds, reason))
            return (
                f"the validator judged the canary's Invoke {reason}; expected a violation of "
                f"rule {CANARY_RULE} (is the canary protected, or the allowlist shipped old?)"
            )
        self._record(Hop(f"verdict in {where}", "ok", seconds, found))
        action = verdict.get("action")
        if action in ("notified", "suppressed"):
            said = "notified on the alert topic" if action == "notified" else "already notified "
            if action == "suppressed":
                said += "within the hour (one message per caller and hour)"
            self._record(Hop("report (monitor mode)", "ok", None, said))
            return None
        self._record(Hop("report (monitor mode)", "failed", None, f"action {action!r}"))
        return f"the violation was not reported (action {action!r}): see {where}"

    def _diagnose(self, invoked_at: float) -> str:
        """Check each hop in data-flow order; the first silent one is the answer."""
        since = datetime.fromtimestamp(invoked_at - 60, UTC)
        trail = self.outputs.get("TrailArn")
        if trail:
            problem = self._trail_problem(trail)
            self._record(
                Hop(
                    f"trail {trail.rsplit('/', 1)[-1]}",
                    "checked",
                    None,
                    problem or "logging Lambda data events",
                )
            )
            if problem:
                return f"CloudTrail is silent: {problem}"
        rule = self.outputs["InvokeRuleName"]
        events = self.clients("events")
        state = events.describe_rule(Name=rule).get("State", "UNKNOWN")
        triggered = self._sum("AWS/Events", "TriggeredRules", "RuleName", rule, since)
        failed = self._sum("AWS/Events", "FailedInvocations", "RuleName", rule, since)
        self._record(
            Hop(
                f"rule {rule}",
                "checked",
                None,
                f"{state}, triggered {plural(int(triggered), 'time')}, "
                f"{int(failed)} failed deliveries since the Invoke",
            )
        )
        if state != "ENABLED":
            return f"EventBridge is silent: the rule {rule} is {state}"
        if not triggered:
            return (
                "CloudTrail -> EventBridge is silent: the rule was not triggered since the "
                "Invoke. CloudTrail delivers data events to EventBridge best effort, usually "
                "within a minute or two, and the metrics lag a few minutes: run selftest again "
                "with a longer --timeout. If it stays silent, check the trail's event selectors "
                "(Lambda Invoke data events) and that the canary is not excluded"
            )
        if failed:
            return (
                "EventBridge -> validator is silent: deliveries to the validator failed; "
                "the rule's dead-letter queue holds them"
            )
        function = self.outputs["ValidatorLogGroupName"].rsplit("/", 1)[-1]
        errors = self._sum("AWS/Lambda", "Errors", "FunctionName", function, since)
        self._record(
            Hop(
                f"validator {function}",
                "checked",
                None,
                f"{plural(int(errors), 'error')} since the Invoke",
            )
        )
        if errors:
            return f"the validator is failing: see its log group {self.outputs['ValidatorLogGroupName']}"
        return (
            "the validator is silent: the rule was triggered but no verdict for this Invoke "
            "was logged yet; run selftest again with a longer --timeout"
        )

    def _trail_problem(self, trail: str) -> str | None:
        cloudtrail = self.clients("cloudtrail")
        if not cloudtrail.get_trail_status(Name=trail).get("IsLogging"):
            return f"the trail {trail} is not logging (aws cloudtrail start-logging)"
        selectors = cloudtrail.get_event_selectors(TrailName=trail)
        text = json.dumps(
            selectors.get("AdvancedEventSelectors") or selectors.get("EventSelectors") or []
        )
        if "AWS::Lambda::Function" not in text:
            return f"the trail {trail} records no Lambda data events (its event selectors)"
        return None

    def _sum(self, namespace: str, metric: str, name: str, value: str, since: datetime) -> float:
        now = datetime.fromtimestamp(self.wall(), UTC)
        response = self.clients("cloudwatch").get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": name, "Value": value}],
            StartTime=since,
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )
        return float(sum(point.get("Sum", 0.0) for point in response.get("Datapoints", [])))

    def _finish(self, problem: str | None) -> int:
        if problem is None and self.hops and all(h.state == "ok" for h in self.hops):
            took = next((h.seconds for h in self.hops if h.name.startswith("verdict")), None)
            self.out.write(
                f"selftest passed: the canary's Invoke was judged {took:.1f} s after it "
                "happened, and reported.\n"
            )
            return 0
        self.out.write(f"selftest failed: {problem or 'the canary could not be invoked'}\n")
        return 1


def _json_line(message: str) -> dict[str, Any] | None:
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- status -----------------------------------------------------------------------------------


def verdict_counts(
    cloudwatch: Any, *, since: datetime, until: datetime
) -> dict[str, dict[str, int]]:
    """rule -> verdict metric -> count, from the validator's per-rule metrics."""
    counts: dict[str, dict[str, int]] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    paginator = cloudwatch.get_paginator("list_metrics")
    period = max(60, int((until - since).total_seconds()) // 60 * 60)
    for page in paginator.paginate(Namespace=METRICS_NAMESPACE, Dimensions=[{"Name": "rule"}]):
        for metric in page.get("Metrics", []):
            if metric["MetricName"] not in VERDICT_METRICS:
                continue
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            rule = dimensions.get("rule")
            identity = (metric["MetricName"], tuple(sorted(dimensions.items())))
            if rule is None or identity in seen:
                continue
            seen.add(identity)
            response = cloudwatch.get_metric_statistics(
                Namespace=METRICS_NAMESPACE,
                MetricName=metric["MetricName"],
                Dimensions=metric["Dimensions"],
                StartTime=since,
                EndTime=until,
                Period=period,
                Statistics=["Sum"],
            )
            total = int(sum(p.get("Sum", 0.0) for p in response.get("Datapoints", [])))
            per_rule = counts.setdefault(rule, {})
            per_rule[metric["MetricName"]] = per_rule.get(metric["MetricName"], 0) + total
    return counts


def last_remediations(s3: Any, bucket: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """The newest `limit` backups (each one policy change), newest first."""
    found: list[tuple[datetime, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="backups/"):
        found += [
            (o["LastModified"], o["Key"])
            for o in page.get("Contents", [])
            if o["Key"].endswith(".json")
        ]
    # A backup's file name starts with the UTC time of the change (one write per name).
    newest = sorted(found, key=lambda item: (item[1].rsplit("/", 1)[-1], item[0]), reverse=True)
    newest = newest[:limit]
    result = []
    for _, key in newest:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        backup = _json_line(body.decode("utf-8", "replace")) or {}
        result.append((f"s3://{bucket}/{key}", backup))
    return result


def print_status(
    clients: Clients, outputs: dict[str, str], out: IO[str], *, days: int, limit: int, now: datetime
) -> int:
    since = now - timedelta(days=days)
    counts = verdict_counts(clients("cloudwatch"), since=since, until=now)
    out.write(
        f"Verdicts per rule over the last {plural(days, 'day')} (from the {METRICS_NAMESPACE} metrics):\n"
    )
    columns = ("Allowed", "Violation", "FailedCall")
    if counts:
        width = max(len(rule) for rule in counts)
        out.write(f"  {'RULE':<{width}}  " + "  ".join(f"{c.upper():>10}" for c in columns) + "\n")
        for rule in sorted(counts):
            row = "  ".join(f"{counts[rule].get(c, 0):>10}" for c in columns)
            out.write(f"  {rule:<{width}}  {row}\n")
        quiet = [r for r in sorted(counts) if not counts[r].get("Violation") and r != CANARY_RULE]
        if quiet:
            out.write(f"  no violation: {', '.join(quiet)}\n")
    else:
        out.write("  no verdict metrics in that time (no Invoke of a function a rule covers)\n")
    bucket = outputs.get("BackupBucketName")
    if not bucket:
        raise InputError("the stack has no output BackupBucketName")
    remediations = last_remediations(clients("s3"), bucket, limit)
    out.write(f"\nLast remediations ({plural(len(remediations), 'backup')} in {bucket}):\n")
    if not remediations:
        out.write("  none: no policy was ever changed\n")
    for uri, backup in remediations:
        changes = plural(len(backup.get("changes") or []), "change")
        out.write(
            f"  {backup.get('time', '?')}  {backup.get('function', '?')}  {changes}"
            f"  (event {backup.get('event_id')})\n    undo: {undo_command(uri)}\n"
        )
    return 0


# --- the commands -------------------------------------------------------------------------------


def _clients(args: argparse.Namespace) -> Clients:
    import boto3  # only here: the offline commands never load it

    session = boto3.session.Session(region_name=args.region or os.environ.get("AWS_REGION") or None)
    return lambda service: session.client(service)


def _stack(args: argparse.Namespace) -> str:
    return args.stack or f"InvokeAudit-{args.environment}"


def _selftest(args: argparse.Namespace) -> int:
    clients = _clients(args)
    stack = _stack(args)
    outputs = stack_outputs(clients("cloudformation"), stack)
    print(
        f"invoke-audit selftest: stack {stack}, waiting up to {args.timeout:.0f} s for the verdict"
    )
    return SelfTest(clients, outputs, sys.stdout, timeout=args.timeout, poll=args.poll).run()


def _status(args: argparse.Namespace) -> int:
    if args.days < 1 or args.last < 0:
        raise InputError("--days must be at least 1 and --last at least 0")
    clients = _clients(args)
    outputs = stack_outputs(clients("cloudformation"), _stack(args))
    return print_status(
        clients, outputs, sys.stdout, days=args.days, limit=args.last, now=datetime.now(UTC)
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--environment", default="dev", help="the deployment's environment (default dev)"
    )
    parser.add_argument("--stack", help="the stack name (default InvokeAudit-<environment>)")
    parser.add_argument("--region", help="the stack's region (default: AWS_REGION / profile)")


def register(subparsers: Any) -> None:
    selftest = subparsers.add_parser(
        "selftest",
        help="invoke the canary and follow its verdict through the pipeline",
        description="Invoke the stack's canary function (its own rule, monitor mode: nothing is "
        "changed) as a caller not on its list, wait for the validator's verdict on that exact "
        "Invoke, and print each hop with its latency, or the hop that is silent. Exit 0: "
        "verdict found and reported; 1: a hop failed or stayed silent; 2: the stack cannot be read.",
    )
    _common(selftest)
    selftest.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS")
    selftest.add_argument(
        "--poll", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS
    )
    selftest.set_defaults(func=_selftest)
    status = subparsers.add_parser(
        "status",
        help="verdicts per rule over the last days, and the last remediations",
        description="Sum the validator's per-rule verdict metrics over the last --days days and "
        "list the last --last remediations from the backup bucket, with their undo commands.",
    )
    _common(status)
    status.add_argument("--days", type=int, default=7)
    status.add_argument("--last", type=int, default=10, metavar="N")
    status.set_defaults(func=_status)
