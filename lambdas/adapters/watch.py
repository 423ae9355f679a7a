"""The broken-caller watches, one DynamoDB item per rewritten resource in the rate-limit table.

Item `watch#{resource ARN}`: when the rewrite was made, until when it is watched, its backup,
the rule, the callers already alerted about (a string set) and when it was undone. Conditional
updates make "alert once per caller" and "undo once" hold across concurrent containers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from lambdas.adapters._calls import call
from lambdas.adapters.errors import AwsError
from lambdas.core.watch import Watch, parse_time

__all__ = ["RewriteWatches"]


class RewriteWatches:
    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    )
    PARTITION_KEY: ClassVar[str] = "pk"
    TTL_ATTRIBUTE: ClassVar[str] = "expires_at"

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @classmethod
    def key(cls, resource: str) -> dict[str, Any]:
        return {cls.PARTITION_KEY: {"S": f"watch#{resource}"}}

    def start(self, watch: Watch) -> None:
        """Watch `watch.resource` from now on (a newer rewrite replaces an older watch)."""
        call(
            "dynamodb",
            "PutItem",
            self._table,
            self._client.put_item,
            TableName=self._table,
            Item=self.key(watch.resource)
            | {
                "rewritten_at": {"S": watch.rewritten_at.astimezone(UTC).isoformat()},
                "until": {"S": watch.until.astimezone(UTC).isoformat()},
                "backup": {"S": watch.backup},
                "rule": {"S": watch.rule or ""},
                self.TTL_ATTRIBUTE: {"N": str(int((watch.until + timedelta(days=1)).timestamp()))},
            },
        )

    def get(self, resource: str) -> Watch | None:
        response = call(
            "dynamodb",
            "GetItem",
            self._table,
            self._client.get_item,
            TableName=self._table,
            Key=self.key(resource),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        rewritten = parse_time(item.get("rewritten_at", {}).get("S"))
        until = parse_time(item.get("until", {}).get("S"))
        backup = item.get("backup", {}).get("S")
        if rewritten is None or until is None or not backup:
            return None
        rule = item.get("rule", {}).get("S") or None
        return Watch(resource, rewritten, until, backup, rule)

    def first_alert(self, watch: Watch, caller: str) -> bool:
        """True for the first report of `caller` under this watch (one alert, not one per event)."""
        return self._update_if(
            watch,
            "ADD alerted :caller",
            "rewritten_at = :at AND (attribute_not_exists(alerted) OR NOT contains(alerted, :one))",
            {":caller": {"SS": [caller]}, ":one": {"S": caller}},
        )

    def first_restore(self, watch: Watch, now: datetime) -> bool:
        """True for the one caller that may undo this rewrite."""
        return self._update_if(
            watch,
            "SET restored_at = :now",
            "rewritten_at = :at AND attribute_not_exists(restored_at)",
            {":now": {"S": now.astimezone(UTC).isoformat()}},
        )

    def _update_if(self, watch: Watch, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            call(
                "dynamodb",
                "UpdateItem",
                self._table,
                self._client.update_item,
                TableName=self._table,
                Key=self.key(watch.resource),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values
                | {":at": {"S": watch.rewritten_at.astimezone(UTC).isoformat()}},
            )
        except AwsError as error:
            if error.code == "ConditionalCheckFailedException":
                return False
            raise
        return True
