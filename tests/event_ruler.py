"""The event-ruler oracle for tests: a session fixture that installs its runtime when missing
(apt-get) and skips, with the reason, where it cannot run."""

from __future__ import annotations

import pytest

from emulator.event_ruler import (
    DEFAULT_HOME,
    EventRuler,
    EventRulerUnavailableError,
    ensure_runtime,
)

__all__ = ["ruler"]


@pytest.fixture(scope="session")
def ruler() -> EventRuler:
    if not (DEFAULT_HOME / "match").is_file():
        pytest.skip(f"event-ruler not found at {DEFAULT_HOME} (shared/ beside the repository)")
    try:
        ensure_runtime()
        return EventRuler.locate()
    except EventRulerUnavailableError as exc:
        pytest.skip(f"event-ruler cannot run here: {exc}")
