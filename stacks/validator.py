"""The validator: judges each Invoke event against the allowlist and queues the violations;
once a day, its scheduled run (lambdas.validator.scheduled) announces expiring exceptions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.assets import BuiltAsset
from stacks.functions import FunctionCommons, PipelineFunction
from stacks.permissions import ServiceScope, grant_declared, security_hub_scope
from stacks.storage import RateLimitTable

__all__ = ["DAILY_RUN", "VALIDATOR_TIMEOUT", "Validator"]

VALIDATOR_TIMEOUT = cdk.Duration.seconds(30)
# The scheduled run: every day at 08:00 UTC (the start of a working day in Europe, the
# night in the Americas: the notice waits in the inbox).
DAILY_RUN = events.Schedule.cron(minute="0", hour="8")


class Validator(PipelineFunction):
    """Invoked by the Invoke rule(s); sends violations to `queue`, alerts to the topic.

    `dead_letter_queue` keeps the events that neither the rule's retries nor the function's
    asynchronous retries could deliver. `notice_marks` is the table where the scheduled run
    records what it announced (the rate-limit table, under keys of its own)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        commons: FunctionCommons,
        asset: BuiltAsset,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        notice_marks: RateLimitTable,
    ) -> None:
        settings = commons.settings
        extra = {"QUEUE_URL": queue.queue_url, "RATE_TABLE": notice_marks.table.table_name}
        if settings.security_hub:
            # Findings count their sightings in the same table.
            extra["SECURITY_HUB_FINDINGS"] = "on"
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
            "dynamodb": ServiceScope(resources=[notice_marks.table.table_arn]),
        }
        if settings.security_hub:
            scopes["securityhub"] = security_hub_scope(cdk.Stack.of(self))
        grant_declared(self.role, "validator", scopes, findings=settings.security_hub)
        # The pipeline key for its dead-letter queue (asynchronous invocations).
        self.role.add_to_principal_policy(commons.key_statement())
        # The daily scheduled run: EventBridge's own "Scheduled Event", which the handler
        # tells apart from an Invoke envelope by its source (aws.events).
        self.daily_run = events.Rule(
            self,
            "DailyRun",
            description="invoke-audit: the validator's daily run (expiring allowlist exceptions)",
            schedule=DAILY_RUN,
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=2,
                    max_event_age=cdk.Duration.hours(6),
                )
            ],
        )
