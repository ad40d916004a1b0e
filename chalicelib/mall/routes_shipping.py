"""Operator routes that ship orders (E1, G5): one order, or a CSV batch. Tenant from the token."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import MANAGERS
from chalicelib.core.http.api import Api, ok, parse_body
from chalicelib.mall import fulfilment, shipping
from chalicelib.mall.models.catalog import Order, Shipment
from chalicelib.mall.models.shipping import ShipmentBatchIn, ShipmentReport
from chalicelib.tenancy.access import operator_app

mall_shipping = Api(__name__, tag="admin")


@mall_shipping.endpoint(
    "/v1/admin/apps/{app_id}/orders/{order_id}/shipment",
    methods=("POST",),
    auth=MANAGERS,
    body=Shipment,
    response=Order,
    metric="OrderShipped",
    summary="Ship an order awaiting shipment (carrier + tracking number); the member sees them on the order",
    errors=(400, 404, 409),
)
def ship_order(app_id: str, order_id: str) -> Response:
    app = operator_app(app_id)
    return ok(fulfilment.ship(app, order_id, parse_body(Shipment)))


@mall_shipping.endpoint(
    "/v1/admin/apps/{app_id}/shipments",
    methods=("POST",),
    auth=MANAGERS,
    body=ShipmentBatchIn,
    response=ShipmentReport,
    summary="Ship many orders from CSV text (order_id,carrier,tracking_no): good rows applied, each bad row reported",
    errors=(400, 404, 413),
)
def ship_batch(app_id: str) -> Response:
    app = operator_app(app_id)
    return ok(shipping.ship_batch(app, parse_body(ShipmentBatchIn).csv))
