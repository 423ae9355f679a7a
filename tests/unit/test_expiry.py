"""Temporary exceptions: when an allow entry stops allowing (dates, times, time zones), and the
daily notice about them (once per entry, state and date; never a daily repeat)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lambdas.core.expiry import exceptions_due
from lambdas.validator.envelope import is_scheduled
from lambdas.validator.scheduled import ScheduledRunError, announce_exceptions, run_scheduled
from models.allowlist import AllowEntry, AllowlistConfig
from models.exceptions import ConfigError
from tests.support.allowlists import load_config, write_config
from tests.support.fakes import FakeNoticeMarks, FakeNotifier

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"


def entry(expires: object) -> AllowEntry:
    return AllowEntry.model_validate({"account": ACCOUNT, "expires": expires})


def utc(*parts: int) -> datetime:
    return datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


# --- the boundary ----------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["2027-03-31", date(2027, 3, 31)])
def test_a_date_allows_through_the_whole_day_in_utc(written):
    exception = entry(written)
    assert exception.in_force(utc(2027, 3, 31, 0, 0))
    assert exception.in_force(utc(2027, 3, 31, 23, 59, 59, 999999))
    assert not exception.in_force(utc(2027, 4, 1, 0, 0))
    assert not exception.in_force(utc(2027, 4, 2))
    assert exception.expires_at == utc(2027, 4, 1)


def test_a_date_is_a_utc_day_whatever_the_clock_zone_of_the_caller():
    exception = entry("2027-03-31")
    tokyo = timezone(timedelta(hours=9))
    # 2027-04-01 08:59 in Tokyo is 2027-03-31 23:59 UTC: still allowed.
    assert exception.in_force(datetime(2027, 4, 1, 8, 59, tzinfo=tokyo))
    assert not exception.in_force(datetime(2027, 4, 1, 9, 0, tzinfo=tokyo))


@pytest.mark.parametrize(
    ("written", "first_instant_not_allowed"),
    [
        ("2027-03-31T18:00:00Z", utc(2027, 3, 31, 18)),
        ("2027-03-31T18:00:00", utc(2027, 3, 31, 18)),  # naive: UTC
        ("2027-03-31 18:00", utc(2027, 3, 31, 18)),
        ("2027-03-31T18:00:00+02:00", utc(2027, 3, 31, 16)),  # converted
        ("2027-03-31T18:00:00-05:30", utc(2027, 3, 31, 23, 30)),
        ("2027-03-31T23:30:00-01:00", utc(2027, 4, 1, 0, 30)),  # crosses into the next day
        (datetime(2027, 3, 31, 18), utc(2027, 3, 31, 18)),  # YAML's naive timestamp
        (datetime(2027, 3, 31, 18, tzinfo=timezone(timedelta(hours=2))), utc(2027, 3, 31, 16)),
    ],
)
def test_a_date_and_time_is_the_first_instant_no_longer_allowed(written, first_instant_not_allowed):
    exception = entry(written)
    assert exception.expires_at == first_instant_not_allowed
    assert exception.in_force(first_instant_not_allowed - timedelta(microseconds=1))
    assert not exception.in_force(first_instant_not_allowed)


def test_no_expires_allows_for_ever():
    exception = AllowEntry(account=ACCOUNT)
    assert exception.expires_at is None
    assert exception.in_force(utc(9999, 12, 31, 23, 59))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("expires: tomorrow", "not a valid date or date and time: 'tomorrow'"),
        ('expires: "2027-02-30"', "not a valid date or date and time: '2027-02-30'"),
        ("expires: 2027-02-30", "not a valid date or date and time: '2027-02-30'"),
        ("expires: 2027-03-31 25:00", "not a valid date or date and time: '2027-03-31 25:00'"),
        ("expires: 20270331", "got 20270331"),
        ("expires: true", "got True"),
        ('owner: ""', "owner: String should have at least 1 character"),
        ("ticket: 1234", "ticket: Input should be a valid string"),
        ("expiry: 2027-03-31", "unknown key 'expiry'"),
    ],
)
def test_a_bad_exception_field_names_the_file_line_and_field(text, problem):
    yaml = f"""version: 1
rules:
  - name: partner
    functions: ["PartnerFunction"]
    allow:
      - account: "{ACCOUNT}"
        {text}
"""
    with pytest.raises(ConfigError) as raised:
        load_config(yaml)
    (line,) = raised.value.problems
    assert line.startswith("test.yaml:7: rules[0].allow[0].")
    assert problem in line


def test_the_exception_fields_survive_the_json_the_functions_ship_with(tmp_path):
    from lambdas.runtime.settings import load_allowlist_json

    yaml = f"""version: 1
rules:
  - name: partner
    functions: ["PartnerFunction"]
    allow:
      - account: "{ACCOUNT}"
        expires: 2027-03-31
        owner: payments-team
        ticket: SEC-1234
        reason: vendor migration
      - account: "444455556666"
        expires: 2027-03-31T18:00:00+02:00
      - account: "777788889999"
        expires: 2027-03-31 18:00
"""
    shipped = load_allowlist_json(write_config(tmp_path, yaml))
    first, second, third = shipped.rules[0].allow
    assert third.expires == utc(2027, 3, 31, 18)  # unquoted, no offset: UTC
    assert (first.expires, first.owner, first.ticket, first.reason) == (
        date(2027, 3, 31),
        "payments-team",
        "SEC-1234",
        "vendor migration",
    )
    assert second.expires == utc(2027, 3, 31, 16)
    assert shipped == load_config(yaml)


# --- the daily notice --------------------------------------------------------------------------

NOTICE_CONFIG = f"""version: 1
rules:
  - name: partner
    functions: ["PartnerFunction"]
    allow:
      - account: "{ACCOUNT}"
        expires: 2027-03-31
        owner: payments-team
        ticket: SEC-1234
        reason: vendor migration
      - account: "444455556666"
      - principal: "arn:aws:iam::{ACCOUNT}:role/vendor"
        expires: 2027-05-01T12:00:00Z
"""


def notice_config(text: str = NOTICE_CONFIG) -> AllowlistConfig:
    return load_config(text)


def announce(config, now, marks, notifier):
    return announce_exceptions(config, now, marks=marks, notifier=notifier)


def test_the_window_holds_expired_entries_and_those_expiring_within_seven_days():
    config = notice_config()
    week = timedelta(days=7)
    assert exceptions_due(config, utc(2027, 3, 24, 23, 59), week) == []
    (due,) = exceptions_due(config, utc(2027, 3, 25), week)  # 7 days before 04-01 00:00
    assert (due.rule, due.index, due.state) == ("partner", 0, "expiring")
    (due,) = exceptions_due(config, utc(2027, 3, 31, 23, 59), week)
    assert due.state == "expiring"
    (due,) = exceptions_due(config, utc(2027, 4, 1), week)
    assert due.state == "expired"
    both = exceptions_due(config, utc(2027, 4, 25, 12), week)
    assert [(d.index, d.state) for d in both] == [(0, "expired"), (2, "expiring")]


def test_the_notice_is_sent_once_not_every_day():
    config, marks, notifier = notice_config(), FakeNoticeMarks(), FakeNotifier()
    for day in range(20, 31):  # 2027-03-20 .. 2027-03-30 at 08:00, the daily run
        announce(config, utc(2027, 3, day, 8), marks, notifier)
    (expiring,) = notifier.published
    subject, text, details = expiring
    assert subject == "invoke-audit: temporary allowlist exceptions: 1 expiring soon"
    assert "rule partner: account 111122223333" in text
    assert "owner payments-team, ticket SEC-1234" in text
    assert "reason: vendor migration" in text
    assert "allowed until 2027-04-01 00:00 UTC (in 6.7 days)" in text  # sent on 03-25
    assert details["exceptions"] == [
        {
            "rule": "partner",
            "entry": "account 111122223333",
            "allow_index": 0,
            "expires": "2027-03-31",
            "no_longer_allows_from": "2027-04-01T00:00:00Z",
            "state": "expiring",
            "owner": "payments-team",
            "ticket": "SEC-1234",
            "reason": "vendor migration",
        }
    ]
    # The day after: expired, told once more (a new state), then never again.
    for day in range(1, 11):
        announce(config, utc(2027, 4, day, 8), marks, notifier)
    assert len(notifier.published) == 2
    subject, text, details = notifier.published[1]
    assert subject == "invoke-audit: temporary allowlist exceptions: 1 expired"
    assert "no longer allowed since 2027-04-01 00:00 UTC" in text
    assert [d["state"] for d in details["exceptions"]] == ["expired"]


def test_a_run_reports_what_it_announced_and_what_was_already_announced():
    config, marks, notifier = notice_config(), FakeNoticeMarks(), FakeNotifier()
    first = announce(config, utc(2027, 3, 26, 8), marks, notifier)
    again = announce(config, utc(2027, 3, 26, 9), marks, notifier)
    assert (first["due"], len(first["announced"]), first["already_announced"]) == (1, 1, 0)
    assert (again["due"], again["announced"], again["already_announced"]) == (1, [], 1)


def test_a_changed_expiry_is_announced_again():
    marks, notifier = FakeNoticeMarks(), FakeNotifier()
    announce(notice_config(), utc(2027, 3, 26, 8), marks, notifier)
    extended = NOTICE_CONFIG.replace("expires: 2027-03-31", "expires: 2027-04-02")
    announce(notice_config(extended), utc(2027, 3, 27, 8), marks, notifier)
    announce(notice_config(extended), utc(2027, 3, 28, 8), marks, notifier)
    assert len(notifier.published) == 2
    assert notifier.published[1][2]["exceptions"][0]["expires"] == "2027-04-02"


def test_the_same_caller_under_another_rule_is_another_exception():
    twice = NOTICE_CONFIG + (
        "  - name: reports\n"
        '    functions: ["ReportsFunction"]\n'
        "    allow:\n"
        f'      - account: "{ACCOUNT}"\n'
        "        expires: 2027-03-31\n"
    )
    marks, notifier = FakeNoticeMarks(), FakeNotifier()
    announce(notice_config(twice), utc(2027, 3, 26, 8), marks, notifier)
    ((_, _, details),) = notifier.published
    assert [d["rule"] for d in details["exceptions"]] == ["partner", "reports"]
    assert len(marks.marks) == 2


def test_nothing_due_sends_nothing():
    marks, notifier = FakeNoticeMarks(), FakeNotifier()
    result = announce(notice_config(), utc(2027, 1, 1), marks, notifier)
    assert notifier.published == [] and marks.marks == {}
    assert result == {"due": 0, "announced": [], "already_announced": 0}


class _BrokenNotifier:
    def publish(self, subject, summary, details):
        raise RuntimeError("SNS is down")


def test_a_notice_that_could_not_be_sent_is_sent_by_the_next_run():
    config, marks = notice_config(), FakeNoticeMarks()
    with pytest.raises(RuntimeError, match="SNS is down"):
        announce(config, utc(2027, 3, 26, 8), marks, _BrokenNotifier())
    assert marks.marks == {} and len(marks.released) == 1
    notifier = FakeNotifier()
    announce(config, utc(2027, 3, 27, 8), marks, notifier)
    assert len(notifier.published) == 1


# --- the scheduled run -------------------------------------------------------------------------


def test_the_scheduled_event_is_told_apart_from_an_invoke_envelope():
    scheduled = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2027-03-26T08:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily"],
        "detail": {},
    }
    assert is_scheduled(scheduled)
    assert not is_scheduled(scheduled | {"source": "aws.lambda"})
    assert not is_scheduled(scheduled | {"detail-type": "AWS API Call via CloudTrail"})
    assert not is_scheduled({"source": "aws.events"})
    assert not is_scheduled([scheduled])


def test_every_task_runs_and_a_failure_fails_the_run_after_the_others():
    ran: list[str] = []
    errors: list[str] = []

    def good(run):
        ran.append("good")
        return {"ok": True}

    def bad(run):
        ran.append("bad")
        raise ValueError("nope")

    tasks = {"bad": bad, "good": good}
    with pytest.raises(ScheduledRunError, match="scheduled task\\(s\\) failed: bad"):
        run_scheduled(None, tasks, on_error=lambda name, error: errors.append(name))  # type: ignore[arg-type]
    assert ran == ["bad", "good"] and errors == ["bad"]
    assert run_scheduled(None, {"good": good}) == {"good": {"ok": True}}  # type: ignore[arg-type]


# --- check-config ------------------------------------------------------------------------------


def _check(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, list[str]]:
    from cli.main import main

    code = main(["check-config", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, [line for line in err.splitlines() if "expire" in line]


def _dated(tmp_path: Path, today: date) -> Path:
    """Entries that end 3, 10, 20 and 40 days from today, and one that ended 2 days ago."""
    lines = ["version: 1", "rules:", "  - name: partner", '    functions: ["PartnerFunction"]']
    lines.append("    allow:")
    for number, days in enumerate((3, 10, 20, 40, -2)):
        lines += [
            f'      - account: "11112222{number:04d}"',
            f"        expires: {(today + timedelta(days=days)).isoformat()}",
            "        owner: payments-team",
            f"        ticket: SEC-{number}",
        ]
    path = tmp_path / "allowlist.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_check_config_warns_about_exceptions_expiring_within_14_days_and_expired(capsys, tmp_path):
    today = datetime.now(UTC).date()
    path = _dated(tmp_path, today)
    code, out, warnings = _check(capsys, path)
    assert code == 0 and out.startswith(f"{path}: ok")
    # A date D ends at D+1 00:00 UTC: "3 days from today" ends in 3 to 4 days from now.
    assert [
        w.removeprefix("invoke-audit: warning: ").rsplit(": ", 1)[0].split(": ")[:2]
        for w in warnings
    ] == [
        [f"{path}:23", "rules[0].allow[4].expires"],  # expired first
        [f"{path}:7", "rules[0].allow[0].expires"],
        [f"{path}:11", "rules[0].allow[1].expires"],
    ]
    expired, soon, later = warnings
    assert expired.startswith("invoke-audit: warning: ")
    assert "the exception for account 111122220004 in rule 'partner' has expired" in expired
    assert ", owner payments-team, ticket SEC-4; remove the entry or extend expires" in expired
    assert "account 111122220000 in rule 'partner' expires in " in soon
    assert f"allowed until {(today + timedelta(days=4)).isoformat()} 00:00 UTC" in soon
    assert "ticket SEC-1" in later


def test_check_config_expiring_within_is_an_option(capsys, tmp_path):
    path = _dated(tmp_path, datetime.now(UTC).date())
    _, _, warnings = _check(capsys, path, "--expiring-within", "30")
    assert len(warnings) == 4  # the expired one, and those ending in 3, 10 and 20 days
    _, _, warnings = _check(capsys, path, "--expiring-within", "0")
    assert len(warnings) == 1 and "has expired" in warnings[0]
    with pytest.raises(SystemExit) as caught:
        _check(capsys, path, "--expiring-within", "soon")
    assert caught.value.code == 2


def test_check_config_strict_makes_an_expired_exception_an_error(capsys, tmp_path):
    path = _dated(tmp_path, datetime.now(UTC).date())
    code, out, errors = _check(capsys, path, "--strict")
    assert code == 2 and out == ""
    (error,) = errors
    assert error.startswith(f"invoke-audit: error: {path}:23: rules[0].allow[4].expires: ")
    assert "has expired" in error
    # Without an expired entry --strict passes; expiring ones stay warnings.
    fine = _dated(tmp_path, datetime.now(UTC).date() + timedelta(days=5))
    code, out, warnings = _check(capsys, fine, "--strict")
    assert code == 0 and len(warnings) == 2


# --- learn ---------------------------------------------------------------------------------------


def test_learn_writes_no_expiry_but_leaves_the_exception_fields_commented():
    from lambdas.core.learn import Observations, render_yaml
    from tests.support.records import aws_account, invoke_record

    observations = Observations()
    function = "arn:aws:lambda:us-east-1:123456789012:function:orders"
    observations.add(invoke_record(function, identity=aws_account(ACCOUNT)))
    text = render_yaml(observations, sources=1)
    learned = load_config(text)
    (rule,) = learned.rules
    (learned_entry,) = rule.allow
    assert learned_entry.account == ACCOUNT
    assert (learned_entry.expires, learned_entry.owner, learned_entry.ticket) == (None, None, None)
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("- account:"))
    assert [line.strip() for line in lines[start + 1 : start + 5]] == [
        "# expires: YYYY-MM-DD   # a temporary exception? allowed through that day (UTC)",
        '# owner: ""',
        '# ticket: ""',
        '# reason: ""',
    ]
    # Uncommented as written, the placeholders are errors: the reviewer must fill them in.
    with pytest.raises(ConfigError):
        load_config(text.replace("# expires: YYYY-MM-DD", "expires: YYYY-MM-DD"))
    with pytest.raises(ConfigError):
        load_config(text.replace('# owner: ""', 'owner: ""'))
    # Filled in, they are a temporary exception.
    filled = (
        text.replace("# expires: YYYY-MM-DD", "expires: 2027-03-31")
        .replace('# owner: ""', "owner: payments-team")
        .replace('# ticket: ""', "ticket: SEC-1234")
        .replace('# reason: ""', "reason: vendor migration")
    )
    (entry_filled,) = load_config(filled).rules[0].allow
    assert entry_filled.expires == date(2027, 3, 31)
    assert (entry_filled.owner, entry_filled.ticket, entry_filled.reason) == (
        "payments-team",
        "SEC-1234",
        "vendor migration",
    )
