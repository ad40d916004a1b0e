"""The one cursor codec: every list's opaque ``cursor`` is JSON in unpadded URL-safe base64.

``pack`` / ``unpack`` are the codec (``unpack`` refuses anything that is not one of ours — bad base64,
bad UTF-8, bad or absurdly nested JSON — with the same 400); ``encode_cursor`` / ``decode_cursor`` carry
a DynamoDB LastEvaluatedKey and check it belongs to the partition being read.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.core.errors import ValidationFailed


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed("Invalid cursor", details=[{"field": "cursor", "problem": "not a cursor from this list"}])


def pack(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def unpack(cursor: str) -> Any:
    """What ``pack`` packed; anything else is a 400, never a 500 (deeply nested JSON raises RecursionError)."""
    try:
        return json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise invalid_cursor() from None


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """Opaque cursor from a LastEvaluatedKey (the key's attribute values only)."""
    if not last_key:
        return None
    return pack({name: next(iter(value.values())) for name, value in last_key.items()})


def decode_cursor(cursor: str | None, *, expect: dict[str, str], sk_prefix: str | None = None) -> dict[str, Any] | None:
    """Back to an ExclusiveStartKey; the cursor must belong to the partition being read (no hopping).

    It must carry exactly the key attributes of the table or index read (DynamoDB rejects anything
    else with a 500-worthy ValidationException), and the sort key must be in the range read.
    """
    if not cursor:
        return None
    plain = unpack(cursor)
    if not isinstance(plain, dict) or not all(isinstance(v, str) for v in plain.values()):
        raise invalid_cursor()
    required = {"PK", "SK"} | {name for pk in expect if pk != "PK" for name in (pk, pk[:-2] + "SK")}
    if (
        set(plain) != required
        or any(plain.get(name) != value for name, value in expect.items())
        or (sk_prefix is not None and not plain["SK"].startswith(sk_prefix))
        or any(len(value) > 1024 for value in plain.values())
    ):
        raise invalid_cursor()
    return {name: {"S": value} for name, value in plain.items()}
