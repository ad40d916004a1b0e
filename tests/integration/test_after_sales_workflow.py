"""E2/G8 through moto's Step Functions in-process: the after-sales review really waits, decides and applies.

The workflow functions are the app's own (tests/support_workflows.py). The orders here are shipped
first (their fulfilment execution has ended) and then returned; a refund requested before shipment,
which also ends the fulfilment's wait, is proven over HTTP in tests/e2e/test_after_sales.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import Tenant, bearer, call
from tests.support_mall import ADDRESS, admin, create_goods, exchange, grant, listing_for, member_token
from tests.support_workflows import workflow_cloud_fixture, workflows_aws

workflow_cloud = workflow_cloud_fixture({"order_fulfilment", "after_sales_review"})
aws = workflows_aws


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def order_of(api: Any, token: str, order_id: str) -> dict[str, Any]:
    return dict(call(api, "GET", f"/v1/me/orders/{order_id}", None, bearer(token)).json_body)


def me(api: Any, token: str) -> dict[str, Any]:
    return dict(call(api, "GET", "/v1/me", None, bearer(token)).json_body)


def ledger_sum(api: Any, token: str) -> int:
    return sum(e["delta"] for e in call(api, "GET", "/v1/me/ledger?limit=100", None, bearer(token)).json_body["items"])


def stock(api: Any, tenant: Tenant, allocation_id: str) -> int:
    return int(admin(api, tenant, "GET", f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation_id}").json_body["stock"])


def decide(api: Any, tenant: Tenant, order_id: str, body: dict[str, Any]) -> Any:
    """As soon as the review execution waits (the request is queued before its token arrives)."""
    path = f"/v1/admin/apps/{tenant.app_id}/refund-requests/{order_id}/decision"
    return until(
        lambda: admin(api, tenant, "POST", path, body),
        lambda r: r.status_code != 409 or "not waiting" not in r.json_body["error"]["message"],
    )


def refund_requested(api: Any, tenant: Tenant, points_back: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Given a member's shipped physical order of 2 (100 points each) and their refund request. Returns (token, listing, order)."""
    token = member_token(api, tenant, f"buyer-{points_back}")
    grant(api, tenant, f"buyer-{points_back}", 1000)
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5), points_back_on_return=points_back)
    placed = exchange(api, token, listing["listing_id"], 2, address=ADDRESS)
    assert placed.status_code == 201, placed.json_body
    order = placed.json_body
    ship = f"/v1/admin/apps/{tenant.app_id}/orders/{order['order_id']}/shipment"
    assert admin(api, tenant, "POST", ship, {"carrier": "SF", "tracking_no": "SF1"}).status_code == 200
    requested = call(api, "POST", f"/v1/me/orders/{order['order_id']}/refund-requests", {"reason": "arrived broken"}, bearer(token))
    assert requested.status_code == 201, requested.json_body
    return token, listing, order


def test_an_approved_return_gives_stock_back_and_points_only_if_the_listing_says_so(api: Any, tenant: Tenant) -> None:
    for points_back in (False, True):
        token, listing, order = refund_requested(api, tenant, points_back)
        assert stock(api, tenant, listing["allocation_id"]) == 3
        # When a reviewer approves
        decided = decide(api, tenant, order["order_id"], {"approve": True})
        assert decided.status_code == 200, decided.json_body
        # Then the review execution applies it: refunded, stock back, points back only when the listing says so
        order_id = order["order_id"]
        final = until(lambda t=token, o=order_id: order_of(api, t, o), lambda o: o["status"] != "refund_requested")
        assert final["status"] == "refunded", final
        assert stock(api, tenant, listing["allocation_id"]) == 5
        assert me(api, token)["balance"] == ledger_sum(api, token) == (1000 if points_back else 800)


def test_a_rejected_return_keeps_everything_and_shows_the_reason(api: Any, tenant: Tenant) -> None:
    token, listing, order = refund_requested(api, tenant, points_back=True)
    # When a reviewer rejects with a reason, and a second decision follows
    rejected = decide(api, tenant, order["order_id"], {"approve": False, "reason": "the seal is broken"})
    again = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/refund-requests/{order['order_id']}/decision", {"approve": True})
    # Then the order goes back to shipped with the reason; stock and points stay taken; the second is 409
    assert rejected.status_code == 200, rejected.json_body
    assert again.status_code == 409
    final = until(lambda: order_of(api, token, order["order_id"]), lambda o: o["status"] != "refund_requested")
    assert final["status"] == "shipped"
    assert (final["refund"]["state"], final["refund"]["decision_reason"]) == ("rejected", "the seal is broken")
    assert stock(api, tenant, listing["allocation_id"]) == 3
    assert me(api, token)["balance"] == ledger_sum(api, token) == 800
