"""Builds a Remediator from its settings: the Lambda's environment or the CLI's arguments."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from lambdas.adapters.access_analyzer import AccessAnalyzerProver
from lambdas.adapters.backup import BackupMacVerifier, BackupReader, BackupSigner, BackupStore
from lambdas.adapters.clients import ClientFactory
from lambdas.adapters.lambda_policy import LambdaPolicies
from lambdas.adapters.notifier import Notifier
from lambdas.adapters.rate_limit import HourlyRateLimiter
from lambdas.adapters.roles import RoleAssumer
from lambdas.adapters.watch import RewriteWatches
from lambdas.remediation.broken import BrokenWatch
from lambdas.remediation.remediate import Remediator, backup_prefix
from lambdas.remediation.restore import Restorer, read_backup
from models.allowlist import AllowlistConfig
from models.arns import FunctionRef

__all__ = ["PolicyStores", "backup_store", "build_broken_watch", "build_remediator"]


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
    mac_key: str | None = None,
    **options: Any,
) -> Remediator:
    """A Remediator; an unset bucket, table or topic leaves that part out (see Remediator).
    The proof gate asks IAM Access Analyzer unless `limits.proof` is off. With `mac_key`
    (the HMAC key's ARN) every backup is signed."""
    if "prover" not in options and config.limits.proof != "off":
        options["prover"] = AccessAnalyzerProver(factory.client("accessanalyzer"))
    return Remediator(
        config=config,
        policies_for=PolicyStores(factory, own_account, role_name),
        backups=backup_store(factory, backup_bucket, own_account, mac_key)
        if backup_bucket
        else None,
        limiter=HourlyRateLimiter(factory.client("dynamodb"), rate_table) if rate_table else None,
        notifier=Notifier(factory.client("sns"), topic_arn) if topic_arn else None,
        own_functions=own_functions,
        **options,
    )


def backup_store(
    factory: ClientFactory, bucket: str, owner: str | None, mac_key: str | None
) -> BackupStore:
    """The backup bucket (`owner`: its account, sent as ExpectedBucketOwner), signing each
    backup when there is a key."""
    signer = BackupSigner(factory.client("kms"), mac_key) if mac_key else None
    return BackupStore(factory.client("s3"), bucket, expected_owner=owner, signer=signer)


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
    mac_key: str | None = None,
) -> BrokenWatch:
    """The broken-caller watch; its undo is the operator's restore (compare-and-swap), with
    the same checks: its own bucket only, key and signature (when backups are signed), the
    protect and own-function refusals. The rule asked for the undo (`on_broken: restore`),
    so the original policy may grant what the rule does not."""
    stores = PolicyStores(factory, own_account, role_name)
    restorer = Restorer(
        stores,
        writer=lambda bucket: backup_store(factory, bucket, own_account, mac_key),
        backup_bucket=backup_bucket,
        config=config,
        own_functions=own_functions,
        verifier=BackupMacVerifier(factory.client("kms"), mac_key) if mac_key else None,
    )

    def undo(uri: str) -> str:
        reader = BackupReader(factory.client("s3"), expected_owner=own_account)
        restorer.check_location(uri)
        location, backup = read_backup(uri, lambda: reader)
        return restorer.restore(
            backup, source=location, allow_unsigned=mac_key is None, allow_wider=True
        ).detail

    return BrokenWatch(
        config=config,
        watches=RewriteWatches(
            backup_store(factory, backup_bucket, own_account, mac_key),
            factory.client("dynamodb"),
            rate_table,
            hours=config.limits.watch_hours,
            prefix_of=backup_prefix,
        ),
        notifier=Notifier(factory.client("sns"), topic_arn) if topic_arn else None,
        undo=undo,
        own_functions=own_functions,
    )
