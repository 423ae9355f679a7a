"""Security Hub findings in the AWS Security Finding Format (ASFF): pure mapping, no AWS SDK.

One finding per (invoked resource, caller): the resource is the function, version or alias
whose policy governs the call (qualified ARN), the caller is `Caller.describe()`. Its `Id` is
a digest of the two, so every later Invoke by the same caller of the same resource updates
that finding (BatchImportFindings replaces a finding of the same `Id`) instead of adding one.

What Security Hub leaves to whom (BatchImportFindings, "for finding providers"): the provider
sets the facts (`Compliance`, `RecordState`, `UpdatedAt`, ...) and its severity and types in
`FindingProviderFields`; `Workflow` is the customer's after creation, so a provider's later
`Workflow` is ignored. Hence:

- a violation: `Compliance.Status` FAILED, `Workflow.Status` NEW, `RecordState` ACTIVE; a
  repeat after a resolution turns Compliance back to FAILED, which makes Security Hub reset
  the workflow to NEW itself;
- remediated: `Compliance.Status` PASSED and the `invoke-audit restore` command, then
  `Workflow.Status` RESOLVED through BatchUpdateFindings (an automated responder's update);
- the caller allowed since (the daily reconcile): `RecordState` ARCHIVED.

Counting: ASFF has no "seen N times". The count, the first and the last time seen are kept in
the rate-limit table (one atomic counter per finding `Id`, `lambdas.adapters.security_hub`)
and shown in `ProductFields`, `FirstObservedAt`, `LastObservedAt`; `CreatedAt` is the first
time seen, so it stays the same across updates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from lambdas.core.decide import Decision, entry_allows
from lambdas.core.guard import Standing, guard
from lambdas.core.notices import short_name, undo_command
from lambdas.core.record import Caller, resolve_caller
from models.allowlist import AllowlistConfig
from models.arns import parse_function_arn
from models.cloudtrail import CloudTrailRecordModel
from models.exceptions import InputError
from models.names import PROJECT

__all__ = [
    "FIELD",
    "GENERATOR_ID",
    "REQUIRED_FIELDS",
    "SCHEMA_VERSION",
    "TYPES",
    "FindingSubject",
    "HubLocation",
    "Sightings",
    "archived_finding",
    "asff_time",
    "caller_of_record",
    "finding_id",
    "no_longer_violating",
    "resolved_finding",
    "subject_from_decision",
    "subject_from_finding",
    "violation_finding",
]

SCHEMA_VERSION = "2018-10-08"
# The component that generates the findings (one: the allowlist check of Lambda Invokes).
GENERATOR_ID = f"{PROJECT}/lambda-invoke-allowlist"
# Types taxonomy for ASFF (Security Hub user guide, "Types taxonomy for ASFF"): namespace /
# category / classifier; only "Software and Configuration Checks" defines classifiers, so the
# third level here is the product's own.
TYPES = (
    "Unusual Behaviors/Application/Lambda Invoke by a caller not on the allowlist",
    "Effects/Data Exposure",
)
# The required top-level attributes ("Required top-level ASFF attributes", Security Hub user
# guide); botocore's input shape requires all of them but Severity and Types.
REQUIRED_FIELDS = (
    "AwsAccountId",
    "CreatedAt",
    "Description",
    "GeneratorId",
    "Id",
    "ProductArn",
    "Resources",
    "SchemaVersion",
    "Severity",
    "Title",
    "Types",
    "UpdatedAt",
)
SEVERITY = {"enforce": "HIGH", "monitor": "MEDIUM"}
# ProductFields keys (ASFF: "provider_name/field"); the reconcile reads the caller back from them.
FIELD = {
    "function": f"{PROJECT}/Function",
    "caller": f"{PROJECT}/Caller",
    "service": f"{PROJECT}/CallerService",
    "principal": f"{PROJECT}/CallerPrincipal",
    "account": f"{PROJECT}/CallerAccount",
    "source_arn": f"{PROJECT}/CallerSourceArn",
    "source_account": f"{PROJECT}/CallerSourceAccount",
    "identity_type": f"{PROJECT}/CallerIdentityType",
    "rule": f"{PROJECT}/Rule",
    "mode": f"{PROJECT}/Mode",
    "count": f"{PROJECT}/Count",
    "event_id": f"{PROJECT}/LastEventId",
    "outcome": f"{PROJECT}/Outcome",
    "backup": f"{PROJECT}/Backup",
    "owner": f"{PROJECT}/ExceptionOwner",
    "ticket": f"{PROJECT}/ExceptionTicket",
    "archived": f"{PROJECT}/ArchivedBecause",
}
_CALLER_FIELDS = (
    "service",
    "principal",
    "account",
    "source_arn",
    "source_account",
    "identity_type",
)
_TITLE_MAX = 256
_DESCRIPTION_MAX = 1024
_RECOMMENDATION_MAX = 512
_FIELD_VALUE_MAX = 1024
# What a provider re-sends when it updates a finding it read back (GetFindings): its own
# fields. Workflow, Note, UserDefinedFields, VerificationState are the customer's.
_PROVIDER_KEYS = (
    "SchemaVersion",
    "Id",
    "ProductArn",
    "ProductName",
    "GeneratorId",
    "AwsAccountId",
    "Types",
    "FirstObservedAt",
    "LastObservedAt",
    "CreatedAt",
    "UpdatedAt",
    "Severity",
    "Title",
    "Description",
    "Remediation",
    "ProductFields",
    "Resources",
    "Compliance",
    "RecordState",
    "FindingProviderFields",
)


@dataclass(frozen=True, slots=True)
class HubLocation:
    """The Security Hub that takes the findings: the pipeline's account and region. With the
    default product ARN, only the finding's own account may import it (`AwsAccountId`), so a
    central account reports member accounts' functions as its own findings, naming the
    member's function in `Resources`."""

    account: str
    region: str
    partition: str = "aws"

    @property
    def product_arn(self) -> str:
        return (
            f"arn:{self.partition}:securityhub:{self.region}:{self.account}"
            f":product/{self.account}/default"
        )


@dataclass(frozen=True, slots=True)
class Sightings:
    """How often and when the caller was seen invoking the resource (ISO 8601 times)."""

    count: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True, slots=True)
class FindingSubject:
    """What a finding is about: one caller of one resource, under one rule."""

    function: str  # the invoked resource ARN (qualified when the call was)
    caller: str  # Caller.describe()
    rule: str | None
    mode: str | None  # enforce | monitor
    reason: str
    facts: Caller | None = None  # the caller's fields, kept for the reconcile
    event_id: str | None = None
    event_time: str | None = None
    owner: str | None = None  # of the allow entry concerned (an exception), when known
    ticket: str | None = None

    @property
    def id(self) -> str:
        return finding_id(self.function, self.caller)


def finding_id(function: str, caller: str) -> str:
    """The stable `Id` of the finding for `caller` invoking `function` (a resource ARN)."""
    digest = hashlib.sha256(f"{function}\n{caller}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PROJECT}/invoke/{digest}"


def asff_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as the ASFF examples write it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def caller_of_record(record: Any) -> Caller | None:
    """The caller of a CloudTrail record (None when the record names none or is unreadable)."""
    if not isinstance(record, Mapping):
        return None
    try:
        model = CloudTrailRecordModel.model_validate(record)
    except ValidationError:
        return None
    if model.userIdentity is None:
        return None
    return resolve_caller(model.userIdentity, model.requestParameters or {})


def subject_from_decision(
    decision: Decision, record: Any, *, owner: str | None = None, ticket: str | None = None
) -> FindingSubject:
    """The subject of a violation decision (the validator's); the owner and ticket of the
    exception the decision names (one that expired), unless given."""
    return FindingSubject(
        function=decision.function or "",
        caller=decision.caller or "unknown caller",
        rule=decision.rule,
        mode=decision.mode,
        reason=decision.reason,
        facts=caller_of_record(record),
        event_id=decision.event_id,
        event_time=decision.event_time,
        owner=owner or decision.exception_owner,
        ticket=ticket or decision.exception_ticket,
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fields(subject: FindingSubject, sightings: Sightings, **extra: str | None) -> dict[str, str]:
    values: dict[str, str | None] = {
        "function": subject.function,
        "caller": subject.caller,
        "rule": subject.rule,
        "mode": subject.mode,
        "count": str(sightings.count),
        "event_id": subject.event_id,
        "owner": subject.owner,
        "ticket": subject.ticket,
    }
    if subject.facts is not None:
        values |= {name: getattr(subject.facts, name) for name in _CALLER_FIELDS}
    values |= extra
    # ProductFields values are non-empty strings; a huge value is cut, never dropped.
    return {FIELD[k]: _cut(v, _FIELD_VALUE_MAX) for k, v in values.items() if v}


def _resource(function: str) -> dict[str, Any]:
    ref = parse_function_arn(function)
    return {
        "Type": "AwsLambdaFunction",
        "Id": ref.arn,
        "Partition": ref.partition,
        "Region": ref.region,
        "Details": {"AwsLambdaFunction": {"FunctionName": ref.name}},
    }


def _exception_note(subject: FindingSubject) -> str:
    named = [
        f"{label} {value}"
        for label, value in (("owner", subject.owner), ("ticket", subject.ticket))
        if value
    ]
    return f" The allow entry concerned: {', '.join(named)}." if named else ""


def _base(
    subject: FindingSubject,
    hub: HubLocation,
    sightings: Sightings,
    now: datetime,
    *,
    description: str,
    recommendation: str,
    compliance: str,
    workflow: str,
    fields: dict[str, str],
) -> dict[str, Any]:
    label = SEVERITY.get(subject.mode or "", "MEDIUM")
    severity = {"Label": label, "Original": subject.mode or "unknown"}
    title = f"Lambda {short_name(subject.function)} invoked by a caller not on the allowlist"
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": subject.id,
        "ProductArn": hub.product_arn,
        "ProductName": PROJECT,
        "GeneratorId": GENERATOR_ID,
        "AwsAccountId": hub.account,
        "Types": list(TYPES),
        "FirstObservedAt": sightings.first_seen,
        "LastObservedAt": sightings.last_seen,
        "CreatedAt": sightings.first_seen,
        "UpdatedAt": asff_time(now),
        "Severity": severity,
        "FindingProviderFields": {"Severity": dict(severity), "Types": list(TYPES)},
        "Title": _cut(f"{title}: {subject.caller}", _TITLE_MAX),
        "Description": _cut(description, _DESCRIPTION_MAX),
        "Remediation": {"Recommendation": {"Text": _cut(recommendation, _RECOMMENDATION_MAX)}},
        "ProductFields": fields,
        "Resources": [_resource(subject.function)],
        "Compliance": {"Status": compliance},
        "Workflow": {"Status": workflow},
        "RecordState": "ACTIVE",
    }


def violation_finding(
    subject: FindingSubject, hub: HubLocation, sightings: Sightings, now: datetime
) -> dict[str, Any]:
    """A violation: FAILED / NEW / ACTIVE; HIGH under an enforce rule, MEDIUM under monitor."""
    times = "once" if sightings.count == 1 else f"{sightings.count} times"
    rule = f"rule {subject.rule!r} ({subject.mode} mode)" if subject.rule else "no rule"
    description = (
        f"{subject.reason}. Seen {times}, first {sightings.first_seen}, last "
        f"{sightings.last_seen}; judged by {rule}.{_exception_note(subject)}"
    )
    if subject.mode == "enforce":
        recommendation = (
            "invoke-audit rewrites the resource policy of this function so that the caller "
            "loses the access it grants (backup first). If the caller should invoke it, add "
            f"it to the allow list of rule {subject.rule!r} and deploy."
        )
    else:
        recommendation = (
            f"Rule {subject.rule!r} is in monitor mode: nothing is changed. If the caller "
            "should invoke this function, add it to the rule's allow list; otherwise set the "
            "rule to enforce. What enforce would write: `aws lambda get-policy --function-name "
            f"{subject.function} > policy.json` then `invoke-audit rewrite --function "
            f"{subject.function} policy.json`."
        )
    return _base(
        subject,
        hub,
        sightings,
        now,
        description=description,
        recommendation=recommendation,
        compliance="FAILED",
        workflow="NEW",
        fields=_fields(subject, sightings, outcome="violation"),
    )


def resolved_finding(
    subject: FindingSubject,
    hub: HubLocation,
    sightings: Sightings,
    now: datetime,
    *,
    backup: str | None,
    detail: str,
) -> dict[str, Any]:
    """Remediated: the policy was rewritten. PASSED (Workflow RESOLVED is sent apart, see the
    module docstring), with the command that undoes the rewrite."""
    undo = undo_command(backup) if backup else None
    description = (
        f"{subject.reason}. The resource policy was rewritten: {detail}. Seen "
        f"{sightings.count} time(s), first {sightings.first_seen}, last "
        f"{sightings.last_seen}.{_exception_note(subject)}"
    )
    recommendation = (
        f"Resolved: the caller no longer has the access this function's policy gave it. To "
        f"undo the rewrite: {undo}"
        if undo
        else "Resolved: the caller no longer has the access this function's policy gave it."
    )
    return _base(
        subject,
        hub,
        sightings,
        now,
        description=description,
        recommendation=recommendation,
        compliance="PASSED",
        workflow="RESOLVED",
        fields=_fields(subject, sightings, outcome="remediated", backup=backup),
    )


def archived_finding(finding: Mapping[str, Any], now: datetime, why: str) -> dict[str, Any]:
    """`finding` (as GetFindings returns it) archived: the provider's fields only, RecordState
    ARCHIVED, the reason in ProductFields (Security Hub's own `aws/...` fields left out)."""
    kept = {key: finding[key] for key in _PROVIDER_KEYS if key in finding}
    fields = {
        key: value
        for key, value in dict(finding.get("ProductFields") or {}).items()
        if key.startswith(f"{PROJECT}/")
    }
    fields[FIELD["archived"]] = _cut(why, _FIELD_VALUE_MAX)
    return kept | {"ProductFields": fields, "RecordState": "ARCHIVED", "UpdatedAt": asff_time(now)}


def subject_from_finding(finding: Mapping[str, Any]) -> tuple[str, Caller] | None:
    """The resource and caller a finding of this product is about (None: not readable)."""
    fields = finding.get("ProductFields") or {}
    function = fields.get(FIELD["function"])
    if not isinstance(function, str) or not function:
        return None
    caller = Caller(**{name: fields.get(FIELD[name]) or None for name in _CALLER_FIELDS})
    if not (caller.service or caller.principal or caller.account):
        return None
    return function, caller


def no_longer_violating(
    finding: Mapping[str, Any],
    config: AllowlistConfig,
    own_functions: AbstractSet[str] = frozenset(),
    now: datetime | None = None,
) -> str | None:
    """Why the caller of `finding` would no longer be a violation under `config` at `now`
    (the reason to archive it), or None: still a violation, or the finding cannot be read.
    An allow entry with `expires` counts only while in force at `now` (never without one)."""
    subject = subject_from_finding(finding)
    if subject is None:
        return None
    function, caller = subject
    try:
        ref = parse_function_arn(function)
    except InputError:
        return None
    place = guard(ref, config, own_functions)
    if place.standing in (Standing.OWN, Standing.PROTECTED):
        return f"{place.reason()}: its Invokes are not judged any more"
    if place.rule is None:
        return "no rule of the allowlist covers this function any more"
    entry = next(
        (
            e
            for e in place.rule.allow
            if entry_allows(e, caller)
            and (e.expires is None or (now is not None and e.in_force(now)))
        ),
        None,
    )
    if entry is None:
        return None
    return f"allowed by rule {place.rule.name!r} now: {entry.describe()}"
