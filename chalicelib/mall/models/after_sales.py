"""After-sales (E2) and returns (G8): a member's refund request, its review, and what the reviewer decides."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from chalicelib.core.models import Model
from chalicelib.mall.models.catalog import Category

# Paid, not undone, not in flight: awaiting_payment is cancelled instead, paying_out is mid-call.
REFUNDABLE_STATUSES: tuple[str, ...] = ("awaiting_shipment", "shipped", "completed")
# Once delivered, only physical goods can come back (a shown CDK code, a credited point or a paid-out
# red packet cannot be returned); before delivery (awaiting_shipment) any category can be refunded.
RETURNABLE_CATEGORIES: frozenset[str] = frozenset({"physical"})
MAX_REQUESTS = 3  # per order: a rejected (or unreviewed) request may be made again, up to this many in all

# pending: in the queue, waiting; deciding: a decision is being applied; done: decided (or timed out);
# abandoned: the review could not be started (the order went back; the attempt may be made again).
ReviewStatus = Literal["pending", "deciding", "done", "abandoned"]
RefundState = Literal["pending", "approved", "rejected"]
Outcome = Literal["refunded", "rejected"]


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", strict=True)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class RefundRequestIn(_Strict):
    reason: str = Field(min_length=1, max_length=256, description="why the member wants the refund (the reviewer sees it)")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str | None:
        return _text(value)


class RefundDecision(_Strict):
    approve: bool
    reason: str | None = Field(default=None, max_length=256, description="required to reject; the member sees it")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str | None) -> str | None:
        return _text(value)


class RefundInfo(Model):
    """What ``Order.refund`` holds (the member sees it on the order)."""

    model_config = ConfigDict(extra="allow")

    attempt: int
    state: RefundState
    reason: str
    requested_at: str
    from_status: str
    decision_reason: str | None = None
    decided_at: str | None = None
    refund_fen: int = 0
    refund_id: str | None = None
    refunded_at: str | None = None
    points_back: int = 0
    error: str | None = None


class RefundReviewOut(Model):
    """One refund request as a reviewer sees it: the order's essentials, the request, the decision."""

    order_id: str
    attempt: int
    status: ReviewStatus
    member_id: str
    openid: str
    listing_id: str
    title: str
    category: Category
    quantity: int
    points: int
    cash_fen: int
    points_back_on_return: bool
    from_status: str
    reason: str
    requested_at: str
    reviewer: str | None = None
    approve: bool | None = None
    decision_reason: str | None = None
    decided_at: str | None = None
    outcome: Outcome | None = None
    error: str | None = Field(default=None, description="why the last approval could not be carried out (decide again)")


class RefundReview(RefundReviewOut):
    app_id: str
    task_token: str | None = None


class RefundQueue(Model):
    items: list[RefundReviewOut]
    cursor: str | None = None


# --- the review workflow's events (infra/statemachines/after_sales_review.asl.json) -----------------


class ReviewRun(Model):
    """What the execution carries from start to end: which request of which order it reviews."""

    model_config = ConfigDict(extra="ignore")

    app_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    member_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(ge=1, le=MAX_REQUESTS)
    timeout_seconds: int = Field(ge=1)


class ReviewerDecision(Model):
    model_config = ConfigDict(extra="ignore")

    approve: bool
    reason: str | None = None
    reviewer: str | None = None
