"""`invoke-audit`: scan, history, rewrite, check-config, remediate, restore, learn, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import commands, demo, history, learn, remediation, scan
from models.exceptions import InvokeAuditError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoke-audit",
        description="Know who invokes your Lambda functions; take access away from callers "
        "that are not on the allowlist.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (scan, history, commands, remediation, learn, demo):
        module.register(subparsers)
    return parser


def _aws_error(exc: Exception) -> str | None:
    """A one-line description of an AWS SDK error, or None if `exc` is not one."""
    if not type(exc).__module__.startswith(("botocore", "boto3", "s3transfer")):
        return None
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InvokeAuditError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"invoke-audit: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        message = _aws_error(exc)
        if message is None:
            raise
        print(f"invoke-audit: error: AWS: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
