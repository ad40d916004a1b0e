"""Enterprise goods (G1): create, read, edit, add stock, image uploads — the tenant's stock before any app gets
it.
"""

from __future__ import annotations

import secrets

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import NotFound, ValidationFailed
from chalicelib.core.models import Page, checked, merge_patch
from chalicelib.mall.models.catalog import (
    Goods,
    GoodsIn,
    GoodsPatch,
)
from chalicelib.mall.store.goods import GoodsRepo

# --- G1 goods --------------------------------------------------------------------------------------


def _own_images(tenant_id: str, images: list[str]) -> None:
    """Image keys come from this tenant's upload endpoint: another tenant's key would leak its image."""
    if any(not key.startswith(f"goods/{tenant_id}/") for key in images):
        raise ValidationFailed(
            "Images must be uploaded through this tenant's image endpoint", details=[{"field": "images", "problem": "unknown key"}]
        )


def create_goods(tenant_id: str, body: GoodsIn, repo: GoodsRepo | None = None, clock: Clock | None = None) -> Goods:
    _own_images(tenant_id, body.images)
    now = iso(time_now(clock))
    goods = Goods(
        **body.model_dump(),
        goods_id=f"g_{secrets.token_hex(8)}",
        tenant_id=tenant_id,
        available=body.total,
        created_at=now,
        updated_at=now,
        version=1,
    )
    (repo or GoodsRepo()).create(goods)
    return goods


def get_goods(tenant_id: str, goods_id: str, repo: GoodsRepo | None = None) -> Goods:
    goods = (repo or GoodsRepo()).get(tenant_id, goods_id, consistent=True)
    if goods is None:
        raise NotFound("Goods not found")
    return goods


def list_goods(tenant_id: str, cursor: str | None, limit: int, repo: GoodsRepo | None = None) -> Page[Goods]:
    return (repo or GoodsRepo()).page(tenant_id, cursor, limit)


def edit_goods(tenant_id: str, goods_id: str, patch: GoodsPatch, repo: GoodsRepo | None = None, clock: Clock | None = None) -> Goods:
    """Only the fields sent change (JSON merge patch); the resulting goods are validated as they are read, before the write."""
    repo = repo or GoodsRepo()
    changes = patch.model_dump(exclude_unset=True, exclude={"expected_version"})
    _own_images(tenant_id, changes.get("images", []))
    current = get_goods(tenant_id, goods_id, repo)
    changed = checked(Goods, merge_patch(current.model_dump(), {**changes, "updated_at": iso(time_now(clock))}), "goods")
    repo.replace_fields(changed, patch.expected_version)
    return get_goods(tenant_id, goods_id, repo)


def add_goods_stock(tenant_id: str, goods_id: str, add: int, repo: GoodsRepo | None = None, clock: Clock | None = None) -> Goods:
    """Total only grows, up to MAX_STOCK. CDK goods grow by importing codes (a number alone would be stock without codes)."""
    repo = repo or GoodsRepo()
    goods = get_goods(tenant_id, goods_id, repo)
    if goods.category == "cdk":
        raise ValidationFailed("CDK goods grow by importing codes", details=[{"field": "add", "problem": "upload a code file instead"}])
    now = iso(time_now(clock))
    checked(Goods, {**goods.model_dump(), "total": goods.total + add, "available": goods.available + add, "updated_at": now}, "goods")
    repo.add_total(tenant_id, goods_id, add, now)
    return get_goods(tenant_id, goods_id, repo)


def image_upload(tenant_id: str, content_type: str) -> tuple[str, str]:
    extension = content_type.split("/")[1]
    key = f"goods/{tenant_id}/{secrets.token_hex(10)}.{extension}"
    return key, aws.upload_url(key, content_type)
