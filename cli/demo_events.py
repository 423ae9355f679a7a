"""The demo's world, read from the sample files (`emulator/samples`): the allowlist, sample
functions with realistic policies, and the CloudTrail Invoke events it plays, in order."""

from __future__ import annotations

from typing import Any

from emulator.samples import load_sample

__all__ = ["ACCOUNT", "ALLOWLIST_YAML", "FUNCTIONS", "PARTNER", "REGION", "STRANGER", "events"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTNER = "111122223333"  # the partner account PartnerFunction is shared with
STRANGER = "444455556666"  # the other account its policy lets in

ALLOWLIST_YAML: str = load_sample("allowlist.yaml")

# Policies as they are found in real accounts: a leftover public grant and an S3 grant made
# without SourceAccount (the blog function), a grant shared with two accounts (the partner).
FUNCTIONS: dict[str, dict[str, Any]] = {
    name: load_sample(f"policies/{name}")
    for name in ("BlogFunction", "PartnerFunction", "ReportsFunction")
}

# (what happened, sample event), in the order the demo plays them.
SCRIPT = (
    (
        "S3 delivers an object-created event from examplebucket to BlogFunction",
        "blog-invoked-by-s3",
    ),
    ("IAM user alice invokes BlogFunction directly", "blog-invoked-by-iam-user"),
    (
        "Partner account 111122223333 invokes PartnerFunction",
        "partner-invoked-by-partner-account",
    ),
    (
        "Unknown account 444455556666 invokes PartnerFunction",
        "partner-invoked-by-unknown-account",
    ),
    ("Lambda runs BlogFunction's queued event (InvokeExecution)", "blog-invoke-execution"),
    ("EventBridge invokes ReportsFunction, which no rule covers", "reports-invoked-by-eventbridge"),
)


def events() -> list[tuple[str, dict[str, Any]]]:
    """(what happened, EventBridge event as the validator receives it), in the demo's order."""
    return [(what, load_sample(f"events/{name}")) for what, name in SCRIPT]
