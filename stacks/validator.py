"""The validator: judges each Invoke event against the allowlist and queues the violations."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.assets import BuiltAsset
from stacks.functions import FunctionCommons, PipelineFunction
from stacks.permissions import ServiceScope, grant_declared, security_hub_scope
from stacks.storage import RateLimitTable

__all__ = ["VALIDATOR_TIMEOUT", "Validator"]

VALIDATOR_TIMEOUT = cdk.Duration.seconds(30)


class Validator(PipelineFunction):
    """Invoked by the Invoke rule(s); sends violations to `queue`, alerts to the topic.

    `dead_letter_queue` keeps the events that neither the rule's retries nor the function's
    asynchronous retries could deliver."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        commons: FunctionCommons,
        asset: BuiltAsset,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        rate_limit: RateLimitTable,
    ) -> None:
        settings = commons.settings
        extra = {"QUEUE_URL": queue.queue_url}
        if settings.security_hub:
            # Findings count their sightings in the rate-limit table.
            extra |= {"SECURITY_HUB_FINDINGS": "on", "RATE_TABLE": rate_limit.table.table_name}
        super().__init__(
            scope,
            construct_id,
            function_name=settings.function_name("validator"),
            description="Judges each Lambda Invoke against the allowlist; queues violations.",
            asset=asset,
            environment=commons.environment(**extra),
            log_retention_days=settings.log_retention_days,
            timeout=VALIDATOR_TIMEOUT,
            dead_letter_queue=dead_letter_queue,
        )
        key = commons.key.key_arn
        scopes = {
            "sqs": ServiceScope(resources=[queue.queue_arn], key_arn=key),
            "sns": ServiceScope(resources=[commons.topic.topic_arn], key_arn=key),
        }
        if settings.security_hub:
            scopes["securityhub"] = security_hub_scope(cdk.Stack.of(self))
            scopes["dynamodb"] = ServiceScope(resources=[rate_limit.table.table_arn])
        grant_declared(self.role, "validator", scopes, findings=settings.security_hub)
        # The pipeline key for its dead-letter queue (asynchronous invocations).
        self.role.add_to_principal_policy(commons.key_statement())
