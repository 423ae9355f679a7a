"""What the Lambda assets hold, and that each handler imports from its asset alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.assets import (
    ALLOWLIST_FILE,
    FUNCTIONS,
    HANDLERS,
    LAMBDA_TARGET,
    asset_digest,
    build_assets,
    function_packages,
    host_target,
)
from tests.support.files import REPO

pytestmark = pytest.mark.infra

EM_AARCH64 = 183
EM_X86_64 = 62
FORBIDDEN = ("emulator", "cli", "tests", "bench", "stacks", "cdk.out")


@pytest.fixture(scope="module")
def lambda_assets(synth, allowlist_json):
    # built (and cached) by the synth; this returns the same directories
    return build_assets(allowlist_json=allowlist_json, target=LAMBDA_TARGET)


@pytest.fixture(scope="module")
def host_assets(allowlist_json):
    return build_assets(allowlist_json=allowlist_json, target=host_target())


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def test_each_asset_holds_its_code_the_config_and_nothing_else(lambda_assets, allowlist_json):
    for function, asset in lambda_assets.items():
        root = asset.path
        assert (root / "lambdas" / "__init__.py").is_file()
        for package in ("lambdas/core", "lambdas/adapters", "models", f"lambdas/{function}"):
            assert (root / package / "__init__.py").is_file(), (function, package)
        assert json.loads((root / ALLOWLIST_FILE).read_text()) == json.loads(allowlist_json)
        for forbidden in FORBIDDEN:
            assert not (root / forbidden).exists(), (function, forbidden)
        assert not list(root.rglob("__pycache__")), function
        assert not (root / "bin").exists()
        others = {p.name for p in (root / "lambdas").iterdir() if p.is_dir()}
        shipped = {"core", "adapters", *(p.split("/")[1] for p in function_packages(function))}
        assert others == shipped, function


def test_the_validator_asset_does_not_ship_the_remediator(lambda_assets):
    assert not (lambda_assets["validator"].path / "lambdas" / "remediator").exists()


def test_arm64_assets_carry_aarch64_binaries_and_the_pinned_sdk(lambda_assets):
    for function, asset in lambda_assets.items():
        shared_objects = list(asset.path.rglob("*.so"))
        assert any("pydantic_core" in str(p) for p in shared_objects), function
        for so in shared_objects:
            assert _elf_machine(so) == EM_AARCH64, so
            assert "x86_64" not in so.name
        assert any(p.name.startswith("botocore-1.44.5") for p in asset.path.glob("*.dist-info"))
        assert any(p.name.startswith("boto3-1.44.5") for p in asset.path.glob("*.dist-info"))
        assert any(p.name.startswith("pydantic-2.14.3") for p in asset.path.glob("*.dist-info"))
        assert any("cpython-313-aarch64" in so.name for so in shared_objects), function


def test_the_synthesized_functions_point_at_the_built_assets(synth, lambda_assets):
    staged = {p.name for p in synth.outdir.iterdir() if p.name.startswith("asset.")}
    assert staged
    for directory in staged:
        root = synth.outdir / directory
        if (root / ALLOWLIST_FILE).exists():
            for outside in ("cli", "emulator", "stacks", "tests", "bench"):
                assert not (root / outside).exists(), (directory, outside)


def test_an_unchanged_asset_is_reused(lambda_assets, allowlist_json):
    again = build_assets(allowlist_json=allowlist_json, target=LAMBDA_TARGET)
    for function, asset in lambda_assets.items():
        assert again[function].digest == asset.digest
        assert again[function].path == asset.path


def test_the_digest_follows_the_config_and_the_code(allowlist_json):
    def digest(config: str) -> str:
        return asset_digest("validator", target=LAMBDA_TARGET, allowlist_json=config)

    changed = json.loads(allowlist_json)
    changed["limits"]["max_remediations_per_hour"] += 1
    assert digest(allowlist_json) == digest(allowlist_json)
    assert digest(json.dumps(changed)) != digest(allowlist_json)
    other_target = asset_digest("validator", target=host_target(), allowlist_json=allowlist_json)
    assert other_target != digest(allowlist_json)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_handler_imports_in_a_clean_interpreter_with_only_its_asset(host_assets, function):
    assert (REPO / "lambdas" / function / "handler.py").is_file()
    asset = host_assets[function].path
    module, _, attribute = HANDLERS[function].rpartition(".")
    probe = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(asset)!r})\n"
        f"handler = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "assert callable(handler)\n"
        "stdlib = sys.base_prefix\n"
        "outside = sorted(\n"
        "    name for name, m in list(sys.modules.items())\n"
        "    if getattr(m, '__file__', None)\n"
        f"    and not m.__file__.startswith({str(asset)!r})\n"
        "    and not m.__file__.startswith(stdlib)\n"
        ")\n"
        "print(json.dumps(outside))\n"
    )
    # -I: no PYTHON* variables, no user site; -S: no site-packages; env: nothing inherited
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
        env={},
        cwd=asset,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_host_assets_carry_binaries_for_this_machine(host_assets):
    expected = EM_AARCH64 if host_target().arch == "arm64" else EM_X86_64
    for asset in host_assets.values():
        shared_objects = list(asset.path.rglob("*.so"))
        assert shared_objects
        assert all(_elf_machine(so) == expected for so in shared_objects)
