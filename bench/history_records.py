"""An organization's trail, generated: CloudTrail log files from several accounts and regions,
laid out as CloudTrail delivers them (`AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`).

The Lambda records are `bench.records`' catalogue (S3, API Gateway, EventBridge, Step Functions
with a null `requestParameters`, partner accounts, qualifiers, failed calls, records without a
userIdentity, the pipeline's own functions), the `InvokeExecution` records of asynchronous
invokes, and identities the catalogue lacks (FederatedUser, IdentityCenterUser, Unknown, an
assumed role without its session issuer, the AWS account root), event-name variants
(`InvokeAsync`, a dated suffix) and records without an eventSource; each record is moved to
one of several accounts and regions (an `aws-cn` one among them). Other services' records fill
half of each file. Deterministic: the same arguments give the same bytes.

`python -m bench.history_records --records N --out DIR`.
"""

from __future__ import annotations

import argparse
import gzip
import random
from pathlib import Path
from typing import Any

import orjson

from bench.records import (
    ACCOUNT,
    REGION,
    invoke,
    invoke_execution,
    invoke_mix,
    other_record,
    role,
    root,
)

__all__ = ["ACCOUNTS", "REGIONS", "history_record", "write_history_logs"]

ACCOUNTS = (ACCOUNT, "333333333333", "444444444444")
REGIONS = (REGION, "eu-west-1", "ap-southeast-2", "cn-north-1")
Record = dict[str, Any]


def _federated(account: str) -> Record:
    return {
        "type": "FederatedUser",
        "principalId": f"{account}:carol",
        "arn": f"arn:aws:sts::{account}:federated-user/carol",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "arn": f"arn:aws:iam::{account}:user/carol",
                "accountId": account,
                "userName": "carol",
            }
        },
    }


def _identity_center(account: str) -> Record:
    return {
        "type": "IdentityCenterUser",
        "accountId": account,
        "onBehalfOf": {
            "userId": "906784a8-1011-70d3-cb1f-52e2d2f5f8e5",
            "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-9067642ac7",
        },
        "credentialId": "EXAMPLEVdXjXMTQ2NTk0ODg3MjY",
    }


def _unknown(account: str) -> Record:
    return {"type": "Unknown", "principalId": "AIDAEXAMPLEUNKNOWN", "accountId": account}


def _session_only(rng: random.Random) -> Record:
    identity = role("deployer", rng)
    del identity["sessionContext"]
    return identity


def _extra(rng: random.Random) -> Record:
    """Shapes the bench catalogue has no entry for."""
    draw = rng.randrange(9)
    name = rng.choice(("api-users", "BlogFunction", "orders", "misc-3", "wf-ingest"))
    if draw == 0:
        return invoke(rng, name, _federated(ACCOUNT))
    if draw == 1:
        return invoke(rng, name, _identity_center(ACCOUNT), qualifier="prod")
    if draw == 2:
        return invoke(rng, name, _unknown(ACCOUNT))
    if draw == 3:
        return invoke(rng, name, _session_only(rng), form="partial")
    if draw == 4:
        return invoke(rng, name, root(), error_code="AccessDeniedException")
    if draw == 5:
        return invoke(rng, name, role("deployer", rng), event_name="InvokeAsync")
    if draw == 6:
        return invoke(rng, name, role("deployer", rng), event_name="Invoke20150331")
    if draw == 7:
        record = invoke(rng, name, role("deployer", rng), qualifier="$LATEST")
        record["requestParameters"]["qualifier"] = "7"
        return record
    record = invoke(rng, name, role("deployer", rng))
    del record["eventSource"]
    return record


def _move(record: Record, account: str, region: str) -> Record:
    """The same record in another account and region (and partition, for China)."""
    if account == ACCOUNT and region == REGION:
        return record
    text = orjson.dumps(record).decode()
    text = text.replace(ACCOUNT, account).replace(REGION, region)
    if region.startswith("cn-"):
        text = text.replace("arn:aws:", "arn:aws-cn:")
    moved: Record = orjson.loads(text)
    return moved


def history_record(rng: random.Random) -> tuple[str, str, Record]:
    """(account, region, record): half Lambda (Invokes, InvokeExecution, extra shapes)."""
    account = rng.choice(ACCOUNTS)
    region = rng.choices(REGIONS, weights=(5, 3, 2, 1))[0]
    draw = rng.random()
    if draw < 0.40:
        record = invoke_mix(rng)
    elif draw < 0.45:
        record = invoke_execution(rng)
    elif draw < 0.50:
        record = _extra(rng)
    else:
        record = other_record(rng)
    return account, region, _move(record, account, region)


def write_history_logs(out: Path, *, records: int, files: int = 48, seed: int = 16) -> list[Path]:
    """`files` gzipped log files holding `records` records in all, in the trail's layout."""
    rng = random.Random(seed)
    buckets: dict[tuple[str, str], list[Record]] = {}
    for _ in range(records):
        account, region, record = history_record(rng)
        buckets.setdefault((account, region), []).append(record)
    written: list[Path] = []
    per_file = max(1, -(-records // files))
    for (account, region), found in sorted(buckets.items()):
        for start in range(0, len(found), per_file):
            chunk = found[start : start + per_file]
            day = chunk[0]["eventTime"][:10].replace("-", "/")
            folder = out / "AWSLogs" / account / "CloudTrail" / region / day
            folder.mkdir(parents=True, exist_ok=True)
            stamp = chunk[0]["eventTime"][:16].replace("-", "").replace(":", "")
            name = f"{account}_CloudTrail_{region}_{stamp}Z_{start:08x}.json.gz"
            path = folder / name
            path.write_bytes(gzip.compress(orjson.dumps({"Records": chunk}), mtime=0))
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    paths = write_history_logs(args.out, records=args.records, files=args.files)
    print(f"{len(paths)} files, {args.records} records in {args.out}")


if __name__ == "__main__":
    main()
