"""Builds a Remediator from its settings: the Lambda's environment or the CLI's arguments."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.adapters.backup import BackupReader, BackupStore
from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.lambda_policy import LambdaPolicies
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.adapters.roles import RoleAssumer
from lambdas.adapters.watch import RewriteWatches
from lambdas.remediation.broken import BrokenWatch
from lambdas.remediation.remediate import Remediator, backup_prefix
from lambdas.remediation.restore import Restorer, load_backup
from models.allowlist import AllowlistConfig
from models.arns import FunctionRef

__all__ = ["PolicyStores", "build_broken_watch", "build_remediator"]


@dataclass
class PolicyStores:
    """One LambdaPolicies per (account, region), so an API fallback is learnt once. In the
    central-account setup (`role_name` set) another account's function is reached through
    the remediation role assumed in that account."""

    factory: ClientFactory
    own_account: str | None = None
    role_name: str | None = None

    def __post_init__(self) -> None:
        self._stores: dict[tuple[str, str], LambdaPolicies] = {}
        self._assumer = (
            RoleAssumer(self.factory.client("sts"), self.role_name) if self.role_name else None
        )

    def __call__(self, ref: FunctionRef) -> LambdaPolicies:
        key = (ref.account, ref.region)
        if key not in self._stores:
            credentials = None
            if self._assumer is not None and ref.account != self.own_account:
                credentials = self._assumer.credentials(ref.account, ref.partition)
            client = self.factory.client("lambda", region=ref.region, credentials=credentials)
            self._stores[key] = LambdaPolicies(client)
        return self._stores[key]


def build_remediator(
    config: AllowlistConfig,
    *,
    factory: ClientFactory,
    backup_bucket: str | None,
    rate_table: str | None,
    topic_arn: str | None,
    own_account: str | None = None,
    role_name: str | None = None,
    own_functions: AbstractSet[str] = frozenset(),
    **options: Any,
) -> Remediator:
    """A Remediator; an unset bucket, table or topic leaves that part out (see Remediator).
    The proof gate asks IAM Access Analyzer unless `limits.proof` is off."""
    if "prover" not in options and config.limits.proof != "off":
        options["prover"] = AccessAnalyzerProver(factory.client("accessanalyzer"))
    return Remediator(
        config=config,
        policies_for=PolicyStores(factory, own_account, role_name),
        backups=BackupStore(factory.client("s3"), backup_bucket) if backup_bucket else None,
        limiter=HourlyRateLimiter(factory.client("dynamodb"), rate_table) if rate_table else None,
        notifier=Notifier(factory.client("sns"), topic_arn) if topic_arn else None,
        own_functions=own_functions,
        **options,
    )


def build_broken_watch(
    config: AllowlistConfig,
    *,
    factory: ClientFactory,
    rate_table: str,
    backup_bucket: str,
    topic_arn: str | None,
    own_account: str | None = None,
    role_name: str | None = None,
    own_functions: AbstractSet[str] = frozenset(),
) -> BrokenWatch:
    """The broken-caller watch; its undo is the operator's restore (compare-and-swap)."""
    stores = PolicyStores(factory, own_account, role_name)
    restorer = Restorer(stores, writer=lambda bucket: BackupStore(factory.client("s3"), bucket))

    def undo(uri: str) -> str:
        backup = load_backup(uri, lambda: BackupReader(factory.client("s3")))
        return restorer.restore(backup, source=uri).detail

    return BrokenWatch(
        config=config,
        watches=RewriteWatches(
            BackupStore(factory.client("s3"), backup_bucket),
            factory.client("dynamodb"),
            rate_table,
            hours=config.limits.watch_hours,
            prefix_of=backup_prefix,
        ),
        notifier=Notifier(factory.client("sns"), topic_arn) if topic_arn else None,
        undo=undo,
        own_functions=own_functions,
    )
