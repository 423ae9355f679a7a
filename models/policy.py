"""Lambda resource-based policies: the document, its statements, and API responses.

`Principal`, `Action` and `Resource` may be a string or a list, `Statement` a single object
or a list; the model keeps what it is given and offers normalized views.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PolicyDocumentModel", "PolicyResponseModel", "PolicyStatementModel", "as_list"]

StrOrList = str | list[str]
PrincipalValue = Literal["*"] | dict[str, StrOrList]
ConditionBlock = dict[str, dict[str, StrOrList | bool | int]]


def as_list(value: StrOrList | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class PolicyStatementModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    Sid: str | None = None
    Effect: Literal["Allow", "Deny"]
    Principal: PrincipalValue | None = None
    NotPrincipal: PrincipalValue | None = None
    Action: StrOrList | None = None
    NotAction: StrOrList | None = None
    Resource: StrOrList | None = None
    NotResource: StrOrList | None = None
    Condition: ConditionBlock | None = None

    def principals(self) -> list[tuple[str, str]]:
        """(kind, value) pairs: kind is "AWS", "Service", "Federated", ... or "*"."""
        if self.Principal is None:
            return []
        if self.Principal == "*":
            return [("*", "*")]
        assert isinstance(self.Principal, dict)
        return [
            (kind, value) for kind, values in self.Principal.items() for value in as_list(values)
        ]

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, by_alias=True)


class PolicyDocumentModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    Version: str = "2012-10-17"
    Id: str | None = None
    Statement: list[PolicyStatementModel] = Field(default_factory=list)

    @field_validator("Statement", mode="before")
    @classmethod
    def _single_statement(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    def dump(self) -> dict[str, Any]:
        document: dict[str, Any] = {"Version": self.Version}
        if self.Id is not None:
            document["Id"] = self.Id
        extra = self.model_extra or {}
        document.update(extra)
        document["Statement"] = [s.dump() for s in self.Statement]
        return document


class PolicyResponseModel(BaseModel):
    """A GetPolicy / GetResourcePolicy response: the document as a JSON string + RevisionId."""

    model_config = ConfigDict(extra="ignore")

    Policy: str
    RevisionId: str | None = None
