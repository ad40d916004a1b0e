"""G6 records logic without AWS: local days to UTC partitions, cursors, bounded reads, CSV cells and chunks."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core.clock import FixedClock
from chalicelib.core.errors import ValidationFailed
from chalicelib.mall import records
from chalicelib.mall.models.catalog import Address, Fulfilment, Order
from chalicelib.mall.models.records import OrderExport, OrderExportRequest, OrderFilter, OrderRecord, mask_code
from chalicelib.mall.store.records import Chunk, DaySlice
from chalicelib.tenancy.models import App, ExpiryPolicy, LoginMode


def app(time_zone: str = "Asia/Shanghai") -> App:
    return App(
        app_id="app_1",
        tenant_id="acme",
        name="Acme",
        points_rate=100,
        time_zone=time_zone,
        expiry_policy=ExpiryPolicy(),
        daily_earn_cap=None,
        login_mode=LoginMode.JWT,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )


def order(order_id: str, created_at: str = "2026-03-02T03:00:00Z", **fields: object) -> Order:
    values: dict[str, object] = {
        "order_id": order_id,
        "app_id": "app_1",
        "member_id": "m_1",
        "openid": "alice",
        "listing_id": "l_1",
        "allocation_id": "al_1",
        "goods_id": "g_1",
        "category": "coupon_link",
        "use": "mall",
        "title": "Coffee",
        "quantity": 1,
        "points": 100,
        "cash_fen": 0,
        "status": "completed",
        "created_at": created_at,
        "updated_at": created_at,
        **fields,
    }
    return Order.model_validate(values)


# --- days -----------------------------------------------------------------------------------------------


def test_a_shanghai_day_is_two_utc_partitions_newest_first() -> None:
    # Given local 2026-03-02 in Shanghai (UTC+8)
    start, end = records.local_window("Asia/Shanghai", date(2026, 3, 2), date(2026, 3, 2))
    # When it is cut into the indexes' UTC-day partitions
    slices = records.day_slices(start, end)
    # Then it is the evening of 03-01 and most of 03-02 (UTC), the later first
    assert slices == (
        DaySlice("2026-03-02", "2026-03-02T00:00:00Z", "2026-03-02T16:00:00Z"),
        DaySlice("2026-03-01", "2026-03-01T16:00:00Z", "2026-03-02T00:00:00Z"),
    )


def test_a_utc_app_reads_one_partition_per_day() -> None:
    start, end = records.local_window("UTC", date(2026, 3, 1), date(2026, 3, 3))
    assert [part.day for part in records.day_slices(start, end)] == ["2026-03-03", "2026-03-02", "2026-03-01"]
    assert records.day_slices(start, end)[0] == DaySlice("2026-03-03", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z")


def test_a_daylight_saving_day_has_its_own_length() -> None:
    # Given 2026-03-08 in New York, when clocks jump forward (23 hours)
    start, end = records.local_window("America/New_York", date(2026, 3, 8), date(2026, 3, 8))
    # Then the window is 05:00Z..04:00Z the next day
    assert (start.isoformat(), end.isoformat()) == ("2026-03-08T05:00:00+00:00", "2026-03-09T04:00:00+00:00")


def test_days_default_to_today_except_for_one_member() -> None:
    # Given no days
    today = date(2026, 3, 2)
    # When a plan is made for the app, then for one member
    everyone = records.plan(app(), OrderFilter(), today)
    member = records.plan(app(), OrderFilter(openid="alice"), today)
    member_day = records.plan(app(), OrderFilter(openid="alice", day=today), today)
    # Then the app's list is today (two partitions), the member's is all time, or the day's UTC window
    assert (everyone.day, everyone.to_day, len(everyone.slices)) == (today, today, 2)
    assert member.partitions == ("member",) and member.window is None and member.day is None
    assert member_day.window == ("2026-03-01T16:00:00Z", "2026-03-02T16:00:00Z")


@pytest.mark.parametrize(
    "fields",
    [
        {"to_day": date(2026, 3, 2)},
        {"day": date(2026, 3, 2), "to_day": date(2026, 3, 1)},
        {"day": date(2026, 3, 1), "to_day": date(2026, 4, 1)},
        {"day": date(1, 1, 1)},
        {"day": date(9999, 12, 31)},
    ],
)
def test_ranges_that_are_backwards_too_long_or_off_the_calendar_are_refused(fields: dict[str, date]) -> None:
    with pytest.raises(ValueError):
        OrderFilter(**fields)


def test_the_longest_range_is_31_days() -> None:
    assert OrderFilter(day=date(2026, 3, 1), to_day=date(2026, 3, 31)).to_day == date(2026, 3, 31)


# --- cursors --------------------------------------------------------------------------------------------


def test_a_position_round_trips_within_its_list() -> None:
    cursor = records.encode_position("2026-03-01", "abc")
    assert records.decode_position(cursor, ("2026-03-02", "2026-03-01")) == (1, "abc")
    assert records.decode_position(None, ("2026-03-02",)) == (0, None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"[A-Za-z0-9_-]{0,60}", fullmatch=True)))
def test_any_cursor_is_a_position_of_the_list_or_a_400(cursor: str) -> None:
    # Given any string as a cursor
    # When it is decoded for a list of two partitions
    try:
        index, inner = records.decode_position(cursor, ("2026-03-02", "2026-03-01"))
    except ValidationFailed as exc:
        # Then it is refused as a bad cursor, or it names one of the partitions
        assert exc.details == [{"field": "cursor", "problem": "not a cursor from this list"}]
    else:
        assert index in (0, 1) and (inner is None or isinstance(inner, str))


# --- bounded reads --------------------------------------------------------------------------------------


@dataclass
class SparseRepo:
    """Every day partition is ``pages`` pages long and a filter matches nothing: each page costs a read."""

    pages: int
    calls: list[tuple[str, str | None, int | None]] = field(default_factory=list)

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
        self.calls.append((part.day, cursor, page_size))
        done = int(cursor or 0)
        reads = min(self.pages - done, max_reads or self.pages)
        left = done + reads
        return Chunk([], str(left) if left < self.pages else None, reads)


def test_a_sparse_filter_reads_at_most_the_budget_per_request_and_still_reaches_the_end() -> None:
    # Given 31 days (32 UTC partitions) of 3 pages each, none matching the listing filter
    repo = SparseRepo(pages=3)
    filters = OrderFilter(day=date(2026, 3, 1), to_day=date(2026, 3, 31), listing_id="l_rare")
    # When the list is walked with its cursors
    cursor, requests = None, 0
    while True:
        page = records.list_orders(app(), filters, cursor, 20, repo=repo)  # type: ignore[arg-type]
        requests += 1
        assert page.items == []
        cursor = page.cursor
        if cursor is None:
            break
        assert requests < 50
    # Then each request read at most MAX_LIST_READS pages, every partition was read to its end, once
    assert requests == -(-32 * 3 // records.MAX_LIST_READS)
    assert sorted({day for day, _, _ in repo.calls}) == [part.day for part in reversed(records.plan(app(), filters, date.today()).slices)]
    assert all(page_size == records.FILTERED_PAGE for _, _, page_size in repo.calls)


# --- CSV ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+86 138", "'+86 138"),
        ("-1", "'-1"),
        ("@me", "'@me"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Li Lei", "Li Lei"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (300, 300),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_made_text(value: str | int | None, cell: str | int) -> None:
    assert records.safe_cell(value) == cell


@pytest.mark.parametrize(
    ("code", "masked"),
    [("ABCDEFGH1234", "ABCD****"), ("ABCDEF", "AB****"), ("AB", "****"), ("", "****"), ("ABCDEFGHIJKLMNOPQRST", "ABCD****")],
)
def test_codes_show_at_most_four_characters_and_a_third(code: str, masked: str) -> None:
    assert mask_code(code) == masked


def test_an_operator_record_masks_codes_and_keeps_the_rest() -> None:
    cdk = order("o1", category="cdk", fulfilment=Fulfilment(codes=["ABCDEFGH1234"]))
    record = OrderRecord.of(cdk)
    assert record.fulfilment.codes == ["ABCD****"]
    assert cdk.fulfilment.codes == ["ABCDEFGH1234"]  # the order itself is untouched
    assert record.model_dump(exclude={"fulfilment"}) == cdk.model_dump(exclude={"fulfilment"})


def test_a_row_has_every_column_and_no_code() -> None:
    shipped = order(
        "o1",
        category="physical",
        status="shipped",
        address=Address(name="李雷", phone="13800000000", province="浙江", city="杭州", district="西湖", detail="1号", postcode="310000"),
        fulfilment=Fulfilment(codes=["SECRET-CODE"], carrier="SF", tracking_no="SF123", shipped_at="2026-03-03T01:00:00Z"),
        paid_at="2026-03-02T03:01:00Z",
    )
    row = records.csv_row(shipped)
    assert dict(zip(records.CSV_HEADER, row, strict=True)) == {
        "order_id": "o1",
        "created_at": "2026-03-02T03:00:00Z",
        "status": "shipped",
        "category": "physical",
        "listing_id": "l_1",
        "title": "Coffee",
        "quantity": 1,
        "points": 100,
        "cash_fen": 0,
        "openid": "alice",
        "recipient": "李雷",
        "phone": "13800000000",
        "province": "浙江",
        "city": "杭州",
        "district": "西湖",
        "address": "1号",
        "postcode": "310000",
        "carrier": "SF",
        "tracking_no": "SF123",
        "shipped_at": "2026-03-03T01:00:00Z",
        "paid_at": "2026-03-02T03:01:00Z",
        "completed_at": "",
    }
    assert "SECRET-CODE" not in str(row)


def test_csv_chunks_are_at_least_a_part_but_the_last_and_join_into_the_whole_file() -> None:
    # Given 500 orders with multi-byte text and a part size of 4 KiB
    orders = [order(f"o{i:04d}", title="咖啡券 " * (i % 7)) for i in range(500)]
    # When the CSV is cut into chunks
    chunks = list(records.csv_chunks(orders, part_bytes=4096))
    # Then every chunk but the last is at least a part, and together they are the CSV of every order
    assert len(chunks) > 5
    assert all(len(chunk) >= 4096 for chunk in chunks[:-1])
    text = b"".join(chunks).decode("utf-8")
    assert text.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert parsed[0] == list(records.CSV_HEADER)
    assert [row[0] for row in parsed[1:]] == [o.order_id for o in orders]


# --- export ---------------------------------------------------------------------------------------------


@dataclass
class MemoryStore:
    objects: dict[str, bytes] = field(default_factory=dict)

    def write(self, key: str, chunks: object, content_type: str) -> int:
        data = b"".join(chunks)  # type: ignore[call-overload]
        self.objects[key] = data
        return len(data)

    def download_url(self, key: str, filename: str) -> tuple[str, int]:
        return f"https://example.com/{key}?as={filename}", 600


@dataclass
class ListRepo:
    """Day partitions served from a list; a cursor is the position in the partition."""

    orders: list[Order]

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
        inside = sorted((o for o in self.orders if part.start <= o.created_at < part.end), key=lambda o: o.created_at, reverse=True)
        first = int(cursor or 0)
        taken = inside[first : first + want]
        return Chunk(taken, str(first + want) if first + want < len(inside) else None, 1)


def export(repo: ListRepo, store: MemoryStore, cursor: str | None = None) -> OrderExport:
    clock = FixedClock(datetime(2026, 3, 2, 4, tzinfo=UTC))
    return records.export_orders(app(), OrderExportRequest(cursor=cursor), repo=repo, store=store, clock=clock)  # type: ignore[arg-type]


def test_an_export_that_does_not_fit_one_file_continues_with_a_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 7 orders today (over both UTC partitions of the local day) and 3 rows a file
    monkeypatch.setattr(records, "EXPORT_PART_ROWS", 3)
    hours = ["01T17", "01T18", "01T23", "02T01", "02T02", "02T03", "02T04"]
    repo = ListRepo([order(f"o{i}", f"2026-03-{hour}:00:00Z") for i, hour in enumerate(hours)])
    store = MemoryStore()
    # When it is exported, then continued with each answer's cursor
    parts = [export(repo, store)]
    while parts[-1].cursor is not None:
        parts.append(export(repo, store, parts[-1].cursor))
    # Then three files of 3, 3 and 1 rows hold every order once, newest first
    assert [part.rows for part in parts] == [3, 3, 1]
    rows = [
        line.split(",")[0]
        for part in parts
        for line in store.objects[f"exports/acme/app_1/{part.export_id}.csv"].decode().split("\r\n")[1:-1]
    ]
    assert rows == ["o6", "o5", "o4", "o3", "o2", "o1", "o0"]
    assert all(part.filename == f"orders-app_1-2026-03-02-{part.export_id}.csv" for part in parts)


def test_an_export_that_fits_is_one_file_without_a_cursor() -> None:
    repo = ListRepo([order(f"o{i}") for i in range(3)])
    store = MemoryStore()
    result = export(repo, store)
    assert (result.rows, result.cursor, result.expires_at) == (3, None, "2026-03-02T04:10:00Z")
    assert result.filename == "orders-app_1-2026-03-02.csv"
    (key,) = store.objects
    assert key == f"exports/acme/app_1/{result.export_id}.csv"
    assert store.objects[key].decode("utf-8").count("\r\n") == 4
