"""The operator's undo: put a backed-up policy back, with compare-and-swap.

The backup names the resource, the original policy (`null`: there was none, so the policy
is deleted) and the policy the remediator wrote. Before anything is read from Lambda the
backup itself is checked, and refused when:

- it is not in the deployment's backup bucket (a local file or another bucket: only with
  `allow_foreign`);
- its object key is not that of the function it names (a backup copied or renamed), or it is
  not of the resource the operator named (`target`);
- its signature does not verify with the deployment's HMAC key (changed after the remediator
  wrote it), or it has none (`allow_unsigned`);
- the function is the pipeline's own or the allowlist protects it (lambdas.core.guard, as for
  the remediator: no flag overrides this).

The restore then:

1. reads the current policy and its RevisionId;
2. does nothing if the original is already in place;
3. refuses, unless forced, when the current policy is no longer the one the remediator wrote
   (someone changed it since: restoring would silently undo their change too);
4. refuses, unless `allow_wider`, a policy that lets callers off the allowlist (or anyone)
   invoke the function (lambdas.core.backups.access_beyond_rule);
5. asks `confirm` (the CLI shows the diff and asks on a terminal);
6. backs up the current policy first, in the deployment's backup bucket (never in the bucket
   a foreign backup came from), in the same format, so a restore can itself be undone;
7. writes the original with the current RevisionId: a concurrent change fails it with 412.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdas.adapters.backup import parse_s3_uri
from lambdas.adapters.errors import ResourceGoneError
from lambdas.core.backups import (
    OLD_UNQUALIFIED,
    SIGNATURE_FIELD,
    UNQUALIFIED,
    access_beyond_rule,
    backup_key,
    key_problem,
)
from lambdas.core.guard import Standing, guard, is_own
from lambdas.core.policy import same_policy
from lambdas.core.ports import BackupPort, BackupSource, BackupVerifier, PolicyState, PolicyStore
from lambdas.remediation.remediate import utcnow
from models.allowlist import AllowlistConfig
from models.arns import FunctionRef, parse_function_arn
from models.exceptions import InputError

__all__ = ["RestoreResult", "Restorer", "backup_locations", "load_backup", "read_backup"]

# How many of the callers a refused policy would let in are named in the refusal.
_SHOWN = 3


def load_backup(source: str, reader: Callable[[], BackupSource]) -> dict[str, Any]:
    """A backup from `s3://BUCKET/KEY` or a local file, checked for the fields restore needs."""
    return read_backup(source, reader)[1]


def read_backup(source: str, reader: Callable[[], BackupSource]) -> tuple[str, dict[str, Any]]:
    """(where it was found, the backup): `source`, or for an older key a shell mangled, the key
    as it was written."""
    location = source
    if source.startswith("s3://"):
        location, backup = _read_s3(source, reader())
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
    return location, backup


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


def _read_s3(source: str, reader: BackupSource) -> tuple[str, Any]:
    locations = backup_locations(source)
    for location in locations[:-1]:
        try:
            return location, reader.get(location)
        except ResourceGoneError:
            continue
    return locations[-1], reader.get(locations[-1])


@dataclass(slots=True)
class RestoreResult:
    outcome: str  # restored | already-in-place | would-restore | not-confirmed
    function: str
    detail: str
    revision_before: str | None = None
    revision_after: str | None = None
    policy_before: dict[str, Any] | None = None
    policy_after: dict[str, Any] | None = None
    safety_backup: str | None = None
    needs_force: list[str] = field(default_factory=list)  # a dry run's: what --force overrides

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
            "needs_force": self.needs_force,
        }


# Shows the current and the restored policy and says whether to go on.
Confirm = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], bool]


@dataclass
class Restorer:
    """Restores backups. `backup_bucket`: the deployment's, the only one a backup is read from
    (unless `allow_foreign`) and where the safety copy goes through `writer`. `config` and
    `own_functions` give the protect and own-function refusals; `verifier` checks
    signatures."""

    policies_for: Callable[[FunctionRef], PolicyStore]
    writer: Callable[[str], BackupPort] | None = None
    clock: Callable[[], datetime] = utcnow
    backup_bucket: str | None = None
    config: AllowlistConfig | None = None
    own_functions: AbstractSet[str] = field(default_factory=frozenset)
    verifier: BackupVerifier | None = None

    def check(
        self,
        backup: dict[str, Any],
        *,
        source: str,
        target: str | None = None,
        allow_foreign: bool = False,
    ) -> list[str]:
        """Refuse (InputError) a backup that is not the deployment's, not of the resource it
        is stored as or asked for, whose signature does not verify, or of a resource that is
        never changed. Returns what only --force overrides (an unsigned backup)."""
        ref = parse_function_arn(backup["function"])
        self.check_location(source, allow_foreign=allow_foreign)
        if source.startswith("s3://"):
            problem = key_problem(ref.arn, parse_s3_uri(source)[1])
            if problem is not None:
                raise InputError(f"{source}: {problem}")
        if target is not None:
            wanted = parse_function_arn(target)
            if wanted.arn != ref.arn:
                raise InputError(
                    f"{source}: the backup is of {ref.arn}, not of {wanted.arn}: refused"
                )
        # The remediator's own refusals (lambdas.core.guard): no flag overrides them.
        if self.config is not None:
            place = guard(ref, self.config, self.own_functions)
            if place.standing in (Standing.OWN, Standing.PROTECTED):
                raise InputError(f"{source}: {ref.arn} is {place.reason()}: never changed")
        elif is_own(ref, self.own_functions):
            raise InputError(f"{source}: {ref.arn} is the pipeline's own function: never changed")
        return self._check_signature(backup, source)

    def check_location(self, source: str, *, allow_foreign: bool = False) -> None:
        """Refuse, before it is read, a backup outside the deployment's backup bucket."""
        if source.startswith("s3://"):
            bucket, _ = parse_s3_uri(source)
            if bucket != self.backup_bucket and not allow_foreign:
                raise InputError(
                    f"{source}: not in the backup bucket {self.backup_bucket or '(none given)'}"
                    ": a backup is read only from the deployment's bucket (use "
                    "--allow-foreign-backup to restore from another place)"
                )
        elif not allow_foreign:
            raise InputError(
                f"{source}: a local file, not the deployment's backup bucket: a backup is read "
                "only from there (use --allow-foreign-backup to restore from a file)"
            )

    def _check_signature(self, backup: dict[str, Any], source: str) -> list[str]:
        if SIGNATURE_FIELD not in backup:
            return [
                f"{source}: the backup is not signed (written before backups were signed, or "
                "not by the remediator): nothing shows it is unchanged"
            ]
        if self.verifier is None:
            raise InputError(
                f"{source}: the backup is signed, but no key to verify it was given (the "
                "stack's output BackupMacKeyArn: --mac-key or BACKUP_MAC_KEY)"
            )
        if not self.verifier.verify(backup):
            raise InputError(
                f"{source}: the signature does not match: the backup was changed after the "
                "remediator wrote it, or signed with another key; refused"
            )
        return []

    def restore(
        self,
        backup: dict[str, Any],
        *,
        source: str,
        dry_run: bool = False,
        force: bool = False,
        allow_unsigned: bool = False,
        allow_wider: bool = False,
        allow_foreign: bool = False,
        target: str | None = None,
        confirm: Confirm | None = None,
    ) -> RestoreResult:
        """Put the backup's policy back after `check`. `force` overrides what it alone may:
        an unsigned backup, a policy changed since the remediation, a policy that lets in
        callers the allowlist does not allow (`allow_unsigned` / `allow_wider` for one of
        them). A dry run lists what would need it instead of refusing."""
        needs = self.check(backup, source=source, target=target, allow_foreign=allow_foreign)
        if allow_unsigned:
            needs = []
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
        if "new_policy" in backup and not same_policy(current.document, written):
            needs.append(
                f"{source}: the policy of {ref.arn} changed since the remediation wrote it; "
                "restoring would undo that change too"
            )
        if not allow_wider:
            needs += self._access_problems(ref, original, source)
        if force:
            needs = []
        if dry_run:
            result.needs_force = [need.removeprefix(f"{source}: ") for need in needs]
            result.detail = "dry run: the backed-up policy would be put back" + (
                f", only with --force: {'; '.join(result.needs_force)}" if needs else ""
            )
            return result
        if needs:
            raise InputError(f"{needs[0]} (use --force to restore anyway)")
        if confirm is not None and not confirm(ref.arn, current.document, original):
            result.outcome = "not-confirmed"
            result.detail = "not confirmed: nothing was changed"
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

    def _access_problems(
        self, ref: FunctionRef, policy: dict[str, Any] | None, source: str
    ) -> list[str]:
        if self.config is None:
            return [] if policy is None else [f"{source}: no allowlist to check the policy with"]
        rule = self.config.rule_for(ref)
        beyond = access_beyond_rule(policy, rule, ref.arn)
        if not beyond:
            return []
        whose = f"rule {rule.name!r}" if rule is not None else "the allowlist (no rule covers it)"
        shown = "; ".join(beyond[:_SHOWN])
        more = f" and {len(beyond) - _SHOWN} more" if len(beyond) > _SHOWN else ""
        return [
            f"{source}: the restored policy lets callers {whose} does not allow invoke "
            f"{ref.arn}: {shown}{more}"
        ]

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
        if self.backup_bucket is not None:
            if self.writer is None:
                raise InputError("no S3 client to back up the current policy before restoring")
            ref = parse_function_arn(backup["function"])
            return self.writer(self.backup_bucket).put(backup_key(ref, moment, "restore"), safety)
        if source.startswith("s3://"):
            raise InputError("no backup bucket to keep the current policy in before restoring")
        stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = Path(source).with_name(f"{Path(source).stem}.before-restore-{stamp}.json")
        try:
            path.write_text(json.dumps(safety, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as error:
            raise InputError(f"{path}: cannot write the safety backup: {error}") from None
        return str(path)
