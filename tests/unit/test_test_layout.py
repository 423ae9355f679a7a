"""The tests' own layout: builders, fakes and sample data live in `tests.support`; no module
imports a test module or a conftest (pytest loads those itself, and an import would run a
second copy of their fixtures and tests)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.files import REPO

pytestmark = pytest.mark.unit


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Every module an import statement names, relative imports resolved; `from a import b`
    counts both `a` and `a.b` (b may be a module)."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _is_test_module(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def forbidden_imports(root: Path, folders: tuple[str, ...] = ("tests", "bench")) -> list[str]:
    """`file: imports module` for every import of a test module or conftest under `root`."""
    found: list[str] = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            module = _module_name(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for name in sorted(_imported(tree, module, path.name == "__init__.py")):
                if name.startswith(("tests.", "bench.")) and _is_test_module(name):
                    found.append(f"{path.relative_to(root)}: imports {name}")
    return found


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    assert forbidden_imports(REPO) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "tests/unit/test_a.py",
            "from tests.unit.test_b import helper\n",
            "tests/unit/test_a.py: imports tests.unit.test_b",
        ),
        (
            "tests/reliability/test_a.py",
            "def f():\n    from tests.infra.conftest import synth\n",
            "tests/reliability/test_a.py: imports tests.infra.conftest",
        ),
        (
            "tests/functional/test_a.py",
            "from . import test_b\n",
            "tests/functional/test_a.py: imports tests.functional.test_b",
        ),
        (
            "tests/support/world.py",
            "from ..unit.conftest import REPO\n",
            "tests/support/world.py: imports tests.unit.conftest",
        ),
        ("bench/run.py", "import tests.unit.test_b\n", "bench/run.py: imports tests.unit.test_b"),
    ],
)
def test_a_seeded_violation_is_found(tmp_path: Path, path: str, source: str, expected: str) -> None:
    for folder in ("tests/unit", "tests/functional", "tests/reliability", "tests/support", "bench"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "tests" / "support" / "records.py").write_text("ACCOUNT = '1'\n")
    (tmp_path / "tests" / "unit" / "test_ok.py").write_text(
        "from tests.support.records import ACCOUNT\nfrom tests.support import records\n"
    )
    (tmp_path / path).write_text(source)
    assert forbidden_imports(tmp_path) == [expected]
