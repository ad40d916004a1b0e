"""Refund callbacks that arrive out of order or name someone else claw back from the right place, once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call
from tests.support import dumps, login_token, webhook_headers


@pytest.fixture
def shop(api: Any, tenant: Tenant) -> Tenant:
    """Given a consumption task (1 point per yuan) and two members who logged in."""
    task = {"template": "consumption", "title": "Shop", "step_fen": 100, "points_per_step": 1, "completions_per_cycle": 50}
    assert call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", {"task": task}, bearer(tenant.owner_token)).status_code == 201
    for openid in ("payer", "bystander"):
        body = {"app_id": tenant.app_id, "login_token": login_token(tenant.login_secret, openid), "device_id": "d"}
        assert call(api, "POST", "/v1/auth/member", body).status_code == 200
    return tenant


def deliver(api: Any, shop: Tenant, event: dict[str, Any]) -> Any:
    raw = dumps(event)
    return call(api, "POST", f"/v1/webhooks/payments/generic/{shop.app_id}", raw=raw, headers=webhook_headers(shop.webhook_secret, raw))


def balance(api: Any, shop: Tenant, openid: str) -> int:
    body = {"app_id": shop.app_id, "login_token": login_token(shop.login_secret, openid), "device_id": "d"}
    token = call(api, "POST", "/v1/auth/member", body).json_body["token"]
    return int(call(api, "GET", "/v1/me", None, bearer(token)).json_body["balance"])


def paid(order: str, openid: str = "payer", event: str = "pay") -> dict[str, Any]:
    return {"id": f"{event}-{order}", "type": "payment.succeeded", "openid": openid, "order_id": order, "amount_fen": 3000}


def refunded(order: str, openid: str = "payer") -> dict[str, Any]:
    return {"id": f"refund-{order}", "type": "payment.refunded", "openid": openid, "order_id": order, "amount_fen": 3000}


def test_a_refund_that_arrives_before_its_payment_means_the_payment_earns_nothing(api: Any, shop: Tenant) -> None:
    # Given the refund of an order is delivered first
    assert deliver(api, shop, refunded("o-1")).json_body["duplicate"] is False
    # When the payment arrives afterwards
    late = deliver(api, shop, paid("o-1"))
    # Then it is acknowledged and recorded, but the refunded order earns no points
    assert late.status_code == 200 and late.json_body == {"received": True, "duplicate": False, "points": 0}
    assert balance(api, shop, "payer") == 0


def test_a_refund_claws_back_from_the_member_the_order_credited(api: Any, shop: Tenant) -> None:
    # Given an order that earned the payer 30 points
    assert deliver(api, shop, paid("o-2")).json_body["points"] == 30
    # When its refund arrives naming another member
    response = deliver(api, shop, refunded("o-2", openid="bystander"))
    # Then the payer loses the 30 points and the bystander is untouched
    assert response.status_code == 200
    assert (balance(api, shop, "payer"), balance(api, shop, "bystander")) == (0, 0)


def test_the_same_order_paid_under_two_event_ids_earns_once_and_is_clawed_back_once(api: Any, shop: Tenant) -> None:
    # Given one order delivered twice under different event ids
    assert deliver(api, shop, paid("o-3")).json_body["points"] == 30
    assert deliver(api, shop, paid("o-3", event="again")).json_body["points"] == 0
    # When it is refunded twice
    deliver(api, shop, refunded("o-3"))
    deliver(api, shop, {**refunded("o-3"), "id": "refund-again"})
    # Then the member earned 30 once and lost them once
    assert balance(api, shop, "payer") == 0
