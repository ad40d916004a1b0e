"""Order fulfilment that waits (G5, E1): physical shipping, cash red packets, points + cash payment.

The exchange commits first; then a Standard execution named by the order id takes over
(infra/statemachines/order_fulfilment.asl.json). Its name makes a repeated start a no-op.
"""

from __future__ import annotations

from chalicelib.adapters import aws
from chalicelib.config import get_settings
from chalicelib.models.domain import App
from chalicelib.models.mall import Order


def start(app: App, order: Order) -> None:
    payload = {"app_id": app.app_id, "order_id": order.order_id, "member_id": order.member_id}
    aws.start_execution(get_settings().sfn_order_fulfilment, order.order_id, payload)
