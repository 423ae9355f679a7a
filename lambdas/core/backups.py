"""Policy backups: where they are kept, what their signature covers, and what a restore must
check before it puts one back.

A backup is a JSON object written by the remediator before every policy change: the resource
(`function`, qualified for an alias or version), the original `policy`, its `revision_id`,
the `new_policy` written, the event, the `time`. The remediator signs it with an HMAC KMS
key (`GenerateMac`); the signature covers every other field of the object, through a SHA-256
digest of its canonical JSON (KMS takes at most 4096 bytes of message, a backup can be
larger). A restore verifies it (`VerifyMac`) with the deployment's key, never with a key the
file names.

Pure: no AWS SDK, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lambdas.core.access import request_set, statements_of
from lambdas.core.evaluate import evaluate
from lambdas.core.rewrite import parse_policy
from models.allowlist import Rule
from models.arns import FunctionRef, parse_function_arn
from models.exceptions import InputError

__all__ = [
    "MAC_ALGORITHM",
    "OLD_UNQUALIFIED",
    "SIGNATURE_FIELD",
    "UNQUALIFIED",
    "access_beyond_rule",
    "backup_key",
    "backup_prefix",
    "key_problem",
    "signed_message",
]

# The folder of the function's own (unqualified) policy. No alias or version can be named so
# (alias names take letters, digits, `-` and `_`), and a shell leaves it as it is. Backups
# written before used `$UNQUALIFIED`, which a shell expands when pasted unquoted.
UNQUALIFIED = "@unqualified"
OLD_UNQUALIFIED = "$UNQUALIFIED"

SIGNATURE_FIELD = "signature"
MAC_ALGORITHM = "HMAC_SHA_256"
_MESSAGE_PREFIX = b"invoke-audit backup v1\n"


def backup_prefix(ref: FunctionRef) -> str:
    """`backups/{account}/{region}/{function}/{qualifier or @unqualified}/`"""
    qualifier = ref.policy_qualifier or UNQUALIFIED
    return f"backups/{ref.account}/{ref.region}/{ref.name}/{qualifier}/"


def backup_key(ref: FunctionRef, moment: datetime, event_id: str) -> str:
    """`{backup_prefix}{UTC time}-{event id}.json`: one resource's backups sort by time."""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{backup_prefix(ref)}{stamp}-{event_id}.json"


def signed_message(backup: Mapping[str, Any]) -> bytes:
    """What the MAC is computed over: a digest of every field but the signature itself
    (function ARN and qualifier, policies, revision, event, time...), in canonical JSON."""
    content = {k: v for k, v in backup.items() if k != SIGNATURE_FIELD}
    canonical = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    )
    return _MESSAGE_PREFIX + hashlib.sha256(canonical.encode()).hexdigest().encode()


def key_problem(function: str, key: str) -> str | None:
    """Why the object `key` cannot hold a backup of `function` (None when it can): the key
    names the account, region, function and qualifier the backup is about."""
    try:
        ref = parse_function_arn(function)
    except InputError as error:
        return f"field function: {error}"
    prefix = backup_prefix(ref)
    prefixes = [prefix]
    if ref.policy_qualifier is None:
        prefixes.append(prefix.removesuffix(f"{UNQUALIFIED}/") + f"{OLD_UNQUALIFIED}/")
    for start in prefixes:
        rest = key.removeprefix(start)
        if rest != key and rest and "/" not in rest:
            return None
    return (
        f"the backup is of {ref.arn}, but its key {key} is not under {prefix}: the file was "
        "copied or renamed from another function's backup"
    )


def access_beyond_rule(policy: Any, rule: Rule | None, resource_arn: str) -> list[str]:
    """The invoke requests `policy` allows (or may allow) that `rule` does not: callers off
    the allowlist, anyone (`*`), other accounts. Without a rule every caller is off it.
    Asked of the same request set and evaluator as the remediator's post-condition."""
    document, _ = parse_policy(policy)
    statements = statements_of(document)
    if not statements:
        return []
    rule = rule or Rule(name="no-rule", functions=["*"], allow=[])
    found: list[str] = []
    for request in request_set(statements, rule, resource_arn).outsiders:
        answer = evaluate(statements, request).allowed
        if answer is not False:
            what = "allowed" if answer else "maybe allowed"
            found.append(f"{request.describe()} ({what})")
    return found
