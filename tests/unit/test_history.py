"""History's pure parts: a caller tuple judged by decide, the query text in both dialects, the
Athena DDL against AWS's documented CloudTrail table, the output formats and the arguments."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
import sqlglot
from sqlglot import exp

from cli.allowlist_file import parse_allowlist
from cli.history import COLUMNS, render
from cli.history_query import HistoryFilter, athena_query, duckdb_query
from cli.main import main
from lambdas.core.history import TUPLE_FIELDS, CallerTuple, TupleStats, judge_tuples, tuple_record
from models.athena_table import (
    PARTITION_KEYS,
    TrailLocation,
    create_table_ddl,
    projection_parameters,
)
from models.exceptions import InputError

pytestmark = pytest.mark.unit

ACCOUNT = "111111111111"
CONFIG = parse_allowlist(
    f"""
version: 1
defaults: {{mode: enforce, unmatched: report}}
rules:
  - name: blog
    functions: ["BlogFunction"]
    allow:
      - service: s3.amazonaws.com
        source_arn: "arn:aws:s3:::examplebucket"
  - name: workflows
    functions: ["wf-*"]
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/StatesRole"
""",
    "allowlist.yaml",
)


def caller_tuple(**fields: object) -> CallerTuple:
    values: dict[str, object] = {name: None for name in TUPLE_FIELDS}
    values.update(
        event_source="lambda.amazonaws.com",
        event_name="Invoke",
        aws_region="us-east-1",
        recipient_account_id=ACCOUNT,
        no_identity=False,
    )
    values.update(fields)
    return CallerTuple(**values)  # type: ignore[arg-type]


def stats(count: int = 1) -> TupleStats:
    return TupleStats(
        count, "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", {ACCOUNT}, {"us-east-1"}
    )


# -- judging ---------------------------------------------------------------------------------


def test_each_tuple_is_judged_by_decide_with_its_count():
    s3_ok = caller_tuple(
        function_name="BlogFunction",
        source_arn="arn:aws:s3:::examplebucket",
        identity_type="AWSService",
        invoked_by="s3.amazonaws.com",
    )
    s3_bad = caller_tuple(
        function_name="BlogFunction",
        source_arn="arn:aws:s3:::otherbucket",
        identity_type="AWSService",
        invoked_by="s3.amazonaws.com",
    )
    step_functions = caller_tuple(  # null requestParameters: the version ARN names the function
        function_version=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:wf-ingest:3",
        resource_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:wf-ingest",
        identity_type="AssumedRole",
        identity_account=ACCOUNT,
        invoked_by="states.amazonaws.com",
        issuer_arn=f"arn:aws:iam::{ACCOUNT}:role/StatesRole",
    )
    failed = caller_tuple(
        function_name="BlogFunction",
        error_code="AccessDenied",
        identity_type="Root",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:root",
        identity_account=ACCOUNT,
    )
    nobody = caller_tuple(function_name="wf-x", no_identity=True)
    judged = judge_tuples(
        {
            s3_ok: stats(7),
            s3_bad: stats(2),
            step_functions: stats(5),
            failed: stats(1),
            nobody: stats(3),
        },
        CONFIG,
    )
    rows = [j.to_dict() for j in judged]
    got = {(r["verdict"], r["count"], r["rule"]) for r in rows}
    assert got == {
        ("allowed", 7, "blog"),
        ("violation", 2, "blog"),
        ("allowed", 5, "workflows"),
        ("failed-call", 1, "blog"),
        ("invalid", 3, None),  # no userIdentity: judged before any rule
    }
    assert rows[0]["verdict"] == "violation"  # violations first
    step = next(r for r in rows if r["rule"] == "workflows" and r["verdict"] == "allowed")
    assert step["function"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:wf-ingest:3"
    assert step["caller"] == f"states.amazonaws.com (as arn:aws:iam::{ACCOUNT}:role/StatesRole)"
    assert step["first_seen"] == "2024-05-01T00:00:00Z" and step["accounts"] == [ACCOUNT]


def test_a_tuple_becomes_the_record_it_stands_for():
    record = tuple_record(
        caller_tuple(
            function_name="f",
            qualifier="prod",
            identity_type="AWSAccount",
            identity_account="222222222222",
        ),
        "2024-05-01T00:00:00Z",
    )
    assert record == {
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": "us-east-1",
        "recipientAccountId": ACCOUNT,
        "eventTime": "2024-05-01T00:00:00Z",
        "requestParameters": {"functionName": "f", "qualifier": "prod"},
        "userIdentity": {"type": "AWSAccount", "accountId": "222222222222"},
    }


# -- the query, in both dialects ---------------------------------------------------------------


def test_the_athena_query_parses_as_trino_and_groups_by_every_tuple_field():
    where = HistoryFilter(
        since=date(2024, 1, 1),
        until=date(2024, 12, 31),
        accounts=(ACCOUNT,),
        regions=("eu-west-1",),
    )
    sql = athena_query("invoke_audit", "cloudtrail", where)
    tree = sqlglot.parse_one(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Select)
    assert [s.alias for s in tree.selects][: len(TUPLE_FIELDS)] == list(TUPLE_FIELDS)
    assert len(tree.args["group"].expressions) == len(TUPLE_FIELDS)
    table = tree.find(exp.Table)
    assert table is not None and (table.db, table.name) == ("invoke_audit", "cloudtrail")
    text = " ".join(sql.split())
    # partition pruning on the projected keys, a day of slack for late delivery; exact times
    assert "\"timestamp\" >= '2023/12/31'" in text and "\"timestamp\" <= '2025/01/01'" in text
    assert "eventtime >= '2024-01-01'" in text and "eventtime < '2025-01-01'" in text
    assert f"account IN ('{ACCOUNT}')" in text and "region IN ('eu-west-1')" in text


def test_the_duckdb_query_is_the_trino_text_transpiled():
    sql = duckdb_query(HistoryFilter(since=date(2024, 1, 1)))
    tree = sqlglot.parse_one(sql, read="duckdb", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Select)
    assert [s.alias for s in tree.selects][: len(TUPLE_FIELDS)] == list(TUPLE_FIELDS)
    assert "json_extract_scalar" not in sql.lower() and "->>" in sql  # DuckDB's JSON operator
    assert "LIST_FILTER" in sql  # Trino's filter(array, lambda)


def test_the_duckdb_query_runs_on_duckdb():
    import duckdb

    db = duckdb.connect()
    db.execute(
        """CREATE TABLE cloudtrail AS SELECT
        'lambda.amazonaws.com' AS eventsource, 'Invoke' AS eventname, 'us-east-1' AS awsregion,
        '111111111111' AS recipientaccountid, NULL::VARCHAR AS errorcode,
        '{"functionName": "f"}'::JSON AS requestparameters, NULL::JSON AS additionaleventdata,
        {'type': 'AssumedRole', 'arn': 'arn:aws:sts::1:assumed-role/r/s', 'accountId': '1',
         'invokedBy': NULL::VARCHAR, 'sessionContext': {'sessionIssuer': {'arn': 'arn:aws:iam::1:role/r'}}}
         AS useridentity,
        [{'ARN': 'arn:aws:lambda:us-east-1:1:function:f', 'accountId': '1'}] AS resources,
        '2024-01-02T00:00:00Z' AS eventtime, '111111111111' AS account, 'us-east-1' AS region,
        '2024/01/02' AS "timestamp"
        FROM range(3)"""
    )
    rows = db.execute(duckdb_query(HistoryFilter(since=date(2024, 1, 1)))).fetchall()
    assert len(rows) == 1
    row = dict(
        zip(
            [*TUPLE_FIELDS, "records", "first_seen", "last_seen", "accounts", "regions"],
            rows[0],
            strict=True,
        )
    )
    assert row["function_name"] == "f" and row["records"] == 3
    assert row["identity_arn"] is None  # the issuer names the role: the session ARN is dropped
    assert row["resource_arn"] == "arn:aws:lambda:us-east-1:1:function:f"
    assert row["accounts"] == "111111111111" and row["regions"] == "us-east-1"
    assert db.execute(duckdb_query(HistoryFilter(since=date(2024, 1, 3)))).fetchall() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"accounts": ("12",)}, "12-digit"),
        ({"accounts": ("111111111111' OR 1=1 --",)}, "12-digit"),
        ({"regions": ("us-east-1'",)}, "region"),
        ({"since": date(2024, 2, 1), "until": date(2024, 1, 1)}, "after"),
    ],
)
def test_filter_values_are_checked_before_they_become_sql(fields, message):
    with pytest.raises(InputError, match=message):
        HistoryFilter(**fields)
    with pytest.raises(InputError, match="--table"):
        athena_query("db", 'x"; DROP TABLE y; --', HistoryFilter())


# -- the table -----------------------------------------------------------------------------------

# The CloudTrail table as AWS documents it for Athena, copied by hand from "Create the table for
# CloudTrail logs in Athena using partition projection" (Amazon Athena User Guide,
# https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table-partition-projection.html).
DOCUMENTED_COLUMNS = """
eventversion STRING
useridentity STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING,
  invokedby: STRING, accesskeyid: STRING, username: STRING,
  onbehalfof: STRUCT<userid: STRING, identitystorearn: STRING>,
  sessioncontext: STRUCT<attributes: STRUCT<mfaauthenticated: STRING, creationdate: STRING>,
    sessionissuer: STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING, username: STRING>,
    ec2roledelivery: STRING,
    webidfederationdata: STRUCT<federatedprovider: STRING, attributes: MAP<STRING, STRING>>>>
eventtime STRING
eventsource STRING
eventname STRING
awsregion STRING
sourceipaddress STRING
useragent STRING
errorcode STRING
errormessage STRING
requestparameters STRING
responseelements STRING
additionaleventdata STRING
requestid STRING
eventid STRING
readonly STRING
resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>
eventtype STRING
apiversion STRING
recipientaccountid STRING
serviceeventdetails STRING
sharedeventid STRING
vpcendpointid STRING
vpcendpointaccountid STRING
eventcategory STRING
addendum STRUCT<reason: STRING, updatedfields: STRING, originalrequestid: STRING, originaleventid: STRING>
sessioncredentialfromconsole STRING
edgedevicedetails STRING
tlsdetails STRUCT<tlsversion: STRING, ciphersuite: STRING, clientprovidedhostheader: STRING>
"""


def _documented() -> list[tuple[str, str]]:
    columns: list[tuple[str, str]] = []
    for line in DOCUMENTED_COLUMNS.strip().splitlines():
        if line.startswith(" "):
            name, kind = columns[-1]
            columns[-1] = (name, kind + " " + line.strip())
        else:
            name, kind = line.split(" ", 1)
            columns.append((name, kind))
    return [(n, exp.DataType.build(k, dialect="hive").sql("hive")) for n, k in columns]


LOCATION = TrailLocation(
    bucket="trail-bucket",
    accounts=(ACCOUNT, "222222222222"),
    regions=("us-east-1", "eu-west-1"),
    organization_id="o-abcdefghij",
)


def test_the_ddl_has_the_documented_columns_serde_and_projected_partitions():
    ddl = create_table_ddl("invoke_audit", "cloudtrail", LOCATION)
    tree = sqlglot.parse_one(ddl, read="athena", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, exp.Create) and tree.args["kind"] == "TABLE"
    schema = tree.this
    columns = [(c.name, c.args["kind"].sql("hive")) for c in schema.expressions]
    assert columns == _documented()
    assert "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'" in ddl
    assert "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'" in ddl
    assert "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'" in ddl
    assert [name for name, _ in PARTITION_KEYS] == ["account", "region", "timestamp"]
    assert "LOCATION 's3://trail-bucket/AWSLogs/o-abcdefghij/'" in ddl


def test_partition_projection_covers_account_region_and_date():
    properties = projection_parameters(LOCATION)
    assert properties["projection.enabled"] == "true"
    assert properties["projection.account.values"] == f"{ACCOUNT},222222222222"
    assert properties["projection.region.values"] == "us-east-1,eu-west-1"
    assert properties["projection.timestamp.format"] == "yyyy/MM/dd"
    assert properties["projection.timestamp.range"] == "2020/01/01,NOW"
    assert (
        properties["storage.location.template"]
        == "s3://trail-bucket/AWSLogs/o-abcdefghij/${account}/CloudTrail/${region}/${timestamp}"
    )


def test_print_ddl_needs_a_bucket_and_checks_its_values(capsys):
    assert main(["history", "--print-ddl", "--accounts", ACCOUNT, "--regions", "us-east-1"]) == 2
    assert "--bucket" in capsys.readouterr().err
    assert (
        main(
            [
                "history",
                "--print-ddl",
                "--bucket",
                "b'x",
                "--accounts",
                ACCOUNT,
                "--regions",
                "us-east-1",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.count("\n") == 1
    assert (
        main(
            [
                "history",
                "--print-ddl",
                "--bucket",
                "trail-bucket",
                "--accounts",
                ACCOUNT,
                "--regions",
                "us-east-1",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("CREATE EXTERNAL TABLE `invoke_audit`.`cloudtrail`")


# -- output ---------------------------------------------------------------------------------------


def _judged():
    evil = caller_tuple(
        function_name="BlogFunction",
        identity_type="IAMUser",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:user/<script>",
        identity_account=ACCOUNT,
    )
    by_arn = caller_tuple(
        function_name=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:BlogFunction",
        identity_type="IAMUser",
        identity_arn=f"arn:aws:iam::{ACCOUNT}:user/<script>",
        identity_account=ACCOUNT,
    )
    return judge_tuples({evil: stats(2), by_arn: stats(3)}, CONFIG)


def test_jsonl_has_one_object_per_tuple_with_the_promised_keys():
    out = io.StringIO()
    render(_judged(), "jsonl", "", out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert {
            "verdict",
            "count",
            "function",
            "caller",
            "rule",
            "reason",
            "first_seen",
            "last_seen",
        } <= set(row)
    assert sorted(r["count"] for r in rows) == [2, 3]


def test_table_and_html_merge_tuples_judged_alike_and_html_escapes():
    out = io.StringIO()
    render(_judged(), "table", "", out)
    lines = out.getvalue().splitlines()
    assert lines[0].split()[: len(COLUMNS) - 1] == [c.upper() for c in COLUMNS[:-1]]
    assert lines[1].split()[:2] == ["violation", "5"]  # name and ARN: the same function
    html = io.StringIO()
    render(_judged(), "html", "summary & more", html)
    page = html.getvalue()
    assert "user/&lt;script&gt;" in page and "<script>" not in page
    assert "summary &amp; more" in page and "5 violation" in page


def test_athena_rows_read_strings_and_nulls():
    from cli.history import athena_rows

    row = [None] * len(TUPLE_FIELDS) + [
        "4",
        "2024-01-01T00:00:00Z",
        "2024-01-02T00:00:00Z",
        f"{ACCOUNT},222222222222",
        "us-east-1",
    ]
    row[TUPLE_FIELDS.index("no_identity")] = "true"
    row[TUPLE_FIELDS.index("function_name")] = "f"
    ((key, found),) = athena_rows([tuple(row)])
    assert key.no_identity is True and key.function_name == "f"
    assert found.records == 4 and found.accounts == {ACCOUNT, "222222222222"}
    with pytest.raises(InputError, match="columns"):
        athena_rows([("x",)])


def test_bad_arguments_are_one_line_and_exit_2(capsys, tmp_path):
    assert main(["history", "--engine", "duckdb"]) == 2
    assert "PATH" in capsys.readouterr().err
    assert main(["history", "--engine", "athena", str(tmp_path)]) == 2
    assert "PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["history", "--since", "yesterday", str(tmp_path)])
    assert stopped.value.code == 2
    assert "not a date" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("resources", "region", "expected"),
    [
        (
            [{"ARN": "arn:aws-cn:lambda:cn-north-1:111111111111:function:f"}],
            "cn-north-1",
            "arn:aws-cn:",
        ),
        (None, "cn-north-1", "arn:aws-cn:"),  # no resource: the region's partition
        (None, "us-gov-west-1", "arn:aws-us-gov:"),
        (None, "eu-west-1", "arn:aws:"),
    ],
)
def test_a_function_named_by_name_gets_its_partition_not_aws(resources, region, expected):
    from lambdas.core.decide import decide

    record = {
        "eventSource": "lambda.amazonaws.com",
        "eventName": "Invoke",
        "awsRegion": region,
        "recipientAccountId": ACCOUNT,
        "requestParameters": {"functionName": "f"},
        "resources": resources,
        "userIdentity": {"type": "AWSAccount", "accountId": "222222222222"},
    }
    function = decide(record, CONFIG).function
    assert function is not None and function.startswith(expected)
