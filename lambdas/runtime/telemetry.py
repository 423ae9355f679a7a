"""Logs and metrics of the pipeline's functions: one JSON log line per call, EMF metrics."""

from __future__ import annotations

import json
import os
from functools import partial

from aws_lambda_powertools import Logger, Metrics

from models import names

__all__ = ["METRICS_NAMESPACE", "SERVICE_NAME", "metric_name", "telemetry"]

# Powertools reads these too; the defaults make logs and metrics complete without them.
SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", names.SERVICE_NAME)
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", names.METRICS_NAMESPACE)


def telemetry() -> tuple[Logger, Metrics]:
    """A function's Powertools Logger (one JSON line per call) and EMF Metrics.

    The log lines are ASCII JSON: a record can carry strings that Python's json decodes but
    UTF-8 cannot encode (lone surrogates), and Powertools' default serializer would fail to
    write such a line, losing it."""
    serializer = partial(json.dumps, separators=(",", ":"), ensure_ascii=True, default=str)
    logger = Logger(service=SERVICE_NAME, json_serializer=serializer)
    return logger, Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def metric_name(value: str) -> str:
    """`failed-call` -> `FailedCall`: one EMF metric per verdict (or outcome)."""
    return "".join(part.title() for part in str(value).split("-"))
