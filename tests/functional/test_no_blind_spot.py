"""No blind spot by name: a function named like the pipeline's is judged and remediated like
any other; only the deployment's exact function ARNs are its own. The validator judges the
listed regions only."""

from __future__ import annotations

import pytest

from cli.allowlist_file import parse_allowlist
from lambdas.core.config import allowlist_to_json
from lambdas.remediation.remediate import Outcome, Violation
from lambdas.runtime.settings import runtime
from lambdas.validator import handler
from tests.support.aws import (
    World,
    aws,
    create_function,
    fifo_queue,
    get_policy,
    put_policy,
    receive_all,
    remediator,
    topic_with_inbox,
)
from tests.support.lambda_runtime import LambdaContext
from tests.support.policies import blog_policy
from tests.support.records import ACCOUNT, REGION, envelope, iam_user, invoke_record

pytestmark = pytest.mark.functional

OWN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-dev-validator"
LOOKALIKE = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:invoke-audit-anything"
ALLOWLIST = f"""
version: 1
defaults:
  mode: enforce
rules:
  - name: everything
    functions: ["*"]
    allow:
      - principal: "arn:aws:iam::{ACCOUNT}:role/deployer"
"""


@pytest.fixture
def validator(tmp_path, monkeypatch):
    path = tmp_path / "allowlist.json"
    path.write_text(allowlist_to_json(parse_allowlist(ALLOWLIST, "allowlist.yaml")))
    monkeypatch.setenv("ALLOWLIST_PATH", str(path))
    monkeypatch.setenv("OWN_FUNCTION_ARNS", OWN)
    monkeypatch.setenv("WATCHED_REGIONS", f"{REGION},eu-west-1")
    monkeypatch.delenv("ALLOWED_ACCOUNTS", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    runtime.cache_clear()
    handler._reporter.cache_clear()
    with aws():
        queue = fifo_queue()
        topic, _ = topic_with_inbox()
        monkeypatch.setenv("QUEUE_URL", queue)
        monkeypatch.setenv("TOPIC_ARN", topic)
        yield queue
    runtime.cache_clear()
    handler._reporter.cache_clear()


def _judge(event):
    return handler.lambda_handler(event, LambdaContext(account=ACCOUNT))


def test_a_lookalike_name_is_a_violation_and_queued(validator):
    result = _judge(envelope(invoke_record(LOOKALIKE, identity=iam_user())))
    assert result["verdict"] == "violation"
    assert result["action"] == "queued"
    (message,) = receive_all(validator)
    assert LOOKALIKE in message["Body"]


def test_the_pipelines_own_function_by_exact_arn_is_ignored(validator):
    result = _judge(envelope(invoke_record(OWN, identity=iam_user())))
    assert result["verdict"] == "ignored"
    assert "own" in result["reason"]
    assert receive_all(validator) == []


def test_an_event_of_a_region_not_listed_is_invalid(validator):
    record = invoke_record(LOOKALIKE, identity=iam_user())
    result = _judge(envelope(record, region="ap-south-1"))
    assert result["verdict"] == "invalid"
    assert "region ap-south-1 is not a watched region" in result["reason"]
    assert receive_all(validator) == []
    # a listed region other than the home one is judged
    assert _judge(envelope(record, region="eu-west-1"))["verdict"] == "violation"


def test_the_remediator_fixes_a_lookalike_and_refuses_its_own():
    config = parse_allowlist(ALLOWLIST, "allowlist.yaml")
    with aws():
        world = World()
        lookalike = create_function("invoke-audit-anything")
        own = create_function("invoke-audit-validator")  # the fixtures' own function
        for arn in (lookalike, own):
            put_policy(arn, blog_policy(arn))
        flow = remediator(world, config)
        fixed = flow.remediate(Violation(lookalike, "ev-1"))
        refused = flow.remediate(Violation(own, "ev-2"))
        assert fixed.outcome is Outcome.REMEDIATED
        assert get_policy(lookalike)[0] != blog_policy(lookalike)
        assert refused.outcome is Outcome.REFUSED
        assert refused.detail == "the pipeline's own function: never changed"
        assert get_policy(own)[0] == blog_policy(own)
