"""Admin reads of orders (G6): a time window of one day partition (GSI1, or GSI2 for a status), or one member's orders.

Newest first, no scans. A read makes a bounded number of DynamoDB queries and stops exactly after the last
order it returns, so its cursor resumes at the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor, invalid_cursor
from chalicelib.mall.models.catalog import Order
from chalicelib.mall.store.items import OrderItem
from chalicelib.mall.store.orders import order_of

GSI1_KEYS = ("PK", "SK", "GSI1PK", "GSI1SK")
GSI2_KEYS = ("PK", "SK", "GSI2PK", "GSI2SK")
MEMBER_KEYS = ("PK", "SK")


@dataclass(frozen=True)
class DaySlice:
    """Orders created in [start, end) — UTC ISO instants within one UTC day ``day`` (the GSIs' bucket)."""

    day: str
    start: str
    end: str


@dataclass(frozen=True)
class Chunk:
    items: list[Order]
    cursor: str | None  # where this partition resumes; None when it is read to the end
    reads: int  # DynamoDB queries made


class RecordsRepo:
    def day_orders(
        self,
        app_id: str,
        part: DaySlice,
        status: str | None,
        listing_id: str | None,
        cursor: str | None,
        *,
        want: int,
        page_size: int | None,
        max_reads: int | None,
    ) -> Chunk:
        """Up to ``want`` orders of one day partition in [start, end), newest first, from ``cursor`` on."""
        return _collect(self._day_query(app_id, part, status, listing_id, cursor, page_size), self._day_keys(status), want, max_reads)

    def member_orders(
        self,
        app_id: str,
        member_id: str,
        window: tuple[str, str] | None,
        status: str | None,
        listing_id: str | None,
        cursor: str | None,
        *,
        want: int,
        page_size: int | None,
        max_reads: int | None,
    ) -> Chunk:
        """Up to ``want`` of one member's orders (newest first), optionally created in [start, end)."""
        result = self._member_query(app_id, member_id, window, status, listing_id, cursor, page_size)
        return _collect(result, MEMBER_KEYS, want, max_reads)

    @staticmethod
    def _day_keys(status: str | None) -> tuple[str, ...]:
        return GSI2_KEYS if status else GSI1_KEYS

    def _day_query(
        self, app_id: str, part: DaySlice, status: str | None, listing_id: str | None, cursor: str | None, page_size: int | None
    ) -> Any:
        condition = OrderItem.listing_id == listing_id if listing_id else None
        # sort keys are "{created_at}#{order_id}": every one at `end` sorts after the bare instant, so `between` is [start, end)
        if status:
            pk = keys.orders_by_status_gsi(app_id, status, part.day)
            return OrderItem.gsi2.query(
                pk,
                range_key_condition=OrderItem.GSI2SK.between(part.start, part.end),
                filter_condition=condition,
                scan_index_forward=False,
                last_evaluated_key=_day_start_key(cursor, "GSI2", pk, app_id, part),
                page_size=page_size,
            )
        pk = keys.orders_by_day_gsi(app_id, part.day)
        return OrderItem.gsi1.query(
            pk,
            range_key_condition=OrderItem.GSI1SK.between(part.start, part.end),
            filter_condition=condition,
            scan_index_forward=False,
            last_evaluated_key=_day_start_key(cursor, "GSI1", pk, app_id, part),
            page_size=page_size,
        )

    def _member_query(
        self,
        app_id: str,
        member_id: str,
        window: tuple[str, str] | None,
        status: str | None,
        listing_id: str | None,
        cursor: str | None,
        page_size: int | None,
    ) -> Any:
        pk = keys.member_pk(app_id, member_id)
        conditions = []
        if window is not None:
            conditions += [OrderItem.created_at >= window[0], OrderItem.created_at < window[1]]
        if status:
            conditions.append(OrderItem.status == status)
        if listing_id:
            conditions.append(OrderItem.listing_id == listing_id)
        condition = None
        for each in conditions:
            condition = each if condition is None else condition & each
        return OrderItem.query(
            pk,
            OrderItem.SK.startswith(keys.ORDER_PREFIX),
            filter_condition=condition,
            scan_index_forward=False,
            last_evaluated_key=decode_cursor(cursor, expect={"PK": pk}, sk_prefix=keys.ORDER_PREFIX),
            page_size=page_size,
        )


def _day_start_key(cursor: str | None, index: str, pk: str, app_id: str, part: DaySlice) -> dict[str, Any] | None:
    """The cursor's key, which must lie in the range read (DynamoDB rejects a start key outside it) and name an order."""
    start_key = decode_cursor(cursor, expect={f"{index}PK": pk})
    if start_key is None:
        return None
    sort_key = start_key[f"{index}SK"]["S"]
    if (
        not part.start <= sort_key <= part.end
        or not start_key["PK"]["S"].startswith(keys.member_pk(app_id, ""))
        or not start_key["SK"]["S"].startswith(keys.ORDER_PREFIX)
    ):
        raise invalid_cursor()
    return start_key


def _collect(result: Any, key_names: tuple[str, ...], want: int, max_reads: int | None) -> Chunk:
    """Orders page by page until ``want`` (the cursor is then the last one taken) or ``max_reads`` pages were read."""
    items: list[Order] = []
    reads = 0
    for page in result.page_iter:
        reads += 1
        raws = page.get("Items", [])
        last_key = page.get("LastEvaluatedKey")
        for position, raw in enumerate(raws):
            items.append(order_of(OrderItem.from_raw_data(raw)))
            if len(items) == want:
                more = position < len(raws) - 1 or last_key is not None
                return Chunk(items, encode_cursor({name: raw[name] for name in key_names}) if more else None, reads)
        if last_key is None:
            break
        if max_reads is not None and reads >= max_reads:
            return Chunk(items, encode_cursor(last_key), reads)
    return Chunk(items, None, reads)
