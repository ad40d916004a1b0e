"""Helpers every repository uses: cursors, condition failures, a short-lived config cache."""

from __future__ import annotations

import base64
import json
from typing import Any

from chalicelib.core.errors import ValidationFailed


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
