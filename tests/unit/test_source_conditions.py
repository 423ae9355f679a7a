"""Service callers and their source fields, and protection, judged against hand-written
expectations.

DESIGN.md: a `service` entry matches when `invokedBy` equals it and, where the entry and the
record both carry them, `source_arn` / `source_account` match. Every combination of each
field being absent, right or wrong in the record is listed here with the verdict a person
reads off that sentence; the expected verdicts are written by hand, not computed.
"""

from __future__ import annotations

import itertools

import pytest

from lambdas.core import decide as decide_module
from lambdas.core.decide import Verdict, decide
from tests.support import records as r
from tests.support.allowlists import make_config
from tests.support.records import ACCOUNT, BUCKET_ARN, FOREIGN_ACCOUNT, REGION

pytestmark = pytest.mark.unit

RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly-*"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"

CONFIG = make_config(
    f"""
    version: 1
    protect: ["vault-*"]
    rules:
      - name: blog
        functions: ["BlogFunction"]
        allow:
          - service: s3.amazonaws.com
            source_arn: "{BUCKET_ARN}"
            source_account: "{ACCOUNT}"
      - name: nightly
        functions: ["nightly"]
        allow:
          - service: events.amazonaws.com
            source_arn: "{RULE_ARN}"
      - name: anyone-of-sqs
        functions: ["queue-reader"]
        allow:
          - service: sqs.amazonaws.com
      # the protected functions are covered by an enforce rule that would flag the caller:
      # only protection keeps them out of a violation
      - name: vault
        functions: ["vault-*"]
        mode: enforce
        allow:
          - principal: "{DEPLOYER}"
    """
)

# (label, value in the record); None: the record does not carry the field
ARNS = {"absent": None, "right": BUCKET_ARN, "wrong": "arn:aws:s3:::otherbucket"}
ACCOUNTS = {"absent": None, "right": ACCOUNT, "wrong": FOREIGN_ACCOUNT}

# sourceArn x sourceAccount -> verdict, for the entry that names both (rule `blog`)
BOTH_NAMED = {
    ("absent", "absent"): Verdict.ALLOWED,
    ("absent", "right"): Verdict.ALLOWED,
    ("absent", "wrong"): Verdict.VIOLATION,
    ("right", "absent"): Verdict.ALLOWED,
    ("right", "right"): Verdict.ALLOWED,
    ("right", "wrong"): Verdict.VIOLATION,
    ("wrong", "absent"): Verdict.VIOLATION,
    ("wrong", "right"): Verdict.VIOLATION,
    ("wrong", "wrong"): Verdict.VIOLATION,
}


@pytest.fixture(autouse=True, params=["cold", "warm"])
def cache_state(request: pytest.FixtureRequest) -> str:
    """Each case is judged on an empty decision cache, and again on one that holds the
    decisions of every other case (a key that forgets a field shows here)."""
    decide_module._DECISIONS.clear()
    if request.param == "warm":
        for arn, account in itertools.product(ARNS.values(), ACCOUNTS.values()):
            for name, service in (
                ("BlogFunction", "s3.amazonaws.com"),
                ("nightly", "events.amazonaws.com"),
            ):
                decide(_service_invoke(name, service, arn, account), CONFIG)
    return str(request.param)


def _service_invoke(
    name: str, service: str, source_arn: str | None, source_account: str | None
) -> dict[str, object]:
    return r.invoke(
        name, r.aws_service(service), source_arn=source_arn, source_account=source_account
    )


@pytest.mark.parametrize(("arn", "account"), sorted(BOTH_NAMED))
def test_an_entry_naming_both_sources(arn: str, account: str) -> None:
    record = _service_invoke("BlogFunction", "s3.amazonaws.com", ARNS[arn], ACCOUNTS[account])
    decision = decide(record, CONFIG)
    assert decision.verdict is BOTH_NAMED[(arn, account)], decision.reason
    assert decision.rule == "blog"
    if decision.verdict is Verdict.VIOLATION:
        assert "not on the allowlist of rule 'blog'" in decision.reason
    else:
        assert decision.reason.startswith("allowed by rule 'blog'")


@pytest.mark.parametrize(
    ("source_arn", "account", "verdict"),
    [
        (None, None, Verdict.ALLOWED),
        (f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly-backup", None, Verdict.ALLOWED),
        (
            f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly-backup",
            FOREIGN_ACCOUNT,
            Verdict.ALLOWED,
        ),
        (f"arn:aws:events:{REGION}:{ACCOUNT}:rule/daily-backup", None, Verdict.VIOLATION),
        (f"arn:aws:events:{REGION}:{FOREIGN_ACCOUNT}:rule/nightly-x", ACCOUNT, Verdict.VIOLATION),
        (None, FOREIGN_ACCOUNT, Verdict.ALLOWED),  # the entry names no account: any
    ],
)
def test_an_entry_naming_only_a_source_arn_glob(
    source_arn: str | None, account: str | None, verdict: Verdict
) -> None:
    record = _service_invoke("nightly", "events.amazonaws.com", source_arn, account)
    assert decide(record, CONFIG).verdict is verdict


@pytest.mark.parametrize(("arn", "account"), sorted(BOTH_NAMED))
def test_an_entry_naming_no_source_takes_any(arn: str, account: str) -> None:
    record = _service_invoke("queue-reader", "sqs.amazonaws.com", ARNS[arn], ACCOUNTS[account])
    assert decide(record, CONFIG).verdict is Verdict.ALLOWED


@pytest.mark.parametrize(("arn", "account"), sorted(BOTH_NAMED))
def test_the_right_sources_from_the_wrong_service_are_a_violation(arn: str, account: str) -> None:
    record = _service_invoke("BlogFunction", "sns.amazonaws.com", ARNS[arn], ACCOUNTS[account])
    assert decide(record, CONFIG).verdict is Verdict.VIOLATION


# --- protection, where an enforce rule covers the function ------------------------------


@pytest.mark.parametrize("qualifier", [None, "live"])
def test_a_protected_function_an_enforce_rule_covers_is_ignored(qualifier: str | None) -> None:
    record = r.invoke("vault-keys", r.iam_user("mallory"), qualifier=qualifier)
    decision = decide(record, CONFIG)
    assert decision.verdict is Verdict.IGNORED
    assert decision.reason == "protected by 'vault-*'"
    assert decision.rule is None


def test_the_same_call_to_an_unprotected_function_of_that_rule_is_a_violation() -> None:
    """The control: the rule does flag this caller; the verdict above is protection's."""
    config = make_config(
        f"""
        version: 1
        rules:
          - name: vault
            functions: ["vault-*"]
            allow:
              - principal: "{DEPLOYER}"
        """
    )
    decision = decide(r.invoke("vault-keys", r.iam_user("mallory")), config)
    assert decision.verdict is Verdict.VIOLATION
    assert decision.rule == "vault"
