"""`invoke-audit remediate` and `invoke-audit restore`: the remediator's flow from a laptop,
and the operator's undo.

Both use the caller's AWS credentials. BACKUP_BUCKET, RATE_TABLE and TOPIC_ARN (the deployed
stack's) are the defaults of the matching options; a remediation never writes without a
backup, and is counted against the hourly limit when a rate table is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from cli.allowlist_file import load_allowlist
from cli.scan import DEFAULT_CONFIG, own_functions_of
from lambdas.adapters.backup import BackupReader, BackupStore
from lambdas.adapters.clients import ClientFactory
from lambdas.remediation.remediate import Outcome, Violation
from lambdas.remediation.restore import Restorer, load_backup
from lambdas.remediation.wiring import PolicyStores, build_remediator
from models.arns import parse_function_arn
from models.exceptions import InputError

__all__ = ["register"]

# Outcomes after which the operator's request was not carried out.
_NOT_DONE = frozenset({Outcome.REFUSED, Outcome.GONE})


def _region(args: argparse.Namespace, fallback: str | None) -> str | None:
    return (
        args.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or fallback
    )


def _emit(result: dict[str, Any], line: str) -> None:
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    print(f"invoke-audit: {line}", file=sys.stderr)


def _remediate(args: argparse.Namespace) -> int:
    config = load_allowlist(args.config)
    ref = parse_function_arn(args.function)
    if not args.dry_run and not args.backup_bucket:
        raise InputError(
            "--backup-bucket (or BACKUP_BUCKET) is required: a policy is never changed "
            "without a backup (or use --dry-run)"
        )
    remediator = build_remediator(
        config,
        factory=ClientFactory(region=_region(args, ref.region)),
        backup_bucket=args.backup_bucket,
        rate_table=args.rate_table,
        topic_arn=args.topic_arn,
        own_functions=own_functions_of(args),
    )
    result = remediator.remediate(
        Violation(function=ref.arn, reason="remediation requested from the command line"),
        dry_run=args.dry_run,
    )
    _emit(result.to_dict(), f"{result.outcome.value}: {result.function}: {result.detail}")
    return 1 if result.outcome in _NOT_DONE else 0


def _restore(args: argparse.Namespace) -> int:
    factory = ClientFactory(region=_region(args, None))
    backup = load_backup(args.backup, lambda: BackupReader(factory.client("s3")))
    ref = parse_function_arn(backup["function"])
    restorer = Restorer(
        policies_for=PolicyStores(factory),
        writer=lambda bucket: BackupStore(factory.client("s3"), bucket),
    )
    result = restorer.restore(backup, source=args.backup, dry_run=args.dry_run, force=args.force)
    extra = f" (current policy saved to {result.safety_backup})" if result.safety_backup else ""
    _emit(result.to_dict(), f"{result.outcome}: {ref.arn}: {result.detail}{extra}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remediate = subparsers.add_parser(
        "remediate",
        help="rewrite one function's policy now, as the remediator would",
        description="Read the policy of one function, version or alias, rewrite it under its "
        "rule, back up the original and write the result with compare-and-swap. Prints the "
        "result as JSON. Exit 1 when the function is refused (protected, no rule, monitor "
        "mode) or gone.",
    )
    remediate.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    remediate.add_argument(
        "--function", required=True, metavar="ARN", help="full ARN, qualified for an alias"
    )
    remediate.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    remediate.add_argument(
        "--backup-bucket", default=os.environ.get("BACKUP_BUCKET"), metavar="BUCKET"
    )
    remediate.add_argument("--rate-table", default=os.environ.get("RATE_TABLE"), metavar="TABLE")
    remediate.add_argument("--topic-arn", default=os.environ.get("TOPIC_ARN"), metavar="ARN")
    remediate.add_argument("--region", help="region of the bucket, table and topic")
    remediate.add_argument(
        "--own-function",
        dest="own_functions",
        action="append",
        metavar="ARN",
        help="the pipeline's own function (exact unqualified ARN; repeatable); default: "
        "OWN_FUNCTION_ARNS",
    )
    remediate.set_defaults(func=_remediate)

    restore = subparsers.add_parser(
        "restore",
        help="put a backed-up policy back (undo a remediation)",
        description="Put back the original policy saved in BACKUP (s3://BUCKET/KEY or a local "
        "file) with compare-and-swap on the current RevisionId; a backup whose policy is null "
        "deletes the policy. The current policy is backed up first.",
    )
    restore.add_argument("backup", metavar="BACKUP")
    restore.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore even if the policy changed since the remediation wrote it",
    )
    restore.add_argument("--region", help="region for S3 (the function's region is in BACKUP)")
    restore.set_defaults(func=_restore)
