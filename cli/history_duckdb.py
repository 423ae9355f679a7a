"""The history query on DuckDB (embedded): CloudTrail log files, folders, stdin and s3://.

Files are read by DuckDB's JSON reader in batches (a batch is one query over many files, run
on every core); each batch's tuples are added to the totals, and a progress line counts the
files. A CloudTrail log file (`{"Records": [...]}`), a JSON array or JSON lines of records, an
EventBridge envelope or a single record are all read, as `scan` reads them.

S3: DuckDB reads `s3://` itself when its `httpfs` extension is installed (`INSTALL httpfs`
downloads it from DuckDB's extension repository, which needs network access); without it, the
objects are listed and read through boto3, one batch at a time, into temporary files.

The table the query reads (`cloudtrail`) has the Athena table's column names; `account`,
`region` and `timestamp`, the partition keys in Athena, come from each record here
(`recipientAccountId`, `awsRegion`, and the `yyyy/MM/dd` of `eventTime`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cli.history_query import DUCKDB_TABLE, HistoryFilter, duckdb_query
from cli.sources import Source, expand, read_source
from lambdas.core.history import TUPLE_FIELDS, CallerTuple, TupleStats, merge_aggregates
from models.exceptions import InputError
from models.names import DEFAULT_PREFIX

__all__ = ["DuckDBHistory", "HistoryResult", "record_type"]

BATCH_BYTES = 256 * 1024 * 1024  # compressed bytes of local files per query
BATCH_FILES = 512
MAX_OBJECT_BYTES = 1 << 30  # one log file, decompressed, may be large

# The record fields the query reads, under CloudTrail's own names. The nested ones are read
# as JSON and shaped below: a record of another service with an odd `userIdentity` (a string,
# say) must not make the whole file unreadable.
_FIELDS = (
    ("eventTime", "VARCHAR"),
    ("eventSource", "VARCHAR"),
    ("eventName", "VARCHAR"),
    ("awsRegion", "VARCHAR"),
    ("recipientAccountId", "VARCHAR"),
    ("errorCode", "VARCHAR"),
    ("requestParameters", "JSON"),
    ("additionalEventData", "JSON"),
    ("userIdentity", "JSON"),
    ("resources", "JSON"),
)
_IDENTITY = """CASE WHEN json_type(r."userIdentity") = 'OBJECT' THEN {
  'type': r."userIdentity" ->> '$.type',
  'arn': r."userIdentity" ->> '$.arn',
  'accountId': r."userIdentity" ->> '$.accountId',
  'invokedBy': r."userIdentity" ->> '$.invokedBy',
  'sessionContext': {'sessionIssuer': {
    'arn': r."userIdentity" ->> '$.sessionContext.sessionIssuer.arn'}}} END"""
_RESOURCES = """CASE WHEN json_type(r."resources") = 'ARRAY' THEN list_transform(
  CAST(r."resources" AS JSON[]),
  lambda x: {'ARN': x ->> '$.ARN', 'accountId': x ->> '$.accountId'}) END"""


def record_type() -> str:
    return "STRUCT(" + ", ".join(f'"{name}" {kind}' for name, kind in _FIELDS) + ")"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _view(files: list[str]) -> str:
    """The `cloudtrail` view over some files: one row per record, whatever the file's shape."""
    record = record_type()
    columns = {name: kind for name, kind in _FIELDS}
    columns["Records"] = f"{record}[]"
    columns["detail"] = record
    column_spec = "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in columns.items()) + "}"
    own = "struct_pack(" + ", ".join(f'"{n}" := "{n}"' for n, _ in _FIELDS) + ")"
    file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
    return f"""
CREATE OR REPLACE TEMP VIEW {DUCKDB_TABLE} AS
WITH records AS (
  SELECT unnest(CASE WHEN "Records" IS NOT NULL THEN "Records"
                     WHEN "detail" IS NOT NULL THEN [CAST("detail" AS {record})]
                     ELSE [CAST({own} AS {record})] END) AS r
  FROM read_json({file_list}, columns = {column_spec}, format = 'auto',
                 maximum_object_size = {MAX_OBJECT_BYTES})
)
SELECT r."eventTime" AS eventtime, r."eventSource" AS eventsource, r."eventName" AS eventname,
       r."awsRegion" AS awsregion, r."recipientAccountId" AS recipientaccountid,
       r."errorCode" AS errorcode, r."requestParameters" AS requestparameters,
       r."additionalEventData" AS additionaleventdata, {_IDENTITY} AS useridentity,
       {_RESOURCES} AS resources,
       r."recipientAccountId" AS account, r."awsRegion" AS region,
       replace(substr(r."eventTime", 1, 10), '-', '/') AS "timestamp"
FROM records
"""


@dataclass(slots=True)
class HistoryResult:
    aggregates: dict[CallerTuple, TupleStats] = field(default_factory=dict)
    files: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.aggregates.values())


def _rows(cursor: Any) -> Iterator[tuple[CallerTuple, TupleStats]]:
    width = len(TUPLE_FIELDS)
    for row in cursor.fetchall():
        key = CallerTuple(*row[:width])
        count, first, last, accounts, regions = row[width:]
        yield (
            key,
            TupleStats(
                int(count),
                first,
                last,
                set(filter(None, (accounts or "").split(","))),
                set(filter(None, (regions or "").split(","))),
            ),
        )


def _batches(sources: list[Source]) -> Iterator[list[Source]]:
    batch: list[Source] = []
    size = 0
    for source in sources:
        weight = source.path.stat().st_size if source.path is not None else 8 * 1024 * 1024
        if batch and (size + weight > BATCH_BYTES or len(batch) >= BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(source)
        size += weight
    if batch:
        yield batch


class DuckDBHistory:
    """Runs the history query over files with an in-process DuckDB."""

    def __init__(
        self,
        *,
        s3: Any = None,
        progress: IO[str] | None = None,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        import duckdb  # only for this engine: keeps the CLI quick to start

        self._duckdb = duckdb
        self._db = (connect or duckdb.connect)()
        self._s3 = s3
        self._progress = progress
        self.httpfs = self._load_httpfs()
        self._labels: dict[str, str] = {}  # temporary copy -> the source it holds

    def _load_httpfs(self) -> bool:
        """True when DuckDB's own S3 support is installed (never downloaded from here)."""
        try:
            self._db.execute("LOAD httpfs")
        except self._duckdb.Error:
            return False
        return True

    def _s3_client(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3")
        return self._s3

    def _use_s3_credentials(self) -> None:
        import boto3

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise InputError("s3://: no AWS credentials found")
        frozen = credentials.get_frozen_credentials()
        parts = [
            "TYPE s3",
            f"KEY_ID {_literal(frozen.access_key)}",
            f"SECRET {_literal(frozen.secret_key)}",
            f"REGION {_literal(session.region_name or 'us-east-1')}",
        ]
        if frozen.token:
            parts.append(f"SESSION_TOKEN {_literal(frozen.token)}")
        self._db.execute(f"CREATE OR REPLACE SECRET invoke_audit_s3 ({', '.join(parts)})")

    def run(self, paths: list[str], where: HistoryFilter) -> HistoryResult:
        sources = list(expand(paths, s3=None if self.httpfs else self._s3_client_or_none(paths)))
        if self.httpfs and any(s.bucket for s in sources):
            self._use_s3_credentials()
        query = duckdb_query(where)
        result = HistoryResult()
        done = 0
        for batch in _batches(sources):
            with tempfile.TemporaryDirectory(prefix=f"{DEFAULT_PREFIX}history-") as scratch:
                files = self._local_names(batch, Path(scratch), result)
                self._aggregate(files, query, result)
            done += len(batch)
            result.files = done
            self._report(done, len(sources), result)
        if self._progress is not None and self._progress.isatty():
            self._progress.write("\n")
        return result

    def _s3_client_or_none(self, paths: list[str]) -> Any:
        return self._s3_client() if any(p.startswith("s3://") for p in paths) else None

    def _local_names(self, batch: list[Source], scratch: Path, result: HistoryResult) -> list[str]:
        """Names DuckDB can open: local paths, s3:// URLs (httpfs), else temporary copies."""
        names: list[str] = []
        for index, source in enumerate(batch):
            if source.path is not None:
                names.append(str(source.path))
            elif source.bucket is not None and self.httpfs:
                names.append(source.name)
            else:
                try:
                    data = read_source(source, self._s3_client() if source.bucket else None)
                except InputError as exc:
                    result.errors.append(str(exc))
                    continue
                gz = ".gz" if data[:2] == b"\x1f\x8b" else ""
                copy = scratch / f"{index:06d}.json{gz}"
                copy.write_bytes(data)
                self._labels[str(copy)] = source.name
                names.append(str(copy))
        return names

    def _aggregate(self, files: list[str], query: str, result: HistoryResult) -> None:
        if not files:
            return
        try:
            self._db.execute(_view(files))
            merge_aggregates(result.aggregates, _rows(self._db.execute(query)))
        except self._duckdb.Error as exc:
            if len(files) == 1:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                name = self._labels.get(files[0], files[0])
                result.errors.append(f"{name}: cannot read: {first}")
                return
            for name in files:  # find the unreadable file(s); the others still count
                self._aggregate([name], query, result)

    def _report(self, done: int, total: int, result: HistoryResult) -> None:
        stream = self._progress
        if stream is None or not stream.isatty():
            return
        width = 30
        filled = width * done // max(total, 1)
        stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files, "
            f"{result.records} Lambda records, {len(result.aggregates)} distinct callers"
        )
        stream.flush()
