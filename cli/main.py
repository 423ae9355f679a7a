"""`invoke-audit`: scan, report, history, rewrite, check-config, remediate, restore, learn,
selftest, status, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import demo, runner

__all__ = ["build_parser", "main"]

_ALL = (*runner.COMMANDS, demo)


def build_parser() -> argparse.ArgumentParser:
    return runner.build_parser(_ALL)


def main(argv: Sequence[str] | None = None) -> int:
    return runner.run(argv, _ALL)


if __name__ == "__main__":
    sys.exit(main())
