"""aws/event-ruler, the matching engine EventBridge uses, as a local oracle for event patterns.

The engine (Java) lives outside the project, in `shared/tools/event-ruler/` beside the repository
(`match PATTERN EVENTS` prints one true/false per event; `match --check PATTERN` validates a
pattern and counts its `$or` combinations). Each call starts one JVM for a whole batch of
events, never one per event. `EventRuler.locate()` finds it (or says why not); `ensure_runtime`
installs Java and Debian's Jackson jars with apt-get when they are missing, for test set-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "APT_PACKAGES",
    "DEFAULT_HOME",
    "EventRuler",
    "EventRulerUnavailableError",
    "ensure_runtime",
    "envelope",
]

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPOSITORY.parent / "shared" / "tools" / "event-ruler"
JARS = Path("/usr/share/java")
JACKSON = ("jackson-databind.jar", "jackson-core.jar", "jackson-annotations.jar")
APT_PACKAGES = (
    "openjdk-17-jre-headless",
    "libjackson2-databind-java",
    "libjackson2-core-java",
    "libjackson2-annotations-java",
)


class EventRulerUnavailableError(RuntimeError):
    """event-ruler cannot run here; the message says why."""


def _missing_runtime() -> list[str]:
    missing = [] if shutil.which("java") else ["java"]
    return missing + [jar for jar in JACKSON if not (JARS / jar).is_file()]


def ensure_runtime() -> None:
    """Install Java and the Jackson jars with apt-get when they are missing (test set-up)."""
    if not _missing_runtime():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        raise EventRulerUnavailableError(f"{', '.join(_missing_runtime())} missing and no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", *APT_PACKAGES]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise EventRulerUnavailableError(
                f"{' '.join(command[:2])} failed: {done.stderr.strip()[-300:]}"
            )
    if _missing_runtime():
        raise EventRulerUnavailableError(f"still missing: {', '.join(_missing_runtime())}")


def envelope(detail: Any, *, source: str = "aws.lambda") -> dict[str, Any]:
    """The EventBridge event CloudTrail puts on the bus for one record."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": "111111111111",
        "time": "2024-05-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


@dataclass(frozen=True)
class EventRuler:
    """The `match` wrapper of an event-ruler build."""

    match: Path

    @classmethod
    def locate(cls, home: Path | None = None) -> EventRuler:
        """The build in `$EVENT_RULER_HOME`, else `../shared/tools/event-ruler` beside the
        repository; EventRulerUnavailableError when it or its runtime is missing."""
        where = home or Path(os.environ.get("EVENT_RULER_HOME", DEFAULT_HOME))
        match = where / "match"
        if not match.is_file():
            raise EventRulerUnavailableError(f"event-ruler not found at {where}")
        missing = _missing_runtime()
        if missing:
            raise EventRulerUnavailableError(f"event-ruler needs {', '.join(missing)}")
        return cls(match)

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(self.match), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    def check(self, pattern: Mapping[str, Any]) -> int:
        """The number of `$or` combinations of a pattern event-ruler accepts; ValueError with
        its reason when it rejects the pattern."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pattern.json"
            path.write_text(json.dumps(pattern))
            done = self._run("--check", str(path))
        if done.returncode != 0:
            raise ValueError((done.stdout + done.stderr).strip())
        # "ok (N sub-rule(s) after expanding $or)"
        return int(done.stdout.split("(", 1)[1].split()[0])

    def matches(self, pattern: Mapping[str, Any], events: Sequence[Any]) -> list[bool]:
        """Whether the pattern matches each event (whole EventBridge events): one JVM."""
        if not events:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pattern.json"
            path.write_text(json.dumps(pattern))
            lines = "".join(json.dumps(event) + "\n" for event in events)
            done = self._run(str(path), "-", stdin=lines)
        answers = done.stdout.split()
        if done.returncode != 0 or len(answers) != len(events) or set(answers) - {"true", "false"}:
            raise ValueError(
                f"event-ruler failed ({done.returncode}): {done.stderr.strip()[-500:]}"
            )
        return [answer == "true" for answer in answers]

    def delivered(self, patterns: Iterable[Mapping[str, Any]], events: Sequence[Any]) -> list[bool]:
        """Whether at least one of the patterns (rules) matches each event: one JVM per rule."""
        out = [False] * len(events)
        for pattern in patterns:
            out = [a or b for a, b in zip(out, self.matches(pattern, events), strict=True)]
        return out
