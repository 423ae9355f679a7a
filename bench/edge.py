"""Edge filtering measured through an emulated EventBridge bus (moto).

The rule gets the compiled pattern (`put_rule`), its target is an SQS queue, the mixed Invoke
set goes in with `put_events` (the EventBridge envelope of each record), and what arrives in
the queue is what the validator would see. Against the verdict `decide` gives each record:

- false negatives: violations that did not arrive (must be 0);
- allowed filtered fraction: allowed Invokes that did not arrive, over all allowed ones.

moto 5.2.5 matches a pattern field only against object keys, not inside arrays of objects as
EventBridge does (`resources.ARN` against each element of `resources`; see aws/event-ruler,
"JSON Array Matching"); `eventbridge_array_matching` adds that documented behaviour while a
measurement runs. Everything else is moto's own matching (`$or`, `wildcard`, `anything-but`,
`exists`, null), checked to exist in `moto/events/models.py` of moto 5.2.5.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from bench.records import ACCOUNT, ALLOWLIST, OWN_PREFIX, REGION, invoke_set
from cli.allowlist_file import load_allowlist
from emulator.environment import fake_credentials
from emulator.eventbridge import eventbridge_array_matching
from lambdas.core.decide import Verdict, decide
from models.allowlist import AllowlistConfig
from stacks.edge_filter import EdgeFilter, edge_filtered_pattern
from stacks.pattern import INVOKE_DETAIL_TYPE, event_pattern, function_arn

__all__ = ["compiled_pattern", "eventbridge_array_matching", "measure", "run"]


def compiled_pattern(config: AllowlistConfig, *, limit: int = 2048) -> EdgeFilter:
    own = [
        function_arn(partition="aws", region=REGION, account=ACCOUNT, name=f"{OWN_PREFIX}{name}")
        for name in ("validator", "remediator")
    ]
    return edge_filtered_pattern(event_pattern(own_function_arns=own), config, limit=limit)


def put_events_entry(record: dict[str, Any]) -> dict[str, Any]:
    """The PutEvents entry that the bus turns into the record's CloudTrail envelope."""
    return {
        "Source": "aws.lambda",
        "DetailType": INVOKE_DETAIL_TYPE,
        "Detail": json.dumps(record),
    }


def delivered_ids(pattern: dict[str, Any], records: list[dict[str, Any]]) -> set[str]:
    """The eventIDs of the records that a rule with `pattern` delivers to its target."""
    import boto3
    from moto import mock_aws

    with fake_credentials(REGION), eventbridge_array_matching(), mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="validator-standin")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="invoke-audit-invoke", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="invoke-audit-invoke", Targets=[{"Id": "validator", "Arn": arn}])
        seen: set[str] = set()
        # Drained after every batch: moto recomputes queue attributes per message it holds.
        for start in range(0, len(records), 10):
            answer = events.put_events(
                Entries=[put_events_entry(r) for r in records[start : start + 10]]
            )
            assert answer["FailedEntryCount"] == 0, answer
            while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                seen.update(json.loads(m["Body"])["detail"]["eventID"] for m in messages)
                sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
        return seen


def measure(
    pattern: dict[str, Any], records: list[dict[str, Any]], config: AllowlistConfig
) -> dict[str, Any]:
    arrived = delivered_ids(pattern, records)
    verdicts = {r["eventID"]: decide(r, config, own_prefix=OWN_PREFIX).verdict for r in records}
    total: Counter[str] = Counter(v.value for v in verdicts.values())
    dropped: Counter[str] = Counter(v.value for i, v in verdicts.items() if i not in arrived)
    allowed = total[Verdict.ALLOWED.value]
    return {
        "events": len(records),
        "false_negatives": dropped[Verdict.VIOLATION.value],
        "allowed_filtered_fraction": round(dropped[Verdict.ALLOWED.value] / allowed, 4)
        if allowed
        else None,
        "verdicts": dict(sorted(total.items())),
        "dropped": dict(sorted(dropped.items())),
    }


def run(count: int = 2000, *, limit: int = 2048) -> dict[str, Any]:
    config = load_allowlist(ALLOWLIST)
    compiled = compiled_pattern(config, limit=limit)
    result = measure(compiled.pattern, invoke_set(count, seed=2048), config)
    result.update(
        pattern_chars=compiled.size,
        pattern_limit=limit,
        filtered_rules=list(compiled.filtered_rules),
        notes=list(compiled.notes),
        warning=compiled.warning,
    )
    return result


if __name__ == "__main__":
    import sys

    print(json.dumps(run(limit=int(sys.argv[1]) if len(sys.argv) > 1 else 2048), indent=2))
