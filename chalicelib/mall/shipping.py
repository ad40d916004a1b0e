"""Shipping a CSV batch (E1, G5): every good row shipped, every bad row reported, no row half-applied.

Each row is one order shipped exactly like the single route (one conditional write, then its waiting
workflow resumed), so a row either stands or did nothing. Rows run on a few threads: a thousand rows one
after another would take longer than API Gateway waits.
"""

from __future__ import annotations

import csv
import re
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from chalicelib.core.clock import Clock
from chalicelib.core.errors import JifenError, ValidationFailed
from chalicelib.core.observability import logger
from chalicelib.mall import fulfilment
from chalicelib.mall.models.catalog import Shipment
from chalicelib.mall.models.shipping import CSV_HEADER, MAX_ROWS, LineError, ShipmentLine, ShipmentReport
from chalicelib.tenancy.models import App

WORKERS = 16
MAX_ORDER_ID = 128
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


def _cells(text: str) -> list[str] | None:
    try:
        return [cell.strip() for cell in next(csv.reader([text]), [])]
    except csv.Error:
        return None


def _failed(line: int, order_id: str | None, code: str, message: str) -> ShipmentLine:
    return ShipmentLine(line=line, order_id=order_id, ok=False, error=LineError(code=code, message=message))


def parse(text: str) -> tuple[list[tuple[int, str, Shipment]], list[ShipmentLine]]:
    """(well-formed rows: line, order id, shipment; reports of malformed rows). A bad header or size is a 400."""
    lines = _LINE_BREAK.split(text.removeprefix("\ufeff"))
    header = _cells(lines[0]) if lines else None
    if header is None or [cell.lower() for cell in header] != list(CSV_HEADER):
        raise ValidationFailed(
            "The first line must be the header order_id,carrier,tracking_no", details=[{"field": "csv", "problem": "bad header"}]
        )
    numbered = [(number, line) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    if not numbered:
        raise ValidationFailed("The file has no rows", details=[{"field": "csv", "problem": "no rows"}])
    if len(numbered) > MAX_ROWS:
        raise ValidationFailed(f"At most {MAX_ROWS} rows per file", details=[{"field": "csv", "problem": f"{len(numbered)} rows"}])
    rows: list[tuple[int, str, Shipment]] = []
    bad: list[ShipmentLine] = []
    first_line: dict[str, int] = {}
    for number, line in numbered:
        cells = _cells(line)
        if cells is None or len(cells) != len(CSV_HEADER):
            found = "unreadable" if cells is None else f"{len(cells)} columns"
            bad.append(_failed(number, None, "VALIDATION_FAILED", f"Expected 3 columns order_id,carrier,tracking_no; got {found}"))
            continue
        order_id, carrier, tracking_no = cells
        if not order_id or len(order_id) > MAX_ORDER_ID:
            bad.append(_failed(number, order_id[:MAX_ORDER_ID] or None, "VALIDATION_FAILED", "order_id is missing or too long"))
            continue
        try:
            shipment = Shipment.model_validate({"carrier": carrier, "tracking_no": tracking_no})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False))
            bad.append(_failed(number, order_id, "VALIDATION_FAILED", problems))
            continue
        if order_id in first_line:
            bad.append(_failed(number, order_id, "DUPLICATE_ROW", f"This order is already on line {first_line[order_id]}"))
            continue
        first_line[order_id] = number
        rows.append((number, order_id, shipment))
    return rows, bad


def ship_batch(app: App, text: str, clock: Clock | None = None) -> ShipmentReport:
    rows, report = parse(text)

    def ship_row(row: tuple[int, str, Shipment]) -> ShipmentLine:
        number, order_id, shipment = row
        try:
            fulfilment.ship(app, order_id, shipment, clock)
        except JifenError as refused:
            return _failed(number, order_id, refused.code, refused.message)
        except Exception:
            logger().exception("shipment row failed", extra={"order_id": order_id, "line": number})
            return _failed(number, order_id, "INTERNAL_ERROR", "This row could not be applied; send it again")
        return ShipmentLine(line=number, order_id=order_id, ok=True)

    if rows:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(rows))) as pool:
            report += list(pool.map(ship_row, rows))
    report.sort(key=lambda line: line.line)
    applied = sum(1 for line in report if line.ok)
    logger().info("shipment batch", extra={"app_id": app.app_id, "applied": applied, "failed": len(report) - applied})
    return ShipmentReport(applied=applied, failed=len(report) - applied, lines=report)
