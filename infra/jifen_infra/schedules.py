"""Chalice's ``@app.schedule`` jobs: EventBridge runs them; a run that still fails after retries lands in
a dead-letter queue that alarms, so a stuck expiry or roll-up is seen, not silently skipped.

The jobs are resumable and idempotent (DESIGN.md §4), so Lambda's async retries are safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sam as sam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from jifen_infra.alarms import ALARM_PERIOD, AlarmsConstruct
from jifen_infra.nag import acknowledge

SCHEDULE_EVENT_TYPES = {"Schedule", "ScheduleV2", "CloudWatchEvent", "EventBridgeRule"}
MAX_RETRY_ATTEMPTS = 2
MAX_EVENT_AGE_SECONDS = 6 * 3600
# Every job budgets its work below this (points.jobs, mall.jobs: 240 s) and leaves the rest to its next run;
# the API's 30 s would cut a run in the middle of its budget.
JOB_TIMEOUT_SECONDS = 300


def is_scheduled(function: sam.CfnFunction) -> bool:
    """Whether a SAM function is triggered by EventBridge on a schedule.

    Reads the (protected) raw properties: jsii cannot hand back ``function.events`` for functions
    imported from Chalice's template (it fails deserializing the event-source union).
    """
    events: Any = Stack.of(function).resolve(function._cfn_properties.get("events"))
    if not isinstance(events, Mapping):
        return False
    return any(isinstance(e, Mapping) and e.get("type") in SCHEDULE_EVENT_TYPES for e in events.values())


class SchedulesConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, sam.CfnFunction],
        allow: Callable[..., None],
        alarms: AlarmsConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        self.jobs = {logical_id: fn for logical_id, fn in functions.items() if is_scheduled(fn)}
        self.failed_runs: sqs.Queue | None = None
        if not self.jobs:
            return
        self.failed_runs = sqs.Queue(
            self,
            "FailedRuns",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.failed_runs, "AwsSolutions-SQS3", "This queue is itself the dead-letter destination.")
        for function in self.jobs.values():
            function.add_property_override("Timeout", JOB_TIMEOUT_SECONDS)
            function.add_property_override(
                "EventInvokeConfig",
                {
                    "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
                    "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": self.failed_runs.queue_arn}},
                },
            )
        # Lambda delivers failed async invocations with the function's own role.
        allow(iam.PolicyStatement(sid="ReportFailedJobRuns", actions=["sqs:SendMessage"], resources=[self.failed_runs.queue_arn]))
        alarms.alarm(
            self,
            "FailedRunsAlarm",
            metric=self.failed_runs.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD),
            description="a scheduled job failed after retries (see the FailedRuns queue)",
        )
