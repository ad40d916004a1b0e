"""Receipt tasks: upload (presigned S3), submit (starts a Standard review execution), decide, apply.

The review waits in Step Functions (``.waitForTaskToken``); an operator's decision resumes it; an
unreviewed receipt times out into rejection. Points are credited once, guarded by the receipt id.
"""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib.core import aws
from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import Conflict, LimitReached, NotFound, NotOnSale, UpstreamFailed, ValidationFailed
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import GuardSpec
from chalicelib.points.engine import execute
from chalicelib.points.models import PointsProfile
from chalicelib.points.store.points import Commit, PointsRepo
from chalicelib.tasks.models import ReceiptTask, Task
from chalicelib.tasks.receipt_models import Receipt, ReceiptRequest, ReviewDecision
from chalicelib.tasks.store.receipts import ReceiptsRepo
from chalicelib.tasks.tasks import cached_tasks, counter_for, credit_commit, is_live
from chalicelib.tenancy.models import App

TIMEOUT_REASON = "not reviewed in time"


def _receipt_task(app: App, task_id: str) -> Task:
    task = next((t for t in cached_tasks(app) if t.task_id == task_id), None)
    if task is None or not isinstance(task.definition, ReceiptTask):
        raise NotFound("Receipt task not found")
    return task


def create(
    app: App, member_id: str, openid: str, task_id: str, body: ReceiptRequest, repo: ReceiptsRepo | None = None, clock: Clock | None = None
) -> tuple[Receipt, list[tuple[str, str]]]:
    """A receipt in state "uploading" and one presigned upload URL per image."""
    now = time_now(clock)
    task = _receipt_task(app, task_id)
    assert isinstance(task.definition, ReceiptTask)
    if not is_live(task.definition, now):
        raise NotOnSale("This task is not available now")
    if body.images > task.definition.max_images:
        raise ValidationFailed(f"At most {task.definition.max_images} images", details=[{"field": "images", "problem": "too many"}])
    receipt_id = f"rc_{secrets.token_hex(8)}"
    extension = body.content_type.split("/")[1]
    image_keys = [f"receipts/{app.app_id}/{member_id}/{receipt_id}/{index}.{extension}" for index in range(body.images)]
    receipt = Receipt(
        receipt_id=receipt_id,
        app_id=app.app_id,
        member_id=member_id,
        openid=openid,
        task_id=task_id,
        status="uploading",
        image_keys=image_keys,
        created_at=iso(now),
    )
    (repo or ReceiptsRepo()).create(receipt)
    return receipt, [(key, aws.upload_url(key, body.content_type)) for key in image_keys]


def get_own(app: App, member_id: str, receipt_id: str, repo: ReceiptsRepo | None = None) -> Receipt:
    receipt = (repo or ReceiptsRepo()).get(app.app_id, receipt_id)
    if receipt is None or receipt.member_id != member_id:
        raise NotFound("Receipt not found")
    return receipt


def submit(
    app: App, member_id: str, task_id: str, receipt_id: str, repo: ReceiptsRepo | None = None, clock: Clock | None = None
) -> Receipt:
    """Uploaded → in review: starts the review execution (named by the receipt, so a retry starts nothing new)."""
    repo = repo or ReceiptsRepo()
    now = time_now(clock)
    receipt = get_own(app, member_id, receipt_id, repo)
    if receipt.task_id != task_id:
        raise NotFound("Receipt not found")
    if receipt.status != "uploading":
        return receipt
    if not all(aws.uploaded(key) for key in receipt.image_keys[:1]):
        raise ValidationFailed("Upload the receipt image first", details=[{"field": "images", "problem": "not uploaded"}])
    task = _receipt_task(app, task_id)
    assert isinstance(task.definition, ReceiptTask)
    if not repo.transition(app.app_id, receipt_id, ("uploading",), "submitted", submitted_at=iso(now)):
        return get_own(app, member_id, receipt_id, repo)
    payload = {"app_id": app.app_id, "receipt_id": receipt_id, "timeout_seconds": task.definition.review_timeout_seconds}
    try:
        aws.start_execution(get_settings().sfn_receipt_review, receipt_id, payload)
    except UpstreamFailed:
        repo.transition(app.app_id, receipt_id, ("submitted",), "uploading", submitted_at=None)
        raise
    return get_own(app, member_id, receipt_id, repo)


def review_queue(app: App, cursor: str | None, limit: int, repo: ReceiptsRepo | None = None) -> tuple[list[Receipt], str | None]:
    page = (repo or ReceiptsRepo()).pending(app.app_id, cursor, limit)
    return page.items, page.cursor


def decide(app: App, receipt_id: str, reviewer: str, decision: ReviewDecision, repo: ReceiptsRepo | None = None) -> Receipt:
    """An operator's decision resumes the waiting execution; only one decision per receipt gets through."""
    repo = repo or ReceiptsRepo()
    receipt = repo.get(app.app_id, receipt_id)
    if receipt is None:
        raise NotFound("Receipt not found")
    if receipt.status != "pending" or not receipt.task_token:
        raise Conflict(f"This receipt is {receipt.status}, not waiting for review")
    if not decision.approve and not decision.reason:
        raise ValidationFailed("A rejection needs a reason", details=[{"field": "reason", "problem": "required to reject"}])
    if not repo.transition(app.app_id, receipt_id, ("pending",), "deciding", reviewer=reviewer, submitted_at=receipt.submitted_at):
        raise Conflict("Another reviewer decided this receipt")
    try:
        aws.send_task_success(receipt.task_token, {"approve": decision.approve, "reason": decision.reason, "reviewer": reviewer})
    except Conflict:
        # The review already timed out: the receipt is rejected, whatever the late decision.
        repo.transition(app.app_id, receipt_id, ("deciding",), "rejected", reason=TIMEOUT_REASON, decided_at=receipt.submitted_at)
        raise
    found = repo.get(app.app_id, receipt_id)
    return found or receipt


# --- workflow tasks (idempotent: each may run more than once) -------------------------------------


def await_review(event: dict[str, Any], repo: ReceiptsRepo | None = None) -> dict[str, Any]:
    """Step 1: keep the task token on the receipt and put it in the review queue."""
    receipt: dict[str, Any] = event["receipt"]
    repo = repo or ReceiptsRepo()
    current = repo.get(receipt["app_id"], receipt["receipt_id"])
    if current is None:
        raise NotFound("Receipt not found")
    repo.transition(
        receipt["app_id"],
        receipt["receipt_id"],
        ("submitted", "pending"),
        "pending",
        task_token=event["token"],
        submitted_at=current.submitted_at,
    )
    return {"queued": receipt["receipt_id"]}


def apply_decision(
    event: dict[str, Any],
    apps: Any = None,
    repo: ReceiptsRepo | None = None,
    points_repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Step 2: approve → points exactly once (guarded by the receipt id); reject → the reason the member sees."""
    from chalicelib.tenancy.store.apps import AppsRepo

    repo = repo or ReceiptsRepo()
    now = time_now(clock)
    app = (apps or AppsRepo()).get_cached(event["app_id"])
    receipt = repo.get(event["app_id"], event["receipt_id"])
    if app is None or receipt is None:
        raise NotFound("Receipt not found")
    decision = event.get("decision") or {}
    reviewer = decision.get("reviewer")
    if not decision.get("approve"):
        repo.transition(
            app.app_id, receipt.receipt_id, ("deciding", "pending"), "rejected", reason=decision.get("reason"), decided_at=iso(now)
        )
        return {"status": "rejected"}
    task = next((t for t in cached_tasks(app) if t.task_id == receipt.task_id), None)
    if task is None:
        repo.transition(app.app_id, receipt.receipt_id, ("deciding", "pending"), "rejected", reason="task removed", decided_at=iso(now))
        return {"status": "rejected"}
    guard = GuardSpec(
        pk=keys.app_guard_pk(app.app_id, "receipt", receipt.receipt_id), sk=keys.GUARD_SK, result={"receipt": receipt.receipt_id}
    )

    def plan(profiles: list[PointsProfile]) -> Commit:
        return credit_commit(
            app,
            receipt.member_id,
            profiles[0],
            task,
            task.definition.points,
            now,
            f"receipt:{receipt.receipt_id}",
            task.definition.title,
            counters=[counter_for(app, receipt.member_id, task, now)],
            guards=[guard],
            kind="receipt",
        )

    try:
        outcome = execute([(app.app_id, receipt.member_id)], plan, guard, points_repo or PointsRepo())
    except LimitReached:
        reason = "approved, but this task's limit for the cycle was already reached"
        repo.transition(
            app.app_id, receipt.receipt_id, ("deciding", "pending"), "rejected", reason=reason, decided_at=iso(now), reviewer=reviewer
        )
        return {"status": "rejected", "reason": reason}
    credited = outcome.entry.delta if outcome.entry else 0
    repo.transition(
        app.app_id,
        receipt.receipt_id,
        ("deciding", "pending", "approved"),
        "approved",
        points=credited,
        decided_at=iso(now),
        reviewer=reviewer,
    )
    return {"status": "approved", "points": credited}


def time_out(event: dict[str, Any], repo: ReceiptsRepo | None = None, clock: Clock | None = None) -> dict[str, Any]:
    """Step 2 on timeout (or when a decision could not be applied): the receipt ends rejected, with a reason."""
    now = time_now(clock)
    reason = str(event.get("reason") or TIMEOUT_REASON)
    (repo or ReceiptsRepo()).transition(
        event["app_id"], event["receipt_id"], ("submitted", "pending", "deciding"), "rejected", reason=reason, decided_at=iso(now)
    )
    return {"status": "rejected", "reason": reason}


def image_urls(receipt: Receipt) -> list[str]:
    return [aws.download_url(key) for key in receipt.image_keys]
