"""Lambda function references: names, partial ARNs and ARNs, with alias or version qualifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.exceptions import InputError

__all__ = ["LATEST", "FunctionRef", "parse_function_arn"]

LATEST = "$LATEST"

_FULL = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>[^:]+)"
    r":function:(?P<name>[^:/]+)(?::(?P<qualifier>[^:/]+))?\Z"
)
_PARTIAL = re.compile(r"(?P<account>\d{12}):function:(?P<name>[^:/]+)(?::(?P<qualifier>[^:/]+))?\Z")
_NAME = re.compile(r"(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9_$-]+))?\Z")


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """A Lambda function, version or alias: the unit that has its own resource policy."""

    partition: str
    region: str
    account: str
    name: str
    qualifier: str | None = None

    @property
    def unqualified_arn(self) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def arn(self) -> str:
        """The ARN of the resource whose policy governs the call (qualified when known)."""
        if self.qualifier is None or self.qualifier == LATEST:
            return self.unqualified_arn
        return f"{self.unqualified_arn}:{self.qualifier}"

    @property
    def policy_qualifier(self) -> str | None:
        """The qualifier whose policy applies: `$LATEST` has no policy of its own."""
        return None if self.qualifier in (None, LATEST) else self.qualifier

    @property
    def effective_qualifier(self) -> str:
        """The qualifier as allowlist rules see it: an unqualified call runs `$LATEST`."""
        return self.qualifier or LATEST

    def with_qualifier(self, qualifier: str | None) -> FunctionRef:
        return FunctionRef(self.partition, self.region, self.account, self.name, qualifier)


def parse_function_arn(
    value: str,
    *,
    default_region: str | None = None,
    default_account: str | None = None,
    default_partition: str = "aws",
) -> FunctionRef:
    """Parse a function name, partial ARN or ARN; region and account fall back to the defaults."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InputError("empty function name")
    full = _FULL.match(text)
    if full:
        return FunctionRef(
            full["partition"], full["region"], full["account"], full["name"], full["qualifier"]
        )
    partial = _PARTIAL.match(text) or _NAME.match(text)
    if partial is None:
        raise InputError(f"not a Lambda function name or ARN: {text[:200]!r}")
    groups = partial.groupdict()
    account = groups.get("account") or default_account
    if not default_region or not account:
        missing = "region" if not default_region else "account"
        raise InputError(f"function {text[:200]!r} names no {missing} and the record gives none")
    return FunctionRef(
        default_partition, default_region, account, groups["name"], groups["qualifier"]
    )
