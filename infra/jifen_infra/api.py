"""The Chalice app (API Gateway + Lambda) with its own least-privilege role, logs, signing key and alarms."""

from __future__ import annotations

import json
import os
import re

from aws_cdk import ArnFormat, Aws, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sam as sam
from aws_cdk import aws_secretsmanager as secretsmanager
from chalice.cdk import Chalice
from chalice.utils import to_cfn_resource_name
from constructs import Construct

from jifen_infra.alarms import ALARM_PERIOD, AlarmsConstruct
from jifen_infra.chalice_app import chalice_packaging, chalice_stage_config
from jifen_infra.gateway_responses import openapi_gateway_responses
from jifen_infra.paths import REPO_ROOT
from jifen_infra.settings import StageSettings
from jifen_infra.table import TableConstruct

# API Gateway stage throttling (token bucket: steady requests per second, burst); docs/decisions.md
API_THROTTLE = {"ThrottlingRateLimit": 1000.0, "ThrottlingBurstLimit": 2000}
LOGIN_THROTTLE = {"ThrottlingRateLimit": 20.0, "ThrottlingBurstLimit": 40}
LOGIN_PATHS = ("/~1v1~1auth~1operator", "/~1v1~1auth~1verifier")  # MethodSettings escape "/" as "~1"


# Item-level actions only: IAM authorizes TransactWriteItems / TransactGetItems per item as
# PutItem / UpdateItem / DeleteItem / ConditionCheckItem / GetItem (there is no Transact* action).
# No Scan (the design forbids it), no table management, no PartiQL.
TABLE_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]
INDEX_ACTIONS = ["dynamodb:Query"]
# What DynamoDB asks of the caller's principal to use a table encrypted with a customer-managed key.
TABLE_KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]

API_5XX_THRESHOLD = 5  # per 5 minutes; single Lambda errors already alarm per function

ACCESS_LOG_FORMAT = json.dumps(
    {
        "request_id": "$context.requestId",
        "extended_request_id": "$context.extendedRequestId",
        "ip": "$context.identity.sourceIp",
        "request_time": "$context.requestTime",
        "method": "$context.httpMethod",
        "resource": "$context.resourcePath",
        "path": "$context.path",
        "status": "$context.status",
        "response_length": "$context.responseLength",
        "latency_ms": "$context.responseLatency",
        "integration_latency_ms": "$context.integrationLatency",
        "error": "$context.error.message",
        "error_type": "$context.error.responseType",
        "user_agent": "$context.identity.userAgent",
    },
    separators=(",", ":"),
)


class ApiConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        table: TableConstruct,
        alarms: AlarmsConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.signing_key = secretsmanager.Secret(
            self,
            "SigningKey",
            description=f"{settings.resource_prefix}: key that signs Jifen's member/operator/verifier tokens",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
            removal_policy=RemovalPolicy.RETAIN,
        )

        # Statements are embedded in the role (not a separate AWS::IAM::Policy) so they exist
        # before any function can run; other constructs add theirs through allow().
        self.policy = iam.PolicyDocument()
        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{settings.resource_prefix}: role of every Chalice function",
            inline_policies={"JifenFunctions": self.policy},
        )
        self._allow_table(table)
        self.allow(
            iam.PolicyStatement(sid="ReadSigningKey", actions=["secretsmanager:GetSecretValue"], resources=[self.signing_key.secret_arn]),
            iam.PolicyStatement(
                sid="WriteTraces",
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],  # X-Ray has no resource-level permissions
            ),
        )

        stage_config = chalice_stage_config(
            settings.stage,
            iam_role_arn=self.role.role_arn,
            environment_variables={
                "JIFEN_STAGE": settings.stage,
                "JIFEN_TABLE": table.table.table_name,
                "JIFEN_SIGNING_KEY_SECRET_ARN": self.signing_key.secret_arn,
                # Responses may carry tokens and member data: keep them out of traces.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            },
        )
        self.api_gateway_stage: str = stage_config["api_gateway_stage"]
        with chalice_packaging(region=_packaging_region()):
            self.chalice = Chalice(self, "Chalice", source_dir=str(REPO_ROOT), stage_config=stage_config)

        # Logical id (as in Chalice's SAM template) -> function, e.g. "APIHandler", "ShipOrder".
        self.functions: dict[str, sam.CfnFunction] = {
            child.node.id: child for child in self.chalice.sam_template.node.children if isinstance(child, sam.CfnFunction)
        }
        self.rest_api: sam.CfnApi = self.chalice.get_resource("RestAPI")
        self.rest_api_name = f"{settings.resource_prefix}-api"
        self._configure_functions()
        self._configure_rest_api()
        self._add_alarms(alarms)

    def allow(self, *statements: iam.PolicyStatement) -> None:
        """Add statements to the functions' inline policy."""
        self.policy.add_statements(*statements)

    def add_environment_variable(self, name: str, value: str) -> None:
        """Set an environment variable on every Chalice function (for values made after packaging)."""
        for function in self.functions.values():
            function.add_property_override(f"Environment.Variables.{name}", value)

    def function_arn(self, chalice_name: str) -> str:
        """ARN of the function Chalice made for ``@app.lambda_function(name=chalice_name)``."""
        logical_id = to_cfn_resource_name(chalice_name)
        if logical_id not in self.functions:
            raise KeyError(f"no Chalice function {chalice_name!r} (logical id {logical_id}); have {sorted(self.functions)}")
        return self.functions[logical_id].get_att("Arn").to_string()

    def _allow_table(self, table: TableConstruct) -> None:
        self.allow(
            iam.PolicyStatement(sid="UseTableItems", actions=TABLE_ITEM_ACTIONS, resources=[table.table.table_arn]),
            iam.PolicyStatement(sid="QueryIndexes", actions=INDEX_ACTIONS, resources=table.index_arns()),
            iam.PolicyStatement(
                sid="UseTableKeyThroughDynamoDB",
                actions=TABLE_KEY_ACTIONS,
                resources=[table.key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
            ),
        )

    def _configure_functions(self) -> None:
        """One log group per function (retention set here, not 'never expire'); fix Chalice's stage names.

        The construct uses its CDK path ("JifenStack/Api") as Chalice's stage name, which is not a
        valid Lambda layer name and is a misleading tag.
        """
        for child in self.chalice.sam_template.node.children:
            if isinstance(child, sam.CfnLayerVersion):
                child.add_property_override("LayerName", f"{self.settings.resource_prefix}-{child.node.id}")
        log_group_arns: list[str] = []
        for logical_id, function in self.functions.items():
            log_group = logs.LogGroup(self, f"{logical_id}Logs", removal_policy=RemovalPolicy.DESTROY)
            _set_retention(log_group, self.settings.log_retention_days)
            function.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
            log_group_arns.append(log_group.log_group_arn)
            # Chalice tags functions with the construct path as "stage"; say the real stage.
            chalice_tag = (function.tags.tag_values() or {}).get("aws-chalice")
            if chalice_tag:
                function.add_property_override("Tags.aws-chalice", re.sub(r"stage=[^:]*", f"stage={self.settings.stage}", chalice_tag))
        self.allow(iam.PolicyStatement(sid="WriteOwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=log_group_arns))

    def _configure_rest_api(self) -> None:
        api = self.rest_api
        api.add_property_override("Name", self.rest_api_name)
        api.add_property_override("TracingEnabled", True)
        api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses", openapi_gateway_responses())
        self.access_logs = logs.LogGroup(self, "AccessLogs", removal_policy=RemovalPolicy.DESTROY)
        _set_retention(self.access_logs, self.settings.log_retention_days)
        # API Gateway wants the log group ARN without the trailing ":*".
        destination = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.access_logs.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        api.add_property_override("AccessLogSetting", {"DestinationArn": destination, "Format": ACCESS_LOG_FORMAT})
        logging = {"MetricsEnabled": True, "LoggingLevel": "ERROR", "DataTraceEnabled": False}  # no payloads: tokens
        api.add_property_override(
            "MethodSettings",
            [
                # the stage's ceiling (below the account's 10,000 rps): over it API Gateway answers 429 THROTTLED
                {"ResourcePath": "/*", "HttpMethod": "*", **logging, **API_THROTTLE},
                # password logins: a tighter ceiling in front of the per-account brake (5 failures / 15 min)
                *({"ResourcePath": path, "HttpMethod": "POST", **logging, **LOGIN_THROTTLE} for path in LOGIN_PATHS),
            ],
        )
        if self.settings.manage_api_gateway_account_role:
            # API Gateway writes logs with one role per account and region; kept if the stack goes.
            account_role = iam.Role(
                self,
                "ApiGatewayLogsRole",
                assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
                managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonAPIGatewayPushToCloudWatchLogs")],
            )
            account_role.apply_removal_policy(RemovalPolicy.RETAIN)
            self.api_gateway_account = apigateway.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=account_role.role_arn)
            self.api_gateway_account.apply_removal_policy(RemovalPolicy.RETAIN)
            api.add_resource_dependency(self.api_gateway_account)

    def _add_alarms(self, alarms: AlarmsConstruct) -> None:
        for logical_id, function in self.functions.items():
            for metric_name in ("Errors", "Throttles"):
                alarms.alarm(
                    self,
                    f"{logical_id}{metric_name}Alarm",
                    metric=cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name=metric_name,
                        dimensions_map={"FunctionName": function.ref},
                        statistic="Sum",
                        period=ALARM_PERIOD,
                    ),
                    description=f"Lambda {metric_name.lower()} in {logical_id}",
                )
        alarms.alarm(
            self,
            "Api5xxAlarm",
            metric=cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name="5XXError",
                dimensions_map={"ApiName": self.rest_api_name, "Stage": self.api_gateway_stage},
                statistic="Sum",
                period=ALARM_PERIOD,
            ),
            threshold=API_5XX_THRESHOLD,
            description="API Gateway 5XX responses",
        )


def _set_retention(log_group: logs.LogGroup, days: int) -> None:
    cfn_log_group = log_group.node.default_child
    assert isinstance(cfn_log_group, logs.CfnLogGroup)
    cfn_log_group.retention_in_days = days


def _packaging_region() -> str:
    """Region for ``chalice package``'s service principals: the CLI's, else a harmless default."""
    return os.environ.get("CDK_DEFAULT_REGION") or "us-east-1"
