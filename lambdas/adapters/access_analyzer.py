"""IAM Access Analyzer's policy checks: the independent proof before a policy is written.

Two checks, both free and answered in about a second, both on documents only (no resource is
read): `CheckNoNewAccess(existing, new, RESOURCE_POLICY)` — the new policy grants nothing the
existing one did not — and `CheckNoPublicAccess(new, AWS::Lambda::Function)`. Each answers
PASS or FAIL with reasons (statement index / Sid and a description).

A check that cannot be answered (AccessDenied, throttling past botocore's retries, the
operation missing from the partition or SDK, a network failure, a document it will not
parse) raises ProofUnavailableError: whether the write may go ahead without the proof is the
remediation flow's decision (`limits.proof`), not this adapter's.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from lambdas.adapters._calls import call
from lambdas.adapters.errors import AwsError
from lambdas.core.proof import EMPTY_POLICY, Proof, ProofCheck, ProofUnavailableError

__all__ = ["AccessAnalyzerProver"]

RESOURCE_TYPE = "AWS::Lambda::Function"


class AccessAnalyzerProver:
    """Proves a rewrite with IAM Access Analyzer (one `accessanalyzer` client, injected)."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]] = (
        "access-analyzer:CheckNoNewAccess",
        "access-analyzer:CheckNoPublicAccess",
    )

    def __init__(self, client: Any) -> None:
        self._client = client

    def prove(self, resource: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Proof:
        """Both checks on `old` -> `new` (None: no policy, checked as an empty policy)."""
        existing = json.dumps(old if old is not None else EMPTY_POLICY, sort_keys=True)
        target = json.dumps(new if new is not None else EMPTY_POLICY, sort_keys=True)
        no_new = self._check(
            "CheckNoNewAccess",
            resource,
            self._client.check_no_new_access,
            existingPolicyDocument=existing,
            newPolicyDocument=target,
            policyType="RESOURCE_POLICY",
        )
        no_public = self._check(
            "CheckNoPublicAccess",
            resource,
            self._client.check_no_public_access,
            policyDocument=target,
            resourceType=RESOURCE_TYPE,
        )
        return Proof((no_new, no_public))

    @staticmethod
    def _check(operation: str, resource: str, fn: Any, **kwargs: Any) -> ProofCheck:
        try:
            response = call("access-analyzer", operation, resource, fn, **kwargs)
        except AwsError as error:
            raise ProofUnavailableError(operation, f"{error.code}: {error.aws_message}") from error
        result = str(response.get("result") or "")
        if result not in ("PASS", "FAIL"):
            raise ProofUnavailableError(operation, f"unexpected result {result!r}")
        reasons = tuple(
            _reason(item) for item in response.get("reasons") or [] if isinstance(item, dict)
        )
        return ProofCheck(operation, result == "PASS", str(response.get("message") or ""), reasons)


def _reason(item: dict[str, Any]) -> str:
    where = item.get("statementId") or (
        f"statement {item['statementIndex']}" if item.get("statementIndex") is not None else ""
    )
    text = str(item.get("description") or "").strip()
    return f"{where}: {text}" if where and text else (text or str(where) or "no description")
