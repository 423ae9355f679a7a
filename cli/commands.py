"""`invoke-audit rewrite` and `invoke-audit check-config`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.advice import plural
from cli.allowlist_file import load_allowlist
from cli.scan import DEFAULT_CONFIG, add_own_function_option, own_functions_of
from lambdas.core.config import (
    EXPIRY_WARNING_DAYS,
    allowlist_notes,
    allowlist_warnings,
    check_partition,
    expiry_warnings,
)
from lambdas.core.guard import is_own
from lambdas.core.rewrite import rewrite_policy
from models.arns import parse_function_arn
from models.exceptions import ConfigError, InputError, RewriteError
from models.regions import KNOWN_REGIONS

__all__ = ["register"]


def _rewrite(args: argparse.Namespace) -> int:
    config = load_allowlist(args.config)
    ref = parse_function_arn(args.function)
    if is_own(ref, own_functions_of(args)) or config.is_protected(ref):
        raise InputError(f"{ref.arn} is protected: the remediator never changes its policy")
    rule = config.rule_for(ref)
    if rule is None:
        raise InputError(f"no rule in {args.config} covers {ref.arn}")
    rule = rule.in_force(datetime.now(UTC))  # an expired exception allows nothing
    try:
        text = Path(args.policy_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.policy_file}: cannot read: {exc}") from None
    try:
        result = rewrite_policy(text, rule, ref.arn)
    except RewriteError as exc:
        raise RewriteError(f"{args.policy_file}: {exc}") from None
    output = {"function": ref.arn, "rule": rule.name, **result.to_dict()}
    json.dump(output, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = -1
    if not 0 <= days <= 3660:
        raise argparse.ArgumentTypeError(f"expected a number of days from 0 to 3660, got {text!r}")
    return days


def _check_config(args: argparse.Namespace) -> int:
    config = load_allowlist(args.file)
    if args.partition:
        check_partition(config, args.partition)
    expiring, expired = expiry_warnings(
        config, datetime.now(UTC), timedelta(days=args.expiring_within)
    )
    if expired and args.strict:
        raise ConfigError(expired)
    for warning in [*allowlist_warnings(config), *expired, *expiring]:
        print(f"invoke-audit: warning: {warning}", file=sys.stderr)
    for note in allowlist_notes(config):
        print(f"invoke-audit: note: {note}", file=sys.stderr)
    rules = plural(len(config.rules), "rule")
    print(f"{args.file}: ok ({rules}, default mode {config.defaults.mode})")
    width = max((len(rule.name) for rule in config.rules), default=0)
    for rule in config.rules:
        origin = "set on the rule" if rule.mode else "from defaults.mode"
        print(f"  {rule.name:<{width}}  {config.mode_of(rule):<7}  ({origin})")
    return 0


def register(subparsers: Any) -> None:
    rewrite = subparsers.add_parser(
        "rewrite",
        help="print the policy the remediator would write",
        description='Print {"policy": <new document>, "changes": [...]} for a policy file '
        "(a document, or a GetPolicy / GetResourcePolicy response).",
    )
    rewrite.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE")
    rewrite.add_argument("--function", required=True, metavar="ARN")
    add_own_function_option(rewrite)
    rewrite.add_argument("policy_file", metavar="POLICY_FILE")
    rewrite.set_defaults(func=_rewrite)
    check = subparsers.add_parser(
        "check-config",
        help="validate an allowlist file",
        description="Validate an allowlist; print each rule's effective mode (its own, or "
        "defaults.mode). Warnings (an unknown region in an ARN) go to stderr.",
    )
    check.add_argument("file", nargs="?", default=DEFAULT_CONFIG, metavar="FILE")
    check.add_argument(
        "--partition",
        choices=sorted(set(KNOWN_REGIONS.values())),
        help="the deployment's partition: a rule that can never match a function there is an "
        "error (cdk synth checks this for the region it deploys to)",
    )
    check.add_argument(
        "--expiring-within",
        type=_days,
        default=EXPIRY_WARNING_DAYS,
        metavar="DAYS",
        help="warn about temporary exceptions (allow entries with expires) that expire within "
        f"DAYS days (default {EXPIRY_WARNING_DAYS}); expired ones are always warned about",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="an expired temporary exception is an error (exit 2), not a warning",
    )
    check.set_defaults(func=_check_config)
