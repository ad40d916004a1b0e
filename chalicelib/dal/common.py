"""Helpers every repository uses: cursors, condition failures, a short-lived config cache."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from pynamodb.exceptions import PynamoDBException, TransactWriteError

from chalicelib.errors import ValidationFailed


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """Opaque cursor from a LastEvaluatedKey (the key's attribute values only)."""
    if not last_key:
        return None
    plain = {name: next(iter(value.values())) for name, value in last_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, expect: dict[str, str], sk_prefix: str | None = None) -> dict[str, Any] | None:
    """Back to an ExclusiveStartKey; the cursor must belong to the partition being read (no hopping).

    It must carry exactly the key attributes of the table or index read (DynamoDB rejects anything
    else with a 500-worthy ValidationException), and the sort key must be in the range read.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(plain, dict) or not all(isinstance(v, str) for v in plain.values()):
            raise ValueError("cursor is not a key")
    except ValueError:
        raise ValidationFailed("Invalid cursor", details=[{"field": "cursor", "problem": "not a cursor from this list"}]) from None
    required = {"PK", "SK"} | {name for pk in expect if pk != "PK" for name in (pk, pk[:-2] + "SK")}
    if (
        set(plain) != required
        or any(plain.get(name) != value for name, value in expect.items())
        or (sk_prefix is not None and not plain["SK"].startswith(sk_prefix))
        or any(len(value) > 1024 for value in plain.values())
    ):
        raise ValidationFailed("Invalid cursor", details=[{"field": "cursor", "problem": "not a cursor from this list"}])
    return {name: {"S": value} for name, value in plain.items()}


def condition_failed(exc: PynamoDBException) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def cancellation_reasons(exc: TransactWriteError) -> list[str | None]:
    """Per-item reason codes of a cancelled transaction, None where that item was fine."""
    return [reason.code if reason else None for reason in (exc.cancellation_reasons or [])]


class TTLCache:
    """Config read on every request is cached for a few seconds per Lambda container.

    Never a source of truth for a decision that matters: the transaction's conditions are.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
        if hit and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._items[key] = (now + self.seconds, value)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_connection: Any = None


def transaction(**kwargs: Any) -> Any:
    """A PynamoDB TransactWrite on the table's connection (built once per container)."""
    global _connection
    from pynamodb.connection import Connection
    from pynamodb.transactions import TransactWrite

    from chalicelib.config import get_settings

    settings = get_settings()
    if _connection is None or _connection.host != settings.dynamodb_endpoint:
        _connection = Connection(
            region=settings.region,
            host=settings.dynamodb_endpoint,
            max_retry_attempts=3,
            read_timeout_seconds=settings.dynamodb_timeout_seconds,
        )
    return TransactWrite(connection=_connection, **kwargs)
