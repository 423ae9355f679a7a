"""The Lambda context object, for running a handler outside Lambda (the demo, the tests, the
bench): the attributes the handlers and Powertools read, nothing else."""

from __future__ import annotations

__all__ = ["LambdaContext"]


class LambdaContext:
    """What Lambda passes as `context`; `function_name` also names the ARN and the log group.
    Plain attributes (`vars()` lists them), as a context crossing a process boundary needs."""

    def __init__(
        self,
        function_name: str = "invoke-audit-validator",
        *,
        account: str = "123456789012",
        region: str = "us-east-1",
        memory_limit_in_mb: int = 256,
        aws_request_id: str = "00000000-0000-4000-8000-000000000000",
        log_stream_name: str = "local",
        remaining_time_in_millis: int = 60_000,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self._remaining_time_in_millis = remaining_time_in_millis

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_time_in_millis
