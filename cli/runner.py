"""The command line without the demo: the parser of the everyday commands and their runner.

`cli.main` adds the demo, which itself runs everyday commands through `run`; keeping them here
lets the demo call the CLI without importing the module that imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from cli import commands, history, learn, operate, remediation, report, scan
from models.exceptions import InvokeAuditError
from models.names import PROJECT

__all__ = ["COMMANDS", "build_parser", "run"]

# Each module has `register(subparsers)`, which adds its commands.
COMMANDS: tuple[ModuleType, ...] = (scan, report, history, commands, remediation, learn, operate)


def build_parser(modules: Sequence[ModuleType] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROJECT,
        description="Know who invokes your Lambda functions; take access away from callers "
        "that are not on the allowlist.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in modules:
        module.register(subparsers)
    return parser


def _aws_error(exc: Exception) -> str | None:
    """A one-line description of an AWS SDK error, or None if `exc` is not one."""
    if not type(exc).__module__.startswith(("botocore", "boto3", "s3transfer")):
        return None
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run(argv: Sequence[str] | None = None, modules: Sequence[ModuleType] = COMMANDS) -> int:
    """Parse `argv`, run the command; errors a person can act on are one line and exit 2."""
    args = build_parser(modules).parse_args(argv)
    try:
        return int(args.func(args))
    except InvokeAuditError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"{PROJECT}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        message = _aws_error(exc)
        if message is None:
            raise
        print(f"{PROJECT}: error: AWS: {message}", file=sys.stderr)
        return 2
