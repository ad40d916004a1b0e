"""Refund reviews (E2 / G8) and the local fake refund provider's record.

A review item per refund request (``APP#{app}#REFUND#{order}`` / ``REVIEW#{attempt}``) keeps what the
reviewer sees and the workflow's task token — not the order, whose document members read, and whose own
``task_token`` belongs to the fulfilment workflow. While undecided it sits in the sparse GSI2 queue
``APP#{app}#REFUNDS#pending``, oldest first; deciding takes it out.
"""

from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError

from chalicelib.core.models import Page
from chalicelib.core.table import keys
from chalicelib.core.table.cursors import decode_cursor, encode_cursor
from chalicelib.core.table.dynamo import condition_failed
from chalicelib.core.table.items import BaseItem
from chalicelib.core.txn.unit import Write
from chalicelib.mall.models.after_sales import RefundReview

QUEUED = ("pending", "deciding")


class RefundReviewItem(BaseItem):
    app_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    attempt = NumberAttribute()
    status = UnicodeAttribute()
    document = UnicodeAttribute()  # the rest of the review (validated by models.after_sales.RefundReview)
    task_token = UnicodeAttribute(null=True)


def _document(review: RefundReview) -> str:
    return review.model_dump_json(exclude={"status", "task_token"})


def _review(item: RefundReviewItem) -> RefundReview:
    return RefundReview.model_validate({**json.loads(item.document), "status": item.status, "task_token": item.task_token})


def _key(app_id: str, order_id: str, attempt: int) -> tuple[str, str]:
    return keys.refund_review_pk(app_id, order_id), keys.refund_review_sk(attempt)


def _queue_key(review: RefundReview) -> str:
    return f"{review.requested_at}#{review.order_id}"


def review_put(review: RefundReview) -> Write:
    """The new request's review, in the queue (goes in the transaction that marks the order refund_requested)."""
    pk, sk = _key(review.app_id, review.order_id, review.attempt)
    item = RefundReviewItem(
        PK=pk,
        SK=sk,
        kind="refund_review",
        app_id=review.app_id,
        order_id=review.order_id,
        attempt=review.attempt,
        status=review.status,
        document=_document(review),
        GSI2PK=keys.refund_queue_gsi(review.app_id),
        GSI2SK=_queue_key(review),
    )
    # an abandoned review (its execution never started) is replaced by the member's next request
    condition = RefundReviewItem.PK.does_not_exist() | (RefundReviewItem.status == "abandoned")
    return Write("put", item, condition, "review", spec=review.order_id)


def review_update(review: RefundReview, from_status: tuple[str, ...] | None, *, drop_token: bool = False) -> Write:
    """The review's next state, from the states it may come from (None: any, when the order's condition decides).

    It leaves the queue (and forgets its token) when settled; ``drop_token`` forgets a token that was used.
    """
    pk, sk = _key(review.app_id, review.order_id, review.attempt)
    actions: list[Any] = [RefundReviewItem.status.set(review.status), RefundReviewItem.document.set(_document(review))]
    if review.status in QUEUED:
        actions += [RefundReviewItem.GSI2PK.set(keys.refund_queue_gsi(review.app_id)), RefundReviewItem.GSI2SK.set(_queue_key(review))]
        if drop_token:
            actions.append(RefundReviewItem.task_token.remove())
    else:
        actions += [RefundReviewItem.GSI2PK.remove(), RefundReviewItem.GSI2SK.remove(), RefundReviewItem.task_token.remove()]
    condition = RefundReviewItem.PK.exists()
    if from_status is not None:
        condition &= RefundReviewItem.status.is_in(*from_status)
    return Write("update", RefundReviewItem(PK=pk, SK=sk), condition, "review", tuple(actions), spec=review.order_id)


class RefundReviewsRepo:
    def get(self, app_id: str, order_id: str, attempt: int) -> RefundReview | None:
        try:
            return _review(RefundReviewItem.get(*_key(app_id, order_id, attempt), consistent_read=True))
        except RefundReviewItem.DoesNotExist:
            return None

    def update(self, review: RefundReview, from_status: tuple[str, ...]) -> bool:
        """One review alone to its next state; False when it is not in ``from_status`` (any more)."""
        write = review_update(review, from_status)
        try:
            write.item.update(actions=list(write.actions), condition=write.condition)
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def hold_token(self, app_id: str, order_id: str, attempt: int, token: str) -> bool:
        """The waiting execution's task token, kept while the review is pending (False otherwise)."""
        item = RefundReviewItem(PK=keys.refund_review_pk(app_id, order_id), SK=keys.refund_review_sk(attempt))
        try:
            item.update(
                actions=[RefundReviewItem.task_token.set(token)],
                condition=RefundReviewItem.PK.exists() & (RefundReviewItem.status == "pending"),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def queue(self, app_id: str, cursor: str | None, limit: int) -> Page[RefundReview]:
        """Requests waiting for (or being given) a decision, oldest first."""
        pk = keys.refund_queue_gsi(app_id)
        result = RefundReviewItem.gsi2.query(pk, limit=limit, last_evaluated_key=decode_cursor(cursor, expect={"GSI2PK": pk}))
        items = [_review(item) for item in result if isinstance(item, RefundReviewItem)]
        return Page[RefundReview](items=items, cursor=encode_cursor(result.last_evaluated_key))
