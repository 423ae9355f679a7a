"""`invoke-audit rewrite` and `invoke-audit check-config`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.advice import plural
from cli.allowlist_file import load_allowlist
from cli.scan import DEFAULT_CONFIG, own_functions_of
from lambdas.core.config import allowlist_notes, allowlist_warnings, check_partition
from lambdas.core.guard import is_own
from lambdas.core.rewrite import rewrite_policy
from models.arns import parse_function_arn
from models.exceptions import InputError, RewriteError
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


def _check_config(args: argparse.Namespace) -> int:
    config = load_allowlist(args.file)
    if args.partition:
        check_partition(config, args.partition)
    for warning in allowlist_warnings(config):
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
    rewrite.add_argument(
        "--own-function",
        dest="own_functions",
        action="append",
        metavar="ARN",
        help="the pipeline's own function (exact unqualified ARN; repeatable); default: "
        "OWN_FUNCTION_ARNS",
    )
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
    check.set_defaults(func=_check_config)
