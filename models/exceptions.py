"""Errors invoke-audit reports to people.

InvokeAuditError          any error with a message a person can act on
├── ConfigError           the allowlist is wrong (one line per problem: FILE:LINE: field: reason)
├── InputError            a file, record or argument cannot be read
└── RewriteError          a policy cannot be rewritten safely
    └── PostConditionError  the rewrite would leave an uncovered grant or drop an allowed one
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InputError",
    "InvokeAuditError",
    "PostConditionError",
    "RewriteError",
]


class InvokeAuditError(Exception):
    """Base of every error that carries a message meant for a person."""


class ConfigError(InvokeAuditError):
    """The allowlist is invalid. `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InputError(InvokeAuditError):
    """An input file, record or argument cannot be read."""


class RewriteError(InvokeAuditError):
    """A policy cannot be rewritten safely."""


class PostConditionError(RewriteError):
    """The computed policy fails the post-condition; nothing may be written."""
