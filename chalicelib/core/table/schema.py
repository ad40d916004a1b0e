"""The single table's shape, defined once for the CDK stack, the local server and the tests."""

from __future__ import annotations

from typing import Any

PARTITION_KEY = "PK"
SORT_KEY = "SK"
TTL_ATTRIBUTE = "ttl"
STREAM_VIEW_TYPE = "NEW_IMAGE"

# index name -> (partition key attribute, sort key attribute)
GLOBAL_SECONDARY_INDEXES: dict[str, tuple[str, str]] = {
    "GSI1": ("GSI1PK", "GSI1SK"),
    "GSI2": ("GSI2PK", "GSI2SK"),
}


def key_attributes() -> list[str]:
    """Every attribute that is part of a table or index key (all strings)."""
    names = [PARTITION_KEY, SORT_KEY]
    for pk, sk in GLOBAL_SECONDARY_INDEXES.values():
        names += [pk, sk]
    return names


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for boto3 ``create_table``: used by the local server and the tests."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in key_attributes()],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, (pk, sk) in GLOBAL_SECONDARY_INDEXES.items()
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
    }


def create_table(client: Any, table_name: str) -> None:
    """Create the table and turn on TTL (a separate call in DynamoDB's API)."""
    client.create_table(**create_table_kwargs(table_name))
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
