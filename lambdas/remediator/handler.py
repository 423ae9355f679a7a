"""The remediator Lambda: SQS FIFO batches of violations, reported back as partial failures.

- Rate limit reached: the message is hidden until the next hour's budget opens
  (ChangeMessageVisibility, at most SQS's 12 hours) and reported failed, so it comes back
  then instead of being retried into the dead-letter queue while the budget is spent.
- A policy Lambda refuses as public (PublicPolicyException): retrying cannot help, so the
  message goes straight to the dead-letter queue with that reason, and people are told what
  to change in the allowlist.
- Anything else that fails (AccessDenied, another refused policy, anything unknown) is
  returned to the queue with its reason logged, and after the queue's maxReceiveCount lands in
  the dead-letter queue. Later messages of the same group (the same resource) wait behind it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    SqsFifoPartialProcessor,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.errors import PolicyRejectedError
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.queue import DeadLetters, MessageDelays, queue_url_of
from lambdas.core.decide import decide
from lambdas.core.findings import FindingSubject, caller_of_record
from lambdas.core.notices import public_policy_notice
from lambdas.remediation.broken import BrokenWatch
from lambdas.remediation.remediate import (
    Outcome,
    RateLimitedError,
    RemediationResult,
    Remediator,
    Violation,
    seconds_to_next_window,
)
from lambdas.remediation.wiring import build_broken_watch, build_remediator
from lambdas.runtime.findings import FindingsPublisher, account_for, publisher_from_env
from lambdas.runtime.settings import findings_enabled, own_account, runtime
from lambdas.runtime.telemetry import metric_name, telemetry
from models.exceptions import ConfigError

__all__ = ["lambda_handler"]

logger, metrics = telemetry()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError([f"environment variable {name} is not set"])
    return value


def _wiring(account: str | None) -> dict[str, Any]:
    """What the remediator and the broken-caller watch are both built from."""
    return {
        "factory": ClientFactory(),
        "backup_bucket": _required("BACKUP_BUCKET"),
        "rate_table": _required("RATE_TABLE"),
        "topic_arn": os.environ.get("TOPIC_ARN"),
        "own_account": account,
        "role_name": os.environ.get("REMEDIATION_ROLE_NAME") or None,
        "own_functions": runtime(account).own_functions,
        # The HMAC key every backup is signed with (the stack always sets it).
        "mac_key": os.environ.get("BACKUP_MAC_KEY_ARN") or None,
    }


@cache
def _remediator(account: str | None) -> Remediator:
    return build_remediator(runtime(account).config, **_wiring(account))


@cache
def _broken_watch(account: str | None) -> BrokenWatch:
    return build_broken_watch(runtime(account).config, **_wiring(account))


def _count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@cache
def _publisher(function_arn: str) -> FindingsPublisher | None:
    return publisher_from_env(function_arn)


def _resolve_finding(
    violation: Violation, result: RemediationResult, function_arn: str, account: str | None
) -> None:
    """A rewrite made: the violation's finding PASSED / RESOLVED (when findings are on),
    naming the owner and ticket of the expired exception its record is judged under."""
    if not findings_enabled() or result.outcome is not Outcome.REMEDIATED:
        return
    try:
        publisher = _publisher(function_arn)
        if publisher is None:
            return
        settings = runtime(account)
        judged = decide(violation.record, settings.config, own_functions=settings.own_functions)
        same = judged.function == violation.function and judged.caller == violation.caller
        subject = FindingSubject(
            function=violation.function,
            caller=violation.caller or "unknown caller",
            rule=result.rule,
            mode="enforce",
            reason=violation.reason or result.detail,
            facts=caller_of_record(violation.record),
            event_id=violation.event_id,
            event_time=violation.event_time,
            owner=judged.exception_owner if same else None,
            ticket=judged.exception_ticket if same else None,
        )
        published = publisher.resolved(subject, backup=result.backup, detail=result.detail)
    except Exception as error:  # a bad setting: reported, the remediation stands
        logger.exception(f"findings not sent: {error}")
        _count("FindingsFailed")
        return
    account_for(published, logger, _count)


_POLICY_FIELDS = ("policy_before", "policy_after")


def _delay_to_next_window(record: SQSRecord, where: dict[str, Any], now: datetime) -> None:
    """Hide a rate-limited message until the next hour; a failure to do so leaves it to
    the queue's own visibility timeout (it is still reported failed, never dropped)."""
    factory = ClientFactory()
    try:
        delays = MessageDelays(factory.client("sqs"), queue_url_of(record.event_source_arn))
        seconds = delays.delay(record.receipt_handle, seconds_to_next_window(now))
    except Exception as error:  # the message is reported failed either way
        logger.error(f"could not delay the message to the next window: {error}", extra=where)
        return
    logger.info(f"delayed {seconds} s, to the next hour's budget", extra=where)


def _dead_letter_now(
    record: SQSRecord, violation: Violation, error: PolicyRejectedError, where: dict[str, Any]
) -> None:
    """A policy AWS refuses as public: no retry helps. To the DLQ with the reason, and tell
    people what to change. If either step fails, the message is retried as usual."""
    url = _required("DEAD_LETTER_QUEUE_URL")
    factory = ClientFactory()
    reason = f"PublicPolicyException: {error.aws_message or error}"
    DeadLetters(factory.client("sqs"), url).send(
        record.body,
        reason=reason,
        group_id=record.attributes.message_group_id or violation.function,
        deduplication_id=record.message_id,
    )
    topic = os.environ.get("TOPIC_ARN")
    if topic:
        subject, text = public_policy_notice(
            violation.function,
            violation.caller,
            reason,
            violation.event_id,
            violation.event_time,
        )
        Notifier(factory.client("sns"), topic).publish(
            subject, text, {"function": violation.function, "reason": reason}
        )
    _count("PublicPolicyRefused")
    logger.error(reason, extra=where | {"outcome": "dead-lettered"})


def _remediate(
    remediator: Remediator, record: SQSRecord, account: str | None = None, function_arn: str = ""
) -> None:
    where = {"message_id": record.message_id, "group": record.attributes.message_group_id}
    violation: Violation | None = None
    try:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        violation = Violation.from_message(json.loads(record.body), receive_count=receive_count)
        if violation.kind == "denied":
            checked = _broken_watch(account).check(violation)
            _count(metric_name(checked.verdict))
            logger.info(checked.detail, extra=where | checked.to_dict())
            return
        result = remediator.remediate(violation)
    except RateLimitedError as error:
        _count("RateLimitTripped")
        logger.error(str(error), extra=where | {"outcome": "rate-limited"})
        _delay_to_next_window(record, where, remediator.clock())
        raise
    except PolicyRejectedError as error:
        if error.code != "PublicPolicyException" or violation is None:
            _count("RemediationFailed")
            logger.exception(f"remediation failed: {error}", extra=where | {"outcome": "failed"})
            raise
        _dead_letter_now(record, violation, error, where)
        return
    except Exception as error:
        _count("RemediationFailed")
        logger.exception(f"remediation failed: {error}", extra=where | {"outcome": "failed"})
        raise
    _count(metric_name(result.outcome))
    _resolve_finding(violation, result, function_arn, account)
    if result.notification_error:
        _count("NotificationFailed")
        logger.error(f"notification failed: {result.notification_error}", extra=where)
    # The full policies are in the backup the result names; in the logs only at DEBUG.
    logged = result.to_dict()
    policies = {key: logged.pop(key) for key in _POLICY_FIELDS if key in logged}
    logger.info(result.detail, extra=where | logged)
    if policies:
        logger.debug("policies before and after", extra=where | policies)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    account = own_account(context)
    remediator = _remediator(account)
    return process_partial_response(
        event=event,
        record_handler=lambda record: _remediate(
            remediator, record, account, getattr(context, "invoked_function_arn", "") or ""
        ),
        processor=processor,
        context=context,
    )
