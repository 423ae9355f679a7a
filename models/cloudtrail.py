"""CloudTrail records, log files and the EventBridge "AWS API Call via CloudTrail" envelope.

Lenient on purpose: real records miss fields, carry extra keys, string booleans and account
ids that are not 12 digits. Only the fields invoke-audit reads are typed; a record whose typed
fields have the wrong shape fails validation, and the caller reports it as `invalid` with
pydantic's description of the field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CloudTrailLogFileModel",
    "CloudTrailRecordModel",
    "EventBridgeCloudTrailModel",
    "ResourceModel",
    "SessionContextModel",
    "SessionIssuerModel",
    "UserIdentityModel",
]

DETAIL_TYPE = "AWS API Call via CloudTrail"


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


class CloudTrailLogFileModel(_Lenient):
    """A log file as CloudTrail delivers it to S3: `{"Records": [...]}`."""

    Records: list[dict[str, Any]]


class EventBridgeCloudTrailModel(_Lenient):
    """The EventBridge envelope of a CloudTrail record on the default bus."""

    version: str | None = None
    id: str | None = None
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    source: str
    account: str
    time: str | None = None
    region: str | None = None
    resources: list[Any] = Field(default_factory=list)
    detail: dict[str, Any]
