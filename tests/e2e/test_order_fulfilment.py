"""G5 / E1 over real HTTP against the local server, whose moto executes order_fulfilment.asl.json."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.test_points_concurrency import GRANTS, TIMEOUT, admin, ledger, me, signed_post, url
from tests.support import login_token, webhook_headers

pytestmark = pytest.mark.e2e

ADDRESS = {"name": "Han Meimei", "phone": "13900000000", "city": "Shanghai", "detail": "2 Bund Rd"}


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def funded(local_api: dict[str, Any], points: int, prefix: str = "e2e") -> tuple[str, dict[str, str]]:
    """A new member holding ``points`` (prefix "payout-fail": one the fake payout refuses)."""
    openid = f"{prefix}-{uuid.uuid4().hex[:12]}"
    body = {"app_id": local_api["app_id"], "login_token": login_token(local_api["login_secret"], openid), "device_id": "e2e"}
    response = requests.post(url(local_api, "/v1/auth/member"), json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    granted = signed_post(local_api, GRANTS, {"openid": openid, "points": points, "reference": f"seed-{openid}", "reason": "seed"})
    assert granted.status_code == 200, granted.text
    return openid, {"Authorization": f"Bearer {response.json()['token']}"}


def listing(local_api: dict[str, Any], operator: dict[str, str], goods: dict[str, Any], quantity: int, **price: Any) -> dict[str, Any]:
    created = requests.post(url(local_api, "/v1/admin/goods"), json={"total": quantity, **goods}, headers=operator, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    base = f"/v1/admin/apps/{local_api['app_id']}"
    allocated = requests.post(
        url(local_api, f"{base}/allocations"),
        json={"goods_id": created.json()["goods_id"], "quantity": quantity},
        headers=operator,
        timeout=TIMEOUT,
    )
    assert allocated.status_code == 201, allocated.text
    listed = requests.post(
        url(local_api, f"{base}/listings"),
        json={"allocation_id": allocated.json()["allocation_id"], **price},
        headers=operator,
        timeout=TIMEOUT,
    )
    assert listed.status_code == 201, listed.text
    return dict(listed.json())


def place(local_api: dict[str, Any], member: dict[str, str], listing_id: str, **extra: Any) -> dict[str, Any]:
    body = {"listing_id": listing_id, "quantity": 1, **extra}
    created = until(
        lambda: requests.post(url(local_api, "/v1/mall/exchanges"), json=body, headers=member, timeout=TIMEOUT),
        lambda r: r.status_code != 404,  # the member API caches listings for a few seconds
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def order(local_api: dict[str, Any], member: dict[str, str], order_id: str) -> dict[str, Any]:
    response = requests.get(url(local_api, f"/v1/me/orders/{order_id}"), headers=member, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_physical_orders_are_shipped_from_a_csv_file_and_members_see_the_tracking(local_api: dict[str, Any], operator_token: str) -> None:
    # Given two physical orders of a member, their executions waiting for the shipment
    operator = admin(operator_token)
    item = listing(local_api, operator, {"name": f"Mug {uuid.uuid4().hex[:6]}", "category": "physical"}, 5, price_points=100)
    _, member = funded(local_api, 500)
    orders = [place(local_api, member, item["listing_id"], address=ADDRESS)["order_id"] for _ in range(2)]
    time.sleep(1)  # let the executions reach their wait (shipping works either way)

    # When the operator uploads a CSV with both, plus a row for an unknown order
    rows = [f"{orders[0]},SF Express,SF0001", f"{orders[1]},JD,JD0002", "o-unknown,SF,SF9"]
    csv_text = "order_id,carrier,tracking_no\n" + "\n".join(rows) + "\n"
    response = requests.post(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}/shipments"), json={"csv": csv_text}, headers=operator, timeout=TIMEOUT
    )

    # Then both orders are shipped, the unknown row is reported, and the member sees carrier and tracking
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["applied"], report["failed"]) == (2, 1)
    assert [(line["line"], line["ok"]) for line in report["lines"]] == [(2, True), (3, True), (4, False)]
    assert report["lines"][2]["error"]["code"] == "NOT_FOUND"
    seen = [order(local_api, member, order_id) for order_id in orders]
    assert [(o["status"], o["fulfilment"]["carrier"], o["fulfilment"]["tracking_no"]) for o in seen] == [
        ("shipped", "SF Express", "SF0001"),
        ("shipped", "JD", "JD0002"),
    ]


def test_a_points_and_cash_order_is_paid_by_the_webhook_then_shipped(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a member's points + cash order (100 points + 12 yuan) waiting for its payment
    operator = admin(operator_token)
    item = listing(
        local_api, operator, {"name": f"Lamp {uuid.uuid4().hex[:6]}", "category": "physical"}, 3, price_points=100, price_fen=1200
    )
    openid, member = funded(local_api, 500)
    placed = place(local_api, member, item["listing_id"], address=ADDRESS)
    assert placed["status"] == "awaiting_payment"

    # When the payment webhook arrives for it
    body = json.dumps(
        {
            "id": f"evt-{uuid.uuid4().hex[:8]}",
            "type": "payment.succeeded",
            "openid": openid,
            "order_id": placed["order_id"],
            "amount_fen": 1200,
        }
    ).encode()
    paid = requests.post(
        url(local_api, f"/v1/webhooks/payments/generic/{local_api['app_id']}"),
        data=body,
        headers=webhook_headers(local_api["webhook_secret"], body),
        timeout=TIMEOUT,
    )

    # Then the order is paid and waits for shipping; shipping it shows the tracking to the member
    assert paid.status_code == 200, paid.text
    waiting = until(lambda: order(local_api, member, placed["order_id"]), lambda o: o["status"] == "awaiting_shipment")
    assert waiting["status"] == "awaiting_shipment" and waiting["paid_at"]
    shipped = requests.post(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}/orders/{placed['order_id']}/shipment"),
        json={"carrier": "EMS", "tracking_no": "EMS12345"},
        headers=operator,
        timeout=TIMEOUT,
    )
    assert shipped.status_code == 200, shipped.text
    assert order(local_api, member, placed["order_id"])["fulfilment"]["tracking_no"] == "EMS12345"


def test_a_refused_red_packet_payout_gives_the_points_back(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a member whose payouts the provider refuses, and a red packet for 100 points
    operator = admin(operator_token)
    goods = {"name": f"Red packet {uuid.uuid4().hex[:6]}", "category": "red_packet", "amount_fen": 66}
    item = listing(local_api, operator, goods, 3, price_points=100)
    _, member = funded(local_api, 300, prefix="payout-fail")

    # When the member exchanges it
    placed = place(local_api, member, item["listing_id"])
    assert placed["status"] == "paying_out"

    # Then after the retries the order is cancelled and its 100 points are back (the balance equals the ledger)
    done = until(lambda: order(local_api, member, placed["order_id"]), lambda o: o["status"] != "paying_out")
    assert done["status"] == "cancelled" and done["reason"] == "payout failed"
    entries = ledger(local_api, member)
    assert me(local_api, member)["balance"] == sum(entry["delta"] for entry in entries)
    for_order = sorted((entry["kind"], entry["delta"]) for entry in entries if entry["reference"] == placed["order_id"])
    assert for_order == [("mall_exchange", -100), ("refund", 100)]
