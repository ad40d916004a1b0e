"""The single DynamoDB table, built from the same schema module as the local server and the tests."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from chalicelib.core.table import schema
from jifen_infra.alarms import ALARM_PERIOD, AlarmsConstruct
from jifen_infra.settings import StageSettings

_STREAM_VIEW_TYPES = {
    "NEW_IMAGE": dynamodb.StreamViewType.NEW_IMAGE,
    "OLD_IMAGE": dynamodb.StreamViewType.OLD_IMAGE,
    "NEW_AND_OLD_IMAGES": dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    "KEYS_ONLY": dynamodb.StreamViewType.KEYS_ONLY,
}

# The operations Jifen's functions perform, for throttle and system-error alarms.
TABLE_OPERATIONS = [
    dynamodb.Operation.GET_ITEM,
    dynamodb.Operation.BATCH_GET_ITEM,
    dynamodb.Operation.QUERY,
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.UPDATE_ITEM,
    dynamodb.Operation.DELETE_ITEM,
    dynamodb.Operation.BATCH_WRITE_ITEM,
    dynamodb.Operation.TRANSACT_WRITE_ITEMS,
    dynamodb.Operation.TRANSACT_GET_ITEMS,
]


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class TableConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings, alarms: AlarmsConstruct) -> None:
        super().__init__(scope, construct_id)
        # Retained with the table: a retained table whose key is gone cannot be read.
        self.key = kms.Key(
            self,
            "Key",
            description=f"{settings.resource_prefix}: encrypts the Jifen table and its stream",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_string_key(schema.PARTITION_KEY),
            sort_key=_string_key(schema.SORT_KEY),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=schema.TTL_ATTRIBUTE,
            stream=_STREAM_VIEW_TYPES[schema.STREAM_VIEW_TYPE],
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index_name, (pk, sk) in schema.GLOBAL_SECONDARY_INDEXES.items():
            self.table.add_global_secondary_index(
                index_name=index_name,
                partition_key=_string_key(pk),
                sort_key=_string_key(sk),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        self.index_names = list(schema.GLOBAL_SECONDARY_INDEXES)

        alarms.alarm(
            self,
            "ThrottlesAlarm",
            metric=self.table.metric_throttled_requests_for_operations(operations=TABLE_OPERATIONS, period=ALARM_PERIOD),
            description="DynamoDB throttled requests on the Jifen table",
        )
        alarms.alarm(
            self,
            "SystemErrorsAlarm",
            metric=self.table.metric_system_errors_for_operations(operations=TABLE_OPERATIONS, period=ALARM_PERIOD),
            description="DynamoDB system errors (HTTP 500) on the Jifen table",
        )

    def index_arns(self) -> list[str]:
        """Each GSI's ARN, named (no ``index/*`` wildcard)."""
        return [f"{self.table.table_arn}/index/{name}" for name in self.index_names]
