"""Receipt tasks: upload (presigned S3), submit (starts a Standard review execution), decide, apply.

The review waits in Step Functions (``.waitForTaskToken``); an operator's decision resumes it; an
unreviewed receipt times out into rejection (the task-token mechanics are ``core.review``'s). Points are
credited once, guarded by the receipt id.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core import aws
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.config import get_settings
from chalicelib.core.errors import LimitReached, NotFound, NotOnSale, UpstreamFailed, ValidationFailed
from chalicelib.core.limits import calendar_periods, period_counters
from chalicelib.core.observability import logger
from chalicelib.core.review import DECIDING, PENDING, TIMEOUT_REASON, Decision, apply_once, claim_and_resume, expire_once
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import ConditionRefused, GuardSpec
from chalicelib.points.engine import Commit, PointsRepo, execute
from chalicelib.points.models import PointsProfile
from chalicelib.tasks.models import ReceiptTask, Task
from chalicelib.tasks.receipt_models import RECEIPT_PREFIX, Receipt, ReceiptRequest, ReviewDecision
from chalicelib.tasks.store.receipts import ReceiptsRepo
from chalicelib.tasks.tasks import cached_tasks, counter_for, credit_commit, is_live
from chalicelib.tenancy.access import app_by_id
from chalicelib.tenancy.models import App


def _receipt_task(app: App, task_id: str) -> Task:
    task = next((t for t in cached_tasks(app) if t.task_id == task_id), None)
    if task is None or not isinstance(task.definition, ReceiptTask):
        raise NotFound("Receipt task not found")
    return task


# A member starts at most this many receipts a day (the app's local day), whatever the task.
RECEIPTS_PER_DAY = 20
# A receipt still "uploading" this long after it was started (or put back) is deleted by the table's TTL.
ABANDONED_AFTER_SECONDS = 2 * 86_400


@dataclass(frozen=True)
class Upload:
    """One image's presigned POST: the object key, the url and the form fields to send with the file."""

    key: str
    url: str
    fields: dict[str, str]
    max_bytes: int


def create(
    app: App, member_id: str, openid: str, task_id: str, body: ReceiptRequest, repo: ReceiptsRepo | None = None, clock: Clock | None = None
) -> tuple[Receipt, list[Upload]]:
    """A receipt in state "uploading" and one presigned POST per image (bounded in size and content type).

    The member's daily count goes up in the receipt's own write (over the cap: ``LimitReached``, nothing
    written); the receipt carries a TTL until it is submitted, so an abandoned one goes by itself.
    """
    now = time_now(clock)
    task = _receipt_task(app, task_id)
    assert isinstance(task.definition, ReceiptTask)
    if not is_live(task.definition, now):
        raise NotOnSale("This task is not available now")
    if body.images > task.definition.max_images:
        raise ValidationFailed(f"At most {task.definition.max_images} images", details=[{"field": "images", "problem": "too many"}])
    receipt_id = f"rc_{secrets.token_hex(8)}"
    extension = body.content_type.split("/")[1]
    image_keys = [f"{RECEIPT_PREFIX}{app.app_id}/{member_id}/{receipt_id}/{index}.{extension}" for index in range(body.images)]
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
    counters = period_counters(
        keys.member_pk(app.app_id, member_id),
        "receipts",
        {"day": RECEIPTS_PER_DAY},
        calendar_periods(app.time_zone, now),
        by=1,
        who="member",
    )
    (repo or ReceiptsRepo()).create(receipt, counters=counters, ttl=abandoned_at(now))
    max_bytes = get_settings().receipt_upload_max_bytes
    return receipt, [Upload(key, *aws.upload_form(key, body.content_type, max_bytes), max_bytes) for key in image_keys]


def abandoned_at(now: datetime) -> int:
    """When a receipt still "uploading" from ``now`` on may be deleted (its DynamoDB ``ttl``, epoch seconds)."""
    return epoch(now) + ABANDONED_AFTER_SECONDS


def get_own(app: App, member_id: str, receipt_id: str, repo: ReceiptsRepo | None = None) -> Receipt:
    receipt = (repo or ReceiptsRepo()).get(app.app_id, receipt_id)
    if receipt is None or receipt.member_id != member_id:
        raise NotFound("Receipt not found")
    return receipt


def submit(
    app: App, member_id: str, task_id: str, receipt_id: str, repo: ReceiptsRepo | None = None, clock: Clock | None = None
) -> Receipt:
    """Uploaded → in review: starts the review execution (named by the receipt, so a retry starts nothing new).

    When the start fails (Step Functions refuses it, or no answer comes back) the member gets a 502 and the
    receipt goes back to "uploading", to be submitted again; should the execution have started after all, its
    wait step still takes the receipt into review. A receipt left "submitted" (that putting back failed too)
    has its named execution started again by the next submit: a no-op when it runs.
    """
    repo = repo or ReceiptsRepo()
    now = time_now(clock)
    receipt = get_own(app, member_id, receipt_id, repo)
    if receipt.task_id != task_id:
        raise NotFound("Receipt not found")
    if receipt.status == "submitted":
        _start_review(app, receipt, _receipt_task(app, task_id))
        return get_own(app, member_id, receipt_id, repo)
    if receipt.status != "uploading":
        return receipt
    if not all(aws.uploaded(key) for key in receipt.image_keys[:1]):
        raise ValidationFailed("Upload the receipt image first", details=[{"field": "images", "problem": "not uploaded"}])
    task = _receipt_task(app, task_id)
    # submitted: no longer abandoned, so the TTL goes
    if not repo.transition(app.app_id, receipt_id, ("uploading",), "submitted", submitted_at=iso(now), ttl=None):
        return get_own(app, member_id, receipt_id, repo)
    try:
        _start_review(app, receipt, task)
    except UpstreamFailed:
        try:
            repo.transition(app.app_id, receipt_id, ("submitted",), "uploading", ttl=abandoned_at(now))
        except Exception:
            logger().warning("receipt not put back after a failed start", extra={"receipt_id": receipt_id})
        raise
    return get_own(app, member_id, receipt_id, repo)


def _start_review(app: App, receipt: Receipt, task: Task) -> None:
    """Start the receipt's review execution (named by the receipt: starting it again is a no-op)."""
    assert isinstance(task.definition, ReceiptTask)
    payload = {"app_id": app.app_id, "receipt_id": receipt.receipt_id, "timeout_seconds": task.definition.review_timeout_seconds}
    aws.start_execution(get_settings().sfn_receipt_review, receipt.receipt_id, payload)


def review_queue(app: App, cursor: str | None, limit: int, repo: ReceiptsRepo | None = None) -> tuple[list[Receipt], str | None]:
    page = (repo or ReceiptsRepo()).pending(app.app_id, cursor, limit)
    return page.items, page.cursor


def decide(app: App, receipt_id: str, reviewer: str, decision: ReviewDecision, repo: ReceiptsRepo | None = None) -> Receipt:
    """An operator's decision resumes the waiting execution; only one decision per receipt gets through."""
    store = repo or ReceiptsRepo()
    receipt = store.get(app.app_id, receipt_id)
    if receipt is None:
        raise NotFound("Receipt not found")
    claim_and_resume(
        receipt,
        Decision(decision.approve, decision.reason, reviewer),
        claim=lambda: store.transition(app.app_id, receipt_id, (PENDING,), DECIDING, reviewer=reviewer, submitted_at=receipt.submitted_at),
        not_waiting=f"This receipt is {receipt.status}, not waiting for review",
        taken="Another reviewer decided this receipt",
        # The review already timed out: the receipt is rejected, whatever the late decision.
        on_expired=lambda: store.close_unless_credited(
            app.app_id, receipt_id, (DECIDING,), "rejected", _credit_guard(receipt), reason=TIMEOUT_REASON, decided_at=receipt.submitted_at
        ),
    )
    return store.get(app.app_id, receipt_id) or receipt


# --- workflow tasks (idempotent: each may run more than once) -------------------------------------


def await_review(event: dict[str, Any], repo: ReceiptsRepo | None = None) -> dict[str, Any]:
    """Step 1: keep the task token on the receipt and put it in the review queue."""
    receipt: dict[str, Any] = event["receipt"]
    repo = repo or ReceiptsRepo()
    current = repo.get(receipt["app_id"], receipt["receipt_id"])
    if current is None:
        raise NotFound("Receipt not found")
    repo.hold_token(receipt["app_id"], receipt["receipt_id"], event["token"], current.submitted_at)
    return {"queued": receipt["receipt_id"]}


def apply_decision(
    event: dict[str, Any],
    repo: ReceiptsRepo | None = None,
    points_repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Step 2: approve → points exactly once (guarded by the receipt id); reject → the reason the member sees."""
    repo = repo or ReceiptsRepo()
    app = app_by_id(event["app_id"])
    receipt = repo.get(event["app_id"], event["receipt_id"])
    if app is None or receipt is None:
        raise NotFound("Receipt not found")
    steps = _ReceiptReview(receipt, repo, time_now(clock), app, points_repo or PointsRepo())
    return apply_once(steps, Decision.from_output(event.get("decision")))


def time_out(event: dict[str, Any], repo: ReceiptsRepo | None = None, clock: Clock | None = None) -> dict[str, Any]:
    """Step 2 on timeout (or when a decision could not be applied): the receipt ends rejected, with a reason."""
    repo = repo or ReceiptsRepo()
    receipt = repo.get(event["app_id"], event["receipt_id"])
    if receipt is None:
        raise NotFound("Receipt not found")
    return expire_once(_ReceiptReview(receipt, repo, time_now(clock)), event.get("reason"))


def _credit_guard(receipt: Receipt) -> GuardSpec:
    """The credit happens once per receipt (its result replays for a repeated run)."""
    pk = keys.app_guard_pk(receipt.app_id, "receipt", receipt.receipt_id)
    return GuardSpec(pk=pk, sk=keys.GUARD_SK, result={"receipt": receipt.receipt_id})


OPEN = ("submitted", PENDING, DECIDING)  # a review not settled yet ("submitted": the wait step kept no token yet)


@dataclass
class _ReceiptReview:
    """A receipt's side of its review workflow (core.review.Steps): an approval credits the task's points."""

    receipt: Receipt
    repo: ReceiptsRepo
    now: datetime
    app: App | None = None  # only the apply step needs it (and loads it)
    points_repo: PointsRepo | None = None

    def is_open(self) -> bool:
        # "submitted": the wait step never kept a token, yet the execution may time out
        return self.receipt.status in OPEN

    def settled(self) -> dict[str, Any]:
        if self.receipt.status == "approved":
            return {"status": "approved", "points": self.receipt.points or 0}
        return {"status": self.receipt.status, "reason": self.receipt.reason}

    def reject(self, decision: Decision) -> dict[str, Any]:
        self._close("rejected", reason=decision.reason)
        return {"status": "rejected"}

    def expire(self, reason: str) -> dict[str, Any]:
        """Rejected with ``reason`` — unless its points were credited (an apply step that failed after the credit,
        or still running): then it ends approved with them. The rejection is written only while no credit exists."""
        guard = self._guard()
        credited = (self.points_repo or PointsRepo()).get_guard(guard)
        if credited is None:
            outcome = self.repo.close_unless_credited(
                self.receipt.app_id, self.receipt.receipt_id, OPEN, "rejected", guard, reason=reason, decided_at=iso(self.now)
            )
            if outcome == "closed":
                return {"status": "rejected", "reason": reason}
            if outcome == "moved":
                return self._settled_now()
            credited = (self.points_repo or PointsRepo()).get_guard(guard)
        entry = (credited or ({}, None))[0].get("entry") or {}
        points = int(entry.get("delta") or 0)
        self._close("approved", OPEN, points=points, reviewer=self.receipt.reviewer)
        return self._settled_now()

    def _settled_now(self) -> dict[str, Any]:
        current = self.repo.get(self.receipt.app_id, self.receipt.receipt_id)
        if current is not None:
            self.receipt = current
        return self.settled()

    def approve(self, decision: Decision) -> dict[str, Any]:
        """Points exactly once: the credit's guard is keyed by the receipt, so a repeated run adds nothing."""
        assert self.app is not None and self.points_repo is not None
        task = next((t for t in cached_tasks(self.app) if t.task_id == self.receipt.task_id), None)
        if task is None:
            self._close("rejected", reason="task removed")
            return {"status": "rejected"}
        guard = self._guard()
        try:
            outcome = execute([(self.app.app_id, self.receipt.member_id)], self._credit(task, guard), guard, self.points_repo)
        except ConditionRefused:  # the receipt closed meanwhile (the timeout rejected it): no points
            return self._settled_now()
        except LimitReached:
            reason = "approved, but this task's limit for the cycle was already reached"
            self._close("rejected", reason=reason, reviewer=decision.reviewer)
            return {"status": "rejected", "reason": reason}
        credited = outcome.entry.delta if outcome.entry else 0
        self._close("approved", (PENDING, DECIDING, "approved"), points=credited, reviewer=decision.reviewer)
        return {"status": "approved", "points": credited}

    def _guard(self) -> GuardSpec:
        return _credit_guard(self.receipt)

    def _credit(self, task: Task, guard: GuardSpec) -> Callable[[list[PointsProfile]], Commit]:
        """The points plan: the task's points to the member, counted in the task's cycle, under the receipt's guard."""
        app, receipt, now = self.app, self.receipt, self.now
        assert app is not None
        points, title = task.definition.points, task.definition.title

        def plan(profiles: list[PointsProfile]) -> Commit:
            commit = credit_commit(
                app,
                receipt.member_id,
                profiles[0],
                task,
                points,
                now,
                f"receipt:{receipt.receipt_id}",
                title,
                counters=[counter_for(app, receipt.member_id, task, now)],
                guards=[guard],
                kind="receipt",
            )
            # only while the receipt is still in review: a timeout that rejected it first keeps the points out
            commit.writes.append(ReceiptsRepo.open_check(receipt.app_id, receipt.receipt_id, (PENDING, DECIDING)))
            return commit

        return plan

    def _close(self, status: str, from_status: tuple[str, ...] = (DECIDING, PENDING), **fields: Any) -> None:
        """The receipt's final state, only from an open one (a concurrent run or the timeout may be first)."""
        self.repo.transition(self.receipt.app_id, self.receipt.receipt_id, from_status, status, decided_at=iso(self.now), **fields)


def image_urls(receipt: Receipt) -> list[str]:
    return [aws.download_url(key) for key in receipt.image_keys]
