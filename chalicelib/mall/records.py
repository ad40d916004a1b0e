"""Exchange records (G6): an app's orders by business day, status, listing or member; cursor pages and CSV exports.

Days are the app's business days (its time zone), as everywhere else. The order indexes are bucketed by the
UTC day of ``created_at``, so a local day is a UTC window [start, end) that touches one or two UTC-day
partitions; each is read with a key condition on the sort key (``{created_at}#{order_id}``), never a scan.
A status picks GSI2 (status and day) instead of GSI1; a listing is a filter. A member's orders come from
their own partition (all time unless days are given). Every read is newest first.

A list request reads at most ``MAX_LIST_READS`` DynamoDB pages, so a sparse filter cannot make one request
expensive: its page may then be short, or empty, with a cursor to go on. The cursor remembers the UTC day
partition and the key to resume after; it is checked against the list being read (400 otherwise).

Exports always go to S3 (one behaviour for any size) and come back as a presigned download; a filter that
matches more than one request can read and write continues with a cursor into further files. CDK codes
never appear in a record or an export: only their owner sees them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.errors import Conflict, NotFound, UpstreamFailed
from chalicelib.core.ids import member_id_for, new_id
from chalicelib.core.observability import log_event, logger
from chalicelib.core.table import cursors
from chalicelib.mall import fulfilment
from chalicelib.mall.models.catalog import Order
from chalicelib.mall.models.records import EXPORT_PREFIX, OrderExport, OrderExportRequest, OrderFilter, OrderRecord, OrderRecordPage
from chalicelib.mall.store.orders import OrdersRepo
from chalicelib.mall.store.records import DaySlice, RecordsRepo
from chalicelib.payments.refunds import RefundAdapter
from chalicelib.tenancy.models import App

MAX_LIST_READS = 10  # DynamoDB pages one list request may read
FILTERED_PAGE = 100  # items evaluated per page when a filter may drop some
# One export request (API Gateway gives it 29 s; ~1 ms of CPU per order on a 512 MB Lambda) writes at most this
# many rows and reads at most this many 1 MB pages; more matching orders continue in another file (the cursor).
EXPORT_PART_ROWS = 10_000
EXPORT_MAX_READS = 40
EXPORT_PART_BYTES = 8 * 1024 * 1024  # S3 multipart parts (at least 5 MiB but the last)
MEMBER_PARTITION = "member"

# --- what to read ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Day partitions newest first, or one member's orders (optionally created within a UTC window)."""

    slices: tuple[DaySlice, ...]
    member_id: str | None
    window: tuple[str, str] | None
    status: str | None
    listing_id: str | None
    day: date | None
    to_day: date | None

    @property
    def partitions(self) -> tuple[str, ...]:
        return (MEMBER_PARTITION,) if self.member_id else tuple(part.day for part in self.slices)


def local_window(time_zone: str, first: date, last: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of the business days first..last in ``time_zone``."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def day_slices(start: datetime, end: datetime) -> tuple[DaySlice, ...]:
    """The UTC-day partitions that [start, end) touches, each clipped to it; newest first."""
    slices = []
    day = start.date()
    while datetime.combine(day, time(0), tzinfo=UTC) < end:
        day_start = datetime.combine(day, time(0), tzinfo=UTC)
        part_start, part_end = max(start, day_start), min(end, day_start + timedelta(days=1))
        slices.append(DaySlice(day=day.isoformat(), start=iso(part_start), end=iso(part_end)))
        day += timedelta(days=1)
    return tuple(reversed(slices))


def plan(app: App, filters: OrderFilter, today: date) -> Plan:
    """Days default to today, except for one member (all their orders)."""
    day, to_day = filters.day, filters.to_day
    if day is None and filters.openid is None:
        day = today
    if day is not None and to_day is None:
        to_day = day
    window = local_window(app.time_zone, day, to_day) if day is not None and to_day is not None else None
    if filters.openid is not None:
        member_id = member_id_for(app.app_id, filters.openid)
        utc_window = (iso(window[0]), iso(window[1])) if window else None
        return Plan((), member_id, utc_window, filters.status, filters.listing_id, day, to_day)
    assert window is not None
    return Plan(day_slices(*window), None, None, filters.status, filters.listing_id, day, to_day)


# --- cursor: the partition and the key inside it ---------------------------------------------------


def encode_position(partition: str, inner: str | None) -> str:
    return cursors.pack({"d": partition, "k": inner})


def decode_position(cursor: str | None, partitions: tuple[str, ...]) -> tuple[int, str | None]:
    """(index of the partition to read, the key cursor inside it); the partition must be one of this list's."""
    if not cursor:
        return 0, None
    plain = cursors.unpack(cursor)
    if not isinstance(plain, dict) or set(plain) != {"d", "k"} or plain["d"] not in partitions:
        raise cursors.invalid_cursor()
    inner = plain["k"]
    if inner is not None and (not isinstance(inner, str) or not inner or len(inner) > 4096):
        raise cursors.invalid_cursor()
    return partitions.index(plain["d"]), inner


# --- reading ---------------------------------------------------------------------------------------


def _today(app: App, clock: Clock | None) -> date:
    return time_now(clock).astimezone(ZoneInfo(app.time_zone)).date()


def read_orders(
    app: App, wanted: Plan, cursor: str | None, limit: int, *, max_reads: int, page_size: int | None, repo: RecordsRepo | None = None
) -> tuple[list[Order], str | None]:
    """Up to ``limit`` orders from ``cursor`` on, newest first, reading at most ``max_reads`` DynamoDB pages.

    ``page_size``: items a filtered page evaluates (unfiltered pages ask for exactly what is missing); None: DynamoDB's
    own 1 MB pages. Returns the orders and the cursor of the next one (None: the end).
    """
    repo = repo or RecordsRepo()
    index, inner = decode_position(cursor, wanted.partitions)
    filtered = bool(wanted.listing_id or (wanted.member_id and (wanted.status or wanted.window)))
    items: list[Order] = []
    reads = 0
    while index < len(wanted.partitions):
        want = limit - len(items)
        size = None if page_size is None else max(want, page_size) if filtered else want
        if wanted.member_id:
            chunk = repo.member_orders(
                app.app_id,
                wanted.member_id,
                wanted.window,
                wanted.status,
                wanted.listing_id,
                inner,
                want=want,
                page_size=size,
                max_reads=max_reads - reads,
            )
        else:
            chunk = repo.day_orders(
                app.app_id,
                wanted.slices[index],
                wanted.status,
                wanted.listing_id,
                inner,
                want=want,
                page_size=size,
                max_reads=max_reads - reads,
            )
        items += chunk.items
        reads += chunk.reads
        if chunk.cursor is not None:
            return items, encode_position(wanted.partitions[index], chunk.cursor)
        index, inner = index + 1, None
        if index < len(wanted.partitions) and (len(items) >= limit or reads >= max_reads):
            return items, encode_position(wanted.partitions[index], None)
    return items, None


def list_orders(
    app: App, filters: OrderFilter, cursor: str | None, limit: int, repo: RecordsRepo | None = None, clock: Clock | None = None
) -> OrderRecordPage:
    """One page of the app's orders, newest first (codes masked)."""
    wanted = plan(app, filters, _today(app, clock))
    items, next_cursor = read_orders(app, wanted, cursor, limit, max_reads=MAX_LIST_READS, page_size=FILTERED_PAGE, repo=repo)
    return OrderRecordPage(
        items=[OrderRecord.of(order) for order in items],
        cursor=next_cursor,
        day=wanted.day,
        to_day=wanted.to_day,
        time_zone=app.time_zone,
    )


def get_order(app: App, order_id: str, repo: OrdersRepo | None = None) -> OrderRecord:
    """One order of this app in full (address, shipping), codes masked."""
    order = (repo or OrdersRepo()).find(app.app_id, order_id)
    if order is None or order.app_id != app.app_id:
        raise NotFound("Order not found")
    return OrderRecord.of(order)


# --- CSV -------------------------------------------------------------------------------------------

CSV_HEADER = (
    "order_id",
    "created_at",
    "status",
    "category",
    "listing_id",
    "title",
    "quantity",
    "points",
    "cash_fen",
    "openid",
    "recipient",
    "phone",
    "province",
    "city",
    "district",
    "address",
    "postcode",
    "carrier",
    "tracking_no",
    "shipped_at",
    "paid_at",
    "completed_at",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # spreadsheet software then reads the file as UTF-8 (names and addresses are often Chinese)


def safe_cell(value: str | int | None) -> str | int:
    """A spreadsheet runs a cell that starts with = + - @ (or a tab / CR) as a formula: make it text."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(order: Order) -> list[str | int]:
    """One order as CSV cells (no codes, ever)."""
    address, shipped = order.address, order.fulfilment
    values: list[str | int | None] = [
        order.order_id,
        order.created_at,
        order.status,
        order.category,
        order.listing_id,
        order.title,
        order.quantity,
        order.points,
        order.cash_fen,
        order.openid,
        address.name if address else None,
        address.phone if address else None,
        address.province if address else None,
        address.city if address else None,
        address.district if address else None,
        address.detail if address else None,
        address.postcode if address else None,
        shipped.carrier,
        shipped.tracking_no,
        shipped.shipped_at,
        order.paid_at,
        order.completed_at,
    ]
    return [safe_cell(value) for value in values]


def csv_chunks(orders: Iterable[Order], part_bytes: int = EXPORT_PART_BYTES) -> Iterator[bytes]:
    """The CSV (BOM, header, one row per order, CRLF) as UTF-8 chunks of at least ``part_bytes`` (but the last)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(CSV_HEADER)
    for order in orders:
        writer.writerow(csv_row(order))
        if buffer.tell() >= part_bytes:  # characters: never more than the bytes they encode to
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


# --- export ----------------------------------------------------------------------------------------


class ExportStore(Protocol):
    def write(self, key: str, chunks: Iterable[bytes], content_type: str) -> int: ...

    def download_url(self, key: str, filename: str) -> tuple[str, int]: ...


class S3ExportStore:
    def write(self, key: str, chunks: Iterable[bytes], content_type: str) -> int:
        from chalicelib.core import aws

        return aws.write_object(key, chunks, content_type=content_type)

    def download_url(self, key: str, filename: str) -> tuple[str, int]:
        from chalicelib.core import aws

        return aws.attachment_url(key, filename)


def export_filename(app: App, wanted: Plan, export_id: str, split: bool) -> str:
    """``orders-{app}-{days}.csv``; a part of a split export adds its export id."""
    if wanted.day is None or wanted.to_day is None:
        days = "all"
    elif wanted.day == wanted.to_day:
        days = wanted.day.isoformat()
    else:
        days = f"{wanted.day.isoformat()}-{wanted.to_day.isoformat()}"
    return f"orders-{app.app_id}-{days}-{export_id}.csv" if split else f"orders-{app.app_id}-{days}.csv"


def export_orders(
    app: App,
    body: OrderExportRequest,
    *,
    repo: RecordsRepo | None = None,
    store: ExportStore | None = None,
    clock: Clock | None = None,
) -> OrderExport:
    """The next (at most ``EXPORT_PART_ROWS``) matching orders as CSV in S3, and a presigned download.

    Stored as ``exports/{tenant}/{app}/{export_id}.csv``. When more match, the answer's cursor continues the
    export in another file (same filters); one request never reads more than ``EXPORT_MAX_READS`` pages.
    """
    store = store or S3ExportStore()
    now = time_now(clock)
    wanted = plan(app, body, _today(app, clock))
    orders, cursor = read_orders(app, wanted, body.cursor, EXPORT_PART_ROWS, max_reads=EXPORT_MAX_READS, page_size=None, repo=repo)
    export_id = new_id("exp")
    key = f"{EXPORT_PREFIX}{app.tenant_id}/{app.app_id}/{export_id}.csv"
    store.write(key, csv_chunks(orders), "text/csv; charset=utf-8")
    filename = export_filename(app, wanted, export_id, split=body.cursor is not None or cursor is not None)
    url, seconds = store.download_url(key, filename)
    logger().info("orders exported", extra={"app_id": app.app_id, "export_id": export_id, "rows": len(orders), "more": cursor is not None})
    return OrderExport(
        export_id=export_id,
        rows=len(orders),
        cursor=cursor,
        download_url=url,
        expires_at=iso(now + timedelta(seconds=seconds)),
        filename=filename,
    )


# --- operators act on orders whose workflow failed (issue 9, item 7) ------------------------------
#
# An order whose workflow failed past its retries (or ended leaving it waiting: ``jobs.reconcile``) is
# ``needs_attention`` with ``attention`` (the status it left, the error); operators list them by that status and
# re-drive it (back to that status, a new execution) or cancel it (cash back by reference, points and stock back, once).

OPERATOR_CANCEL_REASON = "cancelled by an operator"


def _needing(app: App, order_id: str) -> Order:
    order = fulfilment.find_order(app, order_id)
    if order.status != "needs_attention":
        raise Conflict(f"This order is {order.status.replace('_', ' ')}, not waiting for an operator")
    return order


def _from_status(order: Order) -> str:
    return str((order.attention or {}).get("from_status") or "awaiting_payment")


def redrive(app: App, order_id: str, clock: Clock | None = None) -> Order:
    """Back to the status its workflow failed in, and a new execution (named ``{order}-r{n}``) from there."""
    order = _needing(app, order_id)
    back_to = _from_status(order)
    at = iso(time_now(clock))

    def again(current: Order) -> Order:
        return current.model_copy(update={"status": back_to, "drive": current.drive + 1, "updated_at": at})

    moved, done = fulfilment._move(app.app_id, order.member_id, order.order_id, ("needs_attention",), again)
    if not done:
        raise Conflict("Another operator acted on this order")
    try:
        fulfilment.start_execution(app, moved)
    except UpstreamFailed:
        fulfilment.record_failure(app.app_id, order.member_id, order.order_id, {"Error": "RedriveFailed", "Cause": "not started"})
        raise
    log_event("order_redriven", order_id=order.order_id, status=back_to, drive=moved.drive)
    return moved


def cancel(app: App, order_id: str, refunds: RefundAdapter | None = None, clock: Clock | None = None) -> Order:
    """Cash back (if it was paid; by reference, once), then cancelled with points and stock back (once)."""
    order = _needing(app, order_id)
    if _from_status(order) == "paying_out":
        raise Conflict("A payout may have happened for this order: re-drive it (the payout is idempotent)")
    if order.paid_at and order.cash_fen > 0:
        order = fulfilment.refund_payment(app, order, ("needs_attention",), refunds, clock)
    cancelled = fulfilment.revert(app, order, "cancelled", OPERATOR_CANCEL_REASON, from_statuses=("needs_attention",), clock=clock)
    log_event("order_cancelled_by_operator", order_id=order.order_id, status=cancelled.status)
    return cancelled
