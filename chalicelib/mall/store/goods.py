"""Enterprise goods under the tenant (G1): created, edited with optimistic versions, stock only ever added."""

from __future__ import annotations

import json

from pynamodb.exceptions import UpdateError

from chalicelib.core.errors import Conflict
from chalicelib.core.models import Page, readable
from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.mall.models.catalog import MAX_STOCK, Goods
from chalicelib.mall.store.items import GoodsItem

# --- goods (G1) ------------------------------------------------------------------------------------

_GOODS_NUMBERS = ("total", "available", "goods_id", "tenant_id", "created_at", "updated_at", "version")


def _goods(item: GoodsItem) -> Goods:
    document = json.loads(item.document)
    return Goods(
        **document,
        goods_id=item.goods_id,
        tenant_id=item.tenant_id,
        total=int(item.total),
        available=int(item.available),
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
    )


def _goods_document(goods: Goods) -> str:
    return goods.model_dump_json(exclude=set(_GOODS_NUMBERS))


def _goods_document_readable(goods: Goods) -> None:
    """The document about to be written, read back as the reader will (a write the reader rejects is refused)."""
    item = GoodsItem(
        goods_id=goods.goods_id,
        tenant_id=goods.tenant_id,
        document=_goods_document(goods),
        total=goods.total,
        available=goods.available,
        created_at=goods.created_at,
        updated_at=goods.updated_at,
        version=goods.version,
    )
    readable(lambda: _goods(item), "goods")


class GoodsRepo:
    def create(self, goods: Goods) -> None:
        GoodsItem(
            PK=keys.tenant_pk(goods.tenant_id),
            SK=keys.goods_sk(goods.goods_id),
            kind="goods",
            tenant_id=goods.tenant_id,
            goods_id=goods.goods_id,
            document=_goods_document(goods),
            total=goods.total,
            available=goods.available,
            created_at=goods.created_at,
            updated_at=goods.updated_at,
            version=1,
        ).save(condition=GoodsItem.PK.does_not_exist())

    def get(self, tenant_id: str, goods_id: str, *, consistent: bool = False) -> Goods | None:
        try:
            return _goods(GoodsItem.get(keys.tenant_pk(tenant_id), keys.goods_sk(goods_id), consistent_read=consistent))
        except GoodsItem.DoesNotExist:
            return None

    def get_cached(self, tenant_id: str, goods_id: str) -> Goods | None:
        found: Goods | None = config_cache().get(("goods", tenant_id, goods_id), lambda: self.get(tenant_id, goods_id))
        return found

    def page(self, tenant_id: str, cursor: str | None, limit: int) -> Page[Goods]:
        pk = keys.tenant_pk(tenant_id)
        result = GoodsItem.query(
            pk,
            GoodsItem.SK.startswith(keys.GOODS_PREFIX),
            limit=limit,
            last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}, sk_prefix=keys.GOODS_PREFIX),
        )
        items = [_goods(item) for item in result if item.kind == "goods"]
        return Page[Goods](items=items, cursor=encode_cursor(result.last_evaluated_key))

    def replace_fields(self, goods: Goods, expected_version: int) -> None:
        _goods_document_readable(goods)
        item = GoodsItem(PK=keys.tenant_pk(goods.tenant_id), SK=keys.goods_sk(goods.goods_id))
        try:
            item.update(
                actions=[
                    GoodsItem.document.set(_goods_document(goods)),
                    GoodsItem.updated_at.set(goods.updated_at),
                    GoodsItem.version.add(1),
                ],
                condition=GoodsItem.version == expected_version,
            )
        except UpdateError as exc:
            if condition_failed(exc):
                raise Conflict("The goods were changed by someone else; read them again") from exc
            raise
        config_cache().forget(("goods", goods.tenant_id, goods.goods_id))

    def add_total(self, tenant_id: str, goods_id: str, add: int, at: str) -> None:
        """Total only grows, never past MAX_STOCK (what the reader accepts); what is added is available to allocate."""
        item = GoodsItem(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(goods_id))
        try:
            item.update(
                actions=[GoodsItem.total.add(add), GoodsItem.available.add(add), GoodsItem.updated_at.set(at)],
                condition=GoodsItem.PK.exists() & (GoodsItem.total <= MAX_STOCK - add),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                raise Conflict(f"The total may not exceed {MAX_STOCK} (or the goods are gone); read them again") from exc
            raise
        config_cache().forget(("goods", tenant_id, goods_id))
