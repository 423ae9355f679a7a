"""What people are told: the subject and text of every notification the pipeline sends.

A monitor-mode violation (validator, ingest), a rewritten policy or a caller whose access is
identity-based (remediator), the hourly remediation limit reached. Pure: no AWS SDK, no I/O;
the notifier adapter only publishes what these functions write.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from models.names import PROJECT

__all__ = [
    "monitor_subject",
    "monitor_summary",
    "rate_limit_notice",
    "remediation_subject",
    "remediation_summary",
    "short_name",
    "undo_command",
    "what_changed",
]

_VERBS = {
    "removed": "Removed",
    "narrowed": "Narrowed",
    "tightened": "Tightened",
    "added": "Added",
    "reported": "Left for review",
}


def short_name(arn: str | None) -> str:
    """The readable end of an ARN: a function name (with qualifier) or a user/role name."""
    text = arn or "unknown"
    if ":function:" in text:
        return text.split(":function:", 1)[1]
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


def undo_command(backup: str) -> str:
    """The restore command for a backup, quoted so that it can be pasted into a shell."""
    return f"{PROJECT} restore {shlex.quote(backup)}"


def _account_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


def monitor_subject(function: str | None, caller: str | None) -> str:
    return (
        f"{PROJECT} [monitor]: {short_name(function)} invoked by {short_name(caller)}, "
        "not on the allowlist"
    )


def _exception_lines(decision: Any) -> list[str]:
    """The temporary exception a decision names (expired, or the one that allowed)."""
    if not (decision.exception_expires or decision.exception_owner or decision.exception_ticket):
        return []
    return [
        f"Exception: expires {decision.exception_expires or '-'}, "
        f"owner {decision.exception_owner or '-'}, ticket {decision.exception_ticket or '-'}"
    ]


def monitor_summary(decision: Any) -> str:
    """A monitor-mode violation (`decision`: a `lambdas.core.decide.Decision`)."""
    return "\n".join(
        [
            f"{decision.caller} invoked {decision.function}, and is not on the allowlist.",
            "",
            f"Rule:   {decision.rule} (mode: monitor, so nothing was changed)",
            f"Why:    {decision.reason}",
            *_exception_lines(decision),
            f"When:   {decision.event_time}",
            f"Event:  {decision.event_id}",
            "",
            "In enforce mode the remediator would take this caller's access away from the "
            "function's resource policy. To allow the caller, add it to the rule's allow list.",
        ]
    )


def rate_limit_notice(reason: str) -> tuple[str, str]:
    """(subject, text) when the hourly remediation budget is spent."""
    return (
        f"{PROJECT}: remediation rate limit reached, remediations paused",
        f"{reason}.\n\nThe remediator changes no policy until the next hour. Messages "
        "stay in the queue and are retried; those retried too often go to the "
        "dead-letter queue. Many violations at once can mean an attack, or an allowlist "
        "that misses a legitimate caller: check before raising limits."
        "max_remediations_per_hour.",
    )


def what_changed(changes: Sequence[dict[str, Any]]) -> str:
    """One line: every change but the kept statements."""
    done = [c for c in changes if c["kind"] not in ("kept",)]
    return "; ".join(f"{c['kind']} {c['sid'] or '(no Sid)'}: {c['detail']}" for c in done) or "-"


def remediation_subject(
    function: str,
    changes: Sequence[dict[str, Any]],
    *,
    identity_based: bool,
    refused: bool = False,
    proof_failed: bool = False,
) -> str:
    name = function.split(":function:", 1)[-1]
    if refused:
        return f"{PROJECT}: {name} NOT remediated: the rewrite fails its post-condition"
    if proof_failed:
        return f"{PROJECT}: rewrite of {name} NOT written: the proof before writing failed"
    if identity_based:
        return f"{PROJECT}: {name} has no resource policy; review the caller's IAM access"
    removed = sum(1 for c in changes if c["kind"] in ("removed", "narrowed"))
    return f"{PROJECT}: resource policy of {name} rewritten ({removed} grant(s) removed)"


def remediation_summary(
    *,
    identity_based: bool,
    function: str,
    rule: str | None,
    detail: str,
    changes: Sequence[dict[str, Any]],
    backup: str | None,
    caller: str | None,
    reason: str | None,
    event_id: str | None,
    event_time: str | None,
    proof: str | None = None,
    proof_failed: bool = False,
) -> str:
    """The email a person reads: what changed on which resource, why, and how to undo it."""
    lines = []
    if proof_failed:
        lines += [
            f"{caller or 'A caller'} invoked {function}, which is not allowed by rule {rule!r}.",
            "",
            f"{PROJECT} computed a rewrite of its resource-based policy but did NOT write it: "
            f"{detail}.",
            "",
            "The policy is unchanged and no backup was made. Review the planned policy below "
            "(details, policy_after) against the current one (policy_before); if Access Analyzer "
            "could not answer, check the remediator's access-analyzer:Check* permissions, or set "
            "limits.proof: best-effort in the allowlist to write on the semantic check alone.",
        ]
    elif identity_based:
        lines += [
            f"{caller or 'A caller'} invoked {function}, which is not allowed by rule {rule!r}.",
            "",
            f"Nothing was changed: {detail}.",
            "Review the IAM policies of the caller, or set deny_others: true on the rule to add "
            "an explicit Deny.",
        ]
    else:
        lines += [
            f"{PROJECT} rewrote the resource-based policy of {function}.",
            "",
            f"Why: {reason or 'a caller outside the allowlist invoked it'}",
        ]
        lines += ["", "What changed:"]
        for change in changes:
            verb = _VERBS.get(change["kind"])
            if verb is None:
                continue
            who = (
                f" (principals: {', '.join(change['principals'])})" if change["principals"] else ""
            )
            lines.append(
                f"  - {verb} statement {change['sid'] or '(no Sid)'}: {change['detail']}{who}"
            )
        lines += [
            "",
            f"Proof: {proof or 'not recorded'}",
            f"Backup of the original policy: {backup}",
            f"To undo: {undo_command(backup or '')}",
            "  (it checks the backup's signature, shows the change and asks; an original that "
            "lets in callers the allowlist does not allow takes --force: try --dry-run first)",
        ]
        caller_account = _account_of(caller)
        denies = any(c["kind"] == "added" for c in changes)
        if caller_account and caller_account == _account_of(function) and not denies:
            lines += [
                "",
                "Note: the caller is in the function's own account. A resource policy cannot "
                "take away what its identity-based (IAM) policies grant: review them, or set "
                "deny_others: true on the rule.",
            ]
    lines += [
        "",
        f"Rule: {rule}",
        f"Caller: {caller}",
        f"Event: {event_id} at {event_time}",
    ]
    return "\n".join(lines)


def public_policy_notice(
    function: str, caller: str | None, reason: str, event_id: str | None, event_time: str | None
) -> tuple[str, str]:
    """Subject and text when Lambda refused the rewritten policy as public."""
    name = function.split(":function:", 1)[-1]
    subject = f"{PROJECT}: Lambda refused the rewritten policy of {name} as public"
    text = "\n".join(
        [
            f"{caller or 'A caller'} invoked {function}, which is not allowed by the allowlist.",
            "",
            f"{PROJECT} computed a new resource-based policy, but Lambda refused it: {reason}.",
            "Nothing was changed. The message is in the dead-letter queue and is not retried.",
            "",
            "What to change: the rule's allow entries still let any principal invoke (a "
            "service entry without source_account, or a principal glob such as '*'). Pin each "
            "service entry with source_account (and source_arn), and name principals or "
            "accounts instead of wildcards; then redrive the message from the dead-letter "
            "queue or run `invoke-audit remediate`.",
            "",
            f"Event: {event_id} at {event_time}",
        ]
    )
    return subject, text
