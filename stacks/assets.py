"""Lambda assets, built without Docker.

Each function's asset is a directory `build/assets/<target>/<function>-<digest>/` holding:

- the code it runs: `lambdas/__init__.py`, `lambdas/core`, `lambdas/adapters`, `models`, its
  own handler package and the `lambdas` packages that one imports (the CLI, the emulator and
  the synth-time code live outside `lambdas/`, so nothing needs excluding), at the same import paths
  as in the repository, so the handler is `lambdas.<function>.handler.lambda_handler` both in
  Lambda and under pytest;
- `allowlist.json`: the validated allowlist, at the asset root (`/var/task/allowlist.json`);
- the pinned dependencies of `lambdas/requirements.txt`, installed by pip for the target's
  platform and Python version from binary wheels only (`--platform manylinux2014_aarch64
  --only-binary=:all:` for Lambda on arm64).

A build is keyed by a digest of all its inputs; an unchanged asset is not rebuilt, and the
digest doubles as the CDK asset hash. Concurrent builds (parallel test workers) take a lock.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models import names

__all__ = [
    "ALLOWLIST_FILE",
    "BUILD_ROOT",
    "FUNCTIONS",
    "HANDLERS",
    "LAMBDA_TARGET",
    "REPO_ROOT",
    "AssetBuildError",
    "BuiltAsset",
    "Target",
    "asset_digest",
    "build_assets",
    "function_packages",
    "host_target",
    "source_files",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = REPO_ROOT / "build" / "assets"
REQUIREMENTS = Path("lambdas") / "requirements.txt"
ALLOWLIST_FILE = "allowlist.json"
# Bump when the layout of an asset changes, so that cached builds are not reused.
ASSET_FORMAT = "1"

COMMON_SOURCES: tuple[str, ...] = (
    "lambdas/__init__.py",
    "lambdas/core",
    "lambdas/adapters",
    "models",
)
FUNCTIONS: tuple[str, ...] = names.FUNCTIONS
HANDLERS: dict[str, str] = {name: f"lambdas.{name}.handler.lambda_handler" for name in FUNCTIONS}

_SKIPPED_DIRS = frozenset({"__pycache__", "tests", ".mypy_cache", ".pytest_cache"})
_SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
_PIP_TIMEOUT = 900  # seconds


class AssetBuildError(Exception):
    """An asset could not be built; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """The platform an asset's dependencies are installed for."""

    arch: Literal["arm64", "x86_64"]
    python_version: str  # "3.13"

    @property
    def name(self) -> str:
        return f"{self.arch}-py{self.python_version}"

    @property
    def pip_platform(self) -> str:
        machine = "aarch64" if self.arch == "arm64" else "x86_64"
        return f"manylinux2014_{machine}"


LAMBDA_TARGET = Target("arm64", "3.13")


def host_target() -> Target:
    """This machine's architecture and the running Python: an asset that imports here."""
    machine = platform.machine().lower()
    arch: Literal["arm64", "x86_64"] = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
    return Target(arch, f"{sys.version_info.major}.{sys.version_info.minor}")


@dataclass(frozen=True)
class BuiltAsset:
    function: str
    path: Path
    digest: str

    @property
    def handler(self) -> str:
        return HANDLERS[self.function]


def function_packages(function: str, root: Path = REPO_ROOT) -> list[str]:
    """`lambdas/<function>` and every other `lambdas.<package>` its code imports (directly or
    through those packages), found by reading the import statements."""
    if function not in FUNCTIONS:
        raise AssetBuildError(f"unknown function {function!r}; known: {', '.join(FUNCTIONS)}")
    found: list[str] = []
    pending = [function]
    while pending:
        package = pending.pop()
        if package in found:
            continue
        directory = root / "lambdas" / package
        if not directory.is_dir():
            raise AssetBuildError(f"lambdas/{package}: missing: the {function} asset needs it")
        found.append(package)
        for path in sorted(directory.rglob("*.py")):
            pending.extend(_imported_packages(path) - {"core", "adapters"})
    return [f"lambdas/{package}" for package in found]


def _imported_packages(path: Path) -> set[str]:
    """The `X` of every `lambdas.X` that the module at `path` imports."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {
        name.split(".")[1]
        for name in names
        if name.startswith("lambdas.") and len(name.split(".")) > 1
    } & _packages(path)


def _packages(path: Path) -> set[str]:
    lambdas_dir = next(p for p in path.parents if p.name == "lambdas")
    return {p.name for p in lambdas_dir.iterdir() if (p / "__init__.py").is_file()}


def source_files(function: str, root: Path = REPO_ROOT) -> list[Path]:
    """The repository files (relative paths) that make up `function`'s code, sorted."""
    files: set[Path] = set()
    for entry in (*COMMON_SOURCES, *function_packages(function, root)):
        path = root / entry
        if path.is_file():
            files.add(Path(entry))
        elif path.is_dir():
            files.update(_walk(path, root))
        else:
            raise AssetBuildError(f"{entry}: missing: the {function} asset needs it")
    return sorted(files)


def _walk(directory: Path, root: Path) -> Iterator[Path]:
    for current, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        for filename in filenames:
            path = Path(current) / filename
            if path.suffix not in _SKIPPED_SUFFIXES:
                yield path.relative_to(root)


def _digest(parts: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()


def build_assets(
    *,
    allowlist_json: str,
    target: Target = LAMBDA_TARGET,
    functions: Iterable[str] = FUNCTIONS,
    root: Path = REPO_ROOT,
    out: Path | None = None,
) -> dict[str, BuiltAsset]:
    """Build (or reuse) the asset of each function for `target`."""
    out = out or (root / "build" / "assets")
    out.mkdir(parents=True, exist_ok=True)
    requirements = (root / REQUIREMENTS).read_bytes()
    with _locked(out / ".lock"):
        deps = _dependencies(requirements, target, root, out)
        return {
            function: _function_asset(function, target, allowlist_json, root, out, deps)
            for function in functions
        }


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dependencies(requirements: bytes, target: Target, root: Path, out: Path) -> Path:
    """pip-installed dependencies for `target`, shared by the functions' assets."""
    key = _digest([ASSET_FORMAT.encode(), target.name.encode(), requirements])[:16]
    deps = out / ".deps" / f"{target.name}-{key}"
    if (deps / ".complete").is_file():
        return deps
    shutil.rmtree(deps, ignore_errors=True)
    deps.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=deps.parent))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--no-input",
        "--platform",
        target.pip_platform,
        "--implementation",
        "cp",
        "--python-version",
        target.python_version,
        "--only-binary=:all:",
        "--target",
        str(staging),
        "-r",
        str(root / REQUIREMENTS),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise AssetBuildError(
            f"pip install for {target.name} took over {_PIP_TIMEOUT}s (no package index?)"
        ) from None
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        reason = errors[-1] if errors else (result.stderr.strip().splitlines() or ["?"])[-1]
        raise AssetBuildError(f"pip install -r {REQUIREMENTS} for {target.name}: {reason}")
    shutil.rmtree(staging / "bin", ignore_errors=True)
    for cache in list(staging.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    (staging / ".complete").write_text(target.name)
    staging.rename(deps)
    return deps


def asset_digest(
    function: str, *, target: Target, allowlist_json: str, root: Path = REPO_ROOT
) -> str:
    """The digest of everything that goes into `function`'s asset for `target`."""
    parts = [
        ASSET_FORMAT.encode(),
        target.name.encode(),
        function.encode(),
        (root / REQUIREMENTS).read_bytes(),
    ]
    for relative in source_files(function, root):
        parts += [relative.as_posix().encode(), (root / relative).read_bytes()]
    parts.append(allowlist_json.encode())
    return _digest(parts)


def _function_asset(
    function: str,
    target: Target,
    allowlist_json: str,
    root: Path,
    out: Path,
    deps: Path,
) -> BuiltAsset:
    files = source_files(function, root)
    digest = asset_digest(function, target=target, allowlist_json=allowlist_json, root=root)

    # One folder per digest: a build for another allowlist (another test variant, in another
    # process) never replaces a folder that a synth may be reading.
    asset_dir = out / target.name / f"{function}-{digest[:16]}"
    marker = out / target.name / f"{function}-{digest[:16]}.digest"
    if asset_dir.is_dir() and marker.is_file() and marker.read_text() == digest:
        return BuiltAsset(function, asset_dir, digest)

    asset_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{function}-", dir=asset_dir.parent))
    _link_tree(deps, staging)
    (staging / ".complete").unlink()
    for relative in files:
        destination = staging / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, destination)
    (staging / ALLOWLIST_FILE).write_text(allowlist_json, encoding="utf-8")
    marker.unlink(missing_ok=True)
    shutil.rmtree(asset_dir, ignore_errors=True)
    staging.rename(asset_dir)
    marker.write_text(digest)
    return BuiltAsset(function, asset_dir, digest)


def _link_tree(source: Path, destination: Path) -> None:
    """Hard-link the dependency tree (fast, no extra space); copy where links fail."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link, dirs_exist_ok=True)
