"""The validator's warm invocation, in process: time and log bytes per Invoke it judges.

The handler runs on EventBridge envelopes of the mixed Invoke set (the records it would queue,
violations, are left out: queueing is an SQS call, counted by bench.remediation), with the
bench allowlist and its log output captured. The figures feed the cost model: billed duration
(1 ms granularity) and CloudWatch Logs ingestion per invocation.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.records import ACCOUNT, ALLOWLIST, OWN_FUNCTIONS, OWN_PREFIX, REGION, invoke_set
from emulator.lambda_context import LambdaContext
from tests.support.records import envelope

__all__ = ["run"]


def run(count: int = 3000, runs: int = 5) -> dict[str, Any]:
    from cli.allowlist_file import load_allowlist
    from lambdas.core.config import allowlist_to_json
    from lambdas.core.decide import Verdict, decide
    from lambdas.runtime.settings import runtime
    from lambdas.validator import handler

    config = load_allowlist(ALLOWLIST)
    events = [
        envelope(r, account=ACCOUNT, id=r["eventID"])
        for r in invoke_set(count, seed=300)
        if decide(r, config, own_functions=OWN_FUNCTIONS).verdict is not Verdict.VIOLATION
    ]
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "allowlist.json"
        path.write_text(allowlist_to_json(config))
        saved = os.environ.get("ALLOWLIST_PATH")
        os.environ["ALLOWLIST_PATH"] = str(path)
        runtime.cache_clear()
        logs: Any = handler.logger.registered_handler
        stream = logs.stream
        context = LambdaContext(
            f"{OWN_PREFIX}validator",
            account=ACCOUNT,
            region=REGION,
            log_stream_name="bench",
            remaining_time_in_millis=30_000,
        )
        try:
            rates, sizes = [], []
            for _ in range(runs):
                out = io.StringIO()
                logs.stream = out
                with contextlib.redirect_stdout(out):  # EMF metrics are printed
                    start = time.perf_counter()
                    for event in events:
                        handler.lambda_handler(event, context)
                    elapsed = time.perf_counter() - start
                rates.append(elapsed / len(events))
                sizes.append(len(out.getvalue().encode()) / len(events))
        finally:
            logs.stream = stream
            runtime.cache_clear()
            if saved is None:
                os.environ.pop("ALLOWLIST_PATH", None)
            else:
                os.environ["ALLOWLIST_PATH"] = saved
    return {
        "invocations": len(events),
        "warm_invoke_us": round(statistics.median(rates) * 1e6, 1),
        "log_bytes_per_invoke": round(statistics.median(sizes)),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
