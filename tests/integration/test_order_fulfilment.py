"""Order fulfilment (G5, E1) through moto's real Step Functions execution, in-process.

Each test starts from the member's exchange (or the operator's shipment) through the Chalice test client;
the order's Standard execution then runs order_fulfilment.asl.json on moto, whose Lambda tasks call the
app's workflow functions (tests/support_workflows.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call
from tests.support import dumps, webhook_headers
from tests.support_mall import ADDRESS, admin, create_goods, exchange, grant, listing_for, member_token
from tests.support_workflows import workflow_cloud_fixture, workflows_aws

workflow_cloud = workflow_cloud_fixture({"order_fulfilment"})
aws = workflows_aws  # the conftest's api / tenant fixtures run on moto with the fulfilment workflow executing

SECONDS = 20.0  # longest any flow here should take (payout retries: ~3 s; payment timeouts: 2 s)


# --- helpers --------------------------------------------------------------------------------------


def until(fetch: Callable[[], Any], done: Callable[[Any], bool], seconds: float = SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def execution(order_id: str) -> dict[str, Any]:
    from chalicelib.core import aws as aws_adapter
    from chalicelib.core.config import get_settings

    machine = get_settings().sfn_order_fulfilment
    assert machine
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{order_id}"
    described: dict[str, Any] = aws_adapter.client("stepfunctions").describe_execution(executionArn=arn)
    return described


def finished(order_id: str) -> dict[str, Any]:
    return until(lambda: execution(order_id), lambda e: e["status"] != "RUNNING")


def waiting_for(tenant: Tenant, member: str, order_id: str, step: str) -> bool:
    """The execution holds a task token for ``step`` on the order (it is really waiting)."""
    from chalicelib.mall.store.orders import order_token

    return bool(until(lambda: order_token(tenant.app_id, member, order_id, step), bool))


def my_order(api: Any, token: str, order_id: str) -> dict[str, Any]:
    response = call(api, "GET", f"/v1/me/orders/{order_id}", None, bearer(token))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def order_in(api: Any, token: str, order_id: str, *statuses: str) -> dict[str, Any]:
    return until(lambda: my_order(api, token, order_id), lambda o: o["status"] in statuses)


def balance(api: Any, token: str) -> int:
    return int(call(api, "GET", "/v1/me", None, bearer(token)).json_body["balance"])


def ledger_sum(api: Any, token: str) -> int:
    entries = call(api, "GET", "/v1/me/ledger?limit=100", None, bearer(token)).json_body["items"]
    return sum(int(entry["delta"]) for entry in entries)


def stock(api: Any, tenant: Tenant, allocation_id: str) -> int:
    return int(admin(api, tenant, "GET", f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation_id}").json_body["stock"])


def new_member(api: Any, tenant: Tenant, points: int = 1000, prefix: str = "m") -> tuple[str, str]:
    """(member token, member id) of a fresh member holding ``points``."""
    openid = f"{prefix}-{uuid.uuid4().hex[:8]}"
    token = member_token(api, tenant, openid)
    if points:
        grant(api, tenant, openid, points)
    return token, str(call(api, "GET", "/v1/me", None, bearer(token)).json_body["member_id"])


def place(api: Any, token: str, listing: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = exchange(api, token, listing["listing_id"], **extra)
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def pay(api: Any, tenant: Tenant, order: dict[str, Any], openid: str, amount_fen: int, event_id: str | None = None) -> Any:
    path = f"/v1/webhooks/payments/generic/{tenant.app_id}"
    body = dumps(
        {
            "id": event_id or f"evt-{uuid.uuid4().hex[:10]}",
            "type": "payment.succeeded",
            "openid": openid,
            "order_id": order["order_id"],
            "amount_fen": amount_fen,
        }
    )
    return call(api, "POST", path, raw=body, headers=webhook_headers(tenant.webhook_secret, body))


def ship(
    api: Any, tenant: Tenant, order_id: str, carrier: str = "SF Express", tracking_no: str = "SF1234567890", app_id: str | None = None
) -> Any:
    path = f"/v1/admin/apps/{app_id or tenant.app_id}/orders/{order_id}/shipment"
    return admin(api, tenant, "POST", path, {"carrier": carrier, "tracking_no": tracking_no})


def openid_of(api: Any, token: str) -> str:
    return str(call(api, "GET", "/v1/me", None, bearer(token)).json_body["openid"])


@pytest.fixture
def quick_payment_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listings allow at least 60 s to pay; the executions here get 2 s (moto's waits really wait)."""
    from chalicelib.mall import fulfilment

    monkeypatch.setattr(fulfilment, "payment_timeout_seconds", lambda app, order: 2)


# --- physical goods: wait for the operator's shipment -----------------------------------------------


def test_a_physical_order_waits_for_the_shipment_and_the_member_sees_the_tracking(api: Any, tenant: Tenant) -> None:
    # Given a member's physical order, its execution waiting for the shipment
    token, member = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=5)
    order = place(api, token, listing, address=ADDRESS)
    assert order["status"] == "awaiting_shipment"
    assert waiting_for(tenant, member, order["order_id"], "shipment")
    assert execution(order["order_id"])["status"] == "RUNNING"

    # When the operator ships it (and sends the same shipment again)
    shipped = ship(api, tenant, order["order_id"], "SF Express", "SF1234567890")
    again = ship(api, tenant, order["order_id"], "SF Express", "SF1234567890")

    # Then the order is shipped, the member sees carrier and tracking, the execution ends, and the repeat is a 409
    assert shipped.status_code == 200, shipped.json_body
    assert shipped.json_body["status"] == "shipped"
    assert again.status_code == 409
    seen = my_order(api, token, order["order_id"])
    assert seen["status"] == "shipped"
    assert (seen["fulfilment"]["carrier"], seen["fulfilment"]["tracking_no"]) == ("SF Express", "SF1234567890")
    assert seen["fulfilment"]["shipped_at"]
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    assert my_order(api, token, order["order_id"])["status"] == "shipped"


def test_shipping_before_the_workflow_waits_needs_no_token_and_the_workflow_step_is_a_no_op(
    api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a physical order whose execution has not started yet (so no task token is on the order)
    from chalicelib.mall import exchange, fulfilment
    from chalicelib.tenancy.store.apps import AppsRepo

    token, member = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=5)
    with monkeypatch.context() as later:
        later.setattr(fulfilment, "start", lambda app, order: None)
        order = place(api, token, listing, address=ADDRESS)

    # When the operator ships it, and only then its execution starts
    shipped = ship(api, tenant, order["order_id"], "YTO", "YT9988776655")
    app = AppsRepo().get(tenant.app_id)
    assert app is not None
    before = exchange.member_order(app, member, order["order_id"]).model_copy(update={"status": "awaiting_shipment"})
    fulfilment.start(app, before)

    # Then the shipment stands, and the execution finds the order shipped, resumes itself and ends
    assert shipped.status_code == 200, shipped.json_body
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    seen = my_order(api, token, order["order_id"])
    assert seen["status"] == "shipped"
    assert (seen["fulfilment"]["carrier"], seen["fulfilment"]["tracking_no"]) == ("YTO", "YT9988776655")


def test_shipping_is_refused_for_unknown_orders_other_apps_and_bad_input(api: Any, tenant: Tenant) -> None:
    # Given a physical order of the tenant's app, a second app of the same tenant, and another tenant
    from chalicelib.tenancy import accounts

    token, _ = new_member(api, tenant)
    order = place(api, token, listing_for(api, tenant, quantity=2), address=ADDRESS)
    second = admin(api, tenant, "POST", "/v1/admin/apps", {"name": "Second", "points_rate": 100}).json_body["app"]["app_id"]
    accounts.create_tenant("rival", "Rival", "owner", "owner-password-2")
    rival = call(api, "POST", "/v1/auth/operator", {"tenant_id": "rival", "username": "owner", "password": "owner-password-2"})
    path = f"/v1/admin/apps/{tenant.app_id}/orders/{order['order_id']}/shipment"
    good = {"carrier": "SF", "tracking_no": "SF1"}

    # When shipments are sent for an unknown order, through the other app, by the other tenant, and malformed
    unknown = ship(api, tenant, "o-no-such-order")
    other_app = ship(api, tenant, order["order_id"], app_id=second)
    other_tenant = call(api, "POST", path, good, bearer(rival.json_body["token"]))
    bad_tracking = admin(api, tenant, "POST", path, {"carrier": "SF", "tracking_no": "no spaces allowed"})
    not_json = call(api, "POST", path, raw=b"{nope", headers=bearer(tenant.owner_token))
    extra_field = admin(api, tenant, "POST", path, {**good, "status": "completed"})

    # Then each is a 4xx envelope and the order still waits for its shipment
    assert (unknown.status_code, other_app.status_code, other_tenant.status_code) == (404, 404, 404)
    assert (bad_tracking.status_code, not_json.status_code, extra_field.status_code) == (400, 400, 400)
    assert all("error" in r.json_body for r in (unknown, other_app, other_tenant, bad_tracking, not_json, extra_field))
    assert my_order(api, token, order["order_id"])["status"] == "awaiting_shipment"
    assert ship(api, tenant, order["order_id"]).status_code == 200


def test_a_csv_batch_ships_the_good_rows_and_reports_each_bad_one(api: Any, tenant: Tenant) -> None:
    # Given three physical orders waiting for shipment, and a fourth already shipped
    token, member = new_member(api, tenant, points=2000)
    listing = listing_for(api, tenant, quantity=10)
    orders = [place(api, token, listing, address=ADDRESS)["order_id"] for _ in range(4)]
    for order_id in orders:
        assert waiting_for(tenant, member, order_id, "shipment")
    assert ship(api, tenant, orders[3], "EMS", "EMS000111").status_code == 200
    csv_text = "\r\n".join(
        [
            "\ufefforder_id,carrier,tracking_no",
            f"{orders[0]},SF Express,SF0000000001",
            f"{orders[1]},ZTO",  # wrong column count
            "o-unknown,SF Express,SF0000000009",  # unknown order
            f"{orders[1]},ZTO,ZTO 123 !",  # bad tracking number
            f'{orders[1]},"ZTO, Hangzhou",ZT0000000002',  # good (a quoted comma)
            f"{orders[0]},SF Express,SF0000000001",  # duplicate row
            f"{orders[3]},EMS,EMS000111",  # already shipped
            "",
            f"{orders[2]},JD,JD0000000003",
            "",
        ]
    )

    # When the operator uploads it
    response = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/shipments", {"csv": csv_text})

    # Then the report has one entry per row, in file order: good rows applied, bad rows with a reason
    assert response.status_code == 200, response.json_body
    report = response.json_body
    outcome = {line["line"]: (line["ok"], (line["error"] or {}).get("code")) for line in report["lines"]}
    assert outcome == {
        2: (True, None),
        3: (False, "VALIDATION_FAILED"),
        4: (False, "NOT_FOUND"),
        5: (False, "VALIDATION_FAILED"),
        6: (True, None),
        7: (False, "DUPLICATE_ROW"),
        8: (False, "CONFLICT"),
        10: (True, None),
    }
    assert (report["applied"], report["failed"]) == (3, 5)
    assert [line["line"] for line in report["lines"]] == sorted(outcome)
    # And the three orders are shipped with their own carriers, and their executions end
    carriers = {order_id: my_order(api, token, order_id)["fulfilment"]["carrier"] for order_id in orders[:3]}
    assert carriers == {orders[0]: "SF Express", orders[1]: "ZTO, Hangzhou", orders[2]: "JD"}
    for order_id in orders:
        assert my_order(api, token, order_id)["status"] == "shipped"
        assert finished(order_id)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"csv": "order,carrier,tracking\no1,SF,SF1"}, "bad header"),
        ({"csv": "order_id,carrier,tracking_no\n\n"}, "no rows"),
        ({"csv": "order_id,carrier,tracking_no\n" + "o1,SF,SF1\n" * 1001}, "1001 rows"),
        ({"csv": 5}, "csv"),
        ({"rows": []}, "csv"),
    ],
    ids=["header", "empty", "too many rows", "not text", "no csv"],
)
def test_a_csv_batch_that_is_not_a_shipment_file_is_a_400(api: Any, tenant: Tenant, body: Any, problem: str) -> None:
    # Given a file that is not order_id,carrier,tracking_no rows (or too many of them)
    # When it is uploaded
    response = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/shipments", body)
    # Then nothing is applied and the problem is named
    assert response.status_code == 400, response.json_body
    assert problem in json.dumps(response.json_body["error"])


# --- red packets: payout with retries, compensation -------------------------------------------------


def red_packet(api: Any, tenant: Tenant, quantity: int = 5) -> dict[str, Any]:
    goods = create_goods(api, tenant, name="Red packet", category="red_packet", amount_fen=88, total=quantity + 5)
    return listing_for(api, tenant, quantity=quantity, goods=goods, price_points=100)


def test_a_red_packet_is_paid_out_once_and_completes(api: Any, tenant: Tenant) -> None:
    from chalicelib.payments.payouts import FakePayout

    # Given a red packet listing (88 fen for 100 points) and a member
    token, _ = new_member(api, tenant)
    listing = red_packet(api, tenant)

    # When the member exchanges two
    order = place(api, token, listing, quantity=2)

    # Then the execution pays 176 fen out once, referenced by the order, and the order completes
    assert order["status"] == "paying_out"
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    done = my_order(api, token, order["order_id"])
    assert done["status"] == "completed" and done["completed_at"]
    assert done["fulfilment"]["payout_reference"].startswith("fake-")
    paid = FakePayout.accepted[(tenant.app_id, order["order_id"])]
    assert [request.amount_fen for request in paid] == [176]
    assert balance(api, token) == 800 == ledger_sum(api, token)


def test_a_failed_payout_is_retried_then_compensated_with_points_and_stock_back(api: Any, tenant: Tenant) -> None:
    # Given a member whose payouts the provider refuses, and a red packet listing with 5 in stock
    token, _ = new_member(api, tenant, prefix="payout-fail")
    listing = red_packet(api, tenant)
    started = time.monotonic()

    # When the member exchanges one
    order = place(api, token, listing)
    assert balance(api, token) == 900
    assert stock(api, tenant, listing["allocation_id"]) == 4

    # Then after the retries the order is cancelled ("payout failed"), the points and the stock are back
    done = order_in(api, token, order["order_id"], "cancelled")
    assert done["status"] == "cancelled" and done["reason"] == "payout failed"
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 3  # three attempts, 1 s then 2 s apart
    assert balance(api, token) == 1000 == ledger_sum(api, token)
    assert stock(api, tenant, listing["allocation_id"]) == 5
    refunds = [e for e in call(api, "GET", "/v1/me/ledger", None, bearer(token)).json_body["items"] if e["kind"] == "refund"]
    assert [(e["delta"], e["reason"], e["reference"]) for e in refunds] == [(100, "mall: payout failed", order["order_id"])]


# --- points + cash: wait for the payment webhook, or time out -----------------------------------------


def test_an_unpaid_order_times_out_into_cancellation_with_points_and_stock_back(
    api: Any, tenant: Tenant, quick_payment_timeout: None
) -> None:
    # Given a points + cash listing (100 points + 5 yuan), 3 in stock
    token, member = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)

    # When a member exchanges one and never pays
    order = place(api, token, listing, address=ADDRESS)
    assert order["status"] == "awaiting_payment"
    assert waiting_for(tenant, member, order["order_id"], "payment")
    assert (balance(api, token), stock(api, tenant, listing["allocation_id"])) == (900, 2)

    # Then the payment window closes: cancelled, points and stock back, the ledger says why
    done = order_in(api, token, order["order_id"], "cancelled")
    assert done["status"] == "cancelled" and done["reason"] == "payment timed out"
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    assert balance(api, token) == 1000 == ledger_sum(api, token)
    assert stock(api, tenant, listing["allocation_id"]) == 3
    # And a payment arriving after that is recorded but changes nothing
    late = pay(api, tenant, order, openid_of(api, token), 500)
    assert late.status_code == 200
    assert my_order(api, token, order["order_id"])["status"] == "cancelled"
    assert balance(api, token) == 1000


def test_a_paid_physical_order_goes_on_to_await_its_shipment(api: Any, tenant: Tenant) -> None:
    # Given a member's points + cash order for physical goods, waiting for the payment
    token, member = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)
    order = place(api, token, listing, quantity=2, address=ADDRESS)
    assert order["cash_fen"] == 1000
    assert waiting_for(tenant, member, order["order_id"], "payment")

    # When the payment webhook arrives (and the provider delivers it again)
    event_id = f"evt-{uuid.uuid4().hex[:8]}"
    first = pay(api, tenant, order, openid_of(api, token), 1000, event_id)
    replay = pay(api, tenant, order, openid_of(api, token), 1000, event_id)

    # Then the order is paid and waits for its shipment; the replay is a duplicate
    assert first.status_code == 200 and first.json_body["duplicate"] is False
    assert replay.status_code == 200 and replay.json_body["duplicate"] is True
    paid = order_in(api, token, order["order_id"], "awaiting_shipment")
    assert paid["status"] == "awaiting_shipment" and paid["paid_at"]
    assert waiting_for(tenant, member, order["order_id"], "shipment")
    # And shipping it ends the execution
    assert ship(api, tenant, order["order_id"]).status_code == 200
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    assert balance(api, token) == 800 == ledger_sum(api, token)


def test_a_payment_that_arrives_before_the_workflow_waits_is_not_lost(api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a points + cash order whose execution has not reached its payment wait yet
    from chalicelib.mall import exchange, fulfilment
    from chalicelib.tenancy.store.apps import AppsRepo

    token, member = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)
    with monkeypatch.context() as later:
        later.setattr(fulfilment, "start", lambda app, order: None)
        order = place(api, token, listing, address=ADDRESS)

    # When the payment webhook arrives first, and the execution only then starts
    assert pay(api, tenant, order, openid_of(api, token), 500).status_code == 200
    assert my_order(api, token, order["order_id"])["status"] == "paid"
    app = AppsRepo().get(tenant.app_id)
    assert app is not None
    fulfilment.start(app, exchange.member_order(app, member, order["order_id"]).model_copy(update={"status": "awaiting_payment"}))

    # Then the wait finds the order paid, resumes itself, and the order goes on to await its shipment
    assert order_in(api, token, order["order_id"], "awaiting_shipment")["status"] == "awaiting_shipment"
    assert waiting_for(tenant, member, order["order_id"], "shipment")
    assert ship(api, tenant, order["order_id"]).status_code == 200
    assert finished(order["order_id"])["status"] == "SUCCEEDED"


def test_a_paid_coupon_link_order_is_fulfilled_at_once(api: Any, tenant: Tenant) -> None:
    # Given an e-commerce coupon link sold for 9.90 yuan
    token, member = new_member(api, tenant, points=0)
    goods = create_goods(
        api, tenant, name="Cinema voucher", category="coupon_link", use="ecommerce", coupon_url="https://cinema.example/v/1", total=10
    )
    listing = listing_for(api, tenant, quantity=5, goods=goods, price_points=0, price_fen=990)
    order = place(api, token, listing)
    assert waiting_for(tenant, member, order["order_id"], "payment")

    # When it is paid
    assert pay(api, tenant, order, openid_of(api, token), 990).status_code == 200

    # Then it completes with the link, and the execution ends
    done = order_in(api, token, order["order_id"], "completed")
    assert done["status"] == "completed" and done["fulfilment"]["url"] == "https://cinema.example/v/1"
    assert done["paid_at"] and done["completed_at"]
    assert finished(order["order_id"])["status"] == "SUCCEEDED"


def test_a_paid_cdk_order_claims_its_code_and_an_empty_pool_leaves_it_to_the_operator(api: Any, tenant: Tenant) -> None:
    from chalicelib.core.table import keys
    from chalicelib.mall.store.codes import CodesRepo
    from chalicelib.mall.store.items import CodeItem
    from tests.support_mall import add_free_codes

    # Given CDK goods with two codes, sold for 100 points + 1 yuan, and two members' orders awaiting payment
    goods = create_goods(api, tenant, name="Game key", category="cdk", total=0)
    add_free_codes(tenant.tenant_id, goods["goods_id"], ["KEY-ONE", "KEY-TWO"])
    listing = listing_for(api, tenant, quantity=2, goods=goods, price_points=100, price_fen=100)
    (first, first_member), (second, second_member) = new_member(api, tenant), new_member(api, tenant)
    orders = [place(api, first, listing), place(api, second, listing)]
    assert all(order["fulfilment"]["codes"] is None for order in orders)  # a code is claimed on payment, not before
    assert waiting_for(tenant, first_member, orders[0]["order_id"], "payment")
    assert waiting_for(tenant, second_member, orders[1]["order_id"], "payment")

    # When the first is paid
    assert pay(api, tenant, orders[0], openid_of(api, first), 100).status_code == 200

    # Then it completes with one of the codes, now issued to it
    done = order_in(api, first, orders[0]["order_id"], "completed")
    assert done["status"] == "completed" and len(done["fulfilment"]["codes"]) == 1
    (code,) = done["fulfilment"]["codes"]
    assert CodeItem.get(keys.code_pk(goods["goods_id"], keys.code_digest(code)), keys.CODE_SK).order_id == orders[0]["order_id"]
    assert CodesRepo().issued(goods["goods_id"]) == 1
    # And when the pool has no free code left for the second (the other code went elsewhere) and it is paid
    other = "KEY-TWO" if code == "KEY-ONE" else "KEY-ONE"
    CodeItem.get(keys.code_pk(goods["goods_id"], keys.code_digest(other)), keys.CODE_SK).delete()
    assert pay(api, tenant, orders[1], openid_of(api, second), 100).status_code == 200
    # Then it is paid and left to the operator (awaiting shipment, with the reason), not cancelled
    manual = order_in(api, second, orders[1]["order_id"], "awaiting_shipment")
    assert manual["status"] == "awaiting_shipment" and manual["paid_at"]
    assert "the operator fulfils this order" in manual["reason"]
    assert waiting_for(tenant, second_member, orders[1]["order_id"], "shipment")
    assert finished(orders[0]["order_id"])["status"] == "SUCCEEDED"


def test_paid_points_goods_credit_the_target_app_once(api: Any, tenant: Tenant) -> None:
    # Given a second app of the tenant where the member has an account, and points goods crediting it
    token, member = new_member(api, tenant)
    openid = openid_of(api, token)
    second = admin(api, tenant, "POST", "/v1/admin/apps", {"name": "Second", "points_rate": 100}).json_body
    target = Tenant(tenant.tenant_id, tenant.owner_token, second["app"]["app_id"], second["secrets"]["login_secret"], "", "")
    target_token = member_token(api, target, openid)
    goods = create_goods(api, tenant, name="500 points", category="points", points=500, target_app_id=target.app_id, total=10)
    listing = listing_for(api, tenant, quantity=5, goods=goods, price_points=100, price_fen=100)
    order = place(api, token, listing)
    assert waiting_for(tenant, member, order["order_id"], "payment")

    # When it is paid
    assert pay(api, tenant, order, openid, 100).status_code == 200

    # Then the target app credits 500 points once and the order completes
    done = order_in(api, token, order["order_id"], "completed")
    assert done["fulfilment"]["points_credited"] == 500 and done["fulfilment"]["target_app_id"] == target.app_id
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    assert balance(api, target_token) == 500 == ledger_sum(api, target_token)
    assert balance(api, token) == 900


def test_a_payment_of_the_wrong_amount_is_ignored(api: Any, tenant: Tenant, quick_payment_timeout: None) -> None:
    # Given an order waiting for 5 yuan
    token, member = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)
    order = place(api, token, listing, address=ADDRESS)
    assert waiting_for(tenant, member, order["order_id"], "payment")

    # When a payment of 1 yuan arrives for it
    wrong = pay(api, tenant, order, openid_of(api, token), 100)

    # Then it is recorded (2xx) but the order still waits, and then times out as unpaid
    assert wrong.status_code == 200 and wrong.json_body["duplicate"] is False
    assert my_order(api, token, order["order_id"])["status"] == "awaiting_payment"
    done = order_in(api, token, order["order_id"], "cancelled")
    assert done["reason"] == "payment timed out"
    assert finished(order["order_id"])["status"] == "SUCCEEDED"
    assert balance(api, token) == 1000 == ledger_sum(api, token)


def test_an_order_that_cannot_start_its_workflow_is_undone_and_the_member_sees_502(
    api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.core.config import get_settings

    # Given Step Functions cannot be reached for this points + cash listing
    token, _ = new_member(api, tenant)
    listing = listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)
    monkeypatch.delenv("JIFEN_SFN_ORDER_FULFILMENT")
    get_settings.cache_clear()

    # When a member exchanges
    response = exchange(api, token, listing["listing_id"], address=ADDRESS)

    # Then the member sees 502 and nothing is held: points, stock, and the order cancelled
    assert response.status_code == 502, response.json_body
    assert response.json_body["error"]["code"] == "UPSTREAM_FAILED"
    assert balance(api, token) == 1000 == ledger_sum(api, token)
    assert stock(api, tenant, listing["allocation_id"]) == 3
    orders = call(api, "GET", "/v1/me/orders", None, bearer(token)).json_body["items"]
    assert [o["status"] for o in orders] == ["cancelled"]
