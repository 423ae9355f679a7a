"""Sample Lambda resource policies: the blog's (public, and an S3 grant without SourceAccount)
and a messy one with something of every kind."""

from __future__ import annotations

from typing import Any

from tests.support.records import DEPLOYER, OTHER_ACCOUNT

STRANGER = "arn:aws:iam::999988887777:user/stranger"


def statement(sid: str, principal: Any, resource: str, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
    } | extra


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a policy document that the test expects to exist."""
    assert document is not None, "expected a policy"
    return list(document["Statement"])


def blog_policy(resource: str) -> dict[str, Any]:
    """The blog's policy: anyone may invoke, and an S3 grant without SourceAccount."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            statement("public", "*", resource),
            statement(
                "s3-trigger",
                {"Service": "s3.amazonaws.com"},
                resource,
                Condition={"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::examplebucket"}},
            ),
        ],
    }


def messy_policy(resource: str) -> dict[str, Any]:
    """A policy with something of every kind: public and stranger grants to remove, a mixed
    grant to narrow, an S3 grant to tighten, allowed grants, a Deny and a non-invoke grant."""
    return {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            statement("public", "*", resource),
            statement("s3", {"Service": "s3.amazonaws.com"}, resource),
            statement("deployer", {"AWS": DEPLOYER}, resource),
            statement("partner", {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, resource),
            statement("mixed", {"AWS": [DEPLOYER, STRANGER]}, resource),
            statement("deny-old", {"AWS": STRANGER}, resource, Effect="Deny"),
            statement("read", {"AWS": STRANGER}, resource, Action="lambda:GetFunction"),
        ],
    }
