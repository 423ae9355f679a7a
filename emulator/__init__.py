"""The AWS emulator of invoke-audit's tests and `make demo`: moto plus Lambda policy semantics.

moto 5.2.5 lacks what invoke-audit reads and writes: per-qualifier resource policies,
the full-document Get/Put/DeleteResourcePolicy API with RevisionId, and AWS's 409/412
answers. :mod:`emulator.lambda_policies` closes those gaps (its docstring lists
each gap, what AWS does and how it is closed), and :mod:`emulator.access_analyzer` answers
IAM Access Analyzer's two policy checks (emulated), and :mod:`emulator.security_hub` what
moto's Security Hub lacks for findings (BatchUpdateFindings, the workflow AWS keeps on an
import, GetFindings filters); :func:`install` activates them.

In-process (moto's ``mock_aws``)::

    with emulated_aws():                       # install() + mock_aws(config=MOTO_CONFIG)
        client = boto3.client("lambda", region_name="us-east-1")

As a server on 127.0.0.1 (same process, a thread)::

    with running_server() as endpoint_url:     # or start_server() / stop_server(server)
        client = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint_url)

``MOTO_CONFIG`` turns off Docker for Lambda ``invoke``; the server applies it while it runs.
This package imports moto: it is for tests and the demo, never for the deployed functions.
"""

from __future__ import annotations

from moto import mock_aws
from moto.core.models import MockAWS

from emulator import access_analyzer, lambda_policies, security_hub
from emulator.functions import EXECUTION_ROLE_NAME, create_function
from emulator.lambda_policies import (
    POLICY_SIZE_LIMIT,
    RESOURCE_POLICY_API_VERSION,
    block_public_policies,
    is_installed,
    public_policies_blocked,
)
from emulator.server import (
    MOTO_CONFIG,
    reset_server,
    running_server,
    start_server,
    stop_server,
)

__all__ = [
    "EXECUTION_ROLE_NAME",
    "MOTO_CONFIG",
    "POLICY_SIZE_LIMIT",
    "RESOURCE_POLICY_API_VERSION",
    "block_public_policies",
    "create_function",
    "emulated_aws",
    "install",
    "is_installed",
    "public_policies_blocked",
    "reset_server",
    "running_server",
    "start_server",
    "stop_server",
]


def install() -> None:
    """The Lambda policy semantics, the emulated Access Analyzer checks and Security Hub's
    finding workflow and filters; idempotent."""
    lambda_policies.install()
    access_analyzer.install()
    security_hub.install()


def emulated_aws() -> MockAWS:
    """moto's in-process mock with the extension installed and Lambda invoke kept out of Docker.

    Use as a context manager or decorator, exactly like ``moto.mock_aws``.
    """
    install()
    return mock_aws(config=MOTO_CONFIG)
