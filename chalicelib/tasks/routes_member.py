"""Member routes of tasks: check-in, the task list, completions, receipts. The member comes from the bearer
token.
"""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import MEMBER
from chalicelib.core.errors import NotFound
from chalicelib.core.http.api import Api, current_member, idempotency_key, ok, parse_body
from chalicelib.points.models import LedgerEntryOut
from chalicelib.tasks import receipts, tasks
from chalicelib.tasks.models import CheckinOut, CompletionOut, MemberTaskList
from chalicelib.tasks.public import task_out
from chalicelib.tasks.receipt_models import Receipt, ReceiptCreated, ReceiptOut, ReceiptRequest, UploadSlot
from chalicelib.tenancy.access import caller_app

member = Api(__name__, tag="member")


@member.endpoint(
    "/v1/me/checkins",
    metric="CheckedIn",
    methods=("POST",),
    auth=MEMBER,
    response=CheckinOut,
    headers=("Idempotency-Key",),
    status=200,
    summary="Daily check-in (app-local day); again the same day → 409 ALREADY_DONE",
    errors=(409,),
)
def create_checkin() -> Response:
    outcome, streak, bonus = tasks.checkin(caller_app(), current_member().member_id, idempotency_key=idempotency_key())
    earned = outcome.entry.delta if outcome.entry else 0
    # a replayed Idempotency-Key answers exactly as the first time
    balance = outcome.entry.balance_after if outcome.entry else outcome.balance
    return ok(CheckinOut(points=earned, streak=streak, bonus=bonus, balance=balance))


@member.endpoint("/v1/tasks", auth=MEMBER, response=MemberTaskList, summary="Live tasks with my progress in the current cycle")
def list_tasks() -> Response:
    app = caller_app()
    return ok(MemberTaskList(items=[task_out(progress) for progress in tasks.member_tasks(app, current_member().member_id)]))


@member.endpoint(
    "/v1/tasks/{task_id}/completions",
    metric="TaskCompleted",
    methods=("POST",),
    auth=MEMBER,
    response=CompletionOut,
    headers=("Idempotency-Key",),
    summary="Complete a self-reported task (browse, add friend, join group, festival)",
    errors=(404, 409),
)
def complete_task(task_id: str) -> Response:
    outcome = tasks.complete(caller_app(), current_member().member_id, task_id, idempotency_key=idempotency_key())
    entry = LedgerEntryOut(**outcome.entry.model_dump()) if outcome.entry else None
    # a replayed Idempotency-Key answers exactly as the first time (same status and body, API.md)
    balance = entry.balance_after if entry else outcome.balance
    return ok(CompletionOut(applied=True, points=entry.delta if entry else 0, entry=entry, balance=balance))


def _receipt_out(receipt: Receipt) -> ReceiptOut:
    return ReceiptOut(**receipt.model_dump(include=set(ReceiptOut.model_fields)))


@member.endpoint(
    "/v1/tasks/{task_id}/receipts",
    methods=("POST",),
    auth=MEMBER,
    body=ReceiptRequest,
    response=ReceiptCreated,
    status=201,
    summary="Start a receipt: a presigned POST per image (size-limited) and the receipt id; points after review. "
    f"At most {receipts.RECEIPTS_PER_DAY} a member a day → 409 LIMIT_REACHED",
    errors=(400, 404, 409),
)
def create_receipt(task_id: str) -> Response:
    caller = current_member()
    receipt, uploads = receipts.create(caller_app(), caller.member_id, caller.openid, task_id, parse_body(ReceiptRequest))
    slots = [UploadSlot(key=up.key, url=up.url, fields=up.fields, max_bytes=up.max_bytes) for up in uploads]
    return ok(
        ReceiptCreated(
            receipt_id=receipt.receipt_id, uploads=slots, submit_path=f"/v1/tasks/{task_id}/receipts/{receipt.receipt_id}/submit"
        ),
        status=201,
    )


@member.endpoint(
    "/v1/tasks/{task_id}/receipts/{receipt_id}/submit",
    metric="ReceiptSubmitted",
    methods=("POST",),
    auth=MEMBER,
    response=ReceiptOut,
    summary="After uploading: send the receipt to review (starts the review workflow)",
    errors=(400, 404, 502),
)
def submit_receipt(task_id: str, receipt_id: str) -> Response:
    return ok(_receipt_out(receipts.submit(caller_app(), current_member().member_id, task_id, receipt_id)))


@member.endpoint(
    "/v1/tasks/{task_id}/receipts/{receipt_id}",
    auth=MEMBER,
    response=ReceiptOut,
    summary="A receipt's review status and reason",
    errors=(404,),
)
def get_receipt(task_id: str, receipt_id: str) -> Response:
    receipt = receipts.get_own(caller_app(), current_member().member_id, receipt_id)
    if receipt.task_id != task_id:
        raise NotFound("Receipt not found")
    return ok(_receipt_out(receipt))
