"""Allocations (G2): an app's sub-stock of goods, spread over core.stock shards; every move conserves stock."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pynamodb.exceptions import TransactWriteError

from chalicelib.core import stock
from chalicelib.core.errors import Conflict
from chalicelib.core.models import readable
from chalicelib.core.table import keys
from chalicelib.core.table.cache import config_cache
from chalicelib.core.table.dynamo import cancellation_reasons, transaction
from chalicelib.core.table.items import CounterItem
from chalicelib.mall.models.catalog import Allocation, Listing
from chalicelib.mall.store.items import AllocationItem, GoodsItem

# --- allocations and stock shards (G2) -------------------------------------------------------------

_ALLOCATION_OWN = ("allocation_id", "app_id", "goods_id", "quantity", "stock", "created_at", "updated_at", "version", "online")


def _allocation(item: AllocationItem) -> Allocation:
    document = json.loads(item.document)
    return Allocation(
        **document,
        allocation_id=item.allocation_id,
        app_id=item.app_id,
        goods_id=item.goods_id,
        quantity=int(item.quantity),
        online=bool(item.online),
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
    )


def _allocation_document(allocation: Allocation) -> str:
    return allocation.model_dump_json(exclude=set(_ALLOCATION_OWN))


class AllocationsRepo:
    """Every change to an allocation stamps its new version on all its shards, in the same transaction."""

    def _forget(self, app_id: str, allocation_id: str) -> None:
        config_cache().forget(("allocation", app_id, allocation_id))

    def _commit(self, tx: Any, refused: str) -> None:
        try:
            tx._commit()
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in cancellation_reasons(exc):
                raise Conflict(refused) from exc
            raise

    def create(self, allocation: Allocation, tenant_id: str) -> None:
        """Takes ``quantity`` from the goods' available stock and spreads it over the shards, atomically."""
        tx = transaction()
        tx.update(
            GoodsItem(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(allocation.goods_id)),
            actions=[GoodsItem.available.add(-allocation.quantity), GoodsItem.updated_at.set(allocation.created_at)],
            condition=GoodsItem.PK.exists() & (GoodsItem.available >= allocation.quantity),
        )
        tx.save(
            AllocationItem(
                PK=keys.app_pk(allocation.app_id),
                SK=keys.allocation_sk(allocation.allocation_id),
                kind="allocation",
                app_id=allocation.app_id,
                tenant_id=tenant_id,
                allocation_id=allocation.allocation_id,
                goods_id=allocation.goods_id,
                document=_allocation_document(allocation),
                quantity=allocation.quantity,
                online=allocation.online,
                created_at=allocation.created_at,
                updated_at=allocation.updated_at,
                version=1,
            ),
            condition=AllocationItem.PK.does_not_exist(),
        )
        for shard, part in stock.split(allocation.quantity, allocation.shards).items():
            tx.update(stock.shard_item(allocation.app_id, allocation.allocation_id, shard), actions=stock.shard_actions(part, 1))
        self._commit(tx, "Not enough unallocated stock of these goods")

    def get(self, app_id: str, allocation_id: str, *, consistent: bool = False) -> Allocation | None:
        try:
            item = AllocationItem.get(keys.app_pk(app_id), keys.allocation_sk(allocation_id), consistent_read=consistent)
        except AllocationItem.DoesNotExist:
            return None
        return _allocation(item)

    def get_cached(self, app_id: str, allocation_id: str) -> Allocation | None:
        found: Allocation | None = config_cache().get(("allocation", app_id, allocation_id), lambda: self.get(app_id, allocation_id))
        return found

    def all(self, app_id: str) -> list[Allocation]:
        return [
            _allocation(item)
            for item in AllocationItem.query(keys.app_pk(app_id), AllocationItem.SK.startswith(keys.ALLOCATION_PREFIX))
            if item.kind == "allocation"
        ]

    def _versioned(self, tx: Any, allocation: Allocation, actions: list[Any]) -> None:
        tx.update(
            AllocationItem(PK=keys.app_pk(allocation.app_id), SK=keys.allocation_sk(allocation.allocation_id)),
            actions=[*actions, AllocationItem.version.add(1)],
            condition=AllocationItem.version == allocation.version,
        )

    def replace_settings(self, allocation: Allocation, expected_version: int) -> None:
        document = _allocation_document(allocation)
        readable(
            lambda: _allocation(
                AllocationItem(
                    allocation_id=allocation.allocation_id,
                    app_id=allocation.app_id,
                    goods_id=allocation.goods_id,
                    document=document,
                    quantity=allocation.quantity,
                    online=allocation.online,
                    created_at=allocation.created_at,
                    updated_at=allocation.updated_at,
                    version=expected_version + 1,
                )
            ),
            "allocation",
        )
        tx = transaction()
        self._versioned(
            tx,
            allocation.model_copy(update={"version": expected_version}),
            [
                AllocationItem.document.set(document),
                AllocationItem.online.set(allocation.online),
                AllocationItem.updated_at.set(allocation.updated_at),
            ],
        )
        for shard in range(allocation.shards):
            tx.update(
                stock.shard_item(allocation.app_id, allocation.allocation_id, shard), actions=stock.shard_actions(0, expected_version + 1)
            )
        self._commit(tx, "The allocation was changed by someone else; read it again")
        self._forget(allocation.app_id, allocation.allocation_id)

    def top_up(self, allocation: Allocation, tenant_id: str, quantity: int, at: str) -> None:
        """More of the goods into this app's shards (spread evenly), from the goods' available stock."""
        tx = transaction()
        tx.update(
            GoodsItem(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(allocation.goods_id)),
            actions=[GoodsItem.available.add(-quantity), GoodsItem.updated_at.set(at)],
            condition=GoodsItem.PK.exists() & (GoodsItem.available >= quantity),
        )
        self._versioned(tx, allocation, [AllocationItem.quantity.add(quantity), AllocationItem.updated_at.set(at)])
        for shard, part in stock.split(quantity, allocation.shards).items():
            tx.update(
                stock.shard_item(allocation.app_id, allocation.allocation_id, shard),
                actions=stock.shard_actions(part, allocation.version + 1),
            )
        self._commit(tx, "Not enough unallocated stock of these goods (or the allocation changed; read it again)")
        self._forget(allocation.app_id, allocation.allocation_id)

    def give_back(self, allocation: Allocation, tenant_id: str, parts: dict[int, int], at: str) -> None:
        """Unsold stock from these shards back to the goods (each shard conditioned on having it)."""
        quantity = sum(parts.values())
        tx = transaction()
        tx.update(
            GoodsItem(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(allocation.goods_id)),
            actions=[GoodsItem.available.add(quantity), GoodsItem.updated_at.set(at)],
            condition=GoodsItem.PK.exists(),
        )
        self._versioned(tx, allocation, [AllocationItem.quantity.add(-quantity), AllocationItem.updated_at.set(at)])
        for shard in range(allocation.shards):
            part = parts.get(shard, 0)
            condition = CounterItem.n >= part if part else None
            tx.update(
                stock.shard_item(allocation.app_id, allocation.allocation_id, shard),
                actions=stock.shard_actions(-part, allocation.version + 1),
                condition=condition,
            )
        self._commit(tx, "The stock changed while returning it; read it again")
        self._forget(allocation.app_id, allocation.allocation_id)

    def stock(self, app_id: str, allocation_id: str, shards: int, *, consistent: bool = False) -> dict[int, int]:
        """Stock left per shard (one BatchGetItem)."""
        return stock.levels(stock.read_shards(app_id, allocation_id, shards, consistent=consistent))

    def gated_stock(self, allocation: Allocation, listing: Listing) -> tuple[dict[int, int], bool]:
        """Stock per shard (consistent) and whether every shard still sells under this decision's versions."""
        found = stock.read_shards(allocation.app_id, allocation.allocation_id, allocation.shards, consistent=True)
        return stock.levels(found), stock.gates_hold(found, allocation.version, listing.listing_id, listing.version)

    def stocks(self, allocations: Iterable[Allocation]) -> dict[str, int]:
        """Stock left of several allocations (one BatchGetItem per 100 shards)."""
        return stock.totals((a.app_id, a.allocation_id, a.shards) for a in allocations)
