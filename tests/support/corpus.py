"""The real CloudTrail records and policies of the shared corpus (outside the project: tests
that read it skip with `CORPUS_MISSING` when it is absent)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from lambdas.core.inputs import records_from_bytes
from tests.support.files import REPO

CORPUS = REPO / ".." / "shared" / "corpus"
TRAILS = CORPUS / "cloudtrail"
POLICIES = CORPUS / "policies"
CORPUS_MISSING = f"the shared CloudTrail corpus is not at {TRAILS} (the tests that read it skip)"


def trail_files() -> list[Path]:
    """Every CloudTrail file of the corpus (not its notes or indexes), sorted."""
    if not TRAILS.is_dir():
        return []
    return sorted(
        p
        for p in TRAILS.rglob("*")
        if p.is_file() and p.suffix != ".md" and not p.name.endswith(".index.json")
    )


@cache
def trail_records() -> tuple[tuple[str, Any], ...]:
    """(file relative to the corpus, record) for every record of the corpus, in file order."""
    return tuple(
        (str(path.relative_to(TRAILS)), record)
        for path in trail_files()
        for record in records_from_bytes(path.read_bytes(), str(path))
    )


@cache
def corpus_records() -> tuple[dict[str, Any], ...]:
    """Every JSON-object record of the corpus, in file order."""
    return tuple(record for _, record in trail_records() if isinstance(record, dict))
