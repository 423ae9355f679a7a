"""AWS adapters: thin classes around boto3 clients, which are injected, never built at import.

Each class declares in `IAM_ACTIONS` exactly the IAM actions it calls; the CDK stack grants each
function the union over the classes it uses, listed here.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.adapters.backup import BackupMacVerifier, BackupReader, BackupSigner, BackupStore
from lambdas.adapters.lambda_policy import LambdaPermissions, LambdaPolicies, LambdaResourcePolicy
from lambdas.adapters.log_files import TrailLogReader
from lambdas.adapters.notice_marks import NoticeMarks
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.queue import DeadLetters, MessageDelays, ViolationQueue
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.adapters.roles import CallerIdentity, RoleAssumer
from lambdas.adapters.security_hub import (
    FindingCounter,
    FindingsReader,
    SecurityHubFindings,
    WorkflowUpdater,
)
from lambdas.adapters.watch import RewriteWatches

__all__ = [
    "ADAPTERS",
    "INGEST_ADAPTERS",
    "REMEDIATOR_ADAPTERS",
    "REMEDIATOR_CROSS_ACCOUNT_ADAPTERS",
    "REMEDIATOR_FINDINGS_ADAPTERS",
    "VALIDATOR_ADAPTERS",
    "VALIDATOR_FINDINGS_ADAPTERS",
    "AccessAnalyzerProver",
    "Adapter",
    "BackupMacVerifier",
    "BackupReader",
    "BackupSigner",
    "BackupStore",
    "CallerIdentity",
    "DeadLetters",
    "FindingCounter",
    "FindingsReader",
    "HourlyRateLimiter",
    "LambdaPermissions",
    "LambdaPolicies",
    "LambdaResourcePolicy",
    "MessageDelays",
    "NoticeMarks",
    "Notifier",
    "RewriteWatches",
    "RoleAssumer",
    "SecurityHubFindings",
    "TrailLogReader",
    "ViolationQueue",
    "WorkflowUpdater",
    "iam_actions",
]


class Adapter(Protocol):
    """What every adapter class declares: the IAM actions it calls."""

    IAM_ACTIONS: ClassVar[tuple[str, ...]]


# NoticeMarks: the daily scheduled run (lambdas.validator.scheduled).
VALIDATOR_ADAPTERS: tuple[type[Adapter], ...] = (ViolationQueue, Notifier, NoticeMarks)
# RoleAssumer is used only when REMEDIATION_ROLE_NAME is set (central account). The verifier
# checks a backup's signature before the broken-caller watch's undo puts it back.
REMEDIATOR_ADAPTERS: tuple[type[Adapter], ...] = (
    LambdaPolicies,
    AccessAnalyzerProver,
    BackupStore,
    BackupSigner,
    BackupMacVerifier,
    HourlyRateLimiter,
    RewriteWatches,
    Notifier,
    MessageDelays,
    DeadLetters,
)
REMEDIATOR_CROSS_ACCOUNT_ADAPTERS: tuple[type[Adapter], ...] = (RoleAssumer,)
# Only with Security Hub findings on (context key invoke-audit:securityhub): the validator
# imports violations and, on its daily run, reads and archives them; the remediator imports
# resolutions and sets their workflow; both count sightings in the rate-limit table.
VALIDATOR_FINDINGS_ADAPTERS: tuple[type[Adapter], ...] = (
    SecurityHubFindings,
    FindingsReader,
    FindingCounter,
)
REMEDIATOR_FINDINGS_ADAPTERS: tuple[type[Adapter], ...] = (
    SecurityHubFindings,
    WorkflowUpdater,
    FindingCounter,
)
INGEST_ADAPTERS: tuple[type[Adapter], ...] = (TrailLogReader, ViolationQueue, Notifier)
ADAPTERS: tuple[type[Adapter], ...] = (
    AccessAnalyzerProver,
    BackupMacVerifier,
    BackupReader,
    BackupSigner,
    BackupStore,
    CallerIdentity,
    DeadLetters,
    FindingCounter,
    FindingsReader,
    HourlyRateLimiter,
    LambdaPermissions,
    LambdaPolicies,
    LambdaResourcePolicy,
    MessageDelays,
    NoticeMarks,
    Notifier,
    RewriteWatches,
    RoleAssumer,
    SecurityHubFindings,
    TrailLogReader,
    ViolationQueue,
    WorkflowUpdater,
)


def iam_actions(adapters: tuple[type[Adapter], ...]) -> tuple[str, ...]:
    """The sorted union of the IAM actions of `adapters`."""
    return tuple(sorted({action for cls in adapters for action in cls.IAM_ACTIONS}))
