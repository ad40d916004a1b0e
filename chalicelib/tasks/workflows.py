"""Step Functions task functions of the receipt review (infra/statemachines/receipt_review.asl.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.tasks import receipts


class ReviewInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    app_id: str
    receipt_id: str


class AwaitInput(BaseModel):
    receipt: ReviewInput
    token: str


def receipt_review_wait(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = AwaitInput.model_validate(event)
    return receipts.await_review({"receipt": checked.receipt.model_dump(), "token": checked.token})


def receipt_review_apply(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    ReviewInput.model_validate(event)
    return receipts.apply_decision(event)


def receipt_review_timeout(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    ReviewInput.model_validate(event)
    return receipts.time_out(event)
