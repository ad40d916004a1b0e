"""Mall set-up through the admin API (the way an operator does it), shared by mall tests."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Tenant, bearer, call
from tests.support import login_token, server_headers


def member_token(api: Any, tenant: Tenant, openid: str, device_id: str = "device-1") -> str:
    response = call(
        api,
        "POST",
        "/v1/auth/member",
        {"app_id": tenant.app_id, "login_token": login_token(tenant.login_secret, openid), "device_id": device_id},
    )
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


def grant(api: Any, tenant: Tenant, openid: str, points: int, reference: str | None = None) -> None:
    path = "/v1/server/points/grants"
    body = json.dumps({"openid": openid, "points": points, "reference": reference or f"seed-{openid}-{points}", "reason": "seed"}).encode()
    response = call(api, "POST", path, raw=body, headers=server_headers(tenant.app_id, tenant.server_key, "POST", path, body))
    assert response.status_code == 200, response.json_body


def admin(api: Any, tenant: Tenant, method: str, path: str, body: Any = None) -> Any:
    return call(api, method, path, body, bearer(tenant.owner_token))


def create_goods(api: Any, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "Mug", "category": "physical", "total": 100, **fields}
    response = admin(api, tenant, "POST", "/v1/admin/goods", body)
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def allocate(api: Any, tenant: Tenant, goods_id: str, quantity: int, **fields: Any) -> dict[str, Any]:
    body = {"goods_id": goods_id, "quantity": quantity, **fields}
    response = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/allocations", body)
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def list_item(api: Any, tenant: Tenant, allocation_id: str, **fields: Any) -> dict[str, Any]:
    body = {"allocation_id": allocation_id, "price_points": 100, **fields}
    response = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/listings", body)
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def listing_for(api: Any, tenant: Tenant, quantity: int = 10, goods: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Goods → allocation → listing in one go; ``fields`` split by name between allocation and listing."""
    allocation_fields = {k: v for k, v in fields.items() if k in ALLOCATION_FIELDS}
    listing_fields = {k: v for k, v in fields.items() if k not in ALLOCATION_FIELDS}
    goods = goods or create_goods(api, tenant, total=max(quantity, 1) + 10)
    allocation = allocate(api, tenant, goods["goods_id"], quantity, **allocation_fields)
    return list_item(api, tenant, allocation["allocation_id"], **listing_fields)


ALLOCATION_FIELDS = {"shards", "member_limits", "device_limits", "total_out_limit", "valid_from", "valid_to", "online", "auto_fulfil"}

ADDRESS = {
    "name": "Li Lei",
    "phone": "13800000000",
    "province": "Zhejiang",
    "city": "Hangzhou",
    "district": "Xihu",
    "detail": "1 West Lake Rd",
}


def exchange(api: Any, token: str, listing_id: str, quantity: int = 1, key: str | None = None, **extra: Any) -> Any:
    headers = bearer(token) | ({"Idempotency-Key": key} if key else {})
    return call(api, "POST", "/v1/mall/exchanges", {"listing_id": listing_id, "quantity": quantity, **extra}, headers)


def add_free_codes(tenant_id: str, goods_id: str, codes: list[str]) -> None:
    """CDK codes as the pool import leaves them (free, in the free-code index), counted in the goods' total."""
    from chalicelib.core.table import keys
    from chalicelib.mall.store.goods import GoodsRepo
    from chalicelib.mall.store.items import CodeItem

    for seq, code in enumerate(codes):
        digest = keys.code_digest(code)
        CodeItem(
            PK=keys.code_pk(goods_id, digest),
            SK=keys.CODE_SK,
            kind="code",
            goods_id=goods_id,
            code=code,
            import_id="test",
            chunk=0,
            seq=seq,
            GSI1PK=keys.free_codes_gsi(goods_id, keys.code_bucket(digest)),
            GSI1SK=f"{seq:010d}",
        ).save()
    GoodsRepo().add_total(tenant_id, goods_id, len(codes), "2026-01-01T00:00:00Z")
