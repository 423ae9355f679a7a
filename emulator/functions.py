"""Lambda functions to write policies on: moto needs an existing IAM role for each one."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any, Final

from models.names import DEFAULT_PREFIX

__all__ = ["EXECUTION_ROLE_NAME", "create_function"]

EXECUTION_ROLE_NAME: Final = f"{DEFAULT_PREFIX}emulator-execution"
_TRUST_POLICY: Final = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
_HANDLER_SOURCE: Final = "def handler(event, context):\n    return {'ok': True}\n"


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", _HANDLER_SOURCE)
    return buffer.getvalue()


def _execution_role_arn(iam_client: Any) -> str:
    try:
        role = iam_client.get_role(RoleName=EXECUTION_ROLE_NAME)
    except iam_client.exceptions.NoSuchEntityException:
        role = iam_client.create_role(
            RoleName=EXECUTION_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY)
        )
    arn: str = role["Role"]["Arn"]
    return arn


def create_function(lambda_client: Any, iam_client: Any, name: str) -> str:
    """Create a small Python function (and its execution role if absent); return its ARN."""
    response = lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=_execution_role_arn(iam_client),
        Handler="index.handler",
        Code={"ZipFile": _code_zip()},
    )
    arn: str = response["FunctionArn"]
    return arn
