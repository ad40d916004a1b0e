"""Operator routes of tasks: task definitions and the receipt review queue. Tenant from the operator token."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, MANAGERS, operator
from chalicelib.core.http.api import Api, current_operator, ok, parse_body, query, query_int
from chalicelib.core.models import Deleted, Role
from chalicelib.tasks import receipts, tasks
from chalicelib.tasks.models import Task, TaskIn, TaskList, TaskReplace
from chalicelib.tasks.receipt_models import ReceiptOut, ReviewDecision, ReviewItem, ReviewQueue
from chalicelib.tenancy.access import operator_app

admin = Api(__name__, tag="admin")
PAGE = ("cursor", "limit")


# --- tasks (K1, K2) --------------------------------------------------------------------------------


@admin.endpoint(
    "/v1/admin/apps/{app_id}/tasks",
    methods=("POST",),
    auth=MANAGERS,
    body=TaskIn,
    response=Task,
    status=201,
    summary="Create a task (any template of K2)",
    errors=(400, 404),
)
def create_task(app_id: str) -> Response:
    app = operator_app(app_id)
    return ok(tasks.create_task(app, parse_body(TaskIn).task), status=201)


@admin.endpoint("/v1/admin/apps/{app_id}/tasks", auth=ANY_OPERATOR, response=TaskList, summary="The app's tasks", errors=(404,))
def list_tasks(app_id: str) -> Response:
    app = operator_app(app_id)
    return ok(TaskList(items=tasks.list_tasks(app)))


@admin.endpoint("/v1/admin/apps/{app_id}/tasks/{task_id}", auth=ANY_OPERATOR, response=Task, summary="One task", errors=(404,))
def get_task(app_id: str, task_id: str) -> Response:
    app = operator_app(app_id)
    return ok(tasks.get_task(app, task_id))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/tasks/{task_id}",
    methods=("PUT",),
    auth=MANAGERS,
    body=TaskReplace,
    response=Task,
    summary="Replace a task (optimistic: send the version read); online / offline is the `online` field",
    errors=(400, 404, 409),
)
def replace_task(app_id: str, task_id: str) -> Response:
    app = operator_app(app_id)
    body = parse_body(TaskReplace)
    return ok(tasks.replace_task(app, task_id, body.task, body.version))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/tasks/{task_id}", methods=("DELETE",), auth=MANAGERS, response=Deleted, summary="Delete a task", errors=(404,)
)
def delete_task(app_id: str, task_id: str) -> Response:
    app = operator_app(app_id)
    tasks.delete_task(app, task_id)
    return ok(Deleted(deleted=True))


# --- receipt review (K3) ---------------------------------------------------------------------------

REVIEWERS = operator(Role.OWNER, Role.OPERATOR, Role.REVIEWER)


@admin.endpoint(
    "/v1/admin/apps/{app_id}/receipts",
    auth=REVIEWERS,
    response=ReviewQueue,
    query=("cursor", "limit"),
    summary="Receipts waiting for review, oldest first, with image links",
    errors=(404,),
)
def review_queue(app_id: str) -> Response:
    app = operator_app(app_id)
    items, cursor = receipts.review_queue(app, query("cursor"), query_int("limit", 50, low=1, high=100))
    out = [
        ReviewItem(**r.model_dump(include=set(ReviewItem.model_fields) - {"image_urls"}), image_urls=receipts.image_urls(r)) for r in items
    ]
    return ok(ReviewQueue(items=out, cursor=cursor))


@admin.endpoint(
    "/v1/admin/apps/{app_id}/receipts/{receipt_id}/decision",
    metric="ReceiptDecided",
    methods=("POST",),
    auth=REVIEWERS,
    body=ReviewDecision,
    response=ReceiptOut,
    summary="Approve (points, once) or reject (with a reason) a receipt",
    errors=(400, 404, 409),
)
def decide_receipt(app_id: str, receipt_id: str) -> Response:
    app = operator_app(app_id)
    receipt = receipts.decide(app, receipt_id, current_operator().username, parse_body(ReviewDecision))
    return ok(ReceiptOut(**receipt.model_dump(include=set(ReceiptOut.model_fields))))
