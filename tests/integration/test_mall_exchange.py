"""G1–G4 through the API on moto: goods, allocations, listings and the one-transaction exchange."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call, table_items
from tests.support_mall import (
    ADDRESS,
    add_free_codes,
    admin,
    allocate,
    create_goods,
    exchange,
    grant,
    list_item,
    listing_for,
    member_token,
)

LINK = {"category": "coupon_link", "coupon_url": "https://shop.example/coupon"}


@pytest.fixture
def buyer(api: Any, tenant: Tenant) -> str:
    """Given member u1 with 1,000 points."""
    token = member_token(api, tenant, "u1")
    grant(api, tenant, "u1", 1000)
    return token


def me(api: Any, token: str) -> dict[str, Any]:
    return dict(call(api, "GET", "/v1/me", headers=bearer(token)).json_body)


def ledger(api: Any, token: str) -> list[dict[str, Any]]:
    return list(call(api, "GET", "/v1/me/ledger", headers=bearer(token)).json_body["items"])


def stock(api: Any, tenant: Tenant, allocation_id: str) -> int:
    response = admin(api, tenant, "GET", f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation_id}")
    assert response.status_code == 200, response.json_body
    return int(response.json_body["stock"])


def orders(api: Any, token: str) -> list[dict[str, Any]]:
    return list(call(api, "GET", "/v1/me/orders", headers=bearer(token)).json_body["items"])


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json_body["error"]["code"]


# --- the exchange ----------------------------------------------------------------------------------


def test_exchange_takes_points_and_stock_and_writes_order_and_ledger_in_one_transaction(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given a coupon-link listing at 100 points with 5 in stock
    goods = create_goods(api, tenant, name="Coffee voucher", total=20, **LINK)
    listing = listing_for(api, tenant, quantity=5, goods=goods, strike_points=150)
    # When the member exchanges 2
    response = exchange(api, buyer, listing["listing_id"], 2)
    # Then the order is completed with the coupon link, 200 points and 2 items are taken
    assert response.status_code == 201, response.json_body
    order = response.json_body
    assert (order["status"], order["quantity"], order["points"], order["fulfilment"]["url"]) == (
        "completed",
        2,
        200,
        "https://shop.example/coupon",
    )
    assert me(api, buyer)["balance"] == 800
    assert stock(api, tenant, listing["allocation_id"]) == 3
    # And the ledger says why, referencing the order
    entry = ledger(api, buyer)[0]
    assert (entry["delta"], entry["reference"], entry["reason"], entry["balance_after"]) == (
        -200,
        order["order_id"],
        "mall: Coffee voucher",
        800,
    )
    assert [o["order_id"] for o in orders(api, buyer)] == [order["order_id"]]
    detail = call(api, "GET", f"/v1/me/orders/{order['order_id']}", headers=bearer(buyer))
    assert detail.status_code == 200 and detail.json_body == order


def test_insufficient_points_changes_nothing(api: Any, tenant: Tenant) -> None:
    # Given a member with 150 points and a listing at 100
    token = member_token(api, tenant, "poor")
    grant(api, tenant, "poor", 150)
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    # When they try to exchange 2
    response = exchange(api, token, listing["listing_id"], 2)
    # Then INSUFFICIENT_POINTS, and no points, stock or order moved
    assert error(response) == (409, "INSUFFICIENT_POINTS")
    assert me(api, token)["balance"] == 150
    assert stock(api, tenant, listing["allocation_id"]) == 5
    assert orders(api, token) == []


def test_stock_spread_over_shards_is_found_before_sold_out(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given 3 items spread over 3 shards (one each)
    listing = listing_for(api, tenant, quantity=3, goods=create_goods(api, tenant, total=3, **LINK), shards=3)
    # When the member exchanges one at a time, then 2 at once when only 1 is left
    first = [exchange(api, buyer, listing["listing_id"]) for _ in range(2)]
    two = exchange(api, buyer, listing["listing_id"], 2)
    last = exchange(api, buyer, listing["listing_id"])
    after = exchange(api, buyer, listing["listing_id"])
    # Then every item is sold whatever shard it was in, and only then SOLD_OUT
    assert [r.status_code for r in first] == [201, 201]
    assert error(two) == (409, "SOLD_OUT")
    assert last.status_code == 201
    assert error(after) == (409, "SOLD_OUT")
    assert stock(api, tenant, listing["allocation_id"]) == 0
    assert me(api, buyer)["balance"] == 700


def test_quantity_can_take_from_several_shards(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given 4 items in 4 shards
    listing = listing_for(api, tenant, quantity=4, goods=create_goods(api, tenant, total=4, **LINK), shards=4)
    # When the member exchanges all 4 in one order
    response = exchange(api, buyer, listing["listing_id"], 4)
    # Then one order takes one from each shard
    assert response.status_code == 201, response.json_body
    assert stock(api, tenant, listing["allocation_id"]) == 0
    assert len(orders(api, buyer)) == 1


def test_a_repeated_idempotency_key_returns_the_first_order_and_a_different_body_is_refused(api: Any, tenant: Tenant, buyer: str) -> None:
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    first = exchange(api, buyer, listing["listing_id"], 1, key="k-1")
    # When the same key is sent again, and then with another quantity
    again = exchange(api, buyer, listing["listing_id"], 1, key="k-1")
    other = exchange(api, buyer, listing["listing_id"], 2, key="k-1")
    # Then the retry is the same 201 and order; the different body is IDEMPOTENCY_MISMATCH; one item was taken
    assert (again.status_code, again.json_body) == (201, first.json_body)
    assert error(other) == (409, "IDEMPOTENCY_MISMATCH")
    assert stock(api, tenant, listing["allocation_id"]) == 4
    assert me(api, buyer)["balance"] == 900


def test_member_and_total_out_limits(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given a listing limited to 2 per member per day and 3 in total
    listing = listing_for(
        api, tenant, quantity=10, goods=create_goods(api, tenant, total=10, **LINK), member_limits={"day": 2}, total_out_limit=3
    )
    other = member_token(api, tenant, "u2")
    grant(api, tenant, "u2", 1000)
    # When u1 takes 2 then 1 more, and u2 takes 1 then 1 more
    results = [exchange(api, buyer, listing["listing_id"], 2), exchange(api, buyer, listing["listing_id"], 1)]
    results += [exchange(api, other, listing["listing_id"], 1), exchange(api, other, listing["listing_id"], 1)]
    # Then u1's third item hits the member limit and u2's second the total-out limit; nothing else moved
    assert [r.status_code for r in results] == [201, 409, 201, 409]
    assert results[1].json_body["error"]["code"] == results[3].json_body["error"]["code"] == "LIMIT_REACHED"
    assert "per member per day" in results[1].json_body["error"]["message"]
    assert "total" in results[3].json_body["error"]["message"]
    assert stock(api, tenant, listing["allocation_id"]) == 7
    assert (me(api, buyer)["balance"], me(api, other)["balance"]) == (800, 900)


def test_not_on_sale_offline_not_started_ended_expired(api: Any, tenant: Tenant, buyer: str) -> None:
    goods = create_goods(api, tenant, total=40, **LINK)
    offline = listing_for(api, tenant, quantity=5, goods=goods)
    assert (
        admin(
            api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/listings/{offline['listing_id']}/status", {"status": "offline"}
        ).status_code
        == 200
    )
    later = listing_for(api, tenant, quantity=5, goods=goods, sale_starts_at="2999-01-01T00:00:00Z")
    ended = listing_for(api, tenant, quantity=5, goods=goods, valid_to="2001-01-01T00:00:00Z", valid_from="2000-01-01T00:00:00Z")
    closed = listing_for(api, tenant, quantity=5, goods=goods, online=False)
    expired_goods = create_goods(api, tenant, total=5, expires_at="2001-01-01T00:00:00Z", **LINK)
    expired = listing_for(api, tenant, quantity=5, goods=expired_goods)
    # When the member tries each one
    results = {
        name: exchange(api, buyer, item["listing_id"])
        for name, item in {"offline": offline, "later": later, "ended": ended, "closed": closed, "expired": expired}.items()
    }
    # Then each is NOT_ON_SALE with its reason, and nothing was taken
    assert {name: error(r) for name, r in results.items()} == dict.fromkeys(results, (409, "NOT_ON_SALE"))
    assert [results[n].json_body["error"]["message"] for n in ("offline", "later", "ended", "closed", "expired")] == [
        "Not on sale: offline",
        "Not on sale: not started",
        "Not on sale: ended",
        "Not on sale: offline",
        "Not on sale: expired",
    ]
    assert me(api, buyer)["balance"] == 1000
    # And members see why in the listing (the offline one is not listed at all)
    views = {v["listing_id"]: v for v in call(api, "GET", "/v1/mall/listings", headers=bearer(buyer)).json_body["items"]}
    assert offline["listing_id"] not in views
    assert (views[later["listing_id"]]["on_sale"], views[later["listing_id"]]["not_on_sale_reason"]) == (False, "not started")


def test_a_stale_cached_listing_is_decided_again_by_the_transaction(api: Any, tenant: Tenant, buyer: str) -> None:
    from chalicelib.core.table.cache import config_cache
    from chalicelib.mall.store.listings import ListingsRepo

    # Given a listing this Lambda has cached as online
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    stale = ListingsRepo().all_cached(tenant.app_id)
    # When another container takes it offline (this container's cache still says online)
    path = f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}/status"
    assert admin(api, tenant, "POST", path, {"status": "offline"}).status_code == 200
    config_cache().forget(("listing", tenant.app_id))
    assert config_cache().get(("listing", tenant.app_id), lambda: stale)[0].status == "online"
    response = exchange(api, buyer, listing["listing_id"])
    # Then the stock shard's gate refuses the stale decision and the fresh one says not on sale
    assert error(response) == (409, "NOT_ON_SALE")
    assert me(api, buyer)["balance"] == 1000
    assert stock(api, tenant, listing["allocation_id"]) == 5


def test_an_edited_price_applies_to_the_next_exchange_even_from_a_stale_cache(api: Any, tenant: Tenant, buyer: str) -> None:
    from chalicelib.core.table.cache import config_cache
    from chalicelib.mall.store.listings import ListingsRepo

    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    stale = ListingsRepo().all_cached(tenant.app_id)
    edit = {"price_points": 300, "expected_version": 1}
    assert admin(api, tenant, "PATCH", f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}", edit).status_code == 200
    config_cache().forget(("listing", tenant.app_id))
    config_cache().get(("listing", tenant.app_id), lambda: stale)
    # When the member exchanges through the container that cached the old price of 100
    response = exchange(api, buyer, listing["listing_id"])
    # Then the order is at the new price
    assert response.status_code == 201, response.json_body
    assert response.json_body["points"] == 300
    assert me(api, buyer)["balance"] == 700


def test_the_mall_exchange_task_hook_credits_its_points(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given a "exchange in the mall" task worth 30 points, any listing
    task = {"task": {"template": "mall_exchange", "title": "Shop once", "points": 30}}
    assert admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", task).status_code == 201
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    # When the member exchanges
    assert exchange(api, buyer, listing["listing_id"]).status_code == 201
    # Then the task's 30 points arrive after the 100 spent
    assert me(api, buyer)["balance"] == 1000 - 100 + 30


# --- categories fulfilled in the request ------------------------------------------------------------


def test_cdk_codes_are_handed_out_once_and_only_to_their_owner(api: Any, aws: Any, tenant: Tenant, buyer: str) -> None:
    # Given CDK goods with 3 codes, all allocated and listed
    goods = create_goods(api, tenant, name="Game key", category="cdk", total=0)
    add_free_codes(tenant.tenant_id, goods["goods_id"], ["KEY-AAA", "KEY-BBB", "KEY-CCC"])
    listing = listing_for(api, tenant, quantity=3, goods=goods)
    other = member_token(api, tenant, "u2")
    grant(api, tenant, "u2", 1000)
    # When u1 exchanges 2 and u2 exchanges 1
    mine = exchange(api, buyer, listing["listing_id"], 2)
    theirs = exchange(api, other, listing["listing_id"], 1)
    # Then every code went to exactly one order, in the same transaction as the order
    assert mine.status_code == theirs.status_code == 201
    handed = mine.json_body["fulfilment"]["codes"] + theirs.json_body["fulfilment"]["codes"]
    assert sorted(handed) == ["KEY-AAA", "KEY-BBB", "KEY-CCC"]
    codes = [item for item in table_items(aws) if item["kind"]["S"] == "code"]
    assert sorted(item["order_id"]["S"] for item in codes) == sorted([mine.json_body["order_id"]] * 2 + [theirs.json_body["order_id"]])
    assert not any("GSI1PK" in item for item in codes)
    # And u2 cannot read u1's order (or its codes)
    peek = call(api, "GET", f"/v1/me/orders/{mine.json_body['order_id']}", headers=bearer(other))
    assert error(peek) == (404, "NOT_FOUND")
    assert error(exchange(api, buyer, listing["listing_id"])) == (409, "SOLD_OUT")


def test_points_goods_credit_the_members_account_in_the_target_app(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given a second app of the tenant where u1 also has an account
    created = admin(api, tenant, "POST", "/v1/admin/apps", {"name": "Sister app", "points_rate": 100})
    sister = created.json_body["app"]["app_id"]
    sister_login = Tenant(tenant.tenant_id, tenant.owner_token, sister, created.json_body["secrets"]["login_secret"], "", "")
    sister_token = member_token(api, sister_login, "u1")
    goods = create_goods(api, tenant, name="50 sister points", category="points", points=50, target_app_id=sister, total=10)
    listing = listing_for(api, tenant, quantity=10, goods=goods)
    # When u1 exchanges 2 in this app
    response = exchange(api, buyer, listing["listing_id"], 2)
    # Then 100 points arrive in the sister app, in the same transaction
    assert response.status_code == 201, response.json_body
    assert response.json_body["fulfilment"]["points_credited"] == 100
    assert me(api, sister_token)["balance"] == 100
    assert ledger(api, sister_token)[0]["reference"] == f"{tenant.app_id}:{response.json_body['order_id']}"


def test_points_goods_for_an_app_the_member_never_logged_in_to_are_404_and_take_nothing(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given points goods for a sister app where u1 has no account
    created = admin(api, tenant, "POST", "/v1/admin/apps", {"name": "Sister app", "points_rate": 100})
    sister = created.json_body["app"]["app_id"]
    goods = create_goods(api, tenant, name="50 sister points", category="points", points=50, target_app_id=sister, total=10)
    listing = listing_for(api, tenant, quantity=10, goods=goods)
    # When u1 exchanges them
    response = exchange(api, buyer, listing["listing_id"])
    # Then it is 404 with the reason, and no points or stock were taken
    assert error(response) == (404, "NOT_FOUND")
    assert "log in there first" in response.json_body["error"]["message"]
    assert me(api, buyer)["balance"] == 1000
    assert stock(api, tenant, listing["allocation_id"]) == 10


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"listing_id": "L", "quantity": 0},
        {"listing_id": "L", "quantity": -1},
        {"listing_id": "L", "quantity": 10**12},
        {"listing_id": "L", "quantity": "1"},
        {"listing_id": "L", "quantity": 1.5},
        {"quantity": 1},
        {"listing_id": "", "quantity": 1},
        {"listing_id": "L", "quantity": 1, "address": {"name": "x"}},
        {"listing_id": "L", "quantity": 1, "surprise": True},
    ],
)
def test_malformed_exchanges_are_400_and_take_nothing(api: Any, tenant: Tenant, buyer: str, body: dict[str, Any]) -> None:
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    payload = json.loads(json.dumps(body).replace('"L"', json.dumps(listing["listing_id"])))
    response = call(api, "POST", "/v1/mall/exchanges", payload, bearer(buyer))
    assert error(response) == (400, "VALIDATION_FAILED")
    assert me(api, buyer)["balance"] == 1000
    assert stock(api, tenant, listing["allocation_id"]) == 5


def test_quantity_above_the_listing_maximum_and_physical_without_address_are_400(api: Any, tenant: Tenant, buyer: str) -> None:
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5), max_per_order=2)
    assert error(exchange(api, buyer, listing["listing_id"], 3, address=ADDRESS)) == (400, "VALIDATION_FAILED")
    no_address = exchange(api, buyer, listing["listing_id"], 1)
    assert error(no_address) == (400, "VALIDATION_FAILED")
    assert no_address.json_body["error"]["details"][0]["field"] == "address"
    malformed = call(api, "POST", "/v1/mall/exchanges", headers=bearer(buyer), raw=b'{"listing_id": ')
    assert error(malformed) == (400, "VALIDATION_FAILED")
    assert stock(api, tenant, listing["allocation_id"]) == 5


def test_unknown_and_other_tenants_listings_are_404(api: Any, tenant: Tenant, buyer: str) -> None:
    from chalicelib.tenancy import accounts

    # Given another tenant with its own app, goods and listing
    accounts.create_tenant("other", "Other", "boss", "boss-password-1")
    login = call(api, "POST", "/v1/auth/operator", {"tenant_id": "other", "username": "boss", "password": "boss-password-1"})
    app = call(api, "POST", "/v1/admin/apps", {"name": "Other", "points_rate": 100}, bearer(login.json_body["token"]))
    theirs = Tenant("other", login.json_body["token"], app.json_body["app"]["app_id"], "", "", "")
    their_listing = listing_for(api, theirs, quantity=5, goods=create_goods(api, theirs, total=5, **LINK))
    # When our member exchanges their listing or one that does not exist
    # Then both are 404, indistinguishable
    assert error(exchange(api, buyer, their_listing["listing_id"])) == (404, "NOT_FOUND")
    assert error(exchange(api, buyer, "l_nope")) == (404, "NOT_FOUND")
    assert error(call(api, "GET", f"/v1/mall/listings/{their_listing['listing_id']}", headers=bearer(buyer))) == (404, "NOT_FOUND")
    # And our operator cannot see or allocate their goods
    assert error(admin(api, tenant, "GET", f"/v1/admin/goods/{their_listing['goods_id']}")) == (404, "NOT_FOUND")
    body = {"goods_id": their_listing["goods_id"], "quantity": 1}
    assert error(admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/allocations", body)) == (404, "NOT_FOUND")
    assert error(admin(api, tenant, "GET", f"/v1/admin/apps/{theirs.app_id}/listings")) == (404, "NOT_FOUND")


# --- admin: stock that is conserved ---------------------------------------------------------------


def test_allocations_never_exceed_the_goods_and_returns_give_stock_back(api: Any, tenant: Tenant) -> None:
    # Given goods with 10
    goods = create_goods(api, tenant, total=10, **LINK)
    allocation = allocate(api, tenant, goods["goods_id"], 8, shards=3)
    # When 3 more are allocated (only 2 are left), then 2 are topped up, then 4 returned
    over = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/allocations", {"goods_id": goods["goods_id"], "quantity": 3})
    topped = admin(
        api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation['allocation_id']}/top-ups", {"quantity": 2}
    )
    returned = admin(
        api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation['allocation_id']}/returns", {"quantity": 4}
    )
    too_many = admin(
        api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation['allocation_id']}/returns", {"quantity": 7}
    )
    # Then the over-allocation is refused, and goods available + allocation stock always equal the total
    assert error(over) == (409, "CONFLICT")
    assert (topped.status_code, topped.json_body["stock"], topped.json_body["quantity"]) == (200, 10, 10)
    assert (returned.status_code, returned.json_body["stock"], returned.json_body["quantity"]) == (200, 6, 6)
    assert error(too_many) == (409, "CONFLICT")
    after = admin(api, tenant, "GET", f"/v1/admin/goods/{goods['goods_id']}").json_body
    assert (after["total"], after["available"]) == (10, 4)


def test_goods_total_only_grows_and_edits_are_optimistic(api: Any, tenant: Tenant) -> None:
    goods = create_goods(api, tenant, total=5)
    path = f"/v1/admin/goods/{goods['goods_id']}"
    grown = admin(api, tenant, "POST", f"{path}/stock", {"add": 5})
    shrink = admin(api, tenant, "POST", f"{path}/stock", {"add": -1})
    edited = admin(api, tenant, "PATCH", path, {"name": "Big mug", "tags": ["kitchen"], "expected_version": 1})
    stale = admin(api, tenant, "PATCH", path, {"name": "Huge mug", "expected_version": 1})
    assert (grown.json_body["total"], grown.json_body["available"]) == (10, 10)
    assert error(shrink) == (400, "VALIDATION_FAILED")
    assert (edited.status_code, edited.json_body["name"], edited.json_body["version"], edited.json_body["total"]) == (200, "Big mug", 2, 10)
    assert error(stale) == (409, "CONFLICT")
    cdk = create_goods(api, tenant, category="cdk", total=0)
    assert error(admin(api, tenant, "POST", f"/v1/admin/goods/{cdk['goods_id']}/stock", {"add": 5})) == (400, "VALIDATION_FAILED")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "category": "spaceship"},
        {"name": "x", "category": "coupon_link"},
        {"name": "x", "category": "coupon_link", "coupon_url": "http://plain.example"},
        {"name": "x", "category": "points", "points": 5},
        {"name": "x", "category": "red_packet"},
        {"name": "x", "category": "cdk", "total": 5},
        {"name": "x", "category": "physical", "total": -1},
        {"name": "x", "category": "physical", "images": ["../../etc/passwd"]},
        {"name": "", "category": "physical"},
    ],
)
def test_invalid_goods_are_400(api: Any, tenant: Tenant, body: dict[str, Any]) -> None:
    assert error(admin(api, tenant, "POST", "/v1/admin/goods", body)) == (400, "VALIDATION_FAILED")


def test_listing_rules_ecommerce_needs_cash_and_void_is_final(api: Any, tenant: Tenant) -> None:
    shop_goods = create_goods(api, tenant, use="ecommerce", total=5)
    allocation = allocate(api, tenant, shop_goods["goods_id"], 5)
    points_only = admin(
        api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/listings", {"allocation_id": allocation["allocation_id"], "price_points": 10}
    )
    assert error(points_only) == (400, "VALIDATION_FAILED")
    listing = list_item(api, tenant, allocation["allocation_id"], price_points=0, price_fen=990)
    status = f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}/status"
    assert admin(api, tenant, "POST", status, {"status": "void"}).json_body["status"] == "void"
    assert error(admin(api, tenant, "POST", status, {"status": "online"})) == (409, "CONFLICT")
