"""The local cloud's TransactWriteItems: all or nothing, like moto's (and DynamoDB's), without copying tables."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.core.table import schema
from jifen_local import transactions

TABLE = "tx-test"


@pytest.fixture
def table() -> Any:
    transactions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        schema.create_table(client, TABLE)
        client.put_item(TableName=TABLE, Item={"PK": {"S": "A"}, "SK": {"S": "1"}, "n": {"N": "5"}})
        yield client


def key(pk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": "1"}}


def update(pk: str, delta: int, at_least: int | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": TABLE,
        "Key": key(pk),
        "UpdateExpression": "ADD n :d",
        "ExpressionAttributeValues": {":d": {"N": str(delta)}},
    }
    if at_least is not None:
        op["ConditionExpression"] = "n >= :min"
        op["ExpressionAttributeValues"][":min"] = {"N": str(at_least)}
    return {"Update": op}


def value(client: Any, pk: str) -> int | None:
    item = client.get_item(TableName=TABLE, Key=key(pk), ConsistentRead=True).get("Item")
    return None if item is None else int(item["n"]["N"])


def test_a_cancelled_transaction_leaves_every_item_as_it_was(table: Any) -> None:
    # Given item A with n=5 and no item B
    # When one transaction puts C, adds to B, and takes 6 from A (which it cannot)
    put = {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "C"}, "SK": {"S": "1"}, "n": {"N": "1"}}}}
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=[put, update("B", 3), update("A", -6, at_least=6)])
    # Then it is cancelled with the reason on the third item, and nothing changed
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert (value(table, "A"), value(table, "B"), value(table, "C")) == (5, None, None)


def test_a_transaction_whose_conditions_hold_applies_every_item(table: Any) -> None:
    # When the same shape of transaction takes only 5 from A
    put = {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "C"}, "SK": {"S": "1"}, "n": {"N": "1"}}}}
    table.transact_write_items(TransactItems=[put, update("B", 3), update("A", -5, at_least=5)])
    # Then all three items changed together
    assert (value(table, "A"), value(table, "B"), value(table, "C")) == (0, 3, 1)


def test_two_operations_on_one_item_are_refused_whole(table: Any) -> None:
    # When a transaction touches A twice
    with pytest.raises(ClientError) as refused:
        table.transact_write_items(TransactItems=[update("B", 1), update("A", 1), update("A", 1)])
    # Then it is a validation error and the first operation was rolled back too
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert (value(table, "A"), value(table, "B")) == (5, None)
