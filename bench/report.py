"""The report figure: `invoke-audit report` over bench's generated logs (170,000 CloudTrail
records, about 104,000 of them Lambda's), in a fresh process each run: the median wall time of
RUNS runs, the peak resident set (as `bench.history` measures it) and the page's size.

`make bench` measures it with the others.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.generate import ensure_logs
from bench.history import measure

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "bench" / ".work" / "report-logs"
RECORDS = 170_000
FILES = 8


def run(allowlist: Path, runs: int) -> dict[str, Any]:
    files = ensure_logs(LOGS, records=RECORDS, files=FILES)
    seconds: list[float] = []
    peaks: list[int] = []
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "report.html"
        command = [
            str(Path(sys.executable).with_name("invoke-audit")),
            "report",
            "--config",
            str(allowlist),
            *map(str, files),
            "-o",
            str(page),
        ]
        for _ in range(runs):
            took, peak, _ = measure(command)
            seconds.append(took)
            peaks.append(peak)
        size = page.stat().st_size
    return {
        "records": RECORDS,
        "files": FILES,
        "report_s": round(statistics.median(seconds), 2),
        "report_peak_mb": max(peaks),
        "page_bytes": size,
    }
