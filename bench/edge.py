"""Edge filtering measured with aws/event-ruler, the matcher EventBridge uses.

Each compiled rule's pattern is run over the Invoke set (one JVM per rule); an event arrives
when at least one rule matches it. Against the verdict `decide` gives each record:

- false negatives: violations, unmonitored Invokes (with `unmatched: report`) and failed calls
  of covered functions that did not arrive (must be 0);
- allowed filtered fraction: allowed Invokes that did not arrive, over all allowed ones;
- the number of rules and the largest pattern size.

Two allowlists: the example (`bench/allowlist.yaml`, with `bench.records`' traffic) and a
generated one of 20 rules (`generated_allowlist`, with traffic drawn from its own allow
entries: mostly allowed callers, some violations, some functions no rule covers).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from bench import records
from bench.records import ACCOUNT, ALLOWLIST, OWN_FUNCTIONS, OWN_PREFIX, REGION, invoke_set
from cli.allowlist_file import load_allowlist
from emulator.event_ruler import EventRuler, envelope
from lambdas.core.decide import Verdict, decide
from models.allowlist import AllowlistConfig
from stacks.edge_filter import EdgeRules, compile_edge_rules
from stacks.pattern import event_pattern, function_arn

__all__ = ["compiled_rules", "generated_allowlist", "generated_traffic", "measure", "run"]

OWN = [
    function_arn(partition="aws", region=REGION, account=ACCOUNT, name=f"{OWN_PREFIX}{name}")
    for name in ("validator", "remediator")
]


def compiled_rules(config: AllowlistConfig, *, limit: int = 2048) -> EdgeRules:
    return compile_edge_rules(event_pattern(own_function_arns=OWN), config, limit=limit)


def _must_arrive(verdict: Verdict, config: AllowlistConfig, rule: str | None) -> bool:
    if verdict is Verdict.VIOLATION:
        return True
    if verdict is Verdict.UNMONITORED:
        return config.defaults.unmatched == "report"
    return verdict is Verdict.FAILED_CALL and rule is not None


def measure(
    rules: EdgeRules,
    batch: list[dict[str, Any]],
    config: AllowlistConfig,
    ruler: EventRuler | None = None,
) -> dict[str, Any]:
    ruler = ruler or EventRuler.locate()
    arrived = ruler.delivered([rule.pattern for rule in rules.rules], [envelope(r) for r in batch])
    total: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    false_negatives = 0
    for record, came in zip(batch, arrived, strict=True):
        decision = decide(record, config, own_functions=OWN_FUNCTIONS)
        total[decision.verdict.value] += 1
        if not came:
            dropped[decision.verdict.value] += 1
            false_negatives += _must_arrive(decision.verdict, config, decision.rule)
    allowed = total[Verdict.ALLOWED.value]
    return {
        "events": len(batch),
        "false_negatives": false_negatives,
        "allowed_filtered_fraction": round(dropped[Verdict.ALLOWED.value] / allowed, 4)
        if allowed
        else None,
        "rules": len(rules.rules),
        "largest_pattern_chars": rules.largest_size,
        "verdicts": dict(sorted(total.items())),
        "dropped": dict(sorted(dropped.items())),
        "notes": list(rules.notes),
        "warnings": list(rules.warnings),
    }


# -- a generated allowlist ----------------------------------------------------------------


def _rule(index: int) -> dict[str, Any]:
    """Rule `index` of the generated allowlist: its functions, and 1 to 4 allow entries of the
    kinds a deployment has (S3 or EventBridge with source, API Gateway, a role, an account)."""
    kind = index % 5
    functions: list[str] = {
        0: [f"svc{index:02d}-handler"],
        1: [f"team{index:02d}-*"],
        2: [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:job{index:02d}-*"],
        3: [f"svc{index:02d}-api", f"svc{index:02d}-worker"],
        4: [f"hook{index:02d}"],
    }[kind]
    allow: list[dict[str, str]] = [
        {"principal": f"arn:aws:iam::{ACCOUNT}:role/deployer-{index:02d}"},
    ]
    if kind in (0, 3):
        allow.append(
            {
                "service": "s3.amazonaws.com",
                "source_arn": f"arn:aws:s3:::bucket-{index:02d}",
                "source_account": ACCOUNT,
            }
        )
    if kind in (1, 3):
        allow.append(
            {
                "service": "apigateway.amazonaws.com",
                "source_arn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:api{index:02d}/*",
            }
        )
    if kind == 2:
        allow.append({"service": "events.amazonaws.com", "source_account": ACCOUNT})
        allow.append({"principal": f"arn:aws:iam::{ACCOUNT}:role/StatesRole-{index:02d}"})
    if kind == 4:
        allow.append({"account": records.PARTNER})
    rule: dict[str, Any] = {"name": f"rule-{index:02d}", "functions": functions, "allow": allow}
    if index % 7 == 6:
        rule["qualifiers"] = ["prod", "live"]
    return rule


def generated_allowlist(count: int = 20) -> AllowlistConfig:
    return AllowlistConfig.model_validate(
        {
            "version": 1,
            "defaults": {"unmatched": "report"},
            "rules": [_rule(i) for i in range(count)],
        }
    )


def _function_of(rule: dict[str, Any], rng: random.Random) -> str:
    pattern = str(rng.choice(rule["functions"]))
    name = pattern.split(":")[6] if pattern.startswith("arn:") else pattern
    return name.replace("*", rng.choice(["a", "etl", "nightly"]))


def _allowed_call(rule: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    name = _function_of(rule, rng)
    qualifiers = [q for q in rule.get("qualifiers", []) if q != "*"]
    qualifier = rng.choice(qualifiers or [None, None, "live"])
    entry = rng.choice(rule["allow"])
    form = rng.choice(["arn", "arn", "name", "partial"])
    if "service" in entry:
        source = str(entry.get("source_arn", "")).replace("*", "prod/GET/items") or None
        return records.invoke(
            rng,
            name,
            records.service(entry["service"]),
            form=form,
            qualifier=qualifier,
            source_arn=source,
            source_account=entry.get("source_account"),
        )
    if "account" in entry:
        return records.invoke(rng, name, records.aws_account(entry["account"]), qualifier=qualifier)
    role = entry["principal"].split("/")[-1]
    if role.startswith("StatesRole"):
        identity = records.role(role, rng, via="states.amazonaws.com")
        return records.invoke(rng, name, identity, step_functions=True)
    return records.invoke(rng, name, records.role(role, rng), form=form, qualifier=qualifier)


def generated_traffic(config: AllowlistConfig, count: int, seed: int = 20) -> list[dict[str, Any]]:
    """90% allowed callers, 5% violations (a stranger's role, another bucket), 5% Invokes of
    functions no rule covers, spread over the rules."""
    rng = random.Random(seed)
    rules = [rule.model_dump(exclude_none=True) for rule in config.rules]
    out = []
    for _ in range(count):
        rule = rng.choice(rules)
        roll = rng.random()
        if roll < 0.90:
            out.append(_allowed_call(rule, rng))
        elif roll < 0.95:
            intruder = records.role("intruder", rng, account=records.FOREIGN)
            out.append(records.invoke(rng, _function_of(rule, rng), intruder))
        else:
            out.append(records.invoke(rng, f"misc-{rng.randint(1, 50)}", records.role("x", rng)))
    return out


def run(count: int = 2000, *, limit: int = 2048) -> dict[str, Any]:
    ruler = EventRuler.locate()
    example = load_allowlist(ALLOWLIST)
    generated = generated_allowlist(20)
    return {
        "pattern_limit": limit,
        "example": measure(
            compiled_rules(example, limit=limit), invoke_set(count, seed=2048), example, ruler
        ),
        "generated_20_rules": measure(
            compiled_rules(generated, limit=limit),
            generated_traffic(generated, count),
            generated,
            ruler,
        ),
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(limit=int(sys.argv[1]) if len(sys.argv) > 1 else 2048), indent=2))
