"""The broken-caller watches: read from the backups, claimed once in the rate-limit table.

A rewrite's backup is its watch: `backups/.../{resource}/{time}-{event}.json` names the
resource, the time and the rule, so watching costs the remediation nothing more (seven AWS
calls a violation). A denied call by an allowed caller — rare — reads the newest backup of
its resource; a restore's safety copy being the newest means the rewrite was undone, so no
watch. "Alert once per caller" and "undo once" are conditional PutItems in the rate-limit
table, which hold across concurrent containers and expire with the watch.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from lambdas.adapters._calls import put_once
from lambdas.adapters.backup import BackupStore
from lambdas.core.watch import Watch, watches_from_backups
from models.arns import parse_function_arn

__all__ = ["RewriteWatches"]


class RewriteWatches:
    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("dynamodb:PutItem",)
    PARTITION_KEY: ClassVar[str] = "pk"
    TTL_ATTRIBUTE: ClassVar[str] = "expires_at"

    def __init__(
        self, backups: BackupStore, dynamodb: Any, table_name: str, *, hours: int, prefix_of: Any
    ) -> None:
        self._backups = backups
        self._client = dynamodb
        self._table = table_name
        self._hours = hours
        self._prefix_of = prefix_of  # FunctionRef -> the backup prefix of that resource

    def get(self, resource: str) -> Watch | None:
        """The watch of the newest rewrite of `resource`, or None (none, or undone since)."""
        found = self._backups.latest(self._prefix_of(parse_function_arn(resource)), ".json")
        if found is None:
            return None
        watches = watches_from_backups([found], hours=self._hours)
        return watches[0] if watches else None

    def first_alert(self, watch: Watch, caller: str) -> bool:
        """True for the first report of `caller` under this watch (one alert, not one per event)."""
        return self._claim(watch, f"broken#{watch.backup}#{caller}")

    def first_restore(self, watch: Watch, now: datetime) -> bool:
        """True for the one caller that may undo this rewrite."""
        return self._claim(watch, f"undo#{watch.backup}", now)

    def _claim(self, watch: Watch, name: str, now: datetime | None = None) -> bool:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        item = {
            self.PARTITION_KEY: {"S": f"watch#{digest}"},
            "claim": {"S": name[:1024]},
            "at": {"S": moment.isoformat()},
            self.TTL_ATTRIBUTE: {"N": str(int((watch.until + timedelta(days=1)).timestamp()))},
        }
        return put_once(self._client, self._table, item, self.PARTITION_KEY)
