"""Goods, allocations (with sharded stock), listings and orders in the single table.

Stock only ever changes with ``ADD`` under a condition (``available >= q`` on goods, ``n >= part`` on
a shard), in transactions that also move it somewhere else, so the sum is conserved: goods available +
every allocation's stock + what orders hold == goods total.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pynamodb.attributes import NumberAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.dal import keys
from chalicelib.dal.apps import config_cache
from chalicelib.dal.common import cancellation_reasons, condition_failed, decode_cursor, encode_cursor, transaction
from chalicelib.dal.models import AllocationItem, CodeItem, ConfigItem, CounterItem, GoodsItem, IndexItem, OrderItem
from chalicelib.dal.points import Write
from chalicelib.errors import Conflict, NotFound, SoldOut
from chalicelib.models.domain import Page
from chalicelib.models.mall import Allocation, Goods, Listing, Order

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
        """Total only grows; what is added is available to allocate."""
        item = GoodsItem(PK=keys.tenant_pk(tenant_id), SK=keys.goods_sk(goods_id))
        try:
            item.update(
                actions=[GoodsItem.total.add(add), GoodsItem.available.add(add), GoodsItem.updated_at.set(at)],
                condition=GoodsItem.PK.exists(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                raise NotFound("Goods not found") from exc
            raise


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


def split(quantity: int, shards: int) -> dict[int, int]:
    """Spread ``quantity`` evenly over ``shards`` (the first ones get the remainder); every shard is named."""
    base, extra = divmod(quantity, shards)
    return {shard: base + (1 if shard < extra else 0) for shard in range(shards)}


def listing_gate(listing_id: str) -> NumberAttribute:
    """The listing's version as its allocation's shards know it (0 = not on sale): ``g_<listing id>``."""
    return NumberAttribute(attr_name=f"g_{listing_id}")


def _shard(app_id: str, allocation_id: str, shard: int) -> CounterItem:
    return CounterItem(PK=keys.stock_pk(app_id, allocation_id, shard), SK=keys.STOCK_SK)


def stock_write(app_id: str, allocation_id: str, shard: int, delta: int, *, gate: tuple[int, str, int] | None = None) -> Write:
    """A shard's stock moves by ``delta``; taking needs ``n >= -delta`` (never below zero).

    An exchange also passes ``gate`` = (allocation version, listing id, listing version) it decided on:
    the shard only gives stock to a decision made on the current configuration, so an edit, an offline
    switch or a void takes effect at once even though Lambdas cache configuration for a few seconds.
    """
    actions = (CounterItem.n.add(delta), CounterItem.kind.set("stock"))
    condition = CounterItem.n >= -delta if delta < 0 else None
    if gate is not None:
        allocation_version, listing_id, listing_version = gate
        condition = (CounterItem.n >= -delta) & (CounterItem.v == allocation_version) & (listing_gate(listing_id) == listing_version)
    return Write("update", _shard(app_id, allocation_id, shard), condition, "stock", actions, spec=shard)


def _shard_actions(delta: int, version: int) -> list[Any]:
    return [CounterItem.n.add(delta), CounterItem.kind.set("stock"), CounterItem.v.set(version)]


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
        for shard, part in split(allocation.quantity, allocation.shards).items():
            tx.update(_shard(allocation.app_id, allocation.allocation_id, shard), actions=_shard_actions(part, 1))
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
        tx = transaction()
        self._versioned(
            tx,
            allocation.model_copy(update={"version": expected_version}),
            [
                AllocationItem.document.set(_allocation_document(allocation)),
                AllocationItem.online.set(allocation.online),
                AllocationItem.updated_at.set(allocation.updated_at),
            ],
        )
        for shard in range(allocation.shards):
            tx.update(_shard(allocation.app_id, allocation.allocation_id, shard), actions=_shard_actions(0, expected_version + 1))
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
        for shard, part in split(quantity, allocation.shards).items():
            tx.update(_shard(allocation.app_id, allocation.allocation_id, shard), actions=_shard_actions(part, allocation.version + 1))
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
                _shard(allocation.app_id, allocation.allocation_id, shard),
                actions=_shard_actions(-part, allocation.version + 1),
                condition=condition,
            )
        self._commit(tx, "The stock changed while returning it; read it again")
        self._forget(allocation.app_id, allocation.allocation_id)

    def _shards(self, app_id: str, allocation_id: str, shards: int, *, consistent: bool) -> dict[int, dict[str, Any]]:
        """Every shard's raw item (one BatchGetItem): raw, because a listing's gate is an attribute no model declares."""
        connection = CounterItem._get_connection()
        pks = [keys.stock_pk(app_id, allocation_id, shard) for shard in range(shards)]
        pending = [{"PK": pk, "SK": keys.STOCK_SK} for pk in pks]
        raw: list[dict[str, Any]] = []
        for _ in range(5):
            response = connection.batch_get_item(pending, consistent_read=consistent)  # type: ignore[arg-type]  # key dicts, despite the stub
            raw += response.get("Responses", {}).get(connection.table_name, [])
            pending = [
                {name: next(iter(value.values())) for name, value in key.items()}
                for key in response.get("UnprocessedKeys", {}).get(connection.table_name, {}).get("Keys", [])
            ]
            if not pending:
                break
        by_pk = {item["PK"]["S"]: item for item in raw}
        return {shard: by_pk.get(pk, {}) for shard, pk in enumerate(pks)}

    def stock(self, app_id: str, allocation_id: str, shards: int, *, consistent: bool = False) -> dict[int, int]:
        """Stock left per shard (one BatchGetItem)."""
        found = self._shards(app_id, allocation_id, shards, consistent=consistent)
        return {shard: int(item.get("n", {}).get("N", "0")) for shard, item in found.items()}

    def gated_stock(self, allocation: Allocation, listing: Listing) -> tuple[dict[int, int], bool]:
        """Stock per shard (consistent) and whether every shard still sells under this decision's versions."""
        found = self._shards(allocation.app_id, allocation.allocation_id, allocation.shards, consistent=True)
        current = all(
            int(item.get("v", {}).get("N", "0")) == allocation.version
            and int(item.get(f"g_{listing.listing_id}", {}).get("N", "-1")) == listing.version
            for item in found.values()
        )
        return {shard: int(item.get("n", {}).get("N", "0")) for shard, item in found.items()}, current

    def stocks(self, allocations: Iterable[Allocation]) -> dict[str, int]:
        """Stock left of several allocations (one BatchGetItem per 100 shards)."""
        allocations = list(allocations)
        wanted = [(keys.stock_pk(a.app_id, a.allocation_id, shard), keys.STOCK_SK) for a in allocations for shard in range(a.shards)]
        found = {item.PK: int(item.n) for item in CounterItem.batch_get(wanted)} if wanted else {}
        totals: dict[str, int] = {}
        for allocation in allocations:
            totals[allocation.allocation_id] = sum(
                max(0, found.get(keys.stock_pk(allocation.app_id, allocation.allocation_id, shard), 0))
                for shard in range(allocation.shards)
            )
        return totals


# --- listings (G3) ---------------------------------------------------------------------------------


def _listing(item: ConfigItem) -> Listing:
    return Listing(
        **json.loads(item.document),
        listing_id=item.config_id,
        app_id=item.app_id,
        status=item.status or "draft",  # type: ignore[arg-type]  # validated by Listing
        updated_at=item.updated_at,
        version=int(item.version),
    )


class ListingsRepo:
    KIND = "listing"

    def _forget(self, app_id: str) -> None:
        config_cache().forget((self.KIND, app_id))

    def put(self, listing: Listing, expected_version: int | None, shards: int) -> Listing:
        """The listing, and its gate on every shard of its allocation (its version when online, else 0), together."""
        version = 1 if expected_version is None else expected_version + 1
        document = listing.model_dump_json(exclude={"listing_id", "app_id", "status", "updated_at", "version"})
        item = ConfigItem(
            PK=keys.app_pk(listing.app_id),
            SK=keys.config_sk(self.KIND, listing.listing_id),
            kind=self.KIND,
            app_id=listing.app_id,
            config_id=listing.listing_id,
            document=document,
            updated_at=listing.updated_at,
            version=version,
            status=listing.status,
        )
        condition = ConfigItem.PK.does_not_exist() if expected_version is None else (ConfigItem.version == expected_version)
        tx = transaction()
        tx.save(item, condition=condition)
        gate = version if listing.status == "online" else 0
        for shard in range(shards):
            tx.update(_shard(listing.app_id, listing.allocation_id, shard), actions=[listing_gate(listing.listing_id).set(gate)])
        try:
            tx._commit()
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in cancellation_reasons(exc):
                raise Conflict("The listing was changed by someone else; read it again") from exc
            raise
        self._forget(listing.app_id)
        return listing.model_copy(update={"version": version})

    def get(self, app_id: str, listing_id: str) -> Listing | None:
        try:
            item = ConfigItem.get(keys.app_pk(app_id), keys.config_sk(self.KIND, listing_id), consistent_read=True)
        except ConfigItem.DoesNotExist:
            return None
        return _listing(item)

    def all(self, app_id: str) -> list[Listing]:
        prefix = keys.config_sk(self.KIND, "")
        return [_listing(item) for item in ConfigItem.query(keys.app_pk(app_id), ConfigItem.SK.startswith(prefix))]

    def all_cached(self, app_id: str) -> list[Listing]:
        listings: list[Listing] = config_cache().get((self.KIND, app_id), lambda: self.all(app_id))
        return listings

    def forget(self, app_id: str) -> None:
        self._forget(app_id)


# --- orders (G4–G6) --------------------------------------------------------------------------------


def order_of(item: OrderItem) -> Order:
    return Order.model_validate_json(item.document).model_copy(
        update={"status": item.status, "version": int(item.version), "updated_at": item.updated_at}
    )


def _order_keys(order: Order) -> dict[str, str]:
    day = order.created_at[:10]
    at_id = f"{order.created_at}#{order.order_id}"
    return {
        "GSI1PK": keys.orders_by_day_gsi(order.app_id, day),
        "GSI1SK": at_id,
        "GSI2PK": keys.orders_by_status_gsi(order.app_id, order.status, day),
        "GSI2SK": at_id,
    }


def order_put(order: Order) -> list[Write]:
    """The new order and its id index (for callers that only know the order id)."""
    item = OrderItem(
        PK=keys.member_pk(order.app_id, order.member_id),
        SK=keys.order_sk(order.order_id),
        kind="order",
        order_id=order.order_id,
        app_id=order.app_id,
        member_id=order.member_id,
        openid=order.openid,
        listing_id=order.listing_id,
        status=order.status,
        created_at=order.created_at,
        updated_at=order.updated_at,
        document=order.model_dump_json(),
        version=order.version,
    )
    for name, value in _order_keys(order).items():
        setattr(item, name, value)
    index = IndexItem(PK=keys.order_index_pk(order.app_id, order.order_id), SK=keys.INDEX_SK, kind="order_index", target=order.member_id)
    return [
        Write("put", item, OrderItem.PK.does_not_exist(), "order", spec=order.order_id),
        Write("put", index, IndexItem.PK.does_not_exist(), "order", spec=order.order_id),
    ]


def order_update(order: Order, expected_version: int, allowed: tuple[str, ...]) -> Write:
    """The order's next state, only from the state (and version) it was decided on."""
    item = OrderItem(PK=keys.member_pk(order.app_id, order.member_id), SK=keys.order_sk(order.order_id))
    gsi = _order_keys(order)
    actions = (
        OrderItem.document.set(order.model_copy(update={"version": expected_version + 1}).model_dump_json()),
        OrderItem.status.set(order.status),
        OrderItem.updated_at.set(order.updated_at),
        OrderItem.GSI2PK.set(gsi["GSI2PK"]),
        OrderItem.version.add(1),
    )
    condition = (OrderItem.version == expected_version) & OrderItem.status.is_in(*allowed)
    return Write("update", item, condition, "order", actions, spec=order.order_id)


def code_claim(goods_id: str, digest: str, order: Order) -> Write:
    """Issue one free CDK code to an order: exactly once (condition: nobody has it)."""
    item = CodeItem(PK=keys.code_pk(goods_id, digest), SK=keys.CODE_SK)
    actions = (
        CodeItem.order_id.set(order.order_id),
        CodeItem.app_id.set(order.app_id),
        CodeItem.issued_at.set(order.created_at),
        CodeItem.GSI1PK.remove(),
        CodeItem.GSI1SK.remove(),
    )
    return Write("update", item, CodeItem.PK.exists() & CodeItem.order_id.does_not_exist(), "code", actions, spec=digest)


def code_release(goods_id: str, code: str, order_id: str) -> Write:
    """Give a code issued to a cancelled order back to the pool."""
    digest = keys.code_digest(code)
    bucket = keys.code_bucket(digest)
    item = CodeItem(PK=keys.code_pk(goods_id, digest), SK=keys.CODE_SK)
    actions = (
        CodeItem.order_id.remove(),
        CodeItem.app_id.remove(),
        CodeItem.issued_at.remove(),
        CodeItem.GSI1PK.set(keys.free_codes_gsi(goods_id, bucket)),
        CodeItem.GSI1SK.set(f"r{digest}"),
    )
    return Write("update", item, CodeItem.order_id == order_id, "code", actions, spec=digest)


def code_claims(goods_id: str, codes: list[tuple[str, str]], order: Order) -> list[Write]:
    """Claim these (digest, code) pairs for an order, and count them issued (one counter per bucket)."""
    from chalicelib.dal.codes import issued_write

    buckets = Counter(keys.code_bucket(digest) for digest, _ in codes)
    return [code_claim(goods_id, digest, order) for digest, _ in codes] + [issued_write(goods_id, b, n) for b, n in buckets.items()]


def code_releases(goods_id: str, codes: list[str], order_id: str) -> list[Write]:
    """A cancelled order's codes back to the pool, and out of the issued count."""
    from chalicelib.dal.codes import issued_write

    buckets = Counter(keys.code_bucket(keys.code_digest(code)) for code in codes)
    return [code_release(goods_id, code, order_id) for code in codes] + [issued_write(goods_id, b, -n) for b, n in buckets.items()]


class OrdersRepo:
    def get(self, app_id: str, member_id: str, order_id: str) -> Order | None:
        try:
            item = OrderItem.get(keys.member_pk(app_id, member_id), keys.order_sk(order_id), consistent_read=True)
        except OrderItem.DoesNotExist:
            return None
        return order_of(item)

    def find(self, app_id: str, order_id: str) -> Order | None:
        """By order id alone (admin, payment webhooks, workflows)."""
        try:
            index = IndexItem.get(keys.order_index_pk(app_id, order_id), keys.INDEX_SK, consistent_read=True)
        except IndexItem.DoesNotExist:
            return None
        return self.get(app_id, index.target, order_id)

    def member_page(self, app_id: str, member_id: str, cursor: str | None, limit: int) -> Page[Order]:
        pk = keys.member_pk(app_id, member_id)
        result = OrderItem.query(
            pk,
            OrderItem.SK.startswith(keys.ORDER_PREFIX),
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}, sk_prefix=keys.ORDER_PREFIX),
        )
        return Page[Order](items=[order_of(item) for item in result], cursor=encode_cursor(result.last_evaluated_key))


# --- CDK codes: candidates for a claim ------------------------------------------------------------


def free_codes(goods_id: str, want: int, *, sample: int = 25) -> list[tuple[str, str]]:
    """(digest, code) of up to ``want`` codes not issued yet, from random buckets of the free-code index.

    The index is eventually consistent and other exchanges race for the same codes: a claim's
    condition is the truth, the caller retries with other candidates when it fails.
    """
    buckets = list(range(keys.CODE_BUCKETS))
    random.shuffle(buckets)
    found: list[tuple[str, str]] = []
    for bucket in buckets:
        candidates = [
            (item.PK.rsplit("#", 1)[1], item.code)
            for item in CodeItem.gsi1.query(keys.free_codes_gsi(goods_id, bucket), limit=sample)
            if isinstance(item, CodeItem)
        ]
        random.shuffle(candidates)
        found += candidates[: want - len(found)]
        if len(found) >= want:
            return found
    if len(found) < want:
        raise SoldOut("No codes left in the pool")
    return found


def release_stock(order: Order) -> list[Write]:
    """The stock an order took, back to the shards it came from."""
    return [stock_write(order.app_id, order.allocation_id, int(shard), part) for shard, part in order.shards.items() if part > 0]


# --- fulfilment workflow task tokens (G5) -----------------------------------------------------------


def order_token_put(order: Order, step: str, token: str, status: str) -> bool:
    """Keep a waiting workflow step's task token on the order, only while the order is in ``status``.

    False when the order moved on (paid, shipped, cancelled): the caller resumes the step itself. The
    version does not change: a token is not a change of the order.
    """
    item = OrderItem(PK=keys.member_pk(order.app_id, order.member_id), SK=keys.order_sk(order.order_id))
    try:
        item.update(actions=[OrderItem.task_token.set(f"{step}#{token}")], condition=OrderItem.status == status)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def order_token_clear(order: Order, step: str, token: str) -> None:
    """Forget a step's task token once it was resumed (only if it is still that token)."""
    item = OrderItem(PK=keys.member_pk(order.app_id, order.member_id), SK=keys.order_sk(order.order_id))
    try:
        item.update(actions=[OrderItem.task_token.remove()], condition=OrderItem.task_token == f"{step}#{token}")
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def order_token(app_id: str, member_id: str, order_id: str, step: str) -> str | None:
    """The task token a workflow step left on the order, if that step is the one waiting."""
    try:
        item = OrderItem.get(
            keys.member_pk(app_id, member_id), keys.order_sk(order_id), consistent_read=True, attributes_to_get=["task_token"]
        )
    except OrderItem.DoesNotExist:
        return None
    held_by, _, token = (item.task_token or "").partition("#")
    return token if held_by == step and token else None
