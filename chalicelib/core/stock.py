"""Goods, allocations (with sharded stock), listings and orders in the single table.

Stock only ever changes with ``ADD`` under a condition (``available >= q`` on goods, ``n >= part`` on
a shard), in transactions that also move it somewhere else, so the sum is conserved: goods available +
every allocation's stock + what orders hold == goods total.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import NumberAttribute

from chalicelib.core.table import keys
from chalicelib.core.table.items import CounterItem
from chalicelib.core.txn.unit import Write


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
