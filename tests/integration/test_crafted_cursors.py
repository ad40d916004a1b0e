"""Deeply nested JSON cursors (issue 9, item 15): the order-records list and its export answer 400, never 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call

CURSOR_LIMIT = 2048  # characters a cursor may have (query and body)


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _nested_cursors() -> dict[str, str]:
    fits = CURSOR_LIMIT * 3 // 4  # bytes of JSON that fit in the limit once base64-encoded
    inner = _b64("[" * (fits - 40))
    cursors = {
        "unclosed arrays": _b64("[" * fits),
        "closed arrays": _b64("[" * (fits // 2) + "]" * (fits // 2)),
        "nested objects": _b64('{"d":' * 250 + "0" + "}" * 250),
        "nested inner key cursor": _b64(json.dumps({"d": "2026-03-02", "k": inner[: fits - 40]})),
    }
    assert all(len(cursor) <= CURSOR_LIMIT for cursor in cursors.values()), {k: len(v) for k, v in cursors.items()}
    return cursors


NESTED = _nested_cursors()


def _refused(response: Any) -> None:
    assert response.status_code == 400, response.json_body
    error = response.json_body["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["details"][0]["field"] == "cursor"


@pytest.mark.parametrize("case", sorted(NESTED))
def test_a_deeply_nested_cursor_on_the_order_records_list_is_400(api: Any, tenant: Tenant, case: str) -> None:
    # Given a crafted cursor of deeply nested JSON, within the cursor's length limit
    cursor = NESTED[case]
    # When an operator reads the app's orders with it
    response = call(api, "GET", f"/v1/admin/apps/{tenant.app_id}/orders?day=2026-03-02&cursor={cursor}", None, bearer(tenant.owner_token))
    # Then a 400 on the cursor, never a 500
    _refused(response)


@pytest.mark.parametrize("case", sorted(NESTED))
def test_a_deeply_nested_cursor_on_the_order_export_is_400(api: Any, tenant: Tenant, case: str) -> None:
    # Given the same crafted cursor
    body = {"day": "2026-03-02", "cursor": NESTED[case]}
    # When an operator continues an export with it
    response = call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/orders/exports", body, bearer(tenant.owner_token))
    # Then a 400 on the cursor, never a 500
    _refused(response)
