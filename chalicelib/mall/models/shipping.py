"""Shipping orders (E1, G5): one order, or a CSV batch with a per-line report."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from chalicelib.core.models import Model

CSV_HEADER = ("order_id", "carrier", "tracking_no")
MAX_ROWS = 1000


class ShipmentBatchIn(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    csv: str = Field(
        min_length=1,
        max_length=64 * 1024,
        description="UTF-8 CSV text: header `order_id,carrier,tracking_no`, then at most 1,000 rows (the API's 64 KiB body limit applies)",
    )


class LineError(Model):
    code: str
    message: str


class ShipmentLine(Model):
    line: int = Field(description="the line number in the file (the header is line 1)")
    order_id: str | None
    ok: bool
    error: LineError | None = None


class ShipmentReport(Model):
    applied: int
    failed: int
    lines: list[ShipmentLine]
