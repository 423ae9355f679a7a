"""`invoke-audit remediate` and `invoke-audit restore`: the remediator's flow from a laptop,
and the operator's undo.

Both use the caller's AWS credentials. BACKUP_BUCKET, BACKUP_MAC_KEY, RATE_TABLE and TOPIC_ARN
(the deployed stack's) are the defaults of the matching options; a remediation never writes
without a backup, and is counted against the hourly limit when a rate table is given.

restore reads the backup bucket, the HMAC key and the pipeline's own functions from the
stack's outputs (`--stack` / `--environment`, as `status` does) unless `--backup-bucket` (or
BACKUP_BUCKET) names the bucket; see lambdas.remediation.restore for what it refuses.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from cli.allowlist_file import load_allowlist
from cli.operate import stack_outputs
from cli.scan import DEFAULT_CONFIG, add_own_function_option, own_functions_of
from lambdas.adapters.backup import BackupMacVerifier, BackupReader, BackupStore
from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.roles import CallerIdentity
from lambdas.remediation.remediate import Outcome, Violation
from lambdas.remediation.restore import Confirm, Restorer, read_backup
from lambdas.remediation.wiring import PolicyStores, build_remediator
from models.arns import parse_function_arn
from models.exceptions import InputError
from models.names import own_function_arns

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
        mac_key=args.mac_key or None,
    )
    result = remediator.remediate(
        Violation(function=ref.arn, reason="remediation requested from the command line"),
        dry_run=args.dry_run,
    )
    _emit(result.to_dict(), f"{result.outcome.value}: {result.function}: {result.detail}")
    return 1 if result.outcome in _NOT_DONE else 0


@dataclass(frozen=True, slots=True)
class Deployment:
    """What restore checks a backup against: the deployment's bucket, key, own functions."""

    backup_bucket: str
    mac_key: str | None
    own_functions: frozenset[str]


def deployment_of(args: argparse.Namespace, factory: ClientFactory) -> Deployment:
    """--backup-bucket / --mac-key / --own-function (or their variables) when the bucket is
    given; else the stack's outputs BackupBucketName, BackupMacKeyArn, OwnFunctionArns."""
    own = own_functions_of(args)
    if args.backup_bucket:
        return Deployment(args.backup_bucket, args.mac_key or None, own)
    stack = args.stack or f"InvokeAudit-{args.environment}"
    outputs = stack_outputs(factory.client("cloudformation"), stack)
    bucket = outputs.get("BackupBucketName")
    if not bucket:
        raise InputError(f"stack {stack} has no output BackupBucketName: give --backup-bucket")
    return Deployment(
        bucket,
        args.mac_key or outputs.get("BackupMacKeyArn") or None,
        own | own_function_arns(outputs.get("OwnFunctionArns")),
    )


def _shown(policy: dict[str, Any] | None) -> list[str]:
    if policy is None:
        return ["(no policy)\n"]
    return [line + "\n" for line in json.dumps(policy, indent=2, sort_keys=True).splitlines()]


def policy_diff(arn: str, current: dict[str, Any] | None, restored: dict[str, Any] | None) -> str:
    """The unified diff from the current policy to the one a restore puts back."""
    return "".join(
        difflib.unified_diff(
            _shown(current),
            _shown(restored),
            fromfile=f"current policy of {arn}",
            tofile="restored policy",
        )
    )


def _confirmation(args: argparse.Namespace) -> Confirm:
    """Show the diff on stderr; with --yes go on, on a terminal ask, else refuse."""
    if not args.yes and not args.dry_run and not sys.stdin.isatty():
        raise InputError(
            "restore changes a policy and stdin is not a terminal, so it cannot ask: check "
            "the change with --dry-run, then run it again with --yes"
        )

    def confirm(arn: str, current: dict[str, Any] | None, restored: dict[str, Any] | None) -> bool:
        sys.stderr.write(policy_diff(arn, current, restored))
        if args.yes:
            return True
        sys.stderr.write(f"Put this policy back on {arn}? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    return confirm


def _restore(args: argparse.Namespace) -> int:
    confirm = _confirmation(args)  # before anything is read: a script without --yes stops here
    config = load_allowlist(args.config)
    factory = ClientFactory(region=_region(args, None))
    deployment = deployment_of(args, factory)
    # Every S3 call names the bucket's owner: the account of these credentials.
    owner = CallerIdentity(factory.client("sts")).account()
    restorer = Restorer(
        policies_for=PolicyStores(factory),
        writer=lambda bucket: BackupStore(factory.client("s3"), bucket, expected_owner=owner),
        backup_bucket=deployment.backup_bucket,
        config=config,
        own_functions=deployment.own_functions,
        verifier=BackupMacVerifier(factory.client("kms"), deployment.mac_key)
        if deployment.mac_key
        else None,
    )
    restorer.check_location(args.backup, allow_foreign=args.allow_foreign_backup)
    reader = BackupReader(factory.client("s3"), expected_owner=owner)
    location, backup = read_backup(args.backup, lambda: reader)
    ref = parse_function_arn(backup["function"])
    result = restorer.restore(
        backup,
        source=location,
        dry_run=args.dry_run,
        force=args.force,
        allow_foreign=args.allow_foreign_backup,
        target=args.function,
        confirm=confirm,
    )
    if args.dry_run and result.outcome == "would-restore":
        sys.stderr.write(policy_diff(ref.arn, result.policy_before, result.policy_after))
    extra = f" (current policy saved to {result.safety_backup})" if result.safety_backup else ""
    _emit(result.to_dict(), f"{result.outcome}: {ref.arn}: {result.detail}{extra}")
    return 1 if result.outcome == "not-confirmed" else 0


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
    remediate.add_argument(
        "--mac-key",
        default=os.environ.get("BACKUP_MAC_KEY"),
        metavar="ARN",
        help="the HMAC key to sign the backup with (default BACKUP_MAC_KEY; needs "
        "kms:GenerateMac, which the stack grants the remediator only)",
    )
    remediate.add_argument("--rate-table", default=os.environ.get("RATE_TABLE"), metavar="TABLE")
    remediate.add_argument("--topic-arn", default=os.environ.get("TOPIC_ARN"), metavar="ARN")
    remediate.add_argument("--region", help="region of the bucket, table and topic")
    add_own_function_option(remediate)
    remediate.set_defaults(func=_remediate)

    restore = subparsers.add_parser(
        "restore",
        help="put a backed-up policy back (undo a remediation)",
        description="Put back the original policy saved in BACKUP (s3://BUCKET/KEY in the "
        "deployment's backup bucket) with compare-and-swap on the current RevisionId; a backup "
        "whose policy is null deletes the policy. Refused: a backup from another bucket or a "
        "file (unless --allow-foreign-backup), whose key or --function does not match the "
        "function it names, whose signature does not verify, or of a protected or the "
        "pipeline's own function. Refused unless --force: an unsigned backup, a policy changed "
        "since the remediation, a policy that lets callers off the allowlist invoke. Shows "
        "the diff and asks on a terminal (--yes for scripts). The current policy is backed "
        "up first, in the deployment's bucket. Exit 1 when not confirmed.",
    )
    restore.add_argument("backup", metavar="BACKUP")
    restore.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    restore.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (scripts; no terminal)"
    )
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore even an unsigned backup, a policy changed since the remediation wrote "
        "it, or a policy that lets callers off the allowlist (or anyone) invoke",
    )
    restore.add_argument(
        "--allow-foreign-backup",
        action="store_true",
        help="accept a backup outside the deployment's backup bucket (a local file, another "
        "bucket of this account); every other check still applies",
    )
    restore.add_argument(
        "--function",
        metavar="ARN",
        help="the resource you mean to restore (qualified for an alias or version): a backup "
        "of any other is refused",
    )
    restore.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    restore.add_argument(
        "--backup-bucket",
        default=os.environ.get("BACKUP_BUCKET"),
        metavar="BUCKET",
        help="the deployment's backup bucket (default BACKUP_BUCKET, else the stack's output)",
    )
    restore.add_argument(
        "--mac-key",
        default=os.environ.get("BACKUP_MAC_KEY"),
        metavar="ARN",
        help="the HMAC key backups are signed with (default BACKUP_MAC_KEY, else the stack's "
        "output BackupMacKeyArn)",
    )
    add_own_function_option(
        restore, default="OWN_FUNCTION_ARNS, and the stack's output OwnFunctionArns"
    )
    restore.add_argument(
        "--environment", default="dev", help="the deployment's environment (default dev)"
    )
    restore.add_argument("--stack", help="the stack name (default InvokeAudit-<environment>)")
    restore.add_argument(
        "--region", help="region for S3 and the stack (the function's is in BACKUP)"
    )
    restore.set_defaults(func=_restore)
