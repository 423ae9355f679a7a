"""Where scan input comes from: files, folders (recursive), `-` (stdin) and s3://bucket/prefix."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.exceptions import InputError

__all__ = ["Source", "expand", "read_source"]


# In a folder, only files named like CloudTrail output are read; a file named explicitly
# is always read.
LOG_SUFFIXES = tuple(f"{ext}{gz}" for ext in (".json", ".jsonl", ".ndjson") for gz in ("", ".gz"))


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read: a local path, stdin, or an S3 object."""

    name: str
    path: Path | None = None
    bucket: str | None = None
    key: str | None = None


def _s3_client() -> Any:
    import boto3  # only when scanning S3: keeps the CLI quick to start

    return boto3.client("s3")


def _split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InputError(f"{url}: no bucket name")
    return bucket, prefix


def expand(arguments: list[str], s3: Any = None) -> Iterator[Source]:
    """Every file the arguments name, in a stable order; folders are walked recursively."""
    for argument in arguments:
        if argument == "-":
            yield Source("<stdin>")
        elif argument.startswith("s3://"):
            bucket, prefix = _split_s3(argument)
            client = s3 or _s3_client()
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        yield Source(f"s3://{bucket}/{item['Key']}", bucket=bucket, key=item["Key"])
        else:
            path = Path(argument)
            if path.is_dir():
                for child in sorted(p for p in path.rglob("*") if p.is_file()):
                    hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                    if not hidden and child.name.endswith(LOG_SUFFIXES):
                        yield Source(str(child), path=child)
            elif path.is_file():
                yield Source(argument, path=path)
            else:
                raise InputError(f"{argument}: no such file or folder")


def read_source(source: Source, s3: Any = None) -> bytes:
    """The bytes of one source (S3 objects are streamed in, one at a time)."""
    try:
        if source.path is not None:
            return source.path.read_bytes()
        if source.bucket is not None:
            client = s3 or _s3_client()
            body = client.get_object(Bucket=source.bucket, Key=source.key)["Body"]
            return bytes(body.read())
        return sys.stdin.buffer.read()
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read: {exc.strerror or exc}") from None
