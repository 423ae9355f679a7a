"""Reading and writing the resource-based policy of one Lambda function, version or alias.

Two APIs exist. `LambdaResourcePolicy` uses the full-document one (Get/Put/DeleteResourcePolicy,
RevisionId compare-and-swap, Deny statements allowed). `LambdaPermissions` uses the older
GetPolicy / AddPermission / RemovePermission (Allow statements only, one statement per call,
each call carrying the RevisionId it expects). `LambdaPolicies` uses the first and falls back to
the second, for the rest of its life, when the first is unavailable.
"""

from __future__ import annotations

from typing import Any, ClassVar

from lambdas.adapters._calls import call
from lambdas.adapters.errors import ApiUnavailableError, AwsError, ResourceGoneError
from lambdas.core.policy import Document, dump_policy, load_policy, permission_plan
from lambdas.core.ports import PolicyApi, PolicyState
from models.arns import FunctionRef

__all__ = ["LambdaPermissions", "LambdaPolicies", "LambdaResourcePolicy"]

# Markers of "the function, version or alias does not exist", as opposed to "it has no policy";
# both come back as ResourceNotFoundException.
_FUNCTION_MISSING = ("function not found", "cannot find alias", "cannot find version")


def _function_missing(error: AwsError) -> bool:
    message = error.aws_message.lower()
    return any(marker in message for marker in _FUNCTION_MISSING)


class _LambdaCalls:
    """Calls one Lambda operation and turns botocore's errors into AwsError subclasses."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _call(self, method: str, resource: str, **kwargs: Any) -> dict[str, Any]:
        operation = "".join(part.title() for part in method.split("_"))
        fn = getattr(self._client, method, None)
        if fn is None:
            raise ApiUnavailableError(
                service="lambda",
                operation=operation,
                resource=resource,
                code="UnknownOperation",
                status=0,
                message=f"this botocore ({self._client.meta.service_model.api_version}) "
                f"has no {operation}",
            )
        return call("lambda", operation, resource, fn, **kwargs)

    def _read(self, ref: FunctionRef, api: PolicyApi, method: str, **kwargs: Any) -> PolicyState:
        """The policy of `ref` (document None: it has none); ResourceGoneError when the
        function, version or alias itself does not exist."""
        try:
            response = self._call(method, ref.arn, **kwargs)
        except ResourceGoneError as error:
            if _function_missing(error):
                raise
            return PolicyState(ref.arn, None, None, api)
        return PolicyState(
            ref.arn, load_policy(response.get("Policy")), response.get("RevisionId"), api
        )


class LambdaResourcePolicy(_LambdaCalls):
    """The full-document resource-policy API (2026-07-09)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "lambda:GetResourcePolicy",
        "lambda:PutResourcePolicy",
        "lambda:DeleteResourcePolicy",
    )
    API: ClassVar[PolicyApi] = "resource-policy"

    def read(self, ref: FunctionRef) -> PolicyState:
        return self._read(ref, self.API, "get_resource_policy", ResourceArn=ref.arn)

    def write(self, ref: FunctionRef, document: Document, revision_id: str | None) -> PolicyState:
        """Replace the policy; the response carries the stored policy, so no read-back call."""
        kwargs: dict[str, Any] = {"ResourceArn": ref.arn, "Policy": dump_policy(document)}
        if revision_id:
            kwargs["RevisionId"] = revision_id
        response = self._call("put_resource_policy", ref.arn, **kwargs)
        stored = load_policy(response.get("Policy")) if response.get("Policy") else document
        return PolicyState(ref.arn, stored, response.get("RevisionId"), self.API)

    def delete(self, ref: FunctionRef, revision_id: str | None) -> None:
        kwargs: dict[str, Any] = {"ResourceArn": ref.arn}
        if revision_id:
            kwargs["RevisionId"] = revision_id
        self._call("delete_resource_policy", ref.arn, **kwargs)


# --- the older permission API ------------------------------------------------------------------


class LambdaPermissions(_LambdaCalls):
    """GetPolicy / AddPermission / RemovePermission, each write with the RevisionId it expects."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "lambda:GetPolicy",
        "lambda:AddPermission",
        "lambda:RemovePermission",
    )
    API: ClassVar[PolicyApi] = "permission"

    @staticmethod
    def _target(ref: FunctionRef) -> dict[str, str]:
        target = {"FunctionName": ref.unqualified_arn}
        if ref.policy_qualifier:
            target["Qualifier"] = ref.policy_qualifier
        return target

    def read(self, ref: FunctionRef) -> PolicyState:
        return self._read(ref, self.API, "get_policy", **self._target(ref))

    def write(self, ref: FunctionRef, current: PolicyState, target: Document | None) -> PolicyState:
        """Turn `current` into `target` call by call; every call carries the RevisionId read
        after the previous one, so a concurrent change stops the sequence with a 412."""
        removals, additions = permission_plan(current.document, target)
        revision = current.revision_id
        state = current
        for sid in removals:
            kwargs = self._target(ref) | {"StatementId": sid}
            if revision:
                kwargs["RevisionId"] = revision
            self._call("remove_permission", ref.arn, **kwargs)
            state = self.read(ref)
            revision = state.revision_id
        for permission in additions:
            kwargs = self._target(ref) | permission
            if revision:
                kwargs["RevisionId"] = revision
            self._call("add_permission", ref.arn, **kwargs)
            state = self.read(ref)
            revision = state.revision_id
        return state


class LambdaPolicies:
    """A resource's policy through the resource-policy API, or the permission API where the
    former is unavailable (older botocore, UnknownOperation, 404 on the route)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        LambdaResourcePolicy.IAM_ACTIONS + LambdaPermissions.IAM_ACTIONS
    )

    def __init__(self, client: Any) -> None:
        self._documents = LambdaResourcePolicy(client)
        self._permissions = LambdaPermissions(client)
        self._fallback = False

    @property
    def api(self) -> PolicyApi:
        return LambdaPermissions.API if self._fallback else LambdaResourcePolicy.API

    def read(self, ref: FunctionRef) -> PolicyState:
        if not self._fallback:
            try:
                return self._documents.read(ref)
            except ApiUnavailableError:
                self._fallback = True
        return self._permissions.read(ref)

    def write(self, ref: FunctionRef, current: PolicyState, target: Document | None) -> PolicyState:
        """Write `target` (None: no policy) over `current`, with `current`'s RevisionId, using
        the API `current` was read with. Returns the policy as stored afterwards."""
        if current.api == LambdaPermissions.API:
            return self._permissions.write(ref, current, target)
        if target is None:
            if current.document is not None:
                self._documents.delete(ref, current.revision_id)
            return PolicyState(ref.arn, None, None, LambdaResourcePolicy.API)
        return self._documents.write(ref, target, current.revision_id)
