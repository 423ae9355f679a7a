"""Reading CloudTrail input: log files, JSON arrays, JSON lines and EventBridge envelopes.

One function turns the bytes of one file (gzipped or not) into the records it holds; callers
stream file by file, so a folder is never held in memory at once.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from models.cloudtrail import CloudTrailEnvelope, is_log_file, log_file_records
from models.exceptions import InputError

__all__ = ["iter_records", "records_from_bytes", "unwrap"]

_GZIP_MAGIC = b"\x1f\x8b"


def _decompress(data: bytes, source: str) -> bytes:
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{source}: not a readable gzip file ({exc})") from None


def _unwrap_object(item: dict[str, Any]) -> Iterator[Any]:
    if is_log_file(item):
        yield from log_file_records(item)
    elif CloudTrailEnvelope.recognises(item):
        yield item["detail"]
    else:
        yield item


def unwrap(item: Any) -> Iterator[Any]:
    """The records inside one JSON value: a log file, an envelope, a record, or a list of them.

    Nested lists are walked with an explicit stack: deep nesting is no reason to crash.
    """
    stack: list[Iterator[Any]] = [iter((item,))]
    while stack:
        for element in stack[-1]:
            if isinstance(element, list):
                stack.append(iter(element))
                break
            if isinstance(element, dict):
                yield from _unwrap_object(element)
            else:
                yield element
        else:
            stack.pop()


def _unwrap_in(value: Any, where: str) -> Iterator[Any]:
    try:
        yield from unwrap(value)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _json_lines(text: bytes, source: str) -> Iterator[Any]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{source}:{number}: not valid JSON ({exc.msg})") from None
        yield from _unwrap_in(value, f"{source}:{number}")


def records_from_bytes(data: bytes, source: str = "<input>") -> Iterator[Any]:
    """Every record in one file's content. Raises InputError naming the file (and line)."""
    text = _decompress(data, source)
    if not text.strip():
        return
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        first = text.lstrip()[:1]
        if first == b"{" and b"\n" in text.strip():
            yield from _json_lines(text, source)
            return
        line = text.count(b"\n", 0, exc.pos) + 1
        raise InputError(f"{source}:{line}: not valid JSON ({exc.msg})") from None
    yield from _unwrap_in(value, source)


def iter_records(data: bytes, source: str = "<input>") -> list[Any]:
    """All records of one file as a list (the file has been read whole already)."""
    return list(records_from_bytes(data, source))
