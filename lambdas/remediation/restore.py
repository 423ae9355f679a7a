"""The operator's undo: put a backed-up policy back, with compare-and-swap.

The backup names the resource, the original policy (`null`: there was none, so the policy
is deleted) and the policy the remediator wrote. The restore:

1. reads the current policy and its RevisionId;
2. does nothing if the original is already in place;
3. refuses, unless forced, when the current policy is no longer the one the remediator wrote
   (someone changed it since: restoring would silently undo their change too);
4. backs up the current policy first (next to the backup it restores, in the same format, so
   a restore can itself be undone);
5. writes the original with the current RevisionId: a concurrent change fails it with 412.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdas.adapters.backup import parse_s3_uri
from lambdas.adapters.errors import ResourceGoneError
from lambdas.core.policy import same_policy
from lambdas.core.ports import BackupPort, BackupSource, PolicyState, PolicyStore
from lambdas.remediation.remediate import OLD_UNQUALIFIED, UNQUALIFIED, backup_key, utcnow
from models.arns import FunctionRef, parse_function_arn
from models.exceptions import InputError

__all__ = ["RestoreResult", "Restorer", "backup_locations", "load_backup"]


def load_backup(source: str, reader: Callable[[], BackupSource]) -> dict[str, Any]:
    """A backup from `s3://BUCKET/KEY` or a local file, checked for the fields restore needs."""
    if source.startswith("s3://"):
        backup = _read_s3(source, reader())
    else:
        try:
            backup = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{source}: cannot read: {error}") from None
        except ValueError as error:
            raise InputError(f"{source}: not a JSON backup: {error}") from None
    if not isinstance(backup, dict):
        raise InputError(f"{source}: a backup is a JSON object")
    if not isinstance(backup.get("function"), str):
        raise InputError(f"{source}: field function: missing (the resource ARN)")
    if "policy" not in backup or not isinstance(backup["policy"], dict | None):
        raise InputError(f"{source}: field policy: missing (the original document, or null)")
    return backup


# `.../FUNCTION//TIME-EVENT.json`: an older backup key whose `$UNQUALIFIED` a shell expanded
# to nothing when the undo command was pasted unquoted.
_EXPANDED = re.compile(r"(?P<head>backups/\d{12}/[^/]+/[^/]+/)/(?P<tail>[^/]+\.json)\Z")


def backup_locations(source: str) -> list[str]:
    """Where a backup named `source` may be: itself, and for an older key mangled by a shell,
    the key as it was written (restore accepts the old keys as well as the new)."""
    bucket, key = parse_s3_uri(source)
    mangled = _EXPANDED.search(key)
    if mangled is None:
        return [source]
    start = key[: mangled.start()]
    return [
        source,
        *(
            f"s3://{bucket}/{start}{mangled['head']}{folder}/{mangled['tail']}"
            for folder in (OLD_UNQUALIFIED, UNQUALIFIED)
        ),
    ]


def _read_s3(source: str, reader: BackupSource) -> dict[str, Any]:
    locations = backup_locations(source)
    for location in locations[:-1]:
        try:
            return reader.get(location)
        except ResourceGoneError:
            continue
    return reader.get(locations[-1])


@dataclass(slots=True)
class RestoreResult:
    outcome: str  # restored | already-in-place | would-restore
    function: str
    detail: str
    revision_before: str | None = None
    revision_after: str | None = None
    policy_before: dict[str, Any] | None = None
    policy_after: dict[str, Any] | None = None
    safety_backup: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "function": self.function,
            "detail": self.detail,
            "revision_before": self.revision_before,
            "revision_after": self.revision_after,
            "policy_before": self.policy_before,
            "policy_after": self.policy_after,
            "safety_backup": self.safety_backup,
        }


@dataclass
class Restorer:
    """Restores backups. `writer` stores the safety backup when the source is in S3."""

    policies_for: Callable[[FunctionRef], PolicyStore]
    writer: Callable[[str], BackupPort] | None = None
    clock: Callable[[], datetime] = utcnow

    def restore(
        self, backup: dict[str, Any], *, source: str, dry_run: bool = False, force: bool = False
    ) -> RestoreResult:
        ref = parse_function_arn(backup["function"])
        original: dict[str, Any] | None = backup["policy"]
        store = self.policies_for(ref)
        current = store.read(ref)
        result = RestoreResult(
            "would-restore",
            ref.arn,
            "",
            revision_before=current.revision_id,
            policy_before=current.document,
            policy_after=original,
        )
        if same_policy(current.document, original):
            result.outcome = "already-in-place"
            result.detail = "the backed-up policy is already in place: nothing to do"
            return result
        written = backup.get("new_policy")
        if not force and "new_policy" in backup and not same_policy(current.document, written):
            raise InputError(
                f"{source}: the policy of {ref.arn} changed since the remediation wrote it; "
                "restoring would undo that change too (use --force to restore anyway)"
            )
        if dry_run:
            result.detail = "dry run: the backed-up policy would be put back"
            return result
        result.safety_backup = self._safety_backup(source, backup, current)
        stored = store.write(ref, current, original)
        result.outcome = "restored"
        result.revision_after = stored.revision_id
        result.policy_after = stored.document
        result.detail = (
            "the original policy is back"
            if original is not None
            else "there was no policy before: the policy is deleted"
        )
        return result

    def _safety_backup(self, source: str, backup: dict[str, Any], current: PolicyState) -> str:
        moment = self.clock()
        safety = {
            "function": backup["function"],
            "revision_id": current.revision_id,
            "policy": current.document,
            "api": current.api,
            "event": {"restore_of": source},
            "event_id": None,
            "changes": [],
            "new_policy": backup["policy"],
            "time": moment.isoformat(),
        }
        if source.startswith("s3://"):
            if self.writer is None:
                raise InputError("no S3 client to back up the current policy before restoring")
            bucket, _ = parse_s3_uri(source)
            ref = parse_function_arn(backup["function"])
            return self.writer(bucket).put(backup_key(ref, moment, "restore"), safety)
        stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = Path(source).with_name(f"{Path(source).stem}.before-restore-{stamp}.json")
        try:
            path.write_text(json.dumps(safety, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as error:
            raise InputError(f"{path}: cannot write the safety backup: {error}") from None
        return str(path)
