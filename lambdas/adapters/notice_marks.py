"""What the daily notices already told people: one DynamoDB item per notice, written with a
conditional PutItem so that concurrent or repeated runs announce each thing once.

Kept in the rate-limit table (partition key `pk`, TTL attribute `expires_at`), under keys of
their own (`expiry-notice#...`) that never collide with the hourly counters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from lambdas.adapters._calls import call, put_once

__all__ = ["NoticeMarks"]


class NoticeMarks:
    """Claims a notice before it is sent (`claim`), and gives the claim back when sending
    failed (`release`), so that the next run tries again."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("dynamodb:DeleteItem", "dynamodb:PutItem")
    PARTITION_KEY: ClassVar[str] = "pk"
    TTL_ATTRIBUTE: ClassVar[str] = "expires_at"

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, mark: str, *, now: datetime, keep_until: datetime, about: str) -> bool:
        """Record `mark`; False when it was recorded before (the notice was already sent)."""
        item = {
            self.PARTITION_KEY: {"S": mark},
            "about": {"S": about},
            "noticed_at": {"S": now.isoformat()},
            self.TTL_ATTRIBUTE: {"N": str(int(keep_until.timestamp()))},
        }
        return put_once(self._client, self._table, item, self.PARTITION_KEY)

    def release(self, mark: str) -> None:
        """Forget `mark` (its notice could not be sent)."""
        call(
            "dynamodb",
            "DeleteItem",
            self._table,
            self._client.delete_item,
            TableName=self._table,
            Key={self.PARTITION_KEY: {"S": mark}},
        )
