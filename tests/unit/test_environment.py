"""patched_environ puts every variable it touched back as it was."""

from __future__ import annotations

import os

import pytest

from emulator.environment import patched_environ

pytestmark = pytest.mark.unit


def test_set_and_unset_variables_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IA_KEPT", "before")
    monkeypatch.setenv("IA_REMOVED", "there")
    monkeypatch.delenv("IA_NEW", raising=False)
    with patched_environ({"IA_KEPT": "during", "IA_NEW": "x"}, unset=("IA_REMOVED",)):
        assert os.environ["IA_KEPT"] == "during"
        assert os.environ["IA_NEW"] == "x"
        assert "IA_REMOVED" not in os.environ
    assert os.environ["IA_KEPT"] == "before"
    assert "IA_NEW" not in os.environ
    assert os.environ["IA_REMOVED"] == "there"


def test_restored_even_when_the_body_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IA_NEW", raising=False)
    with pytest.raises(RuntimeError), patched_environ({"IA_NEW": "x"}):
        raise RuntimeError
    assert "IA_NEW" not in os.environ
