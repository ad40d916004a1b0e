"""Sharded stock with version gates: how a flash sale takes stock without one hot item.

A stock pool (a mall allocation today; a draw's prize or a coupon template's stock later) is spread
over 1–32 shard items, each in its own partition (``keys.stock_pk(app, pool, shard)``). Stock only
changes with ``ADD`` under a condition (``n >= taken``), inside the transaction that also moves it
somewhere else, so the sum is conserved.

Gates: every shard carries the pool's configuration version (``v``) and, per thing sold from it, a
gate attribute (``g_<id>`` = that thing's version, 0 = not on sale). Taking stock can require both
to equal what the decision was made on, so an edit or an offline switch takes effect at once even
though Lambdas cache configuration for a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pynamodb.attributes import NumberAttribute

from chalicelib.core.table import keys
from chalicelib.core.table.items import CounterItem
from chalicelib.core.txn.unit import Write

BATCH_GET_ROUNDS = 5  # retries of unprocessed keys before a read gives what it has


def split(quantity: int, shards: int) -> dict[int, int]:
    """Spread ``quantity`` evenly over ``shards`` (the first ones get the remainder); every shard is named."""
    base, extra = divmod(quantity, shards)
    return {shard: base + (1 if shard < extra else 0) for shard in range(shards)}


def gate(name: str) -> NumberAttribute:
    """The version of ``name`` (a listing, an activity) as the pool's shards know it (0 = not on sale)."""
    return NumberAttribute(attr_name=f"g_{name}")


def shard_item(app_id: str, pool_id: str, shard: int) -> CounterItem:
    return CounterItem(PK=keys.stock_pk(app_id, pool_id, shard), SK=keys.STOCK_SK)


def shard_actions(delta: int, version: int) -> list[Any]:
    """A configuration change's update of one shard: stock moves by ``delta``, the shard learns ``version``."""
    return [CounterItem.n.add(delta), CounterItem.kind.set("stock"), CounterItem.v.set(version)]


def take_or_put(app_id: str, pool_id: str, shard: int, delta: int, *, gated: tuple[int, str, int] | None = None) -> Write:
    """A shard's stock moves by ``delta`` inside a unit of work; taking needs ``n >= -delta`` (never below zero).

    ``gated`` = (pool version, gate name, gate version) the decision was made on: the shard only gives
    stock to a decision made on the current configuration.
    """
    actions = (CounterItem.n.add(delta), CounterItem.kind.set("stock"))
    condition = CounterItem.n >= -delta if delta < 0 else None
    if gated is not None:
        pool_version, gate_name, gate_version = gated
        condition = (CounterItem.n >= -delta) & (CounterItem.v == pool_version) & (gate(gate_name) == gate_version)
    return Write("update", shard_item(app_id, pool_id, shard), condition, "stock", actions, spec=shard)


def read_shards(app_id: str, pool_id: str, shards: int, *, consistent: bool) -> dict[int, dict[str, Any]]:
    """Every shard's raw item (one BatchGetItem): raw, because gate attributes are named by what they gate."""
    connection = CounterItem._get_connection()
    pks = [keys.stock_pk(app_id, pool_id, shard) for shard in range(shards)]
    pending = [{"PK": pk, "SK": keys.STOCK_SK} for pk in pks]
    raw: list[dict[str, Any]] = []
    for _ in range(BATCH_GET_ROUNDS):
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


def levels(found: dict[int, dict[str, Any]]) -> dict[int, int]:
    """Stock left per shard of what ``read_shards`` found."""
    return {shard: int(item.get("n", {}).get("N", "0")) for shard, item in found.items()}


def gates_hold(found: dict[int, dict[str, Any]], pool_version: int, gate_name: str, gate_version: int) -> bool:
    """Whether every shard still gives stock to a decision made on these versions."""
    return all(
        int(item.get("v", {}).get("N", "0")) == pool_version and int(item.get(f"g_{gate_name}", {}).get("N", "-1")) == gate_version
        for item in found.values()
    )


def totals(pools: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Stock left of several pools (app, pool, shards), by pool id: one BatchGetItem per 100 shards."""
    pools = list(pools)
    wanted = [(keys.stock_pk(app_id, pool_id, shard), keys.STOCK_SK) for app_id, pool_id, shards in pools for shard in range(shards)]
    found = {item.PK: int(item.n) for item in CounterItem.batch_get(wanted)} if wanted else {}
    return {
        pool_id: sum(max(0, found.get(keys.stock_pk(app_id, pool_id, shard), 0)) for shard in range(shards))
        for app_id, pool_id, shards in pools
    }
