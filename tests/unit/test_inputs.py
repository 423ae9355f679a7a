"""Reading CloudTrail input: arrays, log files, gzip, JSON lines, envelopes, and garbage."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from lambdas.core.inputs import iter_records, records_from_bytes, unwrap
from models.exceptions import InputError
from tests.support import records as r

pytestmark = pytest.mark.unit


def read(data: bytes, source: str = "f.json") -> list[Any]:
    return list(records_from_bytes(data, source))


def test_json_array():
    recs = [r.s3_invoke(), r.step_functions_invoke()]
    assert read(json.dumps(recs).encode()) == recs


@pytest.mark.parametrize("gz", [False, True])
def test_log_file(gz):
    recs = [r.s3_invoke(), r.other_service_record()]
    assert read(r.log_file_bytes(recs, gz=gz)) == recs


@pytest.mark.parametrize("gz", [False, True])
def test_json_lines_of_records_log_files_and_envelopes(gz):
    a, b, c = r.s3_invoke(), r.eventbridge_invoke(), r.invoke_execution()
    data = r.json_lines_bytes([a, r.log_file([b]), r.envelope(c)], gz=gz)
    assert read(data) == [a, b, c]


def test_single_envelope_and_single_record():
    rec = r.s3_invoke()
    assert read(json.dumps(r.envelope(rec)).encode()) == [rec]
    assert read(json.dumps(rec).encode()) == [rec]


def test_list_of_envelopes_and_log_files():
    a, b = r.s3_invoke(), r.s3_invoke()
    data = json.dumps([r.envelope(a), r.log_file([b])]).encode()
    assert read(data) == [a, b]


def test_a_record_with_a_records_key_is_still_a_record():
    rec = r.s3_invoke() | {"Records": []}
    assert read(json.dumps(rec).encode()) == [rec]


@pytest.mark.parametrize("data", [b"", b"  \n\n", gzip.compress(b"", mtime=0)])
def test_empty_input_has_no_records(data):
    assert read(data) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"5", [5]), (b"[1, 2]", [1, 2]), (b'"x"', ["x"]), (b"null", [None])],
)
def test_scalars_come_out_as_records_to_be_judged_invalid(data, expected):
    assert read(data) == expected


@pytest.mark.parametrize(("value", "kind"), [(5, "int"), (None, "NoneType"), ({}, "dict")])
def test_records_that_are_not_a_list_name_the_field(value, kind):
    with pytest.raises(InputError) as caught:
        read(json.dumps({"Records": value}).encode(), "trail.json")
    message = str(caught.value)
    assert message.startswith("trail.json: field Records:")
    assert kind in message


def test_records_that_are_not_a_list_in_json_lines_name_the_line():
    data = b'{"Records": []}\n{"Records": "x"}\n'
    with pytest.raises(InputError) as caught:
        read(data, "lines.jsonl")
    assert str(caught.value).startswith("lines.jsonl:2: field Records")


def test_bad_json_names_the_line():
    with pytest.raises(InputError) as caught:
        read(b'[\n{"a": 1},\n{"a": }\n]', "bad.json")
    assert str(caught.value).startswith("bad.json:3: not valid JSON")


def test_bad_json_line_names_the_line():
    data = json.dumps(r.s3_invoke()).encode() + b"\n{broken\n"
    with pytest.raises(InputError) as caught:
        read(data, "x.jsonl")
    assert str(caught.value).startswith("x.jsonl:2: not valid JSON")


def test_random_bytes_are_an_input_error():
    noise = bytes((i * 131 + 7) % 256 for i in range(4096))
    with pytest.raises(InputError) as caught:
        read(noise, "noise.bin")
    assert str(caught.value).startswith("noise.bin")


@pytest.mark.parametrize("cut", [2, 10, 30])
def test_truncated_gzip_is_an_input_error(cut):
    data = r.log_file_bytes([r.s3_invoke()] * 10, gz=True)
    with pytest.raises(InputError) as caught:
        read(data[:cut], "trail.json.gz")
    assert "gzip" in str(caught.value)
    assert str(caught.value).startswith("trail.json.gz")


def test_gzip_of_garbage_is_an_input_error():
    with pytest.raises(InputError):
        read(gzip.compress(b"\x00\x01not json"), "x.json.gz")


@pytest.mark.parametrize("depth", [10, 999, 1000, 1023])
def test_deeply_nested_lists_within_the_parser_limit_do_not_crash(depth):
    assert read(b"[" * depth + b"1" + b"]" * depth) == [1]


@pytest.mark.parametrize(
    "text", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000]
)
def test_nesting_beyond_the_parser_limit_is_an_input_error(text):
    with pytest.raises(InputError) as caught:
        read(text, "deep.json")
    assert str(caught.value).startswith("deep.json:")


def test_unwrap_walks_nested_lists_in_order():
    a, b = r.s3_invoke(), r.s3_invoke()
    assert list(unwrap([[a], [[r.log_file([b])]], 3])) == [a, b, 3]


def test_iter_records_is_the_list():
    recs = [r.s3_invoke()]
    assert iter_records(json.dumps(recs).encode()) == recs


def test_a_huge_field_is_read():
    rec = r.s3_invoke()
    rec["requestParameters"]["payload"] = "x" * 10_000_000
    out = read(json.dumps(rec).encode())
    assert len(out[0]["requestParameters"]["payload"]) == 10_000_000


def test_a_whole_file_read_at_once_names_its_source_in_errors():
    assert iter_records(b'{"Records": [{"eventID": "a"}]}') == [{"eventID": "a"}]
    with pytest.raises(InputError, match=r"^<input>:1: not valid JSON"):
        iter_records(b"nope")
    with pytest.raises(InputError, match=r"^trail\.json:2: not valid JSON"):
        iter_records(b'{"Records": []}\nnope\n', "trail.json")


def test_blank_lines_between_json_lines_are_skipped_not_the_end():
    a, b = r.s3_invoke(), r.s3_invoke()
    a["eventID"], b["eventID"] = "first", "second"
    data = json.dumps(a).encode() + b"\n\n   \n" + json.dumps(b).encode() + b"\n"
    assert [x["eventID"] for x in read(data)] == ["first", "second"]


def test_json_lines_after_leading_blank_lines_are_read():
    data = b'\n  \n{"eventID": "a"}\n{"eventID": "b"}'
    assert read(data) == [{"eventID": "a"}, {"eventID": "b"}]


def test_a_stream_read_without_a_source_names_it_input():
    with pytest.raises(InputError, match=r"^<input>:1: not valid JSON"):
        list(records_from_bytes(b"nope"))


def test_the_line_of_bad_json_counts_a_leading_newline():
    with pytest.raises(InputError, match=r"^f\.json:3: not valid JSON"):
        read(b"\n[1,\n}")
