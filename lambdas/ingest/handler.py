"""The ingest Lambda: an S3 object-created notification on the trail bucket -> each log file's
records judged like the validator's, the violations queued (or notified in monitor mode).

The real-time path (EventBridge) is best effort; log files are complete. A violation seen on
both paths is queued twice at worst: the queue deduplicates on the CloudTrail eventID within
five minutes, and the remediator finds nothing left to change after that.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.log_files import TrailLogReader
from lambdas.core.decide import Verdict
from lambdas.ingest.logfiles import decisions, log_objects
from lambdas.runtime.report import ViolationReporter, reporter_from_env
from lambdas.runtime.settings import own_account, runtime
from lambdas.runtime.telemetry import metric_name, telemetry

__all__ = ["lambda_handler"]

logger, metrics = telemetry()


@cache
def _aws() -> tuple[TrailLogReader, ViolationReporter]:
    factory = ClientFactory()
    return TrailLogReader(factory.client("s3")), reporter_from_env(factory)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = runtime(own_account(context))
    reader, reporter = _aws()
    verdicts: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    files = log_objects(event)
    for bucket, key in files:
        source = f"s3://{bucket}/{key}"
        for decision, record in decisions(reader.read(bucket, key), source, settings):
            verdicts[decision.verdict.value] += 1
            if decision.verdict is Verdict.VIOLATION:
                action = reporter.report(decision, record)
                actions[action] += 1
                logger.info(
                    decision.reason, extra=decision.to_dict() | {"action": action, "source": source}
                )
    for verdict, count in verdicts.items():
        metrics.add_metric(name=metric_name(verdict), unit=MetricUnit.Count, value=count)
    for action, count in actions.items():
        metrics.add_metric(name=f"Violation{action.title()}", unit=MetricUnit.Count, value=count)
    summary = {
        "files": [f"s3://{b}/{k}" for b, k in files],
        "verdicts": dict(verdicts),
        "actions": dict(actions),
    }
    logger.info("log files judged", extra=summary)
    return summary
