"""Issue 9 item 16: a member listing page costs one page — only that page's stock shards are read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.mall import listings
from chalicelib.tenancy.store.apps import AppsRepo
from tests.conftest import Tenant, bearer, call
from tests.support_mall import admin, allocate, create_goods, exchange, grant, list_item, member_token

LISTINGS = 12
SHARDS = 4
PAGE = 5


@dataclass
class Calls:
    """DynamoDB calls made through PynamoDB (the botocore boundary), with the keys each BatchGetItem asked for."""

    operations: list[str] = field(default_factory=list)
    batch_keys: list[list[str]] = field(default_factory=list)


@contextmanager
def counting() -> Iterator[Calls]:
    from pynamodb.connection.base import Connection

    calls = Calls()
    original = Connection._make_api_call

    def wrapped(self: Any, operation_name: str, operation_kwargs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.operations.append(operation_name)
        if operation_name == "BatchGetItem":
            calls.batch_keys.append([key["PK"]["S"] for table in operation_kwargs["RequestItems"].values() for key in table["Keys"]])
        return original(self, operation_name, operation_kwargs, *args, **kwargs)

    Connection._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        Connection._make_api_call = original  # type: ignore[method-assign]


@dataclass
class Shop:
    token: str
    allocation_of: dict[str, str]  # listing id → allocation id
    hidden: str  # an offline listing: never shown


@pytest.fixture
def shop(api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """Given 12 online listings × 4 shards (ties in sort weight, one sold out, two sharing an allocation) and one offline listing."""
    monkeypatch.setattr(config_cache(), "seconds", 600.0)  # the container's configuration stays warm for the whole test
    allocation_of: dict[str, str] = {}
    shared = ""
    for index in range(LISTINGS):
        if index == 7:  # a second listing of listing 6's allocation (same stock)
            allocation_id = shared
        else:
            goods = create_goods(api, tenant, name=f"Goods {index}", category="coupon_link", coupon_url="https://x.example/c", total=50)
            allocation_id = allocate(api, tenant, goods["goods_id"], 1 if index == 3 else 10 + index, shards=SHARDS)["allocation_id"]
            shared = allocation_id
        listing = list_item(api, tenant, allocation_id, price_points=10, title=f"Item {index}", sort_weight=index % 3)
        allocation_of[listing["listing_id"]] = allocation_id
    goods = create_goods(api, tenant, name="Hidden", category="coupon_link", coupon_url="https://x.example/c", total=5)
    hidden = list_item(api, tenant, allocate(api, tenant, goods["goods_id"], 5, shards=SHARDS)["allocation_id"], price_points=10)
    path = f"/v1/admin/apps/{tenant.app_id}/listings/{hidden['listing_id']}/status"
    assert admin(api, tenant, "POST", path, {"status": "offline"}).status_code == 200
    token = member_token(api, tenant, "u1")
    grant(api, tenant, "u1", 1000)
    sold_out = list(allocation_of)[3]  # its allocation held 1
    assert exchange(api, token, sold_out, key="sell-out").status_code == 201
    return Shop(token, allocation_of, hidden["listing_id"])


def page(api: Any, token: str, cursor: str | None = None, limit: int = PAGE) -> Any:
    query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
    response = call(api, "GET", f"/v1/mall/listings{query}", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return response.json_body


def test_a_page_reads_only_its_own_listings_shards_in_one_round_trip(api: Any, tenant: Tenant, shop: Shop) -> None:
    # Given the container's configuration cache is warm (as in a running Lambda)
    page(api, shop.token)
    cursor: str | None = None
    pages = 0
    while True:
        # When a member asks for a page of 5
        with counting() as calls:
            body = page(api, shop.token, cursor)
        pages += 1
        # Then the page costs one BatchGetItem of exactly its own listings' shards, nothing else
        assert calls.operations == ["BatchGetItem"]
        wanted = {shop.allocation_of[item["listing_id"]] for item in body["items"]}
        expected = {keys.stock_pk(tenant.app_id, allocation_id, shard) for allocation_id in wanted for shard in range(SHARDS)}
        assert len(calls.batch_keys[0]) == len(expected)
        assert set(calls.batch_keys[0]) == expected
        cursor = body["cursor"]
        if cursor is None:
            break
    assert pages == 3


def test_walking_the_pages_with_the_cursor_gives_the_full_listing(api: Any, tenant: Tenant, shop: Shop) -> None:
    # Given the full listing, read in one go (the same view the decorated pages use)
    app = AppsRepo().get(tenant.app_id)
    assert app is not None
    full = [view.model_dump(mode="json") for view in listings.member_listings(app)]
    assert len(full) == LISTINGS and shop.hidden not in {item["listing_id"] for item in full}
    # best first: sort weight descending, then oldest first
    configured = {listing.listing_id: listing for listing in listings.list_listings(app)}
    order = [(-configured[item["listing_id"]].sort_weight, configured[item["listing_id"]].created_at) for item in full]
    assert order == sorted(order) and {weight for weight, _ in order} == {0, -1, -2}
    sold_out = list(shop.allocation_of)[3]
    shown = next(item for item in full if item["listing_id"] == sold_out)
    assert (shown["stock"], shown["on_sale"], shown["not_on_sale_reason"]) == (0, False, "sold out")
    assert sorted(item["stock"] for item in full) == sorted([0] + [10 + i for i in range(LISTINGS) if i not in (3, 7)] + [16])
    for limit in (1, 5, 11, 12, 100):
        # When a member walks every page with the cursor
        walked: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            body = page(api, shop.token, cursor, limit)
            walked += body["items"]
            cursor = body["cursor"]
            if cursor is None:
                break
            assert len(body["items"]) == limit
        # Then the pages put together are the full listing: same items, same order, same stock
        assert walked == full, limit


def test_a_cursor_past_the_end_gives_an_empty_last_page_without_reading_stock(api: Any, tenant: Tenant, shop: Shop) -> None:
    from chalicelib.core.table import cursors

    page(api, shop.token)
    with counting() as calls:
        body = page(api, shop.token, cursors.pack({"o": LISTINGS}))
    assert body == {"items": [], "cursor": None}
    assert calls.operations == []
