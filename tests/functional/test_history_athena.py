"""`history --engine athena`: the Athena adapter against moto's Athena (query states, results
set through moto's results API, the stack outputs from moto's CloudFormation) and against
botocore's Stubber for what moto does not do (FAILED with a reason, CANCELLED, throttling,
result pages, Ctrl-C)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws
from moto.moto_api import state_manager

from cli.history import OUTPUT_DATABASE, OUTPUT_TABLE, OUTPUT_WORKGROUP, run_history
from cli.history_query import HistoryFilter, athena_query
from cli.main import build_parser
from lambdas.adapters.athena import AthenaQuery, AthenaQueryError, StackOutputs
from lambdas.adapters.errors import ThrottledError
from lambdas.core.history import TUPLE_FIELDS

pytestmark = pytest.mark.functional

REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"
ACCOUNT = "111111111111"
COLUMNS = (*TUPLE_FIELDS, "records", "first_seen", "last_seen", "accounts", "regions")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield
    state_manager.unset_transition("athena::execution")


def athena_row(**fields: str | None) -> list[str | None]:
    row: dict[str, str | None] = {name: None for name in COLUMNS}
    row.update(
        event_source="lambda.amazonaws.com",
        event_name="Invoke",
        aws_region=REGION,
        recipient_account_id=ACCOUNT,
        no_identity="false",
        first_seen="2024-05-01T10:00:00Z",
        last_seen="2024-05-09T10:00:00Z",
        accounts=ACCOUNT,
        regions=REGION,
    )
    row.update(fields)
    return [row[name] for name in COLUMNS]


# Three tuples as Athena returns them (every value a string; NULL has no VarCharValue).
ROWS = [
    athena_row(  # S3 from the allowed bucket: allowed by blog-s3-trigger
        function_name="BlogFunction",
        source_arn="arn:aws:s3:::examplebucket",
        source_account="123456789012",
        identity_type="AWSService",
        invoked_by="s3.amazonaws.com",
        records="120",
    ),
    athena_row(  # an IAM user: a violation of blog-s3-trigger
        function_name="BlogFunction",
        identity_type="IAMUser",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:user/mallory",
        identity_account=ACCOUNT,
        records="3",
    ),
    athena_row(  # no rule covers it
        function_name="reports",
        identity_type="AWSAccount",
        identity_account="222222222222",
        records="9",
    ),
]


def _data(values: list[str | None]) -> dict[str, Any]:
    return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}


def set_moto_results(rows: list[list[str | None]]) -> None:
    """moto's results API: the next query's results (Athena's first row is the header)."""
    body: dict[str, Any] = {
        "account_id": MOTO_ACCOUNT,
        "region": REGION,
        "results": [
            {
                "rows": [_data(list(COLUMNS)), *(_data(r) for r in rows)],
                "column_info": [{"Name": c, "Type": "varchar"} for c in COLUMNS],
            }
        ],
    }
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json=body, timeout=5
    )
    assert response.status_code == 201


def workgroup(client: Any) -> str:
    client.create_work_group(
        Name="invoke-audit-history",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://results-bucket/q/"}},
    )
    return "invoke-audit-history"


def test_a_query_is_polled_through_its_states_and_its_results_read(aws: None) -> None:
    client = boto3.client("athena", region_name=REGION)
    group = workgroup(client)
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": 2})
    set_moto_results(ROWS)
    pauses: list[float] = []
    states: list[str] = []
    outcome = AthenaQuery(client, sleep=pauses.append).run(
        athena_query("invoke_audit", "cloudtrail", HistoryFilter(since=date(2024, 5, 1))),
        database="invoke_audit",
        workgroup=group,
        on_progress=lambda state, scanned: states.append(state),
    )
    # polled until done, through every state moto's manual progression shows
    assert states[0] == "QUEUED" and "RUNNING" in states and states[-1] == "SUCCEEDED"
    assert states == sorted(states, key=["QUEUED", "RUNNING", "SUCCEEDED"].index)
    assert len(pauses) == len(states) - 1
    assert pauses == sorted(pauses) and pauses[0] < pauses[-1]  # backoff grows
    assert outcome.columns == COLUMNS
    assert [row[TUPLE_FIELDS.index("function_name")] for row in outcome.rows] == [
        "BlogFunction",
        "BlogFunction",
        "reports",
    ]
    execution = client.get_query_execution(QueryExecutionId=outcome.execution_id)
    sent = execution["QueryExecution"]
    assert sent["QueryExecutionContext"]["Database"] == "invoke_audit"
    assert '"invoke_audit"."cloudtrail"' in sent["Query"]


def _stack(outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="InvokeAudit-dev", TemplateBody=json.dumps(template)
    )


def test_history_on_athena_judges_the_tuples_with_the_stack_outputs_as_defaults(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    client = boto3.client("athena", region_name=REGION)
    group = workgroup(client)
    _stack({OUTPUT_DATABASE: "invoke_audit", OUTPUT_TABLE: "cloudtrail", OUTPUT_WORKGROUP: group})
    set_moto_results(ROWS)
    args = build_parser().parse_args(
        ["history", "--engine", "athena", "--format", "jsonl", "--since", "2024-05-01"]
    )
    out, err = io.StringIO(), io.StringIO()
    status = run_history(args, out, err, lambda service: boto3.client(service, region_name=REGION))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 1  # a violation
    assert [(r["verdict"], r["count"], r["rule"]) for r in rows] == [
        ("violation", 3, "blog-s3-trigger"),
        ("unmonitored", 9, None),
        ("allowed", 120, "blog-s3-trigger"),
    ]
    assert rows[0]["caller"] == f"arn:aws:iam::{ACCOUNT}:user/mallory"
    assert rows[0]["first_seen"] == "2024-05-01T10:00:00Z"
    assert "scanned" in err.getvalue() and "$5/TB" in err.getvalue()
    (execution_id,) = client.list_query_executions()["QueryExecutionIds"]
    assert (
        client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["WorkGroup"]
        == group
    )


def test_without_stack_outputs_or_flags_the_error_says_what_to_give(aws: None) -> None:
    _stack({"QueueUrl": "https://sqs.example/queue"})
    args = build_parser().parse_args(["history", "--engine", "athena"])
    with pytest.raises(Exception, match="--database, --table, --workgroup"):
        run_history(
            args, io.StringIO(), io.StringIO(), lambda s: boto3.client(s, region_name=REGION)
        )


def test_stack_outputs_reads_outputs(aws: None) -> None:
    _stack({OUTPUT_DATABASE: "db"})
    outputs = StackOutputs(boto3.client("cloudformation", region_name=REGION)).read(
        "InvokeAudit-dev"
    )
    assert outputs == {OUTPUT_DATABASE: "db"}


# -- Stubber: what moto does not do ------------------------------------------------------------


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "athena", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client, Stubber(client)


QUERY = {"QueryString": "SELECT 1", "QueryExecutionContext": {"Database": "db"}, "WorkGroup": "wg"}


def _execution(
    execution_id: str, state: str, scanned: int = 0, reason: str | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    return {
        "QueryExecution": {
            "QueryExecutionId": execution_id,
            "Status": status,
            "Statistics": {"DataScannedInBytes": scanned},
        }
    }


def _run(client: Any, **kwargs: Any) -> Any:
    return AthenaQuery(client, sleep=lambda _: None, **kwargs).run(
        "SELECT 1", database="db", workgroup="wg"
    )


def test_a_failed_query_raises_with_athenas_reason() -> None:
    client, stub = stubbed()
    qid = str(uuid.uuid4())
    stub.add_response("start_query_execution", {"QueryExecutionId": qid}, QUERY)
    stub.add_response("get_query_execution", _execution(qid, "RUNNING"), {"QueryExecutionId": qid})
    reason = "Query exhausted resources at this scale factor"
    stub.add_response(
        "get_query_execution", _execution(qid, "FAILED", 10, reason), {"QueryExecutionId": qid}
    )
    with stub, pytest.raises(AthenaQueryError, match="exhausted resources") as failed:
        _run(client)
    assert failed.value.code == "FAILED"
    stub.assert_no_pending_responses()


def test_a_cancelled_query_raises() -> None:
    client, stub = stubbed()
    qid = str(uuid.uuid4())
    stub.add_response("start_query_execution", {"QueryExecutionId": qid}, QUERY)
    stub.add_response(
        "get_query_execution",
        _execution(qid, "CANCELLED", reason="Query cancelled by user"),
        {"QueryExecutionId": qid},
    )
    with stub, pytest.raises(AthenaQueryError, match="CANCELLED"):
        _run(client)


def test_throttled_calls_are_retried_then_given_up() -> None:
    client, stub = stubbed()
    qid = str(uuid.uuid4())
    stub.add_client_error("start_query_execution", "ThrottlingException", "Rate exceeded", 400)
    stub.add_response("start_query_execution", {"QueryExecutionId": qid}, QUERY)
    stub.add_client_error("get_query_execution", "TooManyRequestsException", "slow down", 400)
    stub.add_response(
        "get_query_execution", _execution(qid, "SUCCEEDED", 2048), {"QueryExecutionId": qid}
    )
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [], "ResultSetMetadata": {"ColumnInfo": []}}},
        {"QueryExecutionId": qid, "MaxResults": 1000},
    )
    with stub:
        outcome = _run(client)
    assert outcome.bytes_scanned == 2048 and outcome.rows == []
    client, stub = stubbed()
    for _ in range(3):
        stub.add_client_error("start_query_execution", "ThrottlingException", "Rate exceeded", 400)
    with stub, pytest.raises(ThrottledError):
        _run(client, throttle_attempts=3)


def test_results_are_read_page_by_page() -> None:
    client, stub = stubbed()
    qid = str(uuid.uuid4())
    info = {"ColumnInfo": [{"Name": "a", "Type": "varchar"}, {"Name": "b", "Type": "varchar"}]}
    stub.add_response("start_query_execution", {"QueryExecutionId": qid}, QUERY)
    stub.add_response(
        "get_query_execution", _execution(qid, "SUCCEEDED", 3 * 1024**4), {"QueryExecutionId": qid}
    )
    header = {"Data": [{"VarCharValue": "a"}, {"VarCharValue": "b"}]}
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [header, {"Data": [{"VarCharValue": "1"}, {}]}],
                "ResultSetMetadata": info,
            },
            "NextToken": "page-2",
        },
        {"QueryExecutionId": qid, "MaxResults": 1000},
    )
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [{"Data": [{"VarCharValue": "2"}, {"VarCharValue": ""}]}],
                "ResultSetMetadata": info,
            }
        },
        {"QueryExecutionId": qid, "MaxResults": 1000, "NextToken": "page-2"},
    )
    with stub:
        outcome = _run(client)
    assert outcome.columns == ("a", "b")
    assert outcome.rows == [("1", None), ("2", "")]  # NULL and the empty string stay apart
    assert outcome.cost_usd == pytest.approx(15.0)  # 3 TB at $5/TB


def test_ctrl_c_stops_the_query() -> None:
    client, stub = stubbed()
    qid = str(uuid.uuid4())
    stub.add_response("start_query_execution", {"QueryExecutionId": qid}, QUERY)
    stub.add_response("get_query_execution", _execution(qid, "RUNNING"), {"QueryExecutionId": qid})
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": qid})

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    with stub, pytest.raises(KeyboardInterrupt):
        AthenaQuery(client, sleep=interrupted).run("SELECT 1", database="db", workgroup="wg")
    stub.assert_no_pending_responses()


def test_the_adapter_declares_the_actions_it_calls() -> None:
    assert set(AthenaQuery.IAM_ACTIONS) == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
    }


def test_duckdb_reads_s3_through_boto3_when_httpfs_is_not_installed(aws: None) -> None:
    import gzip

    from cli.history_duckdb import DuckDBHistory

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="trail-logs")
    record = {
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "eventTime": "2024-05-02T10:00:00Z",
        "awsRegion": REGION,
        "recipientAccountId": ACCOUNT,
        "requestParameters": {"functionName": "BlogFunction"},
        "userIdentity": {"type": "AWSAccount", "accountId": "222222222222"},
    }
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/05/02/log.json.gz"
    body = gzip.compress(json.dumps({"Records": [record, record]}).encode())
    s3.put_object(Bucket="trail-logs", Key=key, Body=body)
    s3.put_object(Bucket="trail-logs", Key="AWSLogs/broken.json", Body=b"{not json")
    engine = DuckDBHistory(s3=s3)
    engine.httpfs = False  # as here: the extension is not installed (it is downloaded)
    result = engine.run(["s3://trail-logs/AWSLogs/"], HistoryFilter())
    ((found, stats),) = result.aggregates.items()
    assert found.function_name == "BlogFunction" and found.identity_account == "222222222222"
    assert stats.records == 2 and stats.accounts == {ACCOUNT}
    assert len(result.errors) == 1 and result.errors[0].startswith(
        "s3://trail-logs/AWSLogs/broken.json: cannot read"
    )
