"""Deployment settings, read from the CDK context (`cdk.json`, or `cdk deploy -c key=value`).

Every key, its default and what it does is listed in `CONTEXT_DEFAULTS`; values given on the
command line arrive as strings, so booleans and numbers are parsed here, once, with an error
that names the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from models.names import DEFAULT_PREFIX

__all__ = [
    "CONTEXT_DEFAULTS",
    "LOG_RETENTION_DAYS",
    "AccountRole",
    "AthenaSettings",
    "DeploySettings",
    "SettingsError",
    "settings_from_mapping",
]


class SettingsError(ValueError):
    """A context value is missing or malformed; the message names the key."""


class AccountRole(StrEnum):
    """Where this deployment sits in a multi-account setup."""

    STANDALONE = "standalone"  # one account: trail, rule, validator, remediator
    CENTRAL = "central"  # standalone + accepts Invoke events from the organization's members
    MEMBER = "member"  # trail + forwarding rule + remediation role for the central account


# key -> default. `cdk.json` repeats these so that a user sees every knob in one place.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "invoke-audit:environment": "dev",
    "invoke-audit:allowlist": "config/allowlist.yaml",
    "invoke-audit:function-prefix": DEFAULT_PREFIX,
    "invoke-audit:alert-email": "",
    "invoke-audit:existing-trail-arn": "",
    "invoke-audit:existing-trail-bucket": "",
    "invoke-audit:existing-trail-key-arn": "",
    "invoke-audit:management-events": False,
    "invoke-audit:s3-ingest": False,
    "invoke-audit:ingest-prefix": "",
    "invoke-audit:log-retention-days": 90,
    "invoke-audit:trail-retention-days": 365,
    "invoke-audit:account-role": AccountRole.STANDALONE.value,
    "invoke-audit:central-account-id": "",
    "invoke-audit:central-bus-arn": "",
    "invoke-audit:organization-id": "",
    "invoke-audit:member-account-ids": "",
    "invoke-audit:event-pattern-size-limit": 2048,
    "invoke-audit:max-event-rules": 300,
    "invoke-audit:regions": "",
    "invoke-audit:heartbeat-hours": 0,
    "invoke-audit:object-lock-days": 0,
    # Security Hub findings (ASFF) from the validator and the remediator; off by default
    "invoke-audit:securityhub": False,
    # Athena over the trail's bucket for `invoke-audit history`: off, or an object such as
    # {"regions": ["us-east-1"], "accounts": [...], "start-date": "2024/01/01",
    #  "bytes-scanned-cutoff-gb": 100, "results-retention-days": 30, "user-roles": ["analyst"]}
    "invoke-audit:athena": False,
}

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)

_ENV_NAME = re.compile(r"[a-z][a-z0-9-]{0,23}\Z")
_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,30}-\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_ACCOUNT = re.compile(r"\d{12}\Z")
_ORG_ID = re.compile(r"o-[a-z0-9]{10,32}\Z")
_TRAIL_ARN = re.compile(r"arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/[A-Za-z0-9._-]+\Z")
_BUS_ARN = re.compile(
    r"arn:aws[a-z-]*:events:[a-z0-9-]+:(?P<account>\d{12}):event-bus/[\w.+=,@/-]+\Z"
)
_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-f0-9-]+\Z")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_KEY_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()/-]{0,200}\Z")
# IAM role names are at most 64 characters; the longest the app makes is
# `<prefix><environment>-remediation` (member role) / `-remediator` (central).
_ROLE_NAME_MAX = 64


@dataclass(frozen=True, kw_only=True)
class AthenaSettings:
    """The Glue table, Athena workgroup and user policy for `invoke-audit history`."""

    regions: tuple[str, ...]  # the regions whose log files the table projects
    accounts: tuple[str, ...] = ()  # () = this account and the member accounts
    start_date: str = "2020/01/01"  # the first day the table projects, yyyy/MM/dd
    organization_id: str | None = None  # the trail is an organization trail
    bytes_scanned_cutoff_gb: int = 100  # Athena cancels a query that scans more
    results_retention_days: int = 30
    user_roles: tuple[str, ...] = ()  # IAM role names the user policy is attached to


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d\Z")
_DATE = re.compile(r"\d{4}/\d{2}/\d{2}\Z")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}\Z")
_ATHENA_KEYS = {
    "regions",
    "accounts",
    "start-date",
    "organization-id",
    "bytes-scanned-cutoff-gb",
    "results-retention-days",
    "user-roles",
}


def _names(got: Any, key: str, field: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    items = got.split(",") if isinstance(got, str) else got
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise SettingsError(f"context {key}: {field}: expected a list of {what}, got {got!r}")
    names = tuple(i.strip() for i in items if i.strip())
    for name in names:
        if not pattern.match(name):
            raise SettingsError(f"context {key}: {field}: {name!r} is not {what}")
    return names


def _whole(got: Any, key: str, field: str, low: int, high: int) -> int:
    if isinstance(got, bool) or not isinstance(got, int) or not low <= got <= high:
        raise SettingsError(f"context {key}: {field}: expected a number {low}..{high}, got {got!r}")
    return got


def _athena(value: Callable[[str], Any], key: str) -> AthenaSettings | None:
    got = value(key)
    if got in (False, None, "", "false"):
        return None
    if isinstance(got, str):
        import json

        try:
            got = json.loads(got)
        except ValueError:
            raise SettingsError(f"context {key}: expected a JSON object, got {got!r}") from None
    if not isinstance(got, dict):
        raise SettingsError(f"context {key}: expected an object or false, got {got!r}")
    unknown = sorted(set(got) - _ATHENA_KEYS)
    if unknown:
        raise SettingsError(f"context {key}: unknown keys {unknown}; known: {sorted(_ATHENA_KEYS)}")
    if "regions" not in got:
        raise SettingsError(f"context {key}: regions: required (the trail's regions to query)")
    start = got.get("start-date", "2020/01/01")
    if not isinstance(start, str) or not _DATE.match(start):
        raise SettingsError(f"context {key}: start-date: expected yyyy/MM/dd, got {start!r}")
    organization = got.get("organization-id")
    if organization is not None and not (
        isinstance(organization, str) and _ORG_ID.match(organization)
    ):
        raise SettingsError(f"context {key}: organization-id: expected o-..., got {organization!r}")
    return AthenaSettings(
        regions=_names(got["regions"], key, "regions", _REGION, "region names"),
        accounts=_names(got.get("accounts", []), key, "accounts", _ACCOUNT, "12-digit account ids"),
        start_date=start,
        organization_id=organization,
        bytes_scanned_cutoff_gb=_whole(
            got.get("bytes-scanned-cutoff-gb", 100), key, "bytes-scanned-cutoff-gb", 1, 1_000_000
        ),
        results_retention_days=_whole(
            got.get("results-retention-days", 30), key, "results-retention-days", 1, 3650
        ),
        user_roles=_names(got.get("user-roles", []), key, "user-roles", _ROLE_NAME, "role names"),
    )


@dataclass(frozen=True, kw_only=True)
class DeploySettings:
    """What one deployment looks like; built from the context by `from_context`."""

    environment: str = "dev"
    allowlist_path: str = "config/allowlist.yaml"
    function_prefix: str = DEFAULT_PREFIX
    alert_email: str | None = None
    existing_trail_arn: str | None = None
    existing_trail_bucket: str | None = None
    existing_trail_key_arn: str | None = None
    management_events: bool = False
    s3_ingest: bool = False
    ingest_prefix: str = ""  # "" = AWSLogs/<account>/CloudTrail/
    log_retention_days: int = 90
    trail_retention_days: int = 365
    account_role: AccountRole = AccountRole.STANDALONE
    central_account_id: str | None = None
    central_bus_arn: str | None = None
    organization_id: str | None = None
    member_account_ids: tuple[str, ...] = ()
    pattern_size_limit: int = 2048  # EventBridge's default quota; adjustable up to 4096
    max_event_rules: int = 300  # rules the pipeline may put on the bus (EventBridge: 300 per bus)
    regions: tuple[str, ...] = ()  # () = the home region only; else home first
    heartbeat_hours: int = 0  # 0 = no heartbeat alarm
    object_lock_days: int = 0  # 0 = no Object Lock on the backup and trail buckets
    athena: AthenaSettings | None = None  # Athena for `invoke-audit history`
    security_hub: bool = False  # findings to this account's Security Hub

    @property
    def uses_existing_trail(self) -> bool:
        return self.existing_trail_arn is not None

    @property
    def name_prefix(self) -> str:
        """Every physical name a deployment sets starts with this (`invoke-audit-dev-`), so
        two environments live side by side in one account."""
        return f"{self.function_prefix}{self.environment}-"

    @property
    def home_region(self) -> str | None:
        """The region of the pipeline (None: the region of the deploying credentials)."""
        return self.regions[0] if self.regions else None

    @property
    def forwarded_regions(self) -> tuple[str, ...]:
        """The listed regions other than the home one: each gets a forwarding stack."""
        return self.regions[1:]

    @property
    def trail_name(self) -> str:
        return f"{self.name_prefix}trail"

    def function_name(self, function: str) -> str:
        return f"{self.name_prefix}{function}"

    @property
    def functions(self) -> tuple[str, ...]:
        """The pipeline functions this deployment runs (a member account runs none)."""
        if self.account_role is AccountRole.MEMBER:
            return ()
        return (
            ("validator", "remediator", "ingest") if self.s3_ingest else ("validator", "remediator")
        )

    @property
    def remediation_role_name(self) -> str:
        """The role a central remediator assumes in each member account."""
        return f"{self.name_prefix}remediation"

    @property
    def remediator_role_name(self) -> str:
        """The central remediator's own role (the member role trusts exactly this name)."""
        return f"{self.name_prefix}remediator"

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> DeploySettings:
        """Build from a context getter (`app.node.try_get_context`); None means the default."""

        def value(key: str) -> Any:
            got = get(key)
            return CONTEXT_DEFAULTS[key] if got is None else got

        settings = cls(
            environment=_match(value, "invoke-audit:environment", _ENV_NAME, "lowercase name"),
            allowlist_path=_text(value, "invoke-audit:allowlist") or "config/allowlist.yaml",
            function_prefix=_match(
                value, "invoke-audit:function-prefix", _PREFIX, "lowercase, ending in '-'"
            ),
            alert_email=_optional(value, "invoke-audit:alert-email", _EMAIL, "an e-mail address"),
            existing_trail_arn=_optional(
                value, "invoke-audit:existing-trail-arn", _TRAIL_ARN, "a CloudTrail trail ARN"
            ),
            existing_trail_bucket=_optional(
                value, "invoke-audit:existing-trail-bucket", _BUCKET, "an S3 bucket name"
            ),
            existing_trail_key_arn=_optional(
                value, "invoke-audit:existing-trail-key-arn", _KEY_ARN, "a KMS key ARN"
            ),
            management_events=_bool(value, "invoke-audit:management-events"),
            s3_ingest=_bool(value, "invoke-audit:s3-ingest"),
            ingest_prefix=_match(
                value, "invoke-audit:ingest-prefix", _KEY_PREFIX, "an S3 key prefix"
            ),
            log_retention_days=_days(value, "invoke-audit:log-retention-days"),
            trail_retention_days=_days(value, "invoke-audit:trail-retention-days"),
            account_role=_role(value, "invoke-audit:account-role"),
            central_account_id=_optional(
                value, "invoke-audit:central-account-id", _ACCOUNT, "a 12-digit account id"
            ),
            central_bus_arn=_optional(
                value, "invoke-audit:central-bus-arn", _BUS_ARN, "an EventBridge bus ARN"
            ),
            organization_id=_optional(
                value, "invoke-audit:organization-id", _ORG_ID, "an organization id (o-...)"
            ),
            member_account_ids=_accounts(value, "invoke-audit:member-account-ids"),
            pattern_size_limit=_pattern_limit(value, "invoke-audit:event-pattern-size-limit"),
            max_event_rules=_rule_count(value, "invoke-audit:max-event-rules"),
            regions=_regions(value, "invoke-audit:regions"),
            heartbeat_hours=_bounded(value, "invoke-audit:heartbeat-hours", 0, 24, "hours"),
            object_lock_days=_bounded(value, "invoke-audit:object-lock-days", 0, 36500, "days"),
            athena=_athena(value, "invoke-audit:athena"),
            security_hub=_bool(value, "invoke-audit:securityhub"),
        )
        settings.check()
        return settings

    def _check_names_and_lock(self) -> None:
        _check_names_and_lock_of(self)

    def check(self) -> None:
        """Cross-field rules: what each account role and option needs."""
        self._check_names_and_lock()
        if self.account_role is AccountRole.CENTRAL:
            if not self.organization_id:
                raise SettingsError(
                    "context invoke-audit:organization-id: required when account-role is central"
                )
            if not self.member_account_ids:
                raise SettingsError(
                    "context invoke-audit:member-account-ids: required when account-role is "
                    "central (the accounts whose Invoke events the central account judges)"
                )
        if self.account_role is AccountRole.MEMBER:
            for key, given in (
                ("invoke-audit:central-account-id", self.central_account_id),
                ("invoke-audit:central-bus-arn", self.central_bus_arn),
            ):
                if not given:
                    raise SettingsError(f"context {key}: required when account-role is member")
            bus = _BUS_ARN.match(self.central_bus_arn or "")
            if bus and bus.group("account") != self.central_account_id:
                raise SettingsError(
                    "context invoke-audit:central-bus-arn: its account is not "
                    "invoke-audit:central-account-id"
                )
            if self.s3_ingest:
                raise SettingsError(
                    "context invoke-audit:s3-ingest: not available when account-role is member "
                    "(the central account runs the functions)"
                )
        if self.athena is not None:
            if self.account_role is AccountRole.MEMBER:
                raise SettingsError(
                    "context invoke-audit:athena: not available when account-role is member "
                    "(query the trail from the account that holds its bucket)"
                )
            if self.uses_existing_trail and not self.existing_trail_bucket:
                raise SettingsError(
                    "context invoke-audit:existing-trail-bucket: required when invoke-audit:athena "
                    "is on and existing-trail-arn is set (the table reads the trail's bucket)"
                )
        if self.s3_ingest and self.uses_existing_trail and not self.existing_trail_bucket:
            raise SettingsError(
                "context invoke-audit:existing-trail-bucket: required when s3-ingest is on "
                "and existing-trail-arn is set"
            )


def _check_names_and_lock_of(settings: DeploySettings) -> None:
    if len(settings.remediation_role_name) > _ROLE_NAME_MAX:
        raise SettingsError(
            "context invoke-audit:environment: with invoke-audit:function-prefix, names "
            f"such as {settings.remediation_role_name!r} exceed IAM's {_ROLE_NAME_MAX} characters"
        )
    if settings.object_lock_days and settings.object_lock_days > settings.trail_retention_days:
        raise SettingsError(
            "context invoke-audit:object-lock-days: longer than "
            "invoke-audit:trail-retention-days (locked log files could not expire)"
        )


def _text(value: Callable[[str], Any], key: str) -> str:
    got = value(key)
    if not isinstance(got, str):
        raise SettingsError(f"context {key}: expected a string, got {got!r}")
    return got.strip()


def _match(value: Callable[[str], Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    got = _text(value, key)
    if not pattern.match(got):
        raise SettingsError(f"context {key}: expected {what}, got {got!r}")
    return got


def _optional(
    value: Callable[[str], Any], key: str, pattern: re.Pattern[str], what: str
) -> str | None:
    got = _text(value, key)
    if not got:
        return None
    if not pattern.match(got):
        raise SettingsError(f"context {key}: expected {what}, got {got!r}")
    return got


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


def _bool(value: Callable[[str], Any], key: str) -> bool:
    got = value(key)
    if isinstance(got, bool):
        return got
    if isinstance(got, str) and got.strip().lower() in _TRUE | _FALSE:
        return got.strip().lower() in _TRUE
    raise SettingsError(f"context {key}: expected true or false, got {got!r}")


def _days(value: Callable[[str], Any], key: str) -> int:
    got = value(key)
    try:
        days = int(got)
    except (TypeError, ValueError):
        raise SettingsError(f"context {key}: expected a number of days, got {got!r}") from None
    if isinstance(got, bool) or days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        raise SettingsError(f"context {key}: expected one of {allowed}; got {got!r}")
    return days


def _pattern_limit(value: Callable[[str], Any], key: str) -> int:
    got = value(key)
    if isinstance(got, bool) or not isinstance(got, (int, str)) or not str(got).isdigit():
        raise SettingsError(f"context {key}: expected a number of characters, got {got!r}")
    if not 2048 <= int(got) <= 4096:
        raise SettingsError(
            f"context {key}: EventBridge allows 2048 (default) to 4096 characters; got {got!r}"
        )
    return int(got)


def _rule_count(value: Callable[[str], Any], key: str) -> int:
    got = value(key)
    if isinstance(got, bool) or not isinstance(got, (int, str)) or not str(got).isdigit():
        raise SettingsError(f"context {key}: expected a number of rules, got {got!r}")
    if not 1 <= int(got) <= 10_000:
        raise SettingsError(f"context {key}: expected 1 to 10000 rules; got {got!r}")
    return int(got)


def _bounded(value: Callable[[str], Any], key: str, low: int, high: int, unit: str) -> int:
    got = value(key)
    if isinstance(got, bool) or not isinstance(got, (int, str)) or not str(got).isdigit():
        raise SettingsError(f"context {key}: expected a number of {unit}, got {got!r}")
    if not low <= int(got) <= high:
        raise SettingsError(f"context {key}: expected {low} to {high} {unit}, got {got!r}")
    return int(got)


def _regions(value: Callable[[str], Any], key: str) -> tuple[str, ...]:
    """Region names as a list or a comma-separated string; the first is the home region."""
    got = value(key)
    items = got.split(",") if isinstance(got, str) else got
    if not isinstance(items, list | tuple):
        raise SettingsError(f"context {key}: expected region names, got {got!r}")
    regions: list[str] = []
    for item in (str(item).strip() for item in items):
        if not item:
            continue
        if not _REGION.match(item):
            raise SettingsError(f"context {key}: {item!r} is not a region name (us-east-1)")
        if item in regions:
            raise SettingsError(f"context {key}: {item!r} is listed twice")
        regions.append(item)
    return tuple(regions)


def _accounts(value: Callable[[str], Any], key: str) -> tuple[str, ...]:
    """Account ids as a list or a comma-separated string."""
    got = value(key)
    items = got.split(",") if isinstance(got, str) else got
    if not isinstance(items, list | tuple):
        raise SettingsError(f"context {key}: expected account ids, got {got!r}")
    accounts = [str(item).strip() for item in items if str(item).strip()]
    for account in accounts:
        if not _ACCOUNT.match(account):
            raise SettingsError(f"context {key}: {account!r} is not a 12-digit account id")
    return tuple(sorted(set(accounts)))


def _role(value: Callable[[str], Any], key: str) -> AccountRole:
    got = _text(value, key)
    try:
        return AccountRole(got)
    except ValueError:
        allowed = ", ".join(role.value for role in AccountRole)
        raise SettingsError(f"context {key}: expected one of {allowed}; got {got!r}") from None


def settings_from_mapping(context: Mapping[str, Any]) -> DeploySettings:
    """Settings from a plain mapping of context values (tests, tools)."""
    return DeploySettings.from_context(context.get)
