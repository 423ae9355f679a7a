"""AWS regions and partitions, to catch a typo in an ARN before it silently matches nothing.

The list is the regions where Lambda runs (botocore's endpoint data, checked by a test); a
region that is well formed but not on it is a warning, not an error, so that a region AWS
opens after this release can still be named.
"""

from __future__ import annotations

import re

__all__ = [
    "KNOWN_REGIONS",
    "closest_region",
    "partition_of_region",
    "region_format_error",
]

KNOWN_REGIONS: dict[str, str] = {
    **{
        region: "aws"
        for region in (
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        )
    },
    "cn-north-1": "aws-cn",
    "cn-northwest-1": "aws-cn",
    "us-gov-east-1": "aws-us-gov",
    "us-gov-west-1": "aws-us-gov",
    "us-iso-east-1": "aws-iso",
    "us-iso-west-1": "aws-iso",
    "us-isob-east-1": "aws-iso-b",
    "us-isob-west-1": "aws-iso-b",
    "eu-isoe-west-1": "aws-iso-e",
    "us-isof-east-1": "aws-iso-f",
    "us-isof-south-1": "aws-iso-f",
    "eusc-de-east-1": "aws-eusc",
}

# area-[subarea-]direction-number: us-east-1, us-gov-west-1, eusc-de-east-1.
_REGION = re.compile(r"[a-z]{2,4}(-[a-z]{2,10}){1,3}-\d{1,2}\Z")
# Regions of a partition share a prefix; used when a region is new to this list.
_PREFIXES = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
    ("eusc-", "aws-eusc"),
)


def region_format_error(region: str) -> str | None:
    """Why `region` cannot be a region name (None when it has the shape of one)."""
    if _REGION.match(region):
        return None
    return f"{region!r} is not a region name (like us-east-1)"


def partition_of_region(region: str) -> str:
    """The partition a region belongs to (by its prefix when the region is not listed)."""
    known = KNOWN_REGIONS.get(region)
    if known:
        return known
    return next((p for prefix, p in _PREFIXES if region.startswith(prefix)), "aws")


def _typo_distance(left: str, right: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from `left` to `right`."""
    rows = [list(range(len(right) + 1))]
    for i, a in enumerate(left, start=1):
        row = [i]
        for j, b in enumerate(right, start=1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a != b))
            if i > 1 and j > 1 and a == right[j - 2] and left[i - 2] == b:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def closest_region(region: str) -> str | None:
    """The known region `region` is most likely a typo of (at most two edits away)."""
    distance, closest = min((_typo_distance(region, known), known) for known in KNOWN_REGIONS)
    return closest if distance <= 2 else None
