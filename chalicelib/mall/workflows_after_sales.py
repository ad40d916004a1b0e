"""Step Functions task functions of the after-sales review (infra/statemachines/after_sales_review.asl.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.mall import after_sales
from chalicelib.mall.models.after_sales import ReviewerDecision, ReviewRun


class AwaitInput(BaseModel):
    run: ReviewRun
    token: str = Field(min_length=1)


class ApplyInput(ReviewRun):
    decision: ReviewerDecision


class FailureInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run: ReviewRun
    error: dict[str, Any] | None = None


class TimeoutInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run: ReviewRun
    reason: str | None = None


def after_sales_review_wait(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = AwaitInput.model_validate(event)
    return after_sales.await_review(checked.run, checked.token)


def after_sales_review_apply(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = ApplyInput.model_validate(event)
    return after_sales.apply_decision(ReviewRun.model_validate(checked.model_dump()), checked.decision)


def after_sales_review_failed(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = FailureInput.model_validate(event)
    return after_sales.record_failure(checked.run, checked.error)


def after_sales_review_timeout(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    checked = TimeoutInput.model_validate(event)
    return after_sales.time_out(checked.run, checked.reason)
