"""The table's connection for transactions, and reading why a write or a transaction was refused."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError


def condition_failed(exc: PynamoDBException) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def cancellation_reasons(exc: TransactWriteError) -> list[str | None]:
    """Per-item reason codes of a cancelled transaction, None where that item was fine."""
    return [reason.code if reason else None for reason in (exc.cancellation_reasons or [])]


_connection: Any = None


def transaction(**kwargs: Any) -> Any:
    """A PynamoDB TransactWrite on the table's connection (built once per container)."""
    global _connection
    from pynamodb.connection import Connection
    from pynamodb.transactions import TransactWrite

    from chalicelib.core.config import get_settings

    settings = get_settings()
    if _connection is None or _connection.host != settings.dynamodb_endpoint:
        _connection = Connection(
            region=settings.region,
            host=settings.dynamodb_endpoint,
            max_retry_attempts=3,
            read_timeout_seconds=settings.dynamodb_timeout_seconds,
        )
    return TransactWrite(connection=_connection, **kwargs)
