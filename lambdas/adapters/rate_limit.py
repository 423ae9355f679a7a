"""The remediation rate limit: one DynamoDB item per UTC hour, shared by every container."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from lambdas.adapters._calls import call
from lambdas.adapters.errors import AwsError

__all__ = ["HourlyRateLimiter"]


class HourlyRateLimiter:
    """Counts remediations per UTC hour with a conditional update: the update that would pass
    the limit fails atomically, so concurrent containers can never exceed it together.

    Table: partition key `pk` (string); TTL attribute `expires_at` (epoch seconds)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = ("dynamodb:UpdateItem",)
    PARTITION_KEY: ClassVar[str] = "pk"
    TTL_ATTRIBUTE: ClassVar[str] = "expires_at"
    COUNT_ATTRIBUTE: ClassVar[str] = "remediations"
    TRIPPED_ATTRIBUTE: ClassVar[str] = "limit_reached_at"

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def window(now: datetime) -> str:
        return "remediations#" + now.astimezone(UTC).strftime("%Y-%m-%dT%H")

    def try_acquire(self, limit: int, *, now: datetime | None = None) -> bool:
        """Take one remediation from this hour's budget; False when the budget is spent."""
        if limit <= 0:
            return False
        moment = now or datetime.now(UTC)
        return self._update_if(
            moment,
            "ADD #count :one SET #ttl = if_not_exists(#ttl, :expires)",
            "attribute_not_exists(#count) OR #count < :limit",
            {"#count": self.COUNT_ATTRIBUTE, "#ttl": self.TTL_ATTRIBUTE},
            {
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": {"N": str(int((moment + timedelta(days=2)).timestamp()))},
            },
        )

    def release(self, *, now: datetime) -> bool:
        """Give back one remediation taken at `now` (its hour) that changed nothing."""
        return self._update_if(
            now,
            "ADD #count :minus_one",
            "#count > :zero",
            {"#count": self.COUNT_ATTRIBUTE},
            {":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
        )

    def first_trip(self, *, now: datetime | None = None) -> bool:
        """Mark this hour's budget as spent; True only for the first caller to do so (one
        alert per hour, not one per parked message)."""
        moment = now or datetime.now(UTC)
        return self._update_if(
            moment,
            "SET #tripped = :now",
            "attribute_not_exists(#tripped)",
            {"#tripped": self.TRIPPED_ATTRIBUTE},
            {":now": {"S": moment.astimezone(UTC).isoformat()}},
        )

    def _update_if(
        self,
        moment: datetime,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        """One conditional UpdateItem on the hour's item; False when the condition fails."""
        try:
            call(
                "dynamodb",
                "UpdateItem",
                self._table,
                self._client.update_item,
                TableName=self._table,
                Key={self.PARTITION_KEY: {"S": self.window(moment)}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except AwsError as error:
            if error.code == "ConditionalCheckFailedException":
                return False
            raise
        return True
