#!/usr/bin/env python3
"""CDK composition root: read the settings and the allowlist, build the stacks.

`cdk synth` / `cdk deploy` run this file (see `cdk.json`); `python app.py` does the same with
the context of `cdk.json`. A bad allowlist or context value stops synth with the messages of
`invoke-audit check-config` (FILE:LINE: field: reason) and exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.allowlist_file import load_allowlist
from lambdas.core.config import (
    EXPIRY_WARNING_DAYS,
    allowlist_warnings,
    check_partition,
    expiry_warnings,
)
from models.exceptions import ConfigError
from models.regions import partition_of_region
from stacks.assets import AssetBuildError
from stacks.node import use_bundled_node
from stacks.settings import DeploySettings, SettingsError

ROOT = Path(__file__).resolve().parent
USAGE_ERROR = 2


def cdk_json_context(path: Path = ROOT / "cdk.json") -> dict[str, Any]:
    """The context block of cdk.json (feature flags and settings)."""
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context


def _allowlist_path(configured: str) -> Path:
    path = Path(configured)
    if path.is_absolute() or Path.cwd().resolve() == ROOT:
        return path
    return ROOT / path


def _fail(*lines: str) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return USAGE_ERROR


def main() -> int:
    use_bundled_node()  # before aws_cdk is imported: jsii starts Node.js on import
    import aws_cdk as cdk

    from stacks.compose import add_nag_checks, build_stack

    # The CDK CLI passes cdk.json's context itself; run directly, read it here.
    run_by_cli = "CDK_OUTDIR" in os.environ or "CDK_CONTEXT_JSON" in os.environ
    app = (
        cdk.App()
        if run_by_cli
        else cdk.App(context=cdk_json_context(), outdir=str(ROOT / "cdk.out"))
    )
    try:
        settings = DeploySettings.from_context(app.node.try_get_context)
        config = load_allowlist(_allowlist_path(settings.allowlist_path))
        expiring, expired = expiry_warnings(
            config, datetime.now(UTC), timedelta(days=EXPIRY_WARNING_DAYS)
        )
        for warning in [*allowlist_warnings(config), *expired, *expiring]:
            print(f"warning: {warning}", file=sys.stderr)
        # the home region if listed, else the deploying credentials' region
        region = settings.home_region or os.environ.get("CDK_DEFAULT_REGION")
        if region:
            check_partition(config, partition_of_region(region))
        build_stack(app, settings=settings, allowlist=config)
    except SettingsError as error:
        return _fail(f"cdk.json: {error}")
    except ConfigError as error:
        return _fail(*error.problems)
    except AssetBuildError as error:
        return _fail(f"error: Lambda asset: {error}")
    add_nag_checks(app)
    try:
        app.synth()
    except RuntimeError as error:
        if "Validation failed" not in str(error):
            raise
        return _fail(f"error: {str(error).splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
