"""The demo's world as files: its CloudTrail records as one log file, its allowlist and its
functions' policies (named as `invoke-audit demo --keep` writes them)."""

from __future__ import annotations

import json
from pathlib import Path

from cli.demo_events import ALLOWLIST_YAML, FUNCTIONS, events


def write_demo_files(folder: Path) -> tuple[Path, Path, Path]:
    """(the log file, the allowlist, the folder of policies) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "cloudtrail.json"
    log.write_text(json.dumps({"Records": [event["detail"] for _, event in events()]}))
    allowlist = folder / "allowlist.yaml"
    allowlist.write_text(ALLOWLIST_YAML)
    policies = folder / "policies"
    policies.mkdir(exist_ok=True)
    for name, policy in FUNCTIONS.items():
        (policies / f"{name}.policy.json").write_text(json.dumps(policy, indent=2) + "\n")
    return log, allowlist, policies
