"""The remediator Lambda: SQS FIFO batches of violations, reported back as partial failures.

A message that fails (rate limit reached, AccessDenied, a refused policy, anything unknown)
is returned to the queue with its reason logged, and after the queue's maxReceiveCount lands
in the dead-letter queue. Later messages of the same group (the same resource) wait behind it.
"""

from __future__ import annotations

import json
import os
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
from lambdas.remediation.remediate import RateLimitedError, Remediator, Violation
from lambdas.remediation.wiring import build_remediator
from lambdas.runtime.settings import own_account, runtime
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


@cache
def _remediator(account: str | None) -> Remediator:
    settings = runtime(account)
    return build_remediator(
        settings.config,
        factory=ClientFactory(),
        backup_bucket=_required("BACKUP_BUCKET"),
        rate_table=_required("RATE_TABLE"),
        topic_arn=os.environ.get("TOPIC_ARN"),
        own_account=account,
        role_name=os.environ.get("REMEDIATION_ROLE_NAME") or None,
        own_functions=settings.own_functions,
    )


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


_POLICY_FIELDS = ("policy_before", "policy_after")


def _remediate(remediator: Remediator, record: SQSRecord) -> None:
    where = {"message_id": record.message_id, "group": record.attributes.message_group_id}
    try:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        violation = Violation.from_message(json.loads(record.body), receive_count=receive_count)
        result = remediator.remediate(violation)
    except RateLimitedError as error:
        _count("RateLimitTripped")
        logger.error(str(error), extra=where | {"outcome": "rate-limited"})
        raise
    except Exception as error:
        _count("RemediationFailed")
        logger.exception(f"remediation failed: {error}", extra=where | {"outcome": "failed"})
        raise
    _count(metric_name(result.outcome))
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
    remediator = _remediator(own_account(context))
    return process_partial_response(
        event=event,
        record_handler=lambda record: _remediate(remediator, record),
        processor=processor,
        context=context,
    )
