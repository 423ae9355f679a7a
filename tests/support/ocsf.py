"""An independent check of OCSF Detection Findings against the schema facts vendored in
`tests/data/ocsf/detection_finding.json` (their source files and commits are named there)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from tests.support.files import REPO

FACTS_PATH = REPO / "tests" / "data" / "ocsf" / "detection_finding.json"


@cache
def facts() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    return loaded


def _type_problem(path: str, value: Any, kind: str) -> list[str]:
    objects = facts()["objects"]
    if kind.endswith("[]"):
        if not isinstance(value, list):
            return [f"{path}: {kind} must be an array"]
        return [
            p
            for i, item in enumerate(value)
            for p in _type_problem(f"{path}[{i}]", item, kind[:-2])
        ]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    checks = {
        "integer_t": is_int,
        "long_t": is_int,
        "timestamp_t": is_int and value > 10**11,  # milliseconds, not seconds
        "string_t": isinstance(value, str),
        "boolean_t": isinstance(value, bool),
    }
    if kind in checks:
        return [] if checks[kind] else [f"{path}: {value!r} is not {kind}"]
    if kind in objects:
        if not isinstance(value, dict):
            return [f"{path}: must be an object ({kind})"]
        return _object_problems(path, value, objects[kind])
    raise AssertionError(f"no fact for type {kind}")


def _object_problems(path: str, value: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    problems = [f"{path}.{name}: required" for name in spec["required"] if name not in value]
    for name, kind in spec["types"].items():
        if name in value:
            problems += _type_problem(f"{path}.{name}", value[name], kind)
    return problems


def detection_finding_problems(finding: dict[str, Any]) -> list[str]:
    """Everything in `finding` that breaks the vendored facts of class 2004; [] when none."""
    spec = facts()
    problems = [f"{name}: required" for name in spec["required"] if name not in finding]
    for name, kind in spec["types"].items():
        if name in finding:
            problems += _type_problem(name, finding[name], kind)
    for name, expected in (
        ("class_uid", spec["class_uid"]),
        ("category_uid", spec["category_uid"]),
    ):
        if finding.get(name) != expected:
            problems.append(f"{name}: {finding.get(name)!r}, expected {expected}")
    for name, enum in spec["enums"].items():
        if name in finding and str(finding[name]) not in enum:
            problems.append(f"{name}: {finding[name]!r} is not one of {sorted(enum, key=int)}")
        caption = spec["captions"][name]
        known = name in finding and str(finding[name]) in enum
        if caption in finding and known and finding[caption] != enum[str(finding[name])]:
            problems.append(
                f"{caption}: {finding[caption]!r}, the enum says {enum[str(finding[name])]!r}"
            )
    if finding.get("type_uid") != spec["class_uid"] * 100 + finding.get("activity_id", -(10**6)):
        problems.append(
            f"type_uid: {finding.get('type_uid')!r} is not class_uid * 100 + activity_id"
        )
    if finding.get("class_name", spec["class_name"]) != spec["class_name"]:
        problems.append(f"class_name: {finding['class_name']!r}")
    if finding.get("category_name", spec["category_name"]) != spec["category_name"]:
        problems.append(f"category_name: {finding['category_name']!r}")
    return problems
