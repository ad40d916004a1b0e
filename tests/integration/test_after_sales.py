"""After-sales (E2) and returns (G8) through the API and the workflow's task functions, on moto.

Step Functions is replaced by a recorder here (the workflow's tasks are called the way the state
machine calls them); tests/e2e/test_after_sales.py runs the same flows through moto's real executions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from chalicelib.core import aws
from chalicelib.core.errors import Conflict, UpstreamFailed
from chalicelib.mall import after_sales, fulfilment
from chalicelib.mall import workflows_after_sales as tasks
from chalicelib.mall.models.after_sales import MAX_REQUESTS, ReviewRun
from tests.conftest import Tenant, bearer, call
from tests.support_mall import ADDRESS, admin, exchange, grant, listing_for, member_token


@dataclass
class StepFunctions:
    """What the code asked of Step Functions: started executions (by name) and answered task tokens."""

    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    starts: int = 0
    answers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_start: bool = False
    timed_out: set[str] = field(default_factory=set)

    def start_execution(self, arn: str | None, name: str, payload: dict[str, Any]) -> str:
        if name.startswith("refund-"):
            if self.fail_start:
                raise UpstreamFailed("The workflow could not be started")
            self.starts += 1
            self.started.setdefault(name, payload)  # the same name is the same execution
        return f"arn:execution:{name}"

    def send_task_success(self, token: str, output: dict[str, Any]) -> None:
        if token in self.timed_out:
            raise Conflict("This review is no longer waiting for a decision")
        self.answers.append((token, output))

    def runs(self, order_id: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.started.items() if name.startswith(f"refund-{order_id}-")]


@dataclass
class Shop:
    api: Any
    tenant: Tenant
    sfn: StepFunctions

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return admin(self.api, self.tenant, method, f"/v1/admin/apps/{self.tenant.app_id}{path}", body)

    def member(self, openid: str, points: int = 1000) -> str:
        token = member_token(self.api, self.tenant, openid)
        grant(self.api, self.tenant, openid, points)
        return token

    def order(self, token: str, listing: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
        response = exchange(self.api, token, listing["listing_id"], quantity, address=ADDRESS)
        assert response.status_code == 201, response.json_body
        return dict(response.json_body)

    def request(self, token: str, order_id: str, reason: str = "arrived broken") -> Any:
        return call(self.api, "POST", f"/v1/me/orders/{order_id}/refund-requests", {"reason": reason}, bearer(token))

    def my_order(self, token: str, order_id: str) -> dict[str, Any]:
        response = call(self.api, "GET", f"/v1/me/orders/{order_id}", headers=bearer(token))
        assert response.status_code == 200, response.json_body
        return dict(response.json_body)

    def me(self, token: str) -> dict[str, Any]:
        return dict(call(self.api, "GET", "/v1/me", headers=bearer(token)).json_body)

    def ledger_sum(self, token: str) -> int:
        return sum(entry["delta"] for entry in call(self.api, "GET", "/v1/me/ledger?limit=100", headers=bearer(token)).json_body["items"])

    def stock(self, listing: dict[str, Any]) -> int:
        return int(self.admin("GET", f"/allocations/{listing['allocation_id']}").json_body["stock"])

    def queue(self) -> list[dict[str, Any]]:
        response = self.admin("GET", "/refund-requests")
        assert response.status_code == 200, response.json_body
        return list(response.json_body["items"])

    def decide(self, order_id: str, approve: bool, reason: str | None = None) -> Any:
        body: dict[str, Any] = {"approve": approve} | ({"reason": reason} if reason is not None else {})
        return self.admin("POST", f"/refund-requests/{order_id}/decision", body)

    def wait(self, order_id: str) -> dict[str, Any]:
        """The execution's first step: AwaitReview hands its token to the wait task."""
        run = self.sfn.runs(order_id)[-1]
        tasks.after_sales_review_wait({"run": run, "token": f"token-{order_id}-{run['attempt']}"})
        return run

    def apply(self, order_id: str) -> dict[str, Any]:
        """ApplyDecision with what the last answered token carried."""
        token, decision = self.sfn.answers[-1]
        run = next(r for r in self.sfn.runs(order_id) if token == f"token-{order_id}-{r['attempt']}")
        return tasks.after_sales_review_apply({**run, "decision": decision})


@pytest.fixture
def shop(api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> Shop:
    sfn = StepFunctions()
    monkeypatch.setattr(aws, "start_execution", sfn.start_execution)
    monkeypatch.setattr(aws, "send_task_success", sfn.send_task_success)
    return Shop(api, tenant, sfn)


def _physical(shop: Shop, stock: int = 5, **fields: Any) -> dict[str, Any]:
    return listing_for(shop.api, shop.tenant, quantity=stock, price_points=100, **fields)


def test_an_approved_return_gives_stock_back_but_not_points_unless_the_listing_says_so(shop: Shop) -> None:
    # Given a physical order of 2 items for 200 points whose listing does not give points back on return
    listing = _physical(shop, points_back_on_return=False)
    token = shop.member("as-keep")
    order = shop.order(token, listing, quantity=2)
    assert shop.stock(listing) == 3 and shop.me(token)["balance"] == 800

    # When the member asks for a refund and a reviewer approves it
    requested = shop.request(token, order["order_id"])
    assert requested.status_code == 201, requested.json_body
    assert requested.json_body["status"] == "refund_requested"
    assert requested.json_body["refund"]["from_status"] == "awaiting_shipment"
    shop.wait(order["order_id"])
    assert [item["order_id"] for item in shop.queue()] == [order["order_id"]]
    decided = shop.decide(order["order_id"], True, "sorry")
    assert decided.status_code == 200, decided.json_body
    assert decided.json_body["status"] == "deciding"
    result = shop.apply(order["order_id"])

    # Then the order is refunded, the stock is back, the points are not, and the queue is empty
    assert result["status"] == "refunded"
    mine = shop.my_order(token, order["order_id"])
    assert mine["status"] == "refunded"
    assert mine["refund"]["state"] == "approved" and mine["refund"]["points_back"] == 0
    assert shop.stock(listing) == 5
    assert shop.me(token)["balance"] == 800 == shop.ledger_sum(token)
    assert shop.queue() == []


def test_an_approved_return_gives_points_back_when_the_listing_says_so(shop: Shop) -> None:
    # Given an order whose listing gives points back on return
    listing = _physical(shop, points_back_on_return=True)
    token = shop.member("as-back")
    order = shop.order(token, listing)

    # When its refund is approved, and the apply step runs twice (a Lambda retry)
    shop.request(token, order["order_id"])
    shop.wait(order["order_id"])
    assert shop.decide(order["order_id"], True).status_code == 200
    shop.apply(order["order_id"])
    shop.apply(order["order_id"])

    # Then the points are back exactly once and the balance matches the ledger
    assert shop.me(token)["balance"] == 1000 == shop.ledger_sum(token)
    assert shop.my_order(token, order["order_id"])["refund"]["points_back"] == 100
    assert shop.stock(listing) == 5


def test_a_rejection_needs_a_reason_and_puts_the_order_back_as_it_was(shop: Shop) -> None:
    # Given a refund request waiting for review
    listing = _physical(shop)
    token = shop.member("as-reject")
    order = shop.order(token, listing)
    shop.request(token, order["order_id"])
    shop.wait(order["order_id"])

    # When a reviewer rejects without a reason, then with one, then someone decides again
    no_reason = shop.decide(order["order_id"], False)
    rejected = shop.decide(order["order_id"], False, "used item")
    again = shop.decide(order["order_id"], True)
    shop.apply(order["order_id"])

    # Then only the reasoned rejection counts; the member sees it; stock and points are untouched
    assert no_reason.status_code == 400
    assert rejected.status_code == 200, rejected.json_body
    assert again.status_code == 409
    mine = shop.my_order(token, order["order_id"])
    assert mine["status"] == "awaiting_shipment"
    assert mine["refund"]["state"] == "rejected" and mine["refund"]["decision_reason"] == "used item"
    assert shop.stock(listing) == 4 and shop.me(token)["balance"] == 900
    assert shop.queue() == []


def test_only_the_owner_can_ask_and_asking_twice_starts_one_review(shop: Shop) -> None:
    # Given one member's order
    listing = _physical(shop)
    owner = shop.member("as-owner")
    stranger = shop.member("as-stranger")
    order = shop.order(owner, listing)

    # When another member asks for its refund, then the owner asks twice (before and after the review waits)
    foreign = shop.request(stranger, order["order_id"])
    first = shop.request(owner, order["order_id"])
    second = shop.request(owner, order["order_id"], "again")
    shop.wait(order["order_id"])
    third = shop.request(owner, order["order_id"], "and again")

    # Then the stranger gets 404; the owner's request is made once, under one execution name
    assert foreign.status_code == 404
    assert (first.status_code, second.status_code, third.status_code) == (201, 200, 200)
    assert third.json_body["refund"]["reason"] == "arrived broken"
    assert list(shop.sfn.started) == [f"refund-{order['order_id']}-1"]
    assert shop.sfn.starts == 2  # the second ask re-sent the same start (a no-op), the third did not
    assert len(shop.queue()) == 1


def test_orders_that_cannot_be_refunded_are_refused(shop: Shop) -> None:
    # Given a delivered virtual order (a coupon link, completed at once) and an unknown order id
    token = shop.member("as-virtual")
    goods = admin(
        shop.api,
        shop.tenant,
        "POST",
        "/v1/admin/goods",
        {"name": "Link", "category": "coupon_link", "total": 5, "coupon_url": "https://x.example/c"},
    )
    allocation = shop.admin("POST", "/allocations", {"goods_id": goods.json_body["goods_id"], "quantity": 3})
    virtual = shop.admin("POST", "/listings", {"allocation_id": allocation.json_body["allocation_id"], "price_points": 10})
    completed = exchange(shop.api, token, virtual.json_body["listing_id"]).json_body
    assert completed["status"] == "completed"

    # When refunds are asked for them
    delivered = shop.request(token, completed["order_id"])
    unknown = shop.request(token, "o-nope")
    blank = call(shop.api, "POST", f"/v1/me/orders/{completed['order_id']}/refund-requests", {"reason": "  "}, bearer(token))

    # Then a delivered virtual order cannot be returned (409), an unknown one is 404, a blank reason 400
    assert delivered.status_code == 409 and "cannot be returned" in delivered.json_body["error"]["message"]
    assert unknown.status_code == 404
    assert blank.status_code == 400
    assert shop.sfn.started == {}


def test_an_unreviewed_request_is_rejected_and_may_be_asked_again_a_few_times(shop: Shop) -> None:
    # Given a refund request nobody reviews
    listing = _physical(shop)
    token = shop.member("as-timeout")
    order = shop.order(token, listing)
    for attempt in range(1, MAX_REQUESTS + 1):
        assert shop.request(token, order["order_id"], f"try {attempt}").status_code == 201
        run = shop.wait(order["order_id"])
        # When the review times out (and a late decision arrives)
        shop.sfn.timed_out.add(f"token-{order['order_id']}-{attempt}")
        tasks.after_sales_review_timeout({"run": run})
        assert shop.decide(order["order_id"], True).status_code == 409
        # Then the request is rejected "not reviewed in time" and the order is as it was
        mine = shop.my_order(token, order["order_id"])
        assert mine["status"] == "awaiting_shipment"
        assert mine["refund"] == mine["refund"] | {"state": "rejected", "decision_reason": "not reviewed in time", "attempt": attempt}

    # And after the last allowed request, no more
    refused = shop.request(token, order["order_id"])
    assert refused.status_code == 409
    assert sorted(shop.sfn.started) == [f"refund-{order['order_id']}-{n}" for n in range(1, MAX_REQUESTS + 1)]
    assert shop.stock(listing) == 4 and shop.me(token)["balance"] == 900


def test_a_review_that_cannot_start_leaves_the_order_as_it_was(shop: Shop) -> None:
    # Given Step Functions refusing to start executions
    listing = _physical(shop)
    token = shop.member("as-nostart")
    order = shop.order(token, listing)
    shop.sfn.fail_start = True

    # When the member asks for a refund
    failed = shop.request(token, order["order_id"])

    # Then 502, the order is back to awaiting shipment with no request, and a later request works
    assert failed.status_code == 502
    assert shop.my_order(token, order["order_id"])["status"] == "awaiting_shipment"
    assert shop.queue() == []
    shop.sfn.fail_start = False
    later = shop.request(token, order["order_id"])
    assert later.status_code == 201 and later.json_body["refund"]["attempt"] == 1


def test_the_queue_is_for_operators_and_deciding_for_reviewers(shop: Shop) -> None:
    # Given a viewer and a reviewer of the tenant, and two waiting requests
    def operator(name: str, role: str) -> dict[str, str]:
        made = admin(shop.api, shop.tenant, "POST", "/v1/admin/operators", {"username": name, "password": "password-123", "role": role})
        assert made.status_code == 201, made.json_body
        login = call(
            shop.api, "POST", "/v1/auth/operator", {"tenant_id": shop.tenant.tenant_id, "username": name, "password": "password-123"}
        )
        return bearer(login.json_body["token"])

    viewer, reviewer = operator("viewer1", "viewer"), operator("reviewer1", "reviewer")
    listing = _physical(shop)
    token = shop.member("as-roles")
    orders = [shop.order(token, listing)["order_id"] for _ in range(2)]
    for order_id in orders:
        shop.request(token, order_id)
        shop.wait(order_id)
    base = f"/v1/admin/apps/{shop.tenant.app_id}/refund-requests"

    # When the viewer pages through the queue and tries to decide, and the reviewer decides
    page = call(shop.api, "GET", f"{base}?limit=1", headers=viewer)
    rest = call(shop.api, "GET", f"{base}?limit=1&cursor={page.json_body['cursor']}", headers=viewer)
    viewer_decides = call(shop.api, "POST", f"{base}/{orders[0]}/decision", {"approve": True}, viewer)
    reviewer_decides = call(shop.api, "POST", f"{base}/{orders[0]}/decision", {"approve": True}, reviewer)
    unknown = call(shop.api, "POST", f"{base}/o-unknown/decision", {"approve": True}, reviewer)

    # Then the viewer sees both requests, oldest first, but may not decide; the reviewer may
    assert [item["order_id"] for item in page.json_body["items"] + rest.json_body["items"]] == orders
    assert viewer_decides.status_code == 403
    assert reviewer_decides.status_code == 200 and reviewer_decides.json_body["reviewer"] == "reviewer1"
    assert unknown.status_code == 404


# --- cash (E1 + E2) --------------------------------------------------------------------------------


def _paid_cash_order(shop: Shop, openid: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A points + cash physical order, paid (as the payment webhook and the workflow do) and awaiting shipment."""
    from chalicelib.mall.store.orders import OrdersRepo
    from chalicelib.tenancy.store.apps import AppsRepo

    listing = _physical(shop, price_fen=1990, points_back_on_return=True)
    token = shop.member(openid)
    order = shop.order(token, listing, quantity=2)
    assert order["status"] == "awaiting_payment" and order["cash_fen"] == 3980
    app = AppsRepo().get(shop.tenant.app_id)
    found = OrdersRepo().find(shop.tenant.app_id, order["order_id"])
    assert app is not None and found is not None
    fulfilment.on_payment(app, order["order_id"], 3980, None, openid=openid)  # paid by the order's member
    assert fulfilment.settle_payment(app.app_id, found.member_id, found.order_id).status == "awaiting_shipment"
    return token, listing, order


def _fake_refund(shop: Shop, order_id: str) -> dict[str, Any] | None:
    import boto3

    from chalicelib.core.table import keys

    key = {"PK": {"S": keys.fake_refund_pk(shop.tenant.app_id, order_id)}, "SK": {"S": keys.FAKE_REFUND_SK}}
    item = boto3.client("dynamodb").get_item(TableName=os.environ["JIFEN_TABLE"], Key=key).get("Item")
    return None if item is None else {"amount_fen": int(item["amount_fen"]["N"]), "calls": int(item["calls"]["N"])}


def test_an_approved_cash_refund_goes_through_the_refund_adapter_once(shop: Shop) -> None:
    # Given a paid points + cash order
    token, listing, order = _paid_cash_order(shop, "as-cash")

    # When its refund is approved and the apply step runs twice
    shop.request(token, order["order_id"])
    shop.wait(order["order_id"])
    shop.decide(order["order_id"], True)
    shop.apply(order["order_id"])
    shop.apply(order["order_id"])

    # Then the fake provider refunded the cash once, with the paid amount; points and stock are back
    assert _fake_refund(shop, order["order_id"]) == {"amount_fen": 3980, "calls": 1}
    mine = shop.my_order(token, order["order_id"])
    assert mine["status"] == "refunded"
    assert mine["refund"]["refund_fen"] == 3980 and mine["refund"]["refund_id"].startswith("rf_")
    assert shop.me(token)["balance"] == 1000 == shop.ledger_sum(token)
    assert shop.stock(listing) == 5


def test_a_refund_the_provider_refuses_goes_back_to_the_queue_with_the_error(shop: Shop) -> None:
    # Given a paid cash order of a member the fake provider refuses to refund
    token, listing, order = _paid_cash_order(shop, "refund-fail-1")
    shop.request(token, order["order_id"])
    run = shop.wait(order["order_id"])
    shop.decide(order["order_id"], True)

    # When the apply step fails (after the state machine's retries) and the failure is recorded
    with pytest.raises(UpstreamFailed):
        shop.apply(order["order_id"])
    again = tasks.after_sales_review_failed(
        {"run": run, "error": {"Error": "UpstreamFailed", "Cause": '{"errorMessage": "The payment provider refused the refund (fake)"}'}}
    )
    tasks.after_sales_review_wait({"run": run, "token": "token-after-failure"})

    # Then the request is back in the queue with the error, the member sees it is not done, nothing moved
    assert again["again"] is True
    [waiting] = shop.queue()
    assert waiting["status"] == "pending" and "refused the refund" in waiting["error"]
    mine = shop.my_order(token, order["order_id"])
    assert mine["status"] == "refund_requested" and mine["refund"]["error"]
    assert _fake_refund(shop, order["order_id"]) is None
    assert shop.stock(listing) == 3

    # And a reviewer can reject it now (the cash never moved)
    assert shop.decide(order["order_id"], False, "refund by bank transfer").status_code == 200
    assert shop.sfn.answers[-1][0] == "token-after-failure"
    tasks.after_sales_review_apply({**run, "decision": shop.sfn.answers[-1][1]})
    assert shop.my_order(token, order["order_id"])["status"] == "awaiting_shipment"


def test_a_request_whose_cash_went_back_cannot_be_rejected(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an approval whose cash refund succeeded but whose return then failed, back in the queue
    token, _listing, order = _paid_cash_order(shop, "as-half")
    shop.request(token, order["order_id"])
    run = shop.wait(order["order_id"])
    shop.decide(order["order_id"], True)
    with monkeypatch.context() as patched:
        patched.setattr(fulfilment, "revert", _explode)
        with pytest.raises(RuntimeError):
            shop.apply(order["order_id"])
    after_sales.record_failure(ReviewRun.model_validate(run), {"Error": "RuntimeError"})
    tasks.after_sales_review_wait({"run": run, "token": "token-2"})

    # When a reviewer tries to reject it; and when nobody decides in time
    rejected = shop.decide(order["order_id"], False, "changed my mind")
    tasks.after_sales_review_timeout({"run": run})

    # Then the rejection is refused, and the timeout finishes the return instead (money and goods agree)
    assert rejected.status_code == 409
    mine = shop.my_order(token, order["order_id"])
    assert mine["status"] == "refunded" and mine["refund"]["refund_fen"] == 3980
    assert _fake_refund(shop, order["order_id"]) == {"amount_fen": 3980, "calls": 1}


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("DynamoDB is down")
