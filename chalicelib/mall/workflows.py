"""Step Functions task functions of order fulfilment (infra/statemachines/order_fulfilment.asl.json).

Every step but the waits returns the order reference with the order's status now, and the state
machine routes on that status; so a step that runs twice returns the same answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.mall import fulfilment
from chalicelib.mall.models.catalog import Order


class OrderRef(BaseModel):
    """What the execution carries from step to step (other keys, such as a step's result, are dropped)."""

    model_config = ConfigDict(extra="ignore")

    app_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    member_id: str = Field(min_length=1)
    payment_timeout_seconds: int = Field(default=fulfilment.DEFAULT_PAYMENT_TIMEOUT, ge=1)

    def now(self, order: Order) -> dict[str, Any]:
        return {**self.model_dump(), "status": order.status}


class WaitInput(BaseModel):
    order: OrderRef
    step: Literal["payment", "shipment"]
    token: str = Field(min_length=1)


class CancelInput(OrderRef):
    from_status: Literal["awaiting_payment", "paying_out"]
    reason: str = Field(min_length=1, max_length=200)


class FailureInput(OrderRef):
    error: dict[str, Any] | None = None


class ShipmentInput(OrderRef):
    resumed: dict[str, Any] | None = None


def order_wait(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = WaitInput.model_validate(event)
    ref = checked.order
    return {"wait": checked.step, "now": fulfilment.hold(ref.app_id, ref.member_id, ref.order_id, checked.step, checked.token)}


def order_settle_payment(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    ref = OrderRef.model_validate(event)
    return ref.now(fulfilment.settle_payment(ref.app_id, ref.member_id, ref.order_id))


def order_pay_out(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    ref = OrderRef.model_validate(event)
    return ref.now(fulfilment.pay_out(ref.app_id, ref.member_id, ref.order_id))


def order_cancel(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = CancelInput.model_validate(event)
    order = fulfilment.cancel(checked.app_id, checked.member_id, checked.order_id, checked.from_status, checked.reason)
    return OrderRef.model_validate(event).now(order)


def order_confirm_shipment(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = ShipmentInput.model_validate(event)
    shipment = (checked.resumed or {}).get("shipment")
    order = fulfilment.confirm_shipment(
        checked.app_id, checked.member_id, checked.order_id, shipment if isinstance(shipment, dict) else None
    )
    return OrderRef.model_validate(event).now(order)


def order_needs_attention(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The failure path (any step's error past its retries): the order waits for an operator, with the error."""
    checked = FailureInput.model_validate(event)
    order = fulfilment.record_failure(checked.app_id, checked.member_id, checked.order_id, checked.error or {})
    return OrderRef.model_validate(event).now(order)
