"""After-sales (E2) and returns (G8): a member's refund request, a reviewer's decision, and its effect.

- ``request_refund``: in one transaction the order goes ``refund_requested`` (its previous status kept in
  ``order.refund["from_status"]``) and a review item joins the queue; then a Standard execution named
  ``refund-{order}-{attempt}`` waits for a reviewer (``.waitForTaskToken``). A repeated request starts
  nothing new.
- ``decide``: one decision wins (review ``pending → deciding``) and resumes the execution (the
  task-token mechanics, shared with the other reviews, are ``core.review``'s).
- the workflow applies it: approve → the cash back through the refund adapter (idempotent by order id),
  then ``fulfilment.revert`` in one transaction (status refunded, stock back, points back only if the
  listing said so when the member exchanged); reject → the order returns to its previous status with the
  reviewer's reason. An approval that cannot be carried out goes back to the queue with the error; a
  request nobody decides in time is rejected, and the member may ask again (``MAX_REQUESTS`` in all).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, NotFound, UpstreamFailed
from chalicelib.core.models import Page
from chalicelib.core.review import DECIDING, PENDING, Decision, apply_once, claim_and_resume, expire_once, failure_note
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
from chalicelib.mall.store.orders import OrdersRepo, order_update, order_watch
from chalicelib.payments.refunds import RefundAdapter, refund_adapter
from chalicelib.points.engine import Commit, PointsRepo
from chalicelib.tenancy.access import app_by_id
from chalicelib.tenancy.models import App

NOT_WAITING = "This refund request is not waiting for a decision"
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
            # on the reconciler's watch list too: a review whose start is lost (a crash after this commit) is started later
            writes = [order_update(requested, order.version, (order.status,)), review_put(review), order_watch(order, now)]
            _commit(order, writes)
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


def _ensure_started(order: Order, info: RefundInfo, reviews: RefundReviewsRepo) -> bool:
    """A repeated request (or the reconciler) restarts a review whose start was lost (same name: never a second execution)."""
    review = reviews.get(order.app_id, order.order_id, info.attempt)
    if review is not None and review.status == "pending" and not review.task_token:
        _start(_run(order, info.attempt))
        return True
    return False


def heal(order: Order) -> bool:
    """The reconciler's part: a refund request still waiting whose review execution is not holding it gets started."""
    info = refund_info(order)
    if order.status != "refund_requested" or info is None:
        return False
    return _ensure_started(order, info, RefundReviewsRepo())


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
    store = reviews or RefundReviewsRepo()
    order = OrdersRepo().find(app.app_id, order_id)
    if order is None:
        raise NotFound("Order not found")
    info = refund_info(order)
    if order.status != "refund_requested" or info is None:
        raise Conflict(f"This order is {order.status}, not waiting for a refund review")
    review = store.get(app.app_id, order_id, info.attempt)
    if review is None:
        raise Conflict(NOT_WAITING)
    cash_back = bool(info.refund_id)

    def refunded_cash_cannot_be_rejected() -> None:
        if not decision.approve and cash_back:
            raise Conflict("The cash was already refunded: approve to finish the return")

    deciding = review.model_copy(
        update={"status": DECIDING, "reviewer": reviewer, "approve": decision.approve, "decision_reason": decision.reason}
    )
    claim_and_resume(
        review,
        Decision(decision.approve, decision.reason, reviewer),
        claim=lambda: store.update(deciding, (PENDING,)),
        not_waiting=NOT_WAITING,
        taken="Another reviewer decided this refund request",
        rules=refunded_cash_cannot_be_rejected,
        on_unreachable=lambda: store.update(review, (DECIDING,)),  # back in the queue: the decision can be made again
    )
    # Conflict (the review timed out meanwhile) propagates: the timeout step settles the request.
    return store.get(app.app_id, order_id, info.attempt) or deciding


# --- workflow tasks (idempotent: each may run more than once) -------------------------------------


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
    request = _Request.load(run, reviews or RefundReviewsRepo(), clock, refunds)
    return apply_once(request, Decision(decision.approve, decision.reason, decision.reviewer))


def record_failure(run: ReviewRun, error: Any, reviews: RefundReviewsRepo | None = None, clock: Clock | None = None) -> dict[str, Any]:
    """An approval (or rejection) could not be applied: back in the queue with the error, for a new decision.

    The used task token is dropped with it: nobody can decide again until the execution waits again (with a new one).
    """
    request = _Request.load(run, reviews or RefundReviewsRepo(), clock)
    if not request.is_open():
        request.settled()
        return {**run.model_dump(), "again": False}
    order, review, info = request.order, request.review, request.open_info
    waiting = review.model_copy(
        update={"status": PENDING, "error": failure_note(error, review.reviewer), "approve": None, "reviewer": None}
    )
    note = info.model_copy(update={"error": RETRY_NOTE}).model_dump()
    noted = order.model_copy(update={"refund": note, "updated_at": iso(time_now(clock))})
    _commit(order, [order_update(noted, order.version, ("refund_requested",)), review_update(waiting, None, drop_token=True)])
    return {**run.model_dump(), "again": True}


def time_out(
    run: ReviewRun, reason: str | None = None, reviews: RefundReviewsRepo | None = None, clock: Clock | None = None
) -> dict[str, Any]:
    """Nobody decided in time (or the wait failed): the request is rejected — unless its cash already went back."""
    return expire_once(_Request.load(run, reviews or RefundReviewsRepo(), clock), reason)


# --- effects ---------------------------------------------------------------------------------------


@dataclass
class _Request:
    """One refund request as its review execution sees it (core.review.Steps): the order, its review, its refund."""

    run: ReviewRun
    order: Order
    review: RefundReview
    info: RefundInfo | None
    reviews: RefundReviewsRepo
    clock: Clock | None
    refunds: RefundAdapter | None = None

    @classmethod
    def load(cls, run: ReviewRun, reviews: RefundReviewsRepo, clock: Clock | None, refunds: RefundAdapter | None = None) -> _Request:
        order = OrdersRepo().get(run.app_id, run.member_id, run.order_id)
        review = reviews.get(run.app_id, run.order_id, run.attempt)
        if order is None or review is None:
            raise NotFound("Refund request not found")
        return cls(run, order, review, refund_info(order), reviews, clock, refunds)

    def is_open(self) -> bool:
        """The order is still waiting on this execution's request (not an older or a settled one)."""
        return self.order.status == "refund_requested" and self.info is not None and self.info.attempt == self.run.attempt

    @property
    def open_info(self) -> RefundInfo:
        assert self.info is not None, "is_open() first"
        return self.info

    def settled(self) -> dict[str, Any]:
        """A review whose order moved on leaves the queue (a retried step after the order was settled)."""
        if self.review.status in QUEUED:
            outcome = "refunded" if self.order.status == "refunded" else "rejected"
            self.reviews.update(self.review.model_copy(update={"status": "done", "outcome": outcome}), QUEUED)
        return {"status": self.order.status}

    def approve(self, decision: Decision) -> dict[str, Any]:
        return self._refund(decision.reason, self.refunds or refund_adapter())

    def reject(self, decision: Decision) -> dict[str, Any]:
        return self._reject(decision.reason or "rejected")

    def expire(self, reason: str) -> dict[str, Any]:
        if self.open_info.refund_id:  # an approval paid the cash and then failed: finishing it is the only consistent end
            return self._refund(None, refund_adapter())
        return self._reject(reason)

    def _refund(self, note: str | None, refunds: RefundAdapter) -> dict[str, Any]:
        """Cash back through the adapter (idempotent by order id), then status, stock and maybe points in one go."""
        order, info, now = self.order, self.open_info, iso(time_now(self.clock))
        app = app_by_id(order.app_id)
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
            clock=self.clock,
        )
        done = self.review.model_copy(update={"status": "done", "outcome": "refunded", "decided_at": now, "error": None})
        self.reviews.update(done, QUEUED)
        return {"status": reverted.status, "refund_fen": final.refund_fen, "points_back": points_back}

    def _reject(self, reason: str) -> dict[str, Any]:
        """The order goes back to where it was, with the reason; the review leaves the queue."""
        order, info, now = self.order, self.open_info, iso(time_now(self.clock))
        rejected = info.model_copy(update={"state": "rejected", "decision_reason": reason, "decided_at": now, "error": None})
        back = order.model_copy(update={"status": info.from_status, "refund": rejected.model_dump(), "updated_at": now})
        done = self.review.model_copy(
            update={"status": "done", "outcome": "rejected", "decision_reason": reason, "decided_at": now, "error": None}
        )
        _commit(order, [order_update(back, order.version, ("refund_requested",)), review_update(done, None)])
        return {"status": info.from_status, "reason": reason}


def _remember_refund(order: Order, info: RefundInfo) -> Order:
    """The cash went back: say so on the order before anything else can fail (a retry must not reject it)."""
    remembered = order.model_copy(update={"refund": info.model_dump()})
    _commit(order, [order_update(remembered, order.version, ("refund_requested",))])
    return remembered.model_copy(update={"version": order.version + 1})
