"""Which orders may be refund-requested, and how a workflow failure is shown to a reviewer."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.core.review import failure_text as _error_text
from chalicelib.mall.after_sales import refusal
from chalicelib.mall.models.after_sales import MAX_REQUESTS
from chalicelib.mall.models.catalog import Order


def _order(status: str, category: str = "physical", refund: dict[str, Any] | None = None) -> Order:
    return Order.model_validate(
        {
            "order_id": "o1",
            "app_id": "a1",
            "member_id": "m1",
            "openid": "u1",
            "listing_id": "l1",
            "allocation_id": "al1",
            "goods_id": "g1",
            "category": category,
            "use": "mall",
            "title": "Kettle",
            "quantity": 1,
            "points": 100,
            "cash_fen": 0,
            "status": status,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "refund": refund,
        }
    )


@pytest.mark.parametrize("status", ["awaiting_shipment", "shipped", "completed"])
def test_paid_physical_orders_may_be_refunded(status: str) -> None:
    # Given a paid physical order in any state before or after delivery
    # When its refundability is checked
    # Then nothing stands in the way
    assert refusal(_order(status)) is None


@pytest.mark.parametrize("status", ["awaiting_payment", "paid", "paying_out", "cancelled", "refunded", "refund_requested"])
def test_unpaid_in_flight_or_undone_orders_may_not(status: str) -> None:
    # Given an order that is not paid yet, mid-way, already undone or already asked about
    # Then it cannot be refund-requested, and the reason names its status
    why = refusal(_order(status))
    assert why is not None and status.replace("_", " ") in why


@pytest.mark.parametrize("category", ["cdk", "coupon_link", "coupon", "points", "red_packet"])
def test_delivered_virtual_goods_cannot_be_returned_but_undelivered_ones_can(category: str) -> None:
    # Given a virtual order delivered (completed) and one an operator has not fulfilled yet
    # Then the delivered one cannot come back; the undelivered one can be refunded
    assert "cannot be returned" in (refusal(_order("completed", category)) or "")
    assert refusal(_order("awaiting_shipment", category)) is None


def test_a_request_may_be_made_again_only_a_few_times() -> None:
    # Given an order whose last request was rejected, once and then MAX_REQUESTS times
    def rejected(attempt: int) -> dict[str, Any]:
        return {"attempt": attempt, "state": "rejected", "reason": "r", "requested_at": "t", "from_status": "shipped"}

    # Then it may be asked again until the limit
    assert refusal(_order("shipped", refund=rejected(1))) is None
    assert "already requested" in (refusal(_order("shipped", refund=rejected(MAX_REQUESTS))) or "")


def test_a_caught_task_failure_reads_as_its_message_not_its_trace() -> None:
    # Given what Step Functions hands the failure handler
    cause = '{"errorType": "UpstreamFailed", "errorMessage": "The provider refused", "trace": ["  File ..."]}'
    # Then the reviewer reads the error type and message only, bounded in length
    assert _error_text({"Error": "UpstreamFailed", "Cause": cause}) == "UpstreamFailed: The provider refused"
    assert _error_text({"Error": "States.Timeout"}) == "States.Timeout"
    assert (
        _error_text({"Error": "X", "Cause": "not json " * 100}).startswith("X: not json")
        and len(_error_text({"Error": "X", "Cause": "y" * 999})) == 300
    )
    assert _error_text(None) == "unknown error"
