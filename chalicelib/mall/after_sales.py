"""After-sales (E2) and returns (G8): a member's refund request, a reviewer's decision, and its effect.

- ``request_refund``: in one transaction the order goes ``refund_requested`` (its previous status kept in
  ``order.refund["from_status"]``) and a review item joins the queue; then a Standard execution named
  ``refund-{order}-{attempt}`` waits for a reviewer (``.waitForTaskToken``). A repeated request starts
  nothing new.
- ``decide``: one decision wins (review ``pending → deciding``) and resumes the execution.
- the workflow applies it: approve → the cash back through the refund adapter (idempotent by order id),
  then ``fulfilment.revert`` in one transaction (status refunded, stock back, points back only if the
  listing said so when the member exchanged); reject → the order returns to its previous status with the
  reviewer's reason. An approval that cannot be carried out goes back to the queue with the error; a
  request nobody decides in time is rejected, and the member may ask again (``MAX_REQUESTS`` in all).
"""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, NotFound, UpstreamFailed, ValidationFailed
from chalicelib.core.models import Page
from chalicelib.core.txn.unit import ConditionRefused, VersionConflict, Write
from chalicelib.mall import fulfilment
from chalicelib.mall.models.after_sales import (
    MAX_REQUESTS,
    REFUNDABLE_STATUSES,
    RETURNABLE_CATEGORIES,
    RefundDecision,
    RefundInfo,
    RefundReview,
    ReviewerDecision,
    ReviewRun,
)
from chalicelib.mall.models.catalog import Order
from chalicelib.mall.store.after_sales import QUEUED, RefundReviewsRepo, review_put, review_update
from chalicelib.mall.store.orders import OrdersRepo, order_update
from chalicelib.payments.refunds import RefundAdapter, refund_adapter
from chalicelib.points.store.points import Commit, PointsRepo
from chalicelib.tenancy.models import App

TIMEOUT_REASON = "not reviewed in time"
NOT_STARTED_REASON = "the review could not be started; request the refund again"
APPROVED_REASON = "refund approved"
RETRY_NOTE = "the refund could not be carried out yet; it will be reviewed again"
ATTEMPTS = 5  # the order changed under us: read it again


def refund_info(order: Order) -> RefundInfo | None:
    """The order's current (or last) refund request, if it ever had one."""
    if not order.refund or "attempt" not in order.refund:
        return None
    return RefundInfo.model_validate(order.refund)


def refusal(order: Order) -> str | None:
    """Why this order cannot be refund-requested now (None: it can)."""
    if order.status not in REFUNDABLE_STATUSES:
        return f"a {order.status.replace('_', ' ')} order cannot be refunded"
    if order.status != "awaiting_shipment" and order.category not in RETURNABLE_CATEGORIES:
        return f"delivered {order.category.replace('_', ' ')} goods cannot be returned"
    info = refund_info(order)
    if info is not None and info.attempt >= MAX_REQUESTS:
        return f"a refund was already requested {MAX_REQUESTS} times for this order"
    return None


def _commit(order: Order, writes: list[Write]) -> None:
    PointsRepo().commit(Commit(order.app_id, order.member_id, writes=writes))


def _execution_name(order_id: str, attempt: int) -> str:
    return f"refund-{order_id}-{attempt}"


def _start(run: ReviewRun) -> None:
    aws.start_execution(get_settings().sfn_after_sales_review, _execution_name(run.order_id, run.attempt), run.model_dump())


def _run(order: Order, attempt: int) -> ReviewRun:
    return ReviewRun(
        app_id=order.app_id,
        order_id=order.order_id,
        member_id=order.member_id,
        attempt=attempt,
        timeout_seconds=get_settings().after_sales_review_timeout_seconds,
    )


# --- the member ------------------------------------------------------------------------------------


def request_refund(app: App, member_id: str, order_id: str, reason: str, *, clock: Clock | None = None) -> tuple[Order, bool]:
    """The member's own order → refund_requested, and its review started. Returns (order, created)."""
    orders, reviews = OrdersRepo(), RefundReviewsRepo()
    now = iso(time_now(clock))
    for _ in range(ATTEMPTS):
        order = orders.get(app.app_id, member_id, order_id)
        if order is None:
            raise NotFound("Order not found")
        info = refund_info(order)
        if order.status == "refund_requested" and info is not None:
            _ensure_started(order, info, reviews)
            return order, False
        why = refusal(order)
        if why is not None:
            raise Conflict(f"This order cannot be refunded: {why}")
        attempt = (info.attempt if info else 0) + 1
        asked = RefundInfo(attempt=attempt, state="pending", reason=reason, requested_at=now, from_status=order.status)
        requested = order.model_copy(update={"status": "refund_requested", "refund": asked.model_dump(), "updated_at": now})
        review = RefundReview(
            **order.model_dump(include=set(RefundReview.model_fields) - {"status", "reason"}),
            attempt=attempt,
            status="pending",
            from_status=order.status,
            reason=reason,
            requested_at=now,
        )
        try:
            _commit(order, [order_update(requested, order.version, (order.status,)), review_put(review)])
        except (ConditionRefused, VersionConflict):
            continue  # the order moved (another request, shipping, ...): decide again on what it is now
        try:
            _start(_run(order, attempt))
        except UpstreamFailed:
            _abandon(requested, order, review, now)
            raise
        found = orders.get(app.app_id, member_id, order_id)
        assert found is not None
        # A fulfilment step waiting for this order's shipment ends (the shipping API works without it).
        fulfilment.resume_waiting(found)
        return found, True
    raise Conflict("The order is changing; retry")


def _ensure_started(order: Order, info: RefundInfo, reviews: RefundReviewsRepo) -> None:
    """A repeated request restarts a review whose start was lost (same name: never a second execution)."""
    review = reviews.get(order.app_id, order.order_id, info.attempt)
    if review is not None and review.status == "pending" and not review.task_token:
        _start(_run(order, info.attempt))


def _abandon(requested: Order, before: Order, review: RefundReview, now: str) -> None:
    """The execution could not be started: the order goes back as it was (the attempt may be made again)."""
    back = requested.model_copy(update={"status": before.status, "refund": before.refund, "updated_at": now})
    # refused: it moved on (the execution did start after all), and a repeated request finds it
    with suppress(ConditionRefused, VersionConflict):
        _commit(
            back,
            [
                order_update(back, before.version + 1, ("refund_requested",)),
                review_update(review.model_copy(update={"status": "abandoned"}), ("pending",)),
            ],
        )


# --- the reviewer ----------------------------------------------------------------------------------


def review_queue(app: App, cursor: str | None, limit: int, reviews: RefundReviewsRepo | None = None) -> Page[RefundReview]:
    return (reviews or RefundReviewsRepo()).queue(app.app_id, cursor, limit)


def decide(app: App, order_id: str, reviewer: str, decision: RefundDecision, reviews: RefundReviewsRepo | None = None) -> RefundReview:
    """A reviewer's decision resumes the waiting execution; only one decision per request gets through."""
    reviews = reviews or RefundReviewsRepo()
    order = OrdersRepo().find(app.app_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    info = refund_info(order)
    if order.status != "refund_requested" or info is None:
        raise Conflict(f"This order is {order.status}, not waiting for a refund review")
    review = reviews.get(app.app_id, order_id, info.attempt)
    if review is None or review.status != "pending" or not review.task_token:
        raise Conflict("This refund request is not waiting for a decision")
    if not decision.approve and not decision.reason:
        raise ValidationFailed("A rejection needs a reason", details=[{"field": "reason", "problem": "required to reject"}])
    if not decision.approve and info.refund_id:
        raise Conflict("The cash was already refunded: approve to finish the return")
    deciding = review.model_copy(
        update={"status": "deciding", "reviewer": reviewer, "approve": decision.approve, "decision_reason": decision.reason}
    )
    if not reviews.update(deciding, ("pending",)):
        raise Conflict("Another reviewer decided this refund request")
    try:
        aws.send_task_success(review.task_token, {"approve": decision.approve, "reason": decision.reason, "reviewer": reviewer})
    except UpstreamFailed:
        reviews.update(review, ("deciding",))  # back in the queue: the decision can be made again
        raise
    # Conflict (the review timed out meanwhile) propagates: the timeout step settles the request.
    return reviews.get(app.app_id, order_id, info.attempt) or deciding


# --- workflow tasks (idempotent: each may run more than once) -------------------------------------


def _load(run: ReviewRun, reviews: RefundReviewsRepo) -> tuple[Order, RefundReview, RefundInfo | None]:
    order = OrdersRepo().get(run.app_id, run.member_id, run.order_id)
    review = reviews.get(run.app_id, run.order_id, run.attempt)
    if order is None or review is None:
        raise NotFound("Refund request not found")
    return order, review, refund_info(order)


def _current(order: Order, info: RefundInfo | None, run: ReviewRun) -> bool:
    """The order is still waiting on this execution's request (not an older or a settled one)."""
    return order.status == "refund_requested" and info is not None and info.attempt == run.attempt


def await_review(run: ReviewRun, token: str, reviews: RefundReviewsRepo | None = None) -> dict[str, Any]:
    """Step 1: keep the task token with the review, which is in the queue already."""
    held = (reviews or RefundReviewsRepo()).hold_token(run.app_id, run.order_id, run.attempt, token)
    # Not held: the request was abandoned or settled; the wait then ends in the (no-op) timeout step.
    return {"queued": run.order_id, "held": held}


def apply_decision(
    run: ReviewRun,
    decision: ReviewerDecision,
    reviews: RefundReviewsRepo | None = None,
    refunds: RefundAdapter | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Step 2: approve → cash back, then stock (and maybe points) back in one transaction; reject → as it was."""
    reviews = reviews or RefundReviewsRepo()
    order, review, info = _load(run, reviews)
    if not _current(order, info, run):
        _settle_review(reviews, review, order)
        return {"status": order.status}
    assert info is not None
    now = iso(time_now(clock))
    if decision.approve:
        return _approve(order, info, review, decision.reason, reviews, refunds or refund_adapter(), now, clock)
    return _reject(order, info, review, decision.reason or "rejected", reviews, now)


def record_failure(run: ReviewRun, error: Any, reviews: RefundReviewsRepo | None = None, clock: Clock | None = None) -> dict[str, Any]:
    """An approval (or rejection) could not be applied: back in the queue with the error, for a new decision."""
    reviews = reviews or RefundReviewsRepo()
    order, review, info = _load(run, reviews)
    if not _current(order, info, run):
        _settle_review(reviews, review, order)
        return {**run.model_dump(), "again": False}
    assert info is not None
    why = _error_text(error)
    who = f" by {review.reviewer}" if review.reviewer else ""
    waiting = review.model_copy(
        update={"status": "pending", "error": f"the decision{who} could not be applied: {why}", "approve": None, "reviewer": None}
    )
    note = info.model_copy(update={"error": RETRY_NOTE}).model_dump()
    noted = order.model_copy(update={"refund": note, "updated_at": iso(time_now(clock))})
    _commit(order, [order_update(noted, order.version, ("refund_requested",)), review_update(waiting, None, drop_token=True)])
    return {**run.model_dump(), "again": True}


def time_out(
    run: ReviewRun, reason: str | None = None, reviews: RefundReviewsRepo | None = None, clock: Clock | None = None
) -> dict[str, Any]:
    """Nobody decided in time (or the wait failed): the request is rejected — unless its cash already went back."""
    reviews = reviews or RefundReviewsRepo()
    order, review, info = _load(run, reviews)
    if not _current(order, info, run):
        _settle_review(reviews, review, order)
        return {"status": order.status}
    assert info is not None
    now = iso(time_now(clock))
    if info.refund_id:  # an approval paid the cash and then failed: finishing it is the only consistent end
        return _approve(order, info, review, None, reviews, refund_adapter(), now, clock)
    return _reject(order, info, review, reason or TIMEOUT_REASON, reviews, now)


# --- effects ---------------------------------------------------------------------------------------


def _approve(
    order: Order,
    info: RefundInfo,
    review: RefundReview,
    note: str | None,
    reviews: RefundReviewsRepo,
    refunds: RefundAdapter,
    now: str,
    clock: Clock | None,
) -> dict[str, Any]:
    from chalicelib.tenancy.store.apps import AppsRepo

    app = AppsRepo().get_cached(order.app_id)
    if app is None:
        raise NotFound("App not found")
    if order.cash_fen > 0 and not info.refund_id:
        paid = refunds.refund(app, order.order_id, order.cash_fen, order.order_id, openid=order.openid)
        info = info.model_copy(update={"refund_fen": paid.amount_fen, "refund_id": paid.refund_id, "refunded_at": paid.refunded_at})
        order = _remember_refund(order, info)
    points_back = order.points if order.points_back_on_return else 0
    final = info.model_copy(
        update={"state": "approved", "decision_reason": note, "decided_at": now, "points_back": points_back, "error": None}
    )
    reverted = fulfilment.revert(
        app,
        order,
        status="refunded",
        reason=APPROVED_REASON,
        from_statuses=("refund_requested",),
        points_back=order.points_back_on_return,
        stock_back=True,
        extra={"refund": final.model_dump()},
        clock=clock,
    )
    reviews.update(review.model_copy(update={"status": "done", "outcome": "refunded", "decided_at": now, "error": None}), QUEUED)
    return {"status": reverted.status, "refund_fen": final.refund_fen, "points_back": points_back}


def _remember_refund(order: Order, info: RefundInfo) -> Order:
    """The cash went back: say so on the order before anything else can fail (a retry must not reject it)."""
    remembered = order.model_copy(update={"refund": info.model_dump()})
    _commit(order, [order_update(remembered, order.version, ("refund_requested",))])
    return remembered.model_copy(update={"version": order.version + 1})


def _reject(order: Order, info: RefundInfo, review: RefundReview, reason: str, reviews: RefundReviewsRepo, now: str) -> dict[str, Any]:
    rejected = info.model_copy(update={"state": "rejected", "decision_reason": reason, "decided_at": now, "error": None})
    back = order.model_copy(update={"status": info.from_status, "refund": rejected.model_dump(), "updated_at": now})
    done = review.model_copy(update={"status": "done", "outcome": "rejected", "decision_reason": reason, "decided_at": now, "error": None})
    _commit(order, [order_update(back, order.version, ("refund_requested",)), review_update(done, None)])
    return {"status": info.from_status, "reason": reason}


def _settle_review(reviews: RefundReviewsRepo, review: RefundReview, order: Order) -> None:
    """A review whose order moved on leaves the queue (a retried step after the order was settled)."""
    if review.status in QUEUED:
        outcome = "refunded" if order.status == "refunded" else "rejected"
        reviews.update(review.model_copy(update={"status": "done", "outcome": outcome}), QUEUED)


def _error_text(error: Any) -> str:
    """The task failure Step Functions caught, as one short line (the error's message, not its trace)."""
    if not isinstance(error, dict):
        return "unknown error"
    kind, cause = str(error.get("Error") or "error"), error.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    message = parsed.get("errorMessage") if isinstance(parsed, dict) else cause
    return f"{kind}: {message}"[:300] if message else kind[:300]
