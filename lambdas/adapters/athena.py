"""Amazon Athena: run one query, wait for it, page through its results.

`AthenaQuery.run` starts the query in a workgroup, polls its state with a growing pause
(backoff, capped), retries throttled calls, stops the query when the caller is interrupted
(Ctrl-C: `KeyboardInterrupt` is re-raised after StopQueryExecution), and pages through the
results with GetQueryResults' paginator. A query that ends FAILED or CANCELLED raises
`AthenaQueryError` with Athena's reason. Bytes scanned, and what they cost at the list price
of $5 per TB, come back with the rows.

`StackOutputs` reads a deployed stack's outputs (the Glue database, table and workgroup the
CDK app created), which the CLI uses as defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from lambdas.adapters._calls import call
from lambdas.adapters.errors import AwsError, ThrottledError

__all__ = ["USD_PER_TB", "AthenaQuery", "AthenaQueryError", "QueryOutcome", "StackOutputs"]

USD_PER_TB = 5.0
TB = 1024**4  # Athena bills per TB scanned (2**40 bytes), at least 10 MB per query
MIN_BILLED_BYTES = 10 * 1024**2


class AthenaQueryError(AwsError):
    """The query ended FAILED or CANCELLED; the message carries Athena's reason."""


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    execution_id: str
    state: str
    bytes_scanned: int
    columns: tuple[str, ...]
    rows: list[tuple[str | None, ...]]

    @property
    def cost_usd(self) -> float:
        """What the scan costs at $5/TB (Athena rounds up to 10 MB per query)."""
        billed = max(self.bytes_scanned, MIN_BILLED_BYTES) if self.bytes_scanned else 0
        return billed / TB * USD_PER_TB


def _with_retries(
    operation: Callable[[], dict[str, Any]], sleep: Callable[[float], None], attempts: int
) -> dict[str, Any]:
    delay = 0.5
    for attempt in range(attempts):
        try:
            return operation()
        except ThrottledError:
            if attempt == attempts - 1:
                raise
            sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


class AthenaQuery:
    """One query at a time through an injected boto3 Athena client."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StartQueryExecution",
        "athena:StopQueryExecution",
    )

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        first_poll: float = 0.5,
        max_poll: float = 5.0,
        throttle_attempts: int = 6,
    ) -> None:
        self._client = client
        self._sleep = sleep
        self._first_poll = first_poll
        self._max_poll = max_poll
        self._attempts = throttle_attempts

    def _call(self, operation: str, resource: str, fn: Any, **kwargs: Any) -> dict[str, Any]:
        return _with_retries(
            lambda: call("athena", operation, resource, fn, **kwargs), self._sleep, self._attempts
        )

    def run(
        self,
        sql: str,
        *,
        database: str,
        workgroup: str,
        output_location: str | None = None,
        on_progress: Callable[[str, int], None] | None = None,
    ) -> QueryOutcome:
        request: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": database},
            "WorkGroup": workgroup,
        }
        if output_location:
            request["ResultConfiguration"] = {"OutputLocation": output_location}
        started = self._call(
            "StartQueryExecution", workgroup, self._client.start_query_execution, **request
        )
        execution_id = str(started["QueryExecutionId"])
        try:
            execution = self._wait(execution_id, on_progress)
        except KeyboardInterrupt:
            self.stop(execution_id)
            raise
        status = execution.get("Status", {})
        state = str(status.get("State"))
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0)
        if state != "SUCCEEDED":
            reason = status.get("StateChangeReason") or "no reason given"
            raise AthenaQueryError(
                service="athena",
                operation="GetQueryExecution",
                resource=execution_id,
                code=state,
                status=0,
                message=str(reason),
            )
        columns, rows = self._results(execution_id)
        return QueryOutcome(execution_id, state, scanned, columns, rows)

    def _wait(
        self, execution_id: str, on_progress: Callable[[str, int], None] | None
    ) -> dict[str, Any]:
        delay = self._first_poll
        while True:
            execution: dict[str, Any] = self._call(
                "GetQueryExecution",
                execution_id,
                self._client.get_query_execution,
                QueryExecutionId=execution_id,
            )["QueryExecution"]
            state = execution.get("Status", {}).get("State")
            scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0)
            if on_progress is not None:
                on_progress(str(state), scanned)
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return execution
            self._sleep(delay)
            delay = min(delay * 1.5, self._max_poll)

    def stop(self, execution_id: str) -> None:
        self._call(
            "StopQueryExecution",
            execution_id,
            self._client.stop_query_execution,
            QueryExecutionId=execution_id,
        )

    def _pages(self, execution_id: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self._call(
                "GetQueryResults", execution_id, self._client.get_query_results, **kwargs
            )
            yield page
            token = page.get("NextToken")
            if not token:
                return

    def _results(self, execution_id: str) -> tuple[tuple[str, ...], list[tuple[str | None, ...]]]:
        columns: tuple[str, ...] = ()
        rows: list[tuple[str | None, ...]] = []
        header_seen = False
        for page in self._pages(execution_id):
            result = page.get("ResultSet", {})
            if not columns:
                info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = tuple(str(c["Name"]) for c in info)
            for row in result.get("Rows", []):
                values = tuple(d.get("VarCharValue") for d in row.get("Data", []))
                if not header_seen:  # the first row of a SELECT's results is the header
                    header_seen = True
                    if values == columns:
                        continue
                rows.append(values)
        return columns, rows


class StackOutputs:
    """A CloudFormation stack's outputs, as {OutputKey: OutputValue}."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("cloudformation:DescribeStacks",)

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, stack_name: str) -> dict[str, str]:
        response = call(
            "cloudformation",
            "DescribeStacks",
            stack_name,
            self._client.describe_stacks,
            StackName=stack_name,
        )
        stacks = response.get("Stacks") or [{}]
        return {
            str(o["OutputKey"]): str(o["OutputValue"])
            for o in stacks[0].get("Outputs", [])
            if "OutputKey" in o and "OutputValue" in o
        }
