"""The validator Lambda: one EventBridge CloudTrail envelope -> one decision, logged as one JSON
line and counted in EMF metrics; a violation is queued (enforce) or notified (monitor).

The daily schedule rule's event is not an envelope: it starts the scheduled run
(`lambdas.validator.scheduled`) instead.

boto3 is imported only when there is a violation to send (lambdas.runtime.report) or a
scheduled run. With Security Hub findings on (SECURITY_HUB_FINDINGS), each violation also
becomes a finding, sent before the violation is queued so that the remediator's resolution
comes after it; a finding that fails is logged and counted, never failing the decision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.core.decide import Verdict
from lambdas.runtime.settings import Runtime, findings_enabled, own_account, runtime
from lambdas.runtime.telemetry import SERVICE_NAME, metric_name, telemetry
from lambdas.validator.envelope import is_scheduled, judge_envelope

if TYPE_CHECKING:
    from lambdas.core.decide import Decision
    from lambdas.runtime.findings import FindingsPublisher
    from lambdas.runtime.report import ViolationReporter

__all__ = ["lambda_handler"]

logger, metrics = telemetry()


@cache
def _reporter() -> ViolationReporter:
    from lambdas.runtime.report import reporter_from_env

    return reporter_from_env()


@cache
def _publisher(function_arn: str) -> FindingsPublisher | None:
    from lambdas.runtime.findings import publisher_from_env

    return publisher_from_env(function_arn)


def _count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _finding(decision: Decision, record: Any, context: Any) -> None:
    """The violation's Security Hub finding (when on); failures logged and counted."""
    if not findings_enabled():
        return
    from lambdas.runtime.findings import account_for

    try:
        publisher = _publisher(getattr(context, "invoked_function_arn", "") or "")
        if publisher is None:
            return
        published = publisher.violation(decision, record)
    except Exception as error:  # a bad setting: reported, the decision stands
        logger.exception(f"findings not sent: {error}")
        _count("FindingsFailed")
        return
    account_for(published, logger, _count)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = runtime(own_account(context))
    if is_scheduled(event):
        return _scheduled(settings, getattr(context, "invoked_function_arn", "") or "")
    decision, record = judge_envelope(
        event,
        settings.config,
        own_functions=settings.own_functions,
        trusted_accounts=settings.trusted_accounts,
        watched_regions=settings.watched_regions,
        now=datetime.now(UTC),
    )
    if decision.rule:  # also counted per rule (what `invoke-audit status` reads)
        metrics.add_dimensions(service=SERVICE_NAME, rule=decision.rule)
    metrics.add_metric(name=metric_name(decision.verdict), unit=MetricUnit.Count, value=1)
    # The request id of the Invoke: `invoke-audit selftest` finds its verdict by it.
    request_id = record.get("requestID") if isinstance(record, dict) else None
    result = decision.to_dict() | {"request_id": request_id, "action": None}
    if decision.verdict is Verdict.VIOLATION:
        _finding(decision, record, context)
        try:
            result["action"] = _reporter().report(decision, record)
        except Exception:
            logger.exception(decision.reason, extra=result | {"action": "failed"})
            raise
        metrics.add_metric(
            name=f"Violation{result['action'].title()}", unit=MetricUnit.Count, value=1
        )
    elif decision.denied_allowed and decision.mode == "enforce":
        # An allowed caller denied: the remediator checks whether a rewrite it made broke it.
        try:
            result["action"] = _reporter().report_denied(decision, record)
        except Exception:
            logger.exception(decision.reason, extra=result | {"action": "failed"})
            raise
    logger.info(decision.reason, extra=result)
    return result


def _scheduled(settings: Runtime, function_arn: str) -> dict[str, Any]:
    from lambdas.validator.scheduled import ScheduledRun, run_scheduled

    def failed(task: str, error: Exception) -> None:
        logger.exception(f"scheduled task {task} failed", extra={"task": task})
        metrics.add_metric(name="ScheduledTaskFailed", unit=MetricUnit.Count, value=1)

    result = {
        "scheduled": run_scheduled(
            ScheduledRun(
                settings.config,
                datetime.now(UTC),
                function_arn=function_arn,
                own_functions=settings.own_functions,
            ),
            on_error=failed,
        )
    }
    logger.info("scheduled run", extra=result)
    return result
