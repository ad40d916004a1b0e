"""Operator routes of exchange records (G6): orders by day / status / listing / member, one order, CSV exports."""

from __future__ import annotations

import json

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS
from chalicelib.core.errors import ValidationFailed
from chalicelib.core.http.api import Api, ok, parse_body, pydantic_details, query, query_int
from chalicelib.mall import records
from chalicelib.mall.models.records import OrderExport, OrderExportRequest, OrderFilter, OrderRecord, OrderRecordPage
from chalicelib.tenancy.access import operator_app

mall_records = Api(__name__, tag="admin")
FILTERS = ("day", "to_day", "status", "listing_id", "openid")


def _filters() -> OrderFilter:
    """The filters from the query string, validated by the same model as the export body."""
    given = {name: value for name in FILTERS if (value := query(name, max_length=128)) is not None}
    try:
        return OrderFilter.model_validate_json(json.dumps(given))
    except ValidationError as exc:
        raise ValidationFailed("Query parameters are invalid", details=pydantic_details(exc)) from None


@mall_records.endpoint(
    "/v1/admin/apps/{app_id}/orders",
    auth=ANY_OPERATOR,
    response=OrderRecordPage,
    query=(*FILTERS, "cursor", "limit"),
    summary="Orders newest first: business days day..to_day (default today), status, listing, member (openid); CDK codes masked",
    errors=(400, 404),
)
def list_orders(app_id: str) -> Response:
    app = operator_app(app_id)
    return ok(records.list_orders(app, _filters(), query("cursor", max_length=2048), query_int("limit", 50, low=1, high=100)))


@mall_records.endpoint(
    "/v1/admin/apps/{app_id}/orders/{order_id}",
    auth=ANY_OPERATOR,
    response=OrderRecord,
    summary="One order in full (address, shipping); CDK codes masked",
    errors=(404,),
)
def get_order(app_id: str, order_id: str) -> Response:
    return ok(records.get_order(operator_app(app_id), order_id))


@mall_records.endpoint(
    "/v1/admin/apps/{app_id}/orders/exports",
    methods=("POST",),
    auth=MANAGERS,
    body=OrderExportRequest,
    response=OrderExport,
    status=201,
    summary=f"Export the orders of a filter as CSV ({records.EXPORT_PART_ROWS} rows a file; a cursor continues): a presigned download URL",
    errors=(400, 404, 502),
    metric="OrdersExported",
)
def export_orders(app_id: str) -> Response:
    app = operator_app(app_id)
    return ok(records.export_orders(app, parse_body(OrderExportRequest)), status=201)


@mall_records.endpoint(
    "/v1/admin/apps/{app_id}/orders/{order_id}/redrive",
    methods=("POST",),
    auth=MANAGERS,
    response=OrderRecord,
    metric="OrderRedriven",
    summary="Re-drive a needs_attention order (its workflow failed): back to the status it failed in, with a new execution",
    errors=(404, 409, 502),
)
def redrive_order(app_id: str, order_id: str) -> Response:
    return ok(OrderRecord.of(records.redrive(operator_app(app_id), order_id)))


@mall_records.endpoint(
    "/v1/admin/apps/{app_id}/orders/{order_id}/cancel",
    methods=("POST",),
    auth=MANAGERS,
    response=OrderRecord,
    metric="OrderCancelledByOperator",
    summary="Cancel a needs_attention order: its cash back if it was paid (once), then its points and stock back (once)",
    errors=(404, 409, 502),
)
def cancel_order(app_id: str, order_id: str) -> Response:
    return ok(OrderRecord.of(records.cancel(operator_app(app_id), order_id)))
