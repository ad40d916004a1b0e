"""Defects found in a review of the mall code, each proven on moto (Given / When / Then) and fixed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call
from tests.support_mall import admin, create_goods, exchange, grant, listing_for, member_token


@pytest.fixture
def buyer(api: Any, tenant: Tenant) -> str:
    """Given member u1 with 1,000 points."""
    token = member_token(api, tenant, "u1")
    grant(api, tenant, "u1", 1000)
    return token


def balance(api: Any, token: str) -> int:
    return int(call(api, "GET", "/v1/me", headers=bearer(token)).json_body["balance"])


def test_a_repeated_idempotency_key_returns_the_first_order_after_the_listing_went_offline(api: Any, tenant: Tenant, buyer: str) -> None:
    # Given u1 exchanged with an Idempotency-Key (the answer was lost on the way)
    goods = create_goods(api, tenant, category="coupon_link", coupon_url="https://shop.example/c", total=10)
    listing = listing_for(api, tenant, quantity=5, goods=goods)
    first = exchange(api, buyer, listing["listing_id"], key="k-offline")
    assert first.status_code == 201, first.json_body
    # And the operator then took the listing offline (a flash sale ending)
    path = f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}/status"
    assert admin(api, tenant, "POST", path, {"status": "offline"}).status_code == 200
    # When the client retries with the same key and body
    again = exchange(api, buyer, listing["listing_id"], key="k-offline")
    # Then it gets the first answer (201, the same order), not 409 NOT_ON_SALE, and nothing is applied again
    assert again.status_code == 201, again.json_body
    assert again.json_body == first.json_body
    assert balance(api, buyer) == 900
    # And the same key with a different body is still a mismatch
    other = exchange(api, buyer, listing["listing_id"], quantity=2, key="k-offline")
    assert other.status_code == 409
    assert other.json_body["error"]["code"] == "IDEMPOTENCY_MISMATCH"


def test_a_stale_cash_price_in_the_cache_never_completes_points_goods_without_crediting_them(
    api: Any, tenant: Tenant, buyer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.mall.store.listings import ListingsRepo

    # Given points goods for a sister app where u1 has an account, listed for points + cash
    created = admin(api, tenant, "POST", "/v1/admin/apps", {"name": "Sister app", "points_rate": 100})
    sister = created.json_body["app"]["app_id"]
    sister_login = Tenant(tenant.tenant_id, tenant.owner_token, sister, created.json_body["secrets"]["login_secret"], "", "")
    sister_token = member_token(api, sister_login, "u1")
    goods = create_goods(api, tenant, name="50 sister points", category="points", points=50, target_app_id=sister, total=10)
    listing = listing_for(api, tenant, quantity=5, goods=goods, price_points=100, price_fen=500)
    # And this container cached the listing with its cash price
    assert call(api, "GET", "/v1/mall/listings", headers=bearer(buyer)).status_code == 200
    # When an operator (in another container: this cache is not told) makes it points-only
    with monkeypatch.context() as patched:
        patched.setattr(ListingsRepo, "_forget", lambda self, app_id: None)
        edited = admin(
            api,
            tenant,
            "PATCH",
            f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}",
            {"price_points": 100, "price_fen": 0, "expected_version": listing["version"]},
        )
        assert edited.status_code == 200, edited.json_body
    # And u1 exchanges here: the stale decision is refused by the shard's gate and decided again on fresh config
    response = exchange(api, buyer, listing["listing_id"])
    # Then the completed order credited the sister app, in the same transaction as the debit
    assert response.status_code == 201, response.json_body
    assert response.json_body["status"] == "completed"
    assert response.json_body["fulfilment"]["points_credited"] == 50
    assert balance(api, sister_token) == 50
    assert balance(api, buyer) == 900
