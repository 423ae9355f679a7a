"""Environment variables set for a while, then put back as they were, and the fake credentials
that keep boto3 on the emulator (the demo, the bench, the tests)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping

__all__ = ["CREDENTIAL_SOURCES", "fake_credentials", "fake_credentials_environ", "patched_environ"]

# Whatever could point boto3 at a real account or another endpoint: removed while the fake
# credentials are in force.
CREDENTIAL_SOURCES = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], *, unset: Iterable[str] = ()) -> Iterator[None]:
    """Set `values` and remove `unset` from os.environ; restore every one of them on exit."""
    removed = tuple(unset)
    saved = {name: os.environ.get(name) for name in (*values, *removed)}
    os.environ.update(values)
    for name in removed:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def fake_credentials_environ(region: str = "us-east-1") -> dict[str, str]:
    """moto's fake credentials and a region, as environment variables."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def fake_credentials(
    region: str = "us-east-1", *, endpoint_url: str | None = None
) -> contextlib.AbstractContextManager[None]:
    """Fake credentials for a while: boto3 reaches moto in-process, or the emulator's server
    at `endpoint_url`, and never a real account (profiles, config files and other endpoints
    are set aside)."""
    values = fake_credentials_environ(region)
    if endpoint_url is not None:
        values["AWS_ENDPOINT_URL"] = endpoint_url
    return patched_environ(values, unset=[n for n in CREDENTIAL_SOURCES if n not in values])
