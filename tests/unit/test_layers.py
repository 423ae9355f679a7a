"""The import graph of the product: layers point one way, and nothing imports in a circle.

    models  <-  lambdas/core  <-  lambdas/adapters  <-  lambdas/runtime, lambdas/remediation
            <-  lambdas/<function>  /  cli, emulator  <-  stacks, app.py

Read from the source with `ast` (every import statement, also those inside functions), so a
lazy import counts like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("models", "lambdas", "cli", "emulator", "stacks", "app.py")
SHARED_LAMBDA_PACKAGES = frozenset({"core", "adapters", "runtime", "remediation"})
ABOVE_LAMBDAS = ("cli", "emulator", "stacks", "app")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every product module under `root`."""
    modules: dict[str, Path] = {}
    for entry in PRODUCT:
        path = root / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.is_dir() else []
        for file in files:
            modules[_module_name(file, root)] = file
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The product module `name` refers to (itself, or the nearest enclosing one)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _typing_only(tree: ast.Module) -> set[ast.AST]:
    """The import statements under `if TYPE_CHECKING:` (never run, so they close no cycle)."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        name = getattr(test, "id", None) or getattr(test, "attr", None)
        if isinstance(node, ast.If) and name == "TYPE_CHECKING":
            found.update(n for child in node.body for n in ast.walk(child))
    return found


def imports(module: str, path: Path, modules: dict[str, Path], *, typing: bool = True) -> set[str]:
    """The product modules that `module` imports (`typing`: also under TYPE_CHECKING)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_bytes(), filename=str(path))
    skipped = set() if typing else _typing_only(tree)
    for node in ast.walk(tree):
        if node in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module; `from module import name`
            # imports the module that defines the name.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def graph(root: Path, *, typing: bool = True) -> dict[str, set[str]]:
    modules = product_modules(root)
    return {name: imports(name, path, modules, typing=typing) for name, path in modules.items()}


def _layer(module: str) -> tuple[str, ...]:
    return tuple(module.split(".")[:2])


def layer_problems(edges: dict[str, set[str]]) -> list[str]:
    """Every import that runs against the layers."""
    problems = []
    for source, targets in sorted(edges.items()):
        top = source.split(".")[0]
        for target in sorted(targets):
            target_top = target.split(".")[0]
            if top == "models" and target_top != "models":
                problems.append(f"{source} imports {target}: models import only models")
            if top == "lambdas" and target_top in ABOVE_LAMBDAS:
                problems.append(f"{source} imports {target}: Lambda code imports no {target_top}")
            core = ("lambdas", "core")
            if _layer(source) == core and target_top == "lambdas" and _layer(target) != core:
                problems.append(f"{source} imports {target}: the core imports no adapters")
            if top == target_top == "lambdas" and len(source.split(".")) > 1:
                own, other = source.split(".")[1], target.split(".")[1:2]
                if other and other[0] != own and other[0] not in SHARED_LAMBDA_PACKAGES:
                    problems.append(f"{source} imports {target}: a function's package is its own")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan, iteratively
        work = [(node, iter(sorted(edges.get(node, ()))))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


# --- the product ---------------------------------------------------------------------------


def test_the_product_is_read():
    edges = graph(REPO)
    assert {"models.names", "lambdas.core.record", "cli.main", "stacks.assets", "app"} <= set(edges)
    assert "lambdas.core.record" in edges["lambdas.core.decide"]


def test_layers_point_one_way():
    assert layer_problems(graph(REPO)) == []


def test_no_import_cycle():
    # An import only for type checking is never run: it names a type, it closes no cycle.
    assert cycles(graph(REPO, typing=False)) == []


# --- the check fails on a seeded violation -------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


CLEAN = {
    "models/__init__.py": "",
    "models/names.py": "PREFIX = 'x-'\n",
    "lambdas/__init__.py": "",
    "lambdas/core/__init__.py": "",
    "lambdas/core/decide.py": "from models.names import PREFIX\n",
    "lambdas/adapters/__init__.py": "",
    "lambdas/adapters/queue.py": "from lambdas.core import decide\n",
    "lambdas/runtime/__init__.py": "",
    "lambdas/runtime/report.py": "from lambdas.adapters.queue import *\n",
    "lambdas/validator/__init__.py": "",
    "lambdas/validator/handler.py": "from lambdas.runtime import report\n",
    "lambdas/remediator/__init__.py": "",
    "lambdas/remediator/handler.py": "import lambdas.runtime.report\n",
    "cli/__init__.py": "",
    "cli/main.py": "from . import demo\nfrom lambdas.validator import handler\n",
    "cli/demo.py": "import emulator\n",
    "emulator/__init__.py": "",
    "stacks/__init__.py": "from cli import main\n",
    "app.py": "import stacks\n",
}


def test_a_clean_tree_passes(tmp_path):
    edges = graph(_tree(tmp_path, CLEAN))
    assert edges["cli.main"] == {"cli.demo", "lambdas.validator.handler"}
    assert layer_problems(edges) == []
    assert cycles(edges) == []


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("models/bad.py", "from lambdas.core import decide\n", "models import only models"),
        ("models/bad.py", "import stacks\n", "models import only models"),
        ("lambdas/core/bad.py", "import cli.main\n", "Lambda code imports no cli"),
        ("lambdas/runtime/bad.py", "def f():\n    import emulator\n", "imports no emulator"),
        ("lambdas/adapters/bad.py", "from stacks import x\n", "Lambda code imports no stacks"),
        ("lambdas/core/bad.py", "from lambdas.adapters import queue\n", "imports no adapters"),
        ("lambdas/core/bad.py", "from lambdas.runtime import report\n", "imports no adapters"),
        (
            "lambdas/remediator/bad.py",
            "from lambdas.validator.handler import x\n",
            "a function's package is its own",
        ),
        (
            "lambdas/validator/bad.py",
            "from ..remediator import handler\n",
            "a function's package is its own",
        ),
    ],
)
def test_a_seeded_layer_violation_is_found(tmp_path, name, source, expected):
    edges = graph(_tree(tmp_path, CLEAN | {name: source}))
    problems = layer_problems(edges)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_a_seeded_cycle_is_found(tmp_path):
    seeded = CLEAN | {"cli/demo.py": "import emulator\n\ndef run():\n    from cli.main import x\n"}
    assert cycles(graph(_tree(tmp_path, seeded))) == [["cli.demo", "cli.main"]]
    longer = CLEAN | {
        "models/a.py": "from models import b\n",
        "models/b.py": "from models.c import x\n",
        "models/c.py": "import models.a\n",
    }
    assert cycles(graph(_tree(tmp_path, longer))) == [["models.a", "models.b", "models.c"]]


def test_an_import_for_type_checking_closes_no_cycle_but_counts_for_layers(tmp_path):
    typed = "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from cli.main import x\n"
    seeded = CLEAN | {"cli/demo.py": typed, "models/bad.py": typed}
    assert cycles(graph(_tree(tmp_path, seeded), typing=False)) == []
    assert cycles(graph(_tree(tmp_path, seeded))) == [["cli.demo", "cli.main"]]
    [problem] = layer_problems(graph(_tree(tmp_path, seeded)))
    assert problem == "models.bad imports cli.main: models import only models"
