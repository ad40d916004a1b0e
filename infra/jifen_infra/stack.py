"""JifenStack: one stack per stage, made of the domain constructs."""

from __future__ import annotations

from aws_cdk import CfnElement, CfnOutput, Stack, Tags
from chalice.utils import to_cfn_resource_name
from constructs import Construct

from chalicelib.mall.models.codes import IMPORT_JOB
from jifen_infra.alarms import AlarmsConstruct
from jifen_infra.api import ApiConstruct
from jifen_infra.nag import acknowledge
from jifen_infra.schedules import SchedulesConstruct
from jifen_infra.settings import APP_NAME, StageSettings
from jifen_infra.table import TableConstruct
from jifen_infra.uploads import UploadsConstruct
from jifen_infra.workflows import RECONCILED_WORKFLOW, WorkflowsConstruct


class JifenStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=settings.stack_name,
            description=f"Jifen ({settings.stage}): points, mall, tasks and draws on API Gateway + Lambda + DynamoDB",
        )
        self.settings = settings
        Tags.of(self).add("app", APP_NAME)
        Tags.of(self).add("stage", settings.stage)

        self.alarms = AlarmsConstruct(self, "Alarms", settings=settings)
        self.table = TableConstruct(self, "Table", settings=settings, alarms=self.alarms)
        self.uploads = UploadsConstruct(self, "Uploads", settings=settings)
        self.api = ApiConstruct(self, "Api", settings=settings, table=self.table, alarms=self.alarms)
        self.api.allow(*self.uploads.statements())
        self.api.add_environment_variable("JIFEN_BUCKET", self.uploads.bucket.bucket_name)
        self.workflows = WorkflowsConstruct(self, "Workflows", settings=settings, function_arn=self.api.function_arn, alarms=self.alarms)
        self.api.allow(*self.workflows.function_statements())
        for name, value in self.workflows.environment_variables().items():
            self.api.add_environment_variable(name, value)
        self.uploads.send_code_files_to(self.api.functions[to_cfn_resource_name(IMPORT_JOB)], role=self.api.role)
        self.schedules = SchedulesConstruct(self, "Schedules", functions=self.api.functions, allow=self.api.allow, alarms=self.alarms)
        self._suppress_stack_findings()

        CfnOutput(self, "TableName", value=self.table.table.table_name)
        CfnOutput(self, "UploadsBucketName", value=self.uploads.bucket.bucket_name)
        CfnOutput(self, "SigningKeySecretArn", value=self.api.signing_key.secret_arn)
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)

    def _suppress_stack_findings(self) -> None:
        api = self.api
        acknowledge(
            api.role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions; "
            "every other statement of the functions' role names its resources.",
        )
        cfn_bucket = self.uploads.bucket.node.default_child
        assert isinstance(cfn_bucket, CfnElement)
        bucket_id = self.get_logical_id(cfn_bucket)
        acknowledge(
            api.role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
            "Members upload under keys the app generates per member and app; the role signs those "
            "presigned URLs, so it needs Put/GetObject on the bucket's objects (and nothing else).",
        )
        acknowledge(
            api.signing_key,
            "AwsSolutions-SMG4",
            "Rotating the token signing key needs a verify-with-previous-key window in the app first; "
            "until then it is rotated by hand (see infra/README.md).",
        )
        if RECONCILED_WORKFLOW in self.workflows.state_machines:
            machine = self.workflows.state_machine_name(RECONCILED_WORKFLOW)
            executions = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{machine}:*"
            acknowledge(
                api.role,
                f"AwsSolutions-IAM5[Resource::{executions}]",
                "The order reconciler reads whether an order's execution still runs (states:DescribeExecution); "
                "executions are named per order at run time, so only the state machine's executions as a whole can be named.",
            )
        if self.settings.manage_api_gateway_account_role:
            acknowledge(
                api,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role uses the AWS-maintained "
                "AmazonAPIGatewayPushToCloudWatchLogs policy, as AWS documents it.",
            )
