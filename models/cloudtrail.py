"""CloudTrail records, log files and the EventBridge "AWS API Call via CloudTrail" envelope.

Records are lenient on purpose: real records miss fields, carry extra keys, string booleans
and account ids that are not 12 digits. Only the fields invoke-audit reads are typed; a record
whose typed fields have the wrong shape fails validation, and the caller reports it as
`invalid` with pydantic's description of the field. `lambdas.core.record` reads the fields.

The envelope and the log file are small fixed shapes read once per event or file, on the
validator's hot path: they are plain classes, checked by hand, so that judging an event
builds no pydantic model beyond the record (and none when the decision cache knows it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from models.exceptions import InputError

__all__ = [
    "DETAIL_TYPE",
    "LAMBDA_EVENT_SOURCE",
    "CloudTrailEnvelope",
    "CloudTrailRecordModel",
    "ResourceModel",
    "SessionContextModel",
    "SessionIssuerModel",
    "UserIdentityModel",
    "is_log_file",
    "log_file_records",
]

DETAIL_TYPE = "AWS API Call via CloudTrail"
LAMBDA_EVENT_SOURCE = "aws.lambda"  # the EventBridge `source` of Lambda's CloudTrail events


class _Lenient(BaseModel):
    # Numbers where strings are expected (account ids written as numbers) are accepted.
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, populate_by_name=True)


class SessionIssuerModel(_Lenient):
    type: str | None = None
    principalId: str | None = None
    arn: str | None = None
    accountId: str | None = None
    userName: str | None = None


class SessionContextModel(_Lenient):
    sessionIssuer: SessionIssuerModel | None = None


class UserIdentityModel(_Lenient):
    """`userIdentity`: IAMUser, AssumedRole, Root, AWSAccount, AWSService, FederatedUser, ..."""

    type: str | None = None
    principalId: str | None = None
    arn: str | None = None
    accountId: str | None = None
    invokedBy: str | None = None
    userName: str | None = None
    sessionContext: SessionContextModel | None = None


class ResourceModel(_Lenient):
    ARN: str | None = None
    accountId: str | None = None
    type: str | None = None


class CloudTrailRecordModel(_Lenient):
    """One CloudTrail record. Every field is optional: absence is judged, not rejected."""

    eventVersion: str | None = None
    eventID: str | None = None
    eventTime: str | None = None
    eventSource: str | None = None
    eventName: str | None = None
    eventCategory: str | None = None
    awsRegion: str | None = None
    recipientAccountId: str | None = None
    requestID: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None
    readOnly: bool | None = None
    managementEvent: bool | None = None
    userIdentity: UserIdentityModel | None = None
    requestParameters: dict[str, Any] | None = None
    additionalEventData: dict[str, Any] | None = None
    resources: list[ResourceModel] | None = None


def is_log_file(item: Mapping[str, Any]) -> bool:
    """A log file as CloudTrail delivers it to S3: `{"Records": [...]}` (not a record)."""
    return "Records" in item and "eventSource" not in item


def log_file_records(item: Mapping[str, Any]) -> list[Any]:
    """The records of a log file; InputError when `Records` is not a list."""
    records = item["Records"]
    if not isinstance(records, list):
        kind = type(records).__name__
        raise InputError(f"field Records: a log file holds a list of records, not {kind}")
    return records


@dataclass(frozen=True, slots=True)
class CloudTrailEnvelope:
    """The EventBridge envelope of a CloudTrail record on a bus: who recorded it, the record."""

    source: str
    account: str
    detail: Mapping[str, Any]
    id: str | None = None
    region: str | None = None
    time: str | None = None

    @staticmethod
    def recognises(item: Mapping[str, Any]) -> bool:
        """An envelope by its keys (as scan finds them among records and log files)."""
        return "detail-type" in item and isinstance(item.get("detail"), Mapping)

    @classmethod
    def parse(cls, event: Any, *, source: str = LAMBDA_EVENT_SOURCE) -> CloudTrailEnvelope:
        """The envelope from `source`; InputError saying which field is wrong."""
        if not isinstance(event, Mapping):
            raise InputError(f"the event must be a JSON object, not {type(event).__name__}")
        if event.get("source") != source:
            raise InputError(f"source is {event.get('source')!r}, expected {source!r}")
        if event.get("detail-type") != DETAIL_TYPE:
            raise InputError(
                f"detail-type is {event.get('detail-type')!r}, expected {DETAIL_TYPE!r}"
            )
        detail = event.get("detail")
        if not isinstance(detail, Mapping):
            raise InputError("no detail object: the CloudTrail record is missing")
        account = event.get("account")
        if not isinstance(account, str) or not (account.isdigit() and len(account) == 12):
            raise InputError(f"account is {account!r}, expected 12 digits")

        def optional(key: str) -> str | None:
            value = event.get(key)
            return value if isinstance(value, str) else None

        return cls(source, account, detail, optional("id"), optional("region"), optional("time"))
