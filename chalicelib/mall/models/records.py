"""Exchange records (G6): the operator's order filters, order records with CDK codes masked, CSV exports."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from chalicelib.core.models import Model
from chalicelib.mall.models.catalog import Fulfilment, Order, OrderStatus

MAX_RANGE_DAYS = 31
EXPORT_PREFIX = "exports/"  # the bucket's lifecycle rule deletes exports after EXPORT_RETENTION_DAYS
EXPORT_RETENTION_DAYS = 7
# Days are converted to UTC instants in the app's time zone: keep them far from datetime's edges.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


class OrderFilter(Model):
    """Which orders: the app's local days ``day``..``to_day`` (default today; all time for one member), a status, a listing, a member."""

    model_config = ConfigDict(extra="forbid", strict=True)

    day: date | None = Field(default=None, description="first business day (the app's time zone), YYYY-MM-DD")
    to_day: date | None = Field(default=None, description=f"last business day, inclusive; at most {MAX_RANGE_DAYS} days in all")
    status: OrderStatus | None = None
    listing_id: str | None = Field(default=None, min_length=1, max_length=64)
    openid: str | None = Field(default=None, min_length=1, max_length=128, description="one member's orders")

    @field_validator("day", "to_day")
    @classmethod
    def _sane(cls, value: date | None) -> date | None:
        if value is not None and not FIRST_DAY <= value <= LAST_DAY:
            raise ValueError(f"days are from {FIRST_DAY} to {LAST_DAY}")
        return value

    @field_validator("to_day")
    @classmethod
    def _after_day(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None or "day" not in info.data:  # an invalid day has its own error
            return value
        day = info.data["day"]
        if day is None:
            raise ValueError("to_day needs day")
        if value < day:
            raise ValueError("to_day must not be before day")
        if (value - day).days >= MAX_RANGE_DAYS:
            raise ValueError(f"at most {MAX_RANGE_DAYS} days at a time")
        return value


class OrderExportRequest(OrderFilter):
    """The same filters as the order list, in the body; ``cursor`` continues an export that did not fit one file."""

    cursor: str | None = Field(default=None, min_length=1, max_length=2048, description="the previous export's cursor, same filters")


def mask_code(code: str) -> str:
    """At most the first 4 characters (and never more than a third of the code), then ``****``."""
    return code[: min(4, len(code) // 3)] + "****"


class OrderRecord(Order):
    """An order as an operator sees it: everything, but CDK codes masked (only their owner sees them)."""

    @classmethod
    def of(cls, order: Order) -> OrderRecord:
        fulfilment = order.fulfilment
        if fulfilment.codes:
            fulfilment = Fulfilment(**{**fulfilment.model_dump(), "codes": [mask_code(code) for code in fulfilment.codes]})
        return cls(**{**order.model_dump(), "fulfilment": fulfilment.model_dump()})


class OrderRecordPage(Model):
    items: list[OrderRecord]
    cursor: str | None = Field(default=None, description="more may follow; a page can be short (even empty) and still have one")
    day: date | None = Field(description="the first business day read (null: all of the member's orders)")
    to_day: date | None
    time_zone: str = Field(description="the app's time zone, in which the days are read")


class OrderExport(Model):
    model_config = ConfigDict(extra="forbid")

    export_id: str
    rows: int = Field(description="orders in the file (the header not counted)")
    cursor: str | None = Field(description="more orders match: export again with this cursor (and the same filters) for the next file")
    download_url: str = Field(description="presigned GET of the CSV (UTF-8 with BOM)")
    expires_at: str = Field(description="when the download URL stops working")
    filename: str
    format: Literal["csv"] = "csv"
