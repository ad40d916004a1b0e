"""Orders in the member's partition, their id index and GSI entries, CDK code claims, and workflow tokens."""

from __future__ import annotations

import random
from collections import Counter

from pynamodb.exceptions import UpdateError

from chalicelib.core import stock
from chalicelib.core.errors import SoldOut
from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import IndexItem
from chalicelib.core.txn.unit import Write
from chalicelib.mall.models.catalog import Order
from chalicelib.mall.store.items import CodeItem, OrderItem

# --- orders (G4–G6) --------------------------------------------------------------------------------

# The reconciler's watch list (mall.jobs.reconcile): the order-id index item of every order that needs its workflow
# carries a GSI2 entry in a few partitions per day for all apps (``keys.watched_orders_gsi``). It is written with the
# order (or the refund request), and removed by the reconciler once the order no longer waits on a workflow. No scans.
WATCHED_AT_START = ("awaiting_payment", "paying_out")


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
    index = IndexItem(
        PK=keys.order_index_pk(order.app_id, order.order_id), SK=keys.ORDER_INDEX_SK, kind="order_index", target=order.member_id
    )
    if order.status in WATCHED_AT_START:
        for name, value in watch_keys(order.app_id, order.order_id, order.created_at).items():
            setattr(index, name, value)
    return [
        Write("put", item, OrderItem.PK.does_not_exist(), "order", spec=order.order_id),
        Write("put", index, IndexItem.PK.does_not_exist(), "order", spec=order.order_id),
    ]


def watch_keys(app_id: str, order_id: str, at: str) -> dict[str, str]:
    return {"GSI2PK": keys.watched_orders_gsi(at[:10], order_id), "GSI2SK": keys.watched_order_gsi_sk(at, app_id, order_id)}


def order_watch(order: Order, at: str) -> Write:
    """(Re)put the order on the reconciler's watch list (in the transaction that makes it wait: a refund request)."""
    item = IndexItem(PK=keys.order_index_pk(order.app_id, order.order_id), SK=keys.ORDER_INDEX_SK)
    watch = watch_keys(order.app_id, order.order_id, at)
    actions = (IndexItem.GSI2PK.set(watch["GSI2PK"]), IndexItem.GSI2SK.set(watch["GSI2SK"]))
    return Write("update", item, IndexItem.PK.exists(), "order", actions, spec=order.order_id)


def order_unwatch(app_id: str, order_id: str, entry: str) -> None:
    """Off the watch list (only the entry the reconciler read: a newer one stays)."""
    item = IndexItem(PK=keys.order_index_pk(app_id, order_id), SK=keys.ORDER_INDEX_SK)
    try:
        item.update(actions=[IndexItem.GSI2PK.remove(), IndexItem.GSI2SK.remove()], condition=IndexItem.GSI2SK == entry)  # noqa: SIM300
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def watched(day: str, before: str, limit: int = 200) -> list[tuple[str, str, str]]:
    """(entry, app id, order id) on the watch list of ``day`` that started waiting before ``before`` (oldest first)."""
    found = []
    for shard in range(keys.WATCH_SHARDS):
        pk = keys.watched_orders_gsi(day, shard=shard)
        for item in IndexItem.gsi2.query(pk, before > IndexItem.GSI2SK, limit=limit):
            entry = str(item.GSI2SK)
            _, app_id, order_id = entry.rsplit("#", 2)
            found.append((entry, app_id, order_id))
    return sorted(found)[:limit]


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
    from chalicelib.mall.store.codes import issued_write

    buckets = Counter(keys.code_bucket(digest) for digest, _ in codes)
    return [code_claim(goods_id, digest, order) for digest, _ in codes] + [issued_write(goods_id, b, n) for b, n in buckets.items()]


def code_releases(goods_id: str, codes: list[str], order_id: str) -> list[Write]:
    """A cancelled order's codes back to the pool, and out of the issued count."""
    from chalicelib.mall.store.codes import issued_write

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
            index = IndexItem.get(keys.order_index_pk(app_id, order_id), keys.ORDER_INDEX_SK, consistent_read=True)
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
    return [stock.take_or_put(order.app_id, order.allocation_id, int(shard), part) for shard, part in order.shards.items() if part > 0]


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
