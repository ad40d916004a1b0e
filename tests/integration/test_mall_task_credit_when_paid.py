"""Issue 9 item 10: the "exchange in the mall" task pays for a points + cash order only once it is paid.

An unpaid order is cancelled when its payment window closes: it must earn nothing. Runs the order's real
Standard execution on moto (tests/support_workflows.py), as tests/integration/test_order_fulfilment.py does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call
from tests.support import dumps, webhook_headers
from tests.support_mall import ADDRESS, admin, exchange, grant, listing_for, member_token
from tests.support_workflows import workflow_cloud_fixture, workflows_aws

workflow_cloud = workflow_cloud_fixture({"order_fulfilment"})
aws = workflows_aws

SECONDS = 20.0
TASK_POINTS = 30


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def me(api: Any, token: str) -> dict[str, Any]:
    return dict(call(api, "GET", "/v1/me", None, bearer(token)).json_body)


def order_in(api: Any, token: str, order_id: str, *statuses: str) -> dict[str, Any]:
    fetch = lambda: dict(call(api, "GET", f"/v1/me/orders/{order_id}", None, bearer(token)).json_body)  # noqa: E731
    return dict(until(fetch, lambda o: o["status"] in statuses))


def task_credits(api: Any, token: str) -> list[str]:
    entries = call(api, "GET", "/v1/me/ledger?limit=100", None, bearer(token)).json_body["items"]
    return [entry["reference"] for entry in entries if entry["reference"].startswith("mall_exchange:")]


def pay(api: Any, tenant: Tenant, order: dict[str, Any], openid: str, event_id: str | None = None) -> Any:
    path = f"/v1/webhooks/payments/generic/{tenant.app_id}"
    body = dumps(
        {
            "id": event_id or f"evt-{uuid.uuid4().hex[:10]}",
            "type": "payment.succeeded",
            "openid": openid,
            "order_id": order["order_id"],
            "amount_fen": order["cash_fen"],
        }
    )
    return call(api, "POST", path, raw=body, headers=webhook_headers(tenant.webhook_secret, body))


@pytest.fixture
def quick_payment_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.mall import fulfilment

    monkeypatch.setattr(fulfilment, "payment_timeout_seconds", lambda app, order: 2)


def shop(api: Any, tenant: Tenant) -> tuple[str, str, dict[str, Any]]:
    """A member with 1,000 points, an "exchange in the mall" task, and their points + cash order awaiting payment."""
    openid = f"m-{uuid.uuid4().hex[:8]}"
    token = member_token(api, tenant, openid)
    grant(api, tenant, openid, 1000)
    task = {"task": {"template": "mall_exchange", "title": "Shop once", "points": TASK_POINTS}}
    assert admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", task).status_code == 201
    listing = listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)
    response = exchange(api, token, listing["listing_id"], address=ADDRESS)
    assert response.status_code == 201, response.json_body
    assert response.json_body["status"] == "awaiting_payment"
    return token, openid, dict(response.json_body)


def test_an_unpaid_points_and_cash_order_that_times_out_earns_no_mall_task_points(
    api: Any, tenant: Tenant, quick_payment_timeout: None
) -> None:
    # Given a member's points + cash order awaiting payment, and an "exchange in the mall" task
    token, _, order = shop(api, tenant)
    # Then nothing is credited while it waits
    assert me(api, token)["balance"] == 900
    assert task_credits(api, token) == []

    # When the payment window closes unpaid
    done = order_in(api, token, order["order_id"], "cancelled")

    # Then the order is cancelled with its points back, and no task points were ever earned
    assert done["status"] == "cancelled"
    assert me(api, token)["balance"] == 1000
    assert task_credits(api, token) == []


def test_a_paid_points_and_cash_order_earns_the_mall_task_points_once(api: Any, tenant: Tenant) -> None:
    # Given a member's points + cash order awaiting payment, and an "exchange in the mall" task
    token, openid, order = shop(api, tenant)
    assert task_credits(api, token) == []

    # When it is paid (the provider delivers the event twice, and another event for it arrives)
    event_id = f"evt-{uuid.uuid4().hex[:8]}"
    assert pay(api, tenant, order, openid, event_id).status_code == 200
    assert pay(api, tenant, order, openid, event_id).status_code == 200
    assert pay(api, tenant, order, openid).status_code == 200

    # Then it goes on to await its shipment, and the task's points arrive once, for that order
    assert order_in(api, token, order["order_id"], "awaiting_shipment")["status"] == "awaiting_shipment"
    assert task_credits(api, token) == [f"mall_exchange:{order['order_id']}"]
    assert me(api, token)["balance"] == 900 + TASK_POINTS
