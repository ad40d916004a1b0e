"""G4 over real HTTP against the local server, set up only through the admin API: flash sales never oversell."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.test_points_concurrency import GRANTS, TIMEOUT, admin, all_at_once, ledger, me, signed_post, url
from tests.support import login_token

pytestmark = pytest.mark.e2e


def login(local_api: dict[str, Any], openid: str, device_id: str = "e2e") -> dict[str, str]:
    body = {"app_id": local_api["app_id"], "login_token": login_token(local_api["login_secret"], openid), "device_id": device_id}
    response = requests.post(url(local_api, "/v1/auth/member"), json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def funded_member(local_api: dict[str, Any], points: int, device_id: str = "e2e") -> tuple[str, dict[str, str]]:
    openid = f"fs-{uuid.uuid4().hex[:12]}"
    headers = login(local_api, openid, device_id)
    granted = signed_post(local_api, GRANTS, {"openid": openid, "points": points, "reference": f"seed-{openid}", "reason": "seed"})
    assert granted.status_code == 200, granted.text
    return openid, headers


def flash_listing(local_api: dict[str, Any], operator_token: str, stock: int, shards: int, **allocation: Any) -> tuple[str, str]:
    """Goods → allocation (sharded) → listing at 100 points, through the admin API. Returns (listing id, allocation id)."""
    headers = admin(operator_token)
    goods = requests.post(
        url(local_api, "/v1/admin/goods"),
        json={"name": f"Flash {uuid.uuid4().hex[:6]}", "category": "coupon_link", "coupon_url": "https://shop.example/c", "total": stock},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert goods.status_code == 201, goods.text
    allocated = requests.post(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}/allocations"),
        json={"goods_id": goods.json()["goods_id"], "quantity": stock, "shards": shards, **allocation},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert allocated.status_code == 201, allocated.text
    listing = requests.post(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}/listings"),
        json={"allocation_id": allocated.json()["allocation_id"], "price_points": 100, "strike_points": 300},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert listing.status_code == 201, listing.text
    return listing.json()["listing_id"], allocated.json()["allocation_id"]


def spent_in_mall(local_api: dict[str, Any], member: dict[str, str]) -> int:
    """Points this member paid in the mall (the demo app's "exchange in the mall" task may credit some back)."""
    return -sum(entry["delta"] for entry in ledger(local_api, member) if entry["kind"] == "mall_exchange")


def exchange(local_api: dict[str, Any], member: dict[str, str], listing_id: str, key: str | None = None) -> requests.Response:
    headers = member | ({"Idempotency-Key": key} if key else {})
    return requests.post(
        url(local_api, "/v1/mall/exchanges"), json={"listing_id": listing_id, "quantity": 1}, headers=headers, timeout=TIMEOUT
    )


def allocation_stock(local_api: dict[str, Any], operator_token: str, allocation_id: str) -> int:
    response = requests.get(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}/allocations/{allocation_id}"), headers=admin(operator_token), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return int(response.json()["stock"])


def test_flash_sale_of_50_with_400_members_sells_exactly_50(local_api: dict[str, Any], operator_token: str) -> None:
    # Given 50 items in 4 stock shards at 100 points, and 400 members with 100 points each
    listing_id, allocation_id = flash_listing(local_api, operator_token, stock=50, shards=4)
    members = [funded_member(local_api, 100) for _ in range(400)]
    # When all 400 exchange at the same moment
    responses = all_at_once(400, lambda index: exchange(local_api, members[index][1], listing_id))
    # Then exactly 50 orders are created and 350 members are told SOLD_OUT
    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [201] * 50 + [409] * 350, {s: statuses.count(s) for s in set(statuses)}
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"SOLD_OUT"}
    orders = {r.json()["order_id"] for r in responses if r.status_code == 201}
    assert len(orders) == 50
    # And the stock shards sum to 0 (never below)
    assert allocation_stock(local_api, operator_token, allocation_id) == 0
    # And every member's balance equals their ledger; the 50 buyers paid 100 each for their order, nobody else paid
    paid: dict[str, int] = {}
    for _, member in members:
        profile, entries = me(local_api, member), ledger(local_api, member)
        assert profile["balance"] == sum(entry["delta"] for entry in entries)
        paid |= {entry["reference"]: -entry["delta"] for entry in entries if entry["kind"] == "mall_exchange"}
    assert paid == dict.fromkeys(orders, 100)
    # And the operator's order records show exactly those 50 orders for this listing
    listed: set[str] = set()
    cursor = None
    while True:
        params = {"listing_id": listing_id, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            url(local_api, f"/v1/admin/apps/{local_api['app_id']}/orders"), params=params, headers=admin(operator_token), timeout=TIMEOUT
        )
        assert page.status_code == 200, page.text
        listed |= {order["order_id"] for order in page.json()["items"]}
        cursor = page.json()["cursor"]
        if not cursor:
            break
    assert listed == orders


def test_per_member_limit_holds_under_concurrent_requests_from_one_member(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a listing limited to 2 per member per day, and a member with points for 10
    listing_id, allocation_id = flash_listing(local_api, operator_token, stock=30, shards=4, member_limits={"day": 2})
    _, member = funded_member(local_api, 1000)
    # When the member sends 10 exchanges at once
    responses = all_at_once(10, lambda _: exchange(local_api, member, listing_id))
    # Then 2 succeed and 8 are refused with LIMIT_REACHED; 2 items left the stock, 200 points the account
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 8
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"LIMIT_REACHED"}
    assert allocation_stock(local_api, operator_token, allocation_id) == 28
    assert me(local_api, member)["balance"] == sum(e["delta"] for e in ledger(local_api, member))
    assert spent_in_mall(local_api, member) == 200


def test_per_device_limit_holds_across_members_of_one_device(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a listing limited to 1 per device per week, and 8 members logged in on the same device
    listing_id, allocation_id = flash_listing(local_api, operator_token, stock=30, shards=2, device_limits={"week": 1})
    device = f"device-{uuid.uuid4().hex[:8]}"
    members = [funded_member(local_api, 100, device_id=device)[1] for _ in range(8)]
    # When they all exchange at once
    responses = all_at_once(8, lambda index: exchange(local_api, members[index], listing_id))
    # Then exactly one succeeds; the others hit the device's limit and keep their points
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"LIMIT_REACHED"}
    assert allocation_stock(local_api, operator_token, allocation_id) == 29
    assert sorted(spent_in_mall(local_api, member) for member in members) == [0] * 7 + [100]


def test_a_repeated_idempotency_key_returns_the_same_order(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a member with points for several items
    listing_id, allocation_id = flash_listing(local_api, operator_token, stock=10, shards=1)
    _, member = funded_member(local_api, 1000)
    key = f"key-{uuid.uuid4().hex}"
    # When the same exchange is sent 12 times at once with one Idempotency-Key
    responses = all_at_once(12, lambda _: exchange(local_api, member, listing_id, key=key))
    # Then every answer is 201 with the same order, and only one item and 100 points were taken
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert allocation_stock(local_api, operator_token, allocation_id) == 9
    assert spent_in_mall(local_api, member) == 100
    # And later retries (sequential) still return that order
    assert exchange(local_api, member, listing_id, key=key).json() == responses[0].json()
