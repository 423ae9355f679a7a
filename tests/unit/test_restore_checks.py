"""What restore checks before it puts a backup back (lambdas.core.backups): the key names the
function in the file, the signed message covers every field, the restored policy is judged
against the function's rule. Expected values written by hand."""

from __future__ import annotations

import pytest

from lambdas.core.backups import access_beyond_rule, key_problem, signed_message
from tests.support.allowlists import make_rule

pytestmark = pytest.mark.unit

ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
PREFIX = "backups/123456789012/us-east-1/orders"


@pytest.mark.parametrize(
    ("function", "key", "ok"),
    [
        (ARN, f"{PREFIX}/@unqualified/2026-12-03T10:00:00.000000Z-e.json", True),
        (ARN, f"{PREFIX}/$UNQUALIFIED/2026-12-03T10:00:00.000000Z-e.json", True),  # older keys
        (f"{ARN}:prod", f"{PREFIX}/prod/2026-12-03T10:00:00.000000Z-e.json", True),
        (f"{ARN}:prod", f"{PREFIX}/@unqualified/2026-12-03T10:00:00.000000Z-e.json", False),
        (ARN, f"{PREFIX}/prod/2026-12-03T10:00:00.000000Z-e.json", False),
        (ARN, "backups/123456789012/us-east-1/payments/@unqualified/t-e.json", False),
        (ARN, "backups/999999999999/us-east-1/orders/@unqualified/t-e.json", False),
        (ARN, "backups/123456789012/eu-west-1/orders/@unqualified/t-e.json", False),
        (ARN, f"{PREFIX}/@unqualified/", False),
        (ARN, f"{PREFIX}/@unqualified/deeper/t-e.json", False),
    ],
)
def test_the_key_must_name_the_function_of_the_backup(function, key, ok):
    assert (key_problem(function, key) is None) is ok


def test_the_signed_message_covers_every_field_but_the_signature():
    backup = {"function": ARN, "policy": None, "revision_id": "r1", "time": "t"}
    message = signed_message(backup)
    assert message.startswith(b"invoke-audit backup v1\n")
    assert signed_message({**backup, "signature": {"mac": "x"}}) == message
    assert signed_message(dict(reversed(list(backup.items())))) == message  # key order
    for field, value in [("function", f"{ARN}:prod"), ("revision_id", "r2"), ("time", "u")]:
        assert signed_message({**backup, field: value}) != message, field
    assert signed_message({**backup, "extra": 1}) != message


RULE = make_rule(
    """
rules:
  - name: orders
    functions: [orders]
    allow:
      - principal: "arn:aws:iam::123456789012:role/deployer"
"""
)


def grant(principal, sid="g"):
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": ARN,
    }


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_policy_within_the_rule_grants_nothing_beyond_it():
    allowed = policy(grant({"AWS": "arn:aws:iam::123456789012:role/deployer"}))
    assert access_beyond_rule(allowed, RULE, ARN) == []
    assert access_beyond_rule(None, RULE, ARN) == []


def test_anyone_another_account_or_no_rule_is_beyond_it():
    public = access_beyond_rule(policy(grant("*")), RULE, ARN)
    assert "anonymous lambda:InvokeFunction (allowed)" in public
    other = access_beyond_rule(policy(grant({"AWS": "arn:aws:iam::999999999999:root"})), RULE, ARN)
    assert other and all("999999999999" in line for line in other)
    # No rule covers the function: every caller the policy lets in is beyond the allowlist.
    deployer = policy(grant({"AWS": "arn:aws:iam::123456789012:role/deployer"}))
    assert access_beyond_rule(deployer, None, ARN)
