"""Where the project is, and the `write` fixture's type (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# write(name, text or bytes) -> the path written under tmp_path
Writer = Callable[[str, str | bytes], Path]
