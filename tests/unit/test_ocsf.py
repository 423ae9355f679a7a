"""OCSF Detection Findings (class 2004): the mapping of one caller group, checked against the
schema facts vendored in tests/data/ocsf (not against the mapping's own constants)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cli.callers import CallerGroup, CallerStats
from cli.ocsf import detection_finding
from tests.support.ocsf import detection_finding_problems

pytestmark = pytest.mark.unit

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:BlogFunction:prod"
ALICE = "arn:aws:iam::123456789012:user/alice"
NOW = 1_800_000_000_000


def _row(
    verdict: str = "violation", *, caller: str = ALICE, mode: str | None = "enforce", **extra: Any
) -> dict[str, Any]:
    row = {
        "event_id": "e-1",
        "verdict": verdict,
        "function": FUNCTION,
        "caller": caller,
        "rule": "blog",
        "mode": mode,
        "reason": f"{caller} is not on the allowlist of rule 'blog'",
        "event_time": "2026-11-22T10:00:00Z",
        "account": "123456789012",
        "region": "us-east-1",
        "caller_account": "123456789012",
    }
    row.update(extra)
    return row


def _group(*rows: dict[str, Any]) -> CallerGroup:
    stats = CallerStats()
    stats.add_all(rows)
    (group,) = stats.groups.values()
    return group


@pytest.mark.parametrize(
    ("verdict", "mode", "severity_id", "severity"),
    [
        ("violation", "enforce", 4, "High"),
        ("violation", "monitor", 3, "Medium"),
        ("broken", "enforce", 4, "High"),
        ("unmonitored", None, 1, "Informational"),
    ],
)
def test_each_finding_verdict_maps_to_a_valid_finding_with_its_severity(
    verdict, mode, severity_id, severity
):
    finding = detection_finding(_group(_row(verdict, mode=mode)), time_ms=NOW)
    assert detection_finding_problems(finding) == []
    assert (finding["severity_id"], finding["severity"]) == (severity_id, severity)
    assert finding["class_uid"] == 2004
    assert finding["type_uid"] == 200401
    assert finding["activity_id"] == 1
    assert finding["status_id"] == 1
    assert finding["time"] == NOW


def test_a_group_of_records_says_how_often_and_when():
    first = _row(event_time="2026-11-22T10:00:00Z", event_id="a")
    last = _row(event_time="2026-11-23T08:30:00.500000Z", event_id="b")
    middle = _row(event_time="2026-11-22T12:00:00Z", event_id="c")
    finding = detection_finding(_group(middle, last, first), time_ms=NOW)
    assert finding["count"] == 3
    # 2026-11-22T10:00:00Z and 2026-11-23T08:30:00.5Z, in milliseconds (date -u -d @...)
    assert finding["start_time"] == finding["finding_info"]["first_seen_time"] == 1795341600000
    assert finding["end_time"] == finding["finding_info"]["last_seen_time"] == 1795422600500
    assert finding["unmapped"]["event_ids"] == ["c", "b", "a"]


def test_the_finding_names_the_function_and_the_caller():
    finding = detection_finding(_group(_row()), time_ms=NOW)
    (resource,) = finding["resources"]
    assert resource == {
        "type": "AWS::Lambda::Function",
        "uid": FUNCTION,
        "name": "BlogFunction:prod",
        "cloud_partition": "aws",
        "region": "us-east-1",
    }
    assert ALICE in finding["finding_info"]["title"]
    assert finding["finding_info"]["desc"] == f"{ALICE} is not on the allowlist of rule 'blog'"
    assert finding["cloud"] == {
        "provider": "AWS",
        "region": "us-east-1",
        "account": {"uid": "123456789012"},
    }


def test_the_finding_uid_is_stable_per_function_caller_and_verdict():
    one = detection_finding(_group(_row()), time_ms=NOW)["finding_info"]["uid"]
    again = detection_finding(_group(_row(event_id="x")), time_ms=NOW + 5)["finding_info"]["uid"]
    other = detection_finding(_group(_row(caller="account 444455556666")), time_ms=NOW)
    assert one == again
    assert other["finding_info"]["uid"] != one


def test_a_record_without_a_time_still_gives_a_valid_finding():
    finding = detection_finding(_group(_row(event_time=None)), time_ms=NOW)
    assert detection_finding_problems(finding) == []
    assert "start_time" not in finding


def test_allowed_is_no_finding():
    with pytest.raises(ValueError, match="allowed is not a finding"):
        detection_finding(_group(_row("allowed")), time_ms=NOW)


# The checker itself must catch what it is there for.
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: f.pop("finding_info"), "finding_info: required"),
        (lambda f: f["metadata"].pop("version"), "metadata.version: required"),
        (lambda f: f["metadata"]["product"].pop("name"), "metadata.product.name: required"),
        (lambda f: f["finding_info"].pop("uid"), "finding_info.uid: required"),
        (lambda f: f.update(severity_id=7), "severity_id: 7 is not one of"),
        (lambda f: f.update(severity="Low"), "severity: 'Low', the enum says 'High'"),
        (lambda f: f.update(type_uid=2004), "type_uid: 2004 is not class_uid * 100"),
        (lambda f: f.update(class_uid=2001), "class_uid: 2001, expected 2004"),
        (lambda f: f.update(time=1_795_341_600), "time: 1795341600 is not timestamp_t"),
        (lambda f: f.update(count="3"), "count: '3' is not integer_t"),
        (lambda f: f.update(activity_id=4), "activity_id: 4 is not one of"),
        (lambda f: f["cloud"].pop("provider"), "cloud.provider: required"),
        (lambda f: f.update(is_alert="yes"), "is_alert: 'yes' is not boolean_t"),
    ],
)
def test_the_checker_finds_each_kind_of_problem(change, problem):
    finding = copy.deepcopy(detection_finding(_group(_row()), time_ms=NOW))
    change(finding)
    assert any(p.startswith(problem) for p in detection_finding_problems(finding)), (
        detection_finding_problems(finding)
    )


def test_caller_stats_fold_rows_by_function_caller_and_verdict():
    stats = CallerStats(keep_ids=1)
    stats.add_all(
        [
            _row(event_id="1"),
            _row(event_id="2"),
            _row("allowed", caller="s3.amazonaws.com"),
            _row(caller="account 444455556666"),
        ]
    )
    assert stats.totals == {"violation": 3, "allowed": 1}
    violations = stats.of(["violation"])
    assert [(g.caller, g.count, g.event_ids) for g in violations] == [
        (ALICE, 2, ["1"]),
        ("account 444455556666", 1, ["e-1"]),
    ]


def test_first_and_last_seen_follow_time_not_text_order():
    # As text "10:00:00Z" sorts after "10:00:00.500000Z"; in time it is half a second before.
    whole = _row(event_time="2026-11-22T10:00:00Z")
    half = _row(event_time="2026-11-22T10:00:00.500000Z")
    group = _group(half, whole)
    assert (group.first_seen, group.last_seen) == (
        "2026-11-22T10:00:00Z",
        "2026-11-22T10:00:00.500000Z",
    )
