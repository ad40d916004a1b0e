"""After-sales routes (E2, G8): a member asks for a refund; reviewers see the queue and decide."""

from __future__ import annotations

from chalice.app import Response

from chalicelib.core.auth.rules import ANY_OPERATOR, MEMBER, operator
from chalicelib.core.http.api import Api, current_member, current_operator, ok, parse_body, query, query_int
from chalicelib.core.models import Role
from chalicelib.mall import after_sales
from chalicelib.mall.models.after_sales import RefundDecision, RefundQueue, RefundRequestIn, RefundReview, RefundReviewOut
from chalicelib.mall.models.catalog import OrderView
from chalicelib.tenancy.access import caller_app, operator_app

refund_member = Api(__name__, tag="member")
refund_admin = Api(__name__, tag="admin")

REVIEWERS = operator(Role.OWNER, Role.OPERATOR, Role.REVIEWER)


def _out(review: RefundReview) -> RefundReviewOut:
    return RefundReviewOut(**review.model_dump(include=set(RefundReviewOut.model_fields)))


@refund_member.endpoint(
    "/v1/me/orders/{order_id}/refund-requests",
    methods=("POST",),
    auth=MEMBER,
    body=RefundRequestIn,
    response=OrderView,
    status=201,
    metric="RefundRequested",
    summary="Ask for a refund of my order: it waits for a reviewer (again: 200, the same request)",
    errors=(400, 404, 409, 502),
)
def request_refund(order_id: str) -> Response:
    caller = current_member()
    order, created = after_sales.request_refund(caller_app(), caller.member_id, order_id, parse_body(RefundRequestIn).reason)
    return ok(OrderView.of(order), status=201 if created else 200)


@refund_admin.endpoint(
    "/v1/admin/apps/{app_id}/refund-requests",
    auth=ANY_OPERATOR,
    response=RefundQueue,
    query=("cursor", "limit"),
    summary="Refund requests waiting for a decision, oldest first",
    errors=(400, 404),
)
def refund_queue(app_id: str) -> Response:
    app = operator_app(app_id)
    page = after_sales.review_queue(app, query("cursor"), query_int("limit", 50, low=1, high=100))
    return ok(RefundQueue(items=[_out(review) for review in page.items], cursor=page.cursor))


@refund_admin.endpoint(
    "/v1/admin/apps/{app_id}/refund-requests/{order_id}/decision",
    methods=("POST",),
    auth=REVIEWERS,
    body=RefundDecision,
    response=RefundReviewOut,
    metric="RefundDecided",
    summary="Approve (cash back, stock back, points back if the listing says so) or reject (with a reason) a refund request",
    errors=(400, 404, 409, 502),
)
def decide_refund(app_id: str, order_id: str) -> Response:
    app = operator_app(app_id)
    review = after_sales.decide(app, order_id, current_operator().username, parse_body(RefundDecision))
    return ok(_out(review))
