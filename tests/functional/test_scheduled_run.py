"""The validator's daily scheduled run on moto: the schedule rule's event starts it, the
expiring and expired exceptions are announced on the alert topic once, and the marks that
make it once are items of the rate-limit table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lambdas.runtime.settings import runtime
from lambdas.validator import handler
from tests.support.allowlists import write_config
from tests.support.aws import aws, client, fifo_queue, notifications, rate_table, topic_with_inbox
from tests.support.lambda_runtime import LambdaContext, log_to_current_stdout, printed_json
from tests.support.records import ACCOUNT, REGION

pytestmark = pytest.mark.functional

SCHEDULED_EVENT = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2027-03-26T08:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/invoke-audit-daily"],
    "detail": {},
}


def allowlist(today: datetime) -> str:
    """Expiry dates around the real clock: the handler reads it, as in Lambda."""
    soon = (today + timedelta(days=3)).date().isoformat()
    gone = (today - timedelta(days=2)).date().isoformat()
    later = (today + timedelta(days=60)).date().isoformat()
    return f"""version: 1
rules:
  - name: partner
    functions: ["PartnerFunction"]
    allow:
      - account: "111122223333"
        expires: {soon}
        owner: payments-team
        ticket: SEC-1234
      - account: "444455556666"
        expires: {gone}
        owner: data-team
        ticket: SEC-99
      - account: "777788889999"
        expires: {later}
      - account: "222233334444"
"""


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOWLIST_PATH", str(write_config(tmp_path, allowlist(datetime.now(UTC)))))
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    runtime.cache_clear()
    with aws():
        topic, inbox = topic_with_inbox()
        table = rate_table()
        monkeypatch.setenv("TOPIC_ARN", topic)
        monkeypatch.setenv("RATE_TABLE", table)
        monkeypatch.setenv("QUEUE_URL", fifo_queue())
        yield inbox, table
    runtime.cache_clear()


def run(event, capsys):
    log_to_current_stdout(handler.logger)
    handler.metrics.clear_metrics()
    result = handler.lambda_handler(event, LambdaContext(account=ACCOUNT))
    return result, printed_json(capsys.readouterr().out)


def test_the_daily_run_announces_expiring_and_expired_exceptions_once(world, capsys):
    inbox, table = world
    result, lines = run(SCHEDULED_EVENT, capsys)
    summary = result["scheduled"]["expiring-exceptions"]
    assert summary["due"] == 2 and summary["already_announced"] == 0
    assert sorted((a["entry"], a["state"]) for a in summary["announced"]) == [
        ("account 111122223333", "expiring"),
        ("account 444455556666", "expired"),
    ]
    (notice,) = notifications(inbox)
    assert notice["Subject"] == (
        "invoke-audit: temporary allowlist exceptions: 1 expired, 1 expiring soon"
    )
    assert "owner payments-team, ticket SEC-1234" in notice["Message"]
    assert "owner data-team, ticket SEC-99" in notice["Message"]
    assert "777788889999" not in notice["Message"] and "222233334444" not in notice["Message"]
    assert any(line.get("message") == "scheduled run" for line in lines)
    # The marks: one item per announced entry, with a TTL, in the rate-limit table.
    items = client("dynamodb").scan(TableName=table)["Items"]
    assert len(items) == 2
    assert all(i["pk"]["S"].startswith("expiry-notice#") and "expires_at" in i for i in items)

    # The next day's run (and a retry of today's) tells no one again.
    for _ in range(2):
        again, _ = run(SCHEDULED_EVENT, capsys)
        assert again["scheduled"]["expiring-exceptions"]["already_announced"] == 2
    assert notifications(inbox) == []


def test_an_invoke_envelope_is_still_judged_not_run_as_a_schedule(world, capsys):
    result, _ = run(SCHEDULED_EVENT | {"source": "aws.lambda"}, capsys)
    assert "scheduled" not in result
    assert result["verdict"] == "invalid"
