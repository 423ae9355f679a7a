"""Sample data of the demo and the tests, as files: Lambda events as Lambda receives them
(`events/<name>.json`: EventBridge "AWS API Call via CloudTrail" envelopes of real-shaped
CloudTrail Invoke records), resource policies as found in accounts (`policies/<function>.json`)
and the demo's allowlist (`allowlist.yaml`). `load_sample` is the one way to read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SAMPLES", "load_sample", "sample_names"]

SAMPLES = Path(__file__).resolve().parent


def sample_names(folder: str) -> list[str]:
    """The samples of one folder (`events`, `policies`), by name without `.json`, sorted."""
    return sorted(path.stem for path in (SAMPLES / folder).glob("*.json"))


def load_sample(name: str) -> Any:
    """`events/blog-invoked-by-s3`, `policies/BlogFunction` (JSON, parsed afresh on every call,
    so callers may change what they get) or `allowlist.yaml` (text)."""
    path = SAMPLES / name
    if path.suffix:
        return path.read_text(encoding="utf-8")
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
