"""Deterministic gzipped CloudTrail log files for the scan benchmark.

`python -m bench.generate [--records N] [--files F] [--out DIR]` writes F files named like
CloudTrail's (`{account}_CloudTrail_{region}_{time}_{id}.json.gz`), each `{"Records": [...]}`,
N records in all: 45% Lambda Invokes (the mix of `bench.records.invoke_mix`), 5% the
`InvokeExecution` records of asynchronous invokes, 50% other services' calls. File i is drawn
from `random.Random(seed * 1_000_003 + i)`, so the same arguments give the same bytes, and
files are written in parallel. A manifest records the arguments; a second run with the same
ones reuses the files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import random
from pathlib import Path
from typing import Any

import orjson

from bench.records import ACCOUNT, REGION, invoke_execution, invoke_mix, other_record

__all__ = ["DEFAULT_OUT", "ensure_logs"]

DEFAULT_OUT = Path(__file__).resolve().parent / ".work" / "logs"
DEFAULT_RECORDS = 1_000_000
DEFAULT_FILES = 64
SEED = 6
MANIFEST = "manifest.json"


def _file(args: tuple[Path, int, int, int]) -> tuple[str, int]:
    out, index, count, seed = args
    rng = random.Random(seed * 1_000_003 + index)
    records: list[dict[str, Any]] = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.45:
            records.append(invoke_mix(rng))
        elif draw < 0.50:
            records.append(invoke_execution(rng))
        else:
            records.append(other_record(rng))
    name = f"{ACCOUNT}_CloudTrail_{REGION}_20240501T{index // 60:02d}{index % 60:02d}Z_{index:08x}.json.gz"
    # mtime=0: the same bytes on every run
    data = gzip.compress(orjson.dumps({"Records": records}), compresslevel=6, mtime=0)
    (out / name).write_bytes(data)
    return name, len(data)


def ensure_logs(
    out: Path = DEFAULT_OUT,
    *,
    records: int = DEFAULT_RECORDS,
    files: int = DEFAULT_FILES,
    seed: int = SEED,
    jobs: int | None = None,
) -> list[Path]:
    """The log files for these arguments, generated unless a previous run left them."""
    wanted = {"records": records, "files": files, "seed": seed, "version": 1}
    manifest = out / MANIFEST
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        paths = [out / name for name in recorded.get("names", [])]
        if recorded.get("arguments") == wanted and all(p.exists() for p in paths):
            return paths
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json.gz"):
        stale.unlink()
    counts = [records // files + (1 if i < records % files else 0) for i in range(files)]
    tasks = [(out, i, n, seed) for i, n in enumerate(counts)]
    with multiprocessing.get_context("fork").Pool(jobs or os.cpu_count() or 1) as pool:
        written = pool.map(_file, tasks, chunksize=1)
    names = [name for name, _ in written]
    manifest.write_text(
        json.dumps({"arguments": wanted, "names": names, "bytes": sum(b for _, b in written)})
    )
    return [out / name for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--files", type=int, default=DEFAULT_FILES)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    paths = ensure_logs(args.out, records=args.records, files=args.files, seed=args.seed)
    size = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} files, {args.records} records, {size / 1e6:.1f} MB gzipped in {args.out}")


if __name__ == "__main__":
    main()
