"""Issue 9: nothing stranded, nobody else's order paid (items 4, 6, 7, 8, 11, 17a).

Real moto with the fulfilment workflow executing (tests/support_workflows.py); network faults are injected at the
botocore Step Functions client (its ``_make_api_call``), not by replacing the logic under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from tests.conftest import Tenant, bearer, call
from tests.integration.test_order_fulfilment import (
    balance,
    execution,
    finished,
    ledger_sum,
    my_order,
    new_member,
    openid_of,
    order_in,
    pay,
    place,
    stock,
    waiting_for,
)
from tests.support_mall import ADDRESS, add_free_codes, admin, create_goods, exchange, listing_for
from tests.support_workflows import workflow_cloud_fixture, workflows_aws

workflow_cloud = workflow_cloud_fixture({"order_fulfilment"})
aws = workflows_aws


@pytest.fixture
def quick_payment_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listings allow at least 60 s to pay; the executions here get 2 s (moto's waits really wait)."""
    from chalicelib.mall import fulfilment

    monkeypatch.setattr(fulfilment, "payment_timeout_seconds", lambda app, order: 2)


@contextmanager
def stepfunctions_fails(operation: str, error: Exception) -> Iterator[list[str]]:
    """The botocore Step Functions client raises ``error`` on ``operation`` (other calls and services go through)."""
    from chalicelib.core import aws as aws_adapter

    client = aws_adapter.client("stepfunctions")
    original = client._make_api_call
    failed: list[str] = []

    def call_api(name: str, params: dict[str, Any]) -> Any:
        if name == operation:
            failed.append(name)
            raise error
        return original(name, params)

    client._make_api_call = call_api
    try:
        yield failed
    finally:
        del client._make_api_call


def cash_listing(api: Any, tenant: Tenant) -> dict[str, Any]:
    return listing_for(api, tenant, quantity=3, price_points=100, price_fen=500)


def the_app(tenant: Tenant) -> Any:
    from chalicelib.tenancy.access import app_by_id

    app = app_by_id(tenant.app_id)
    assert app is not None
    return app


def reconcile_at(now: datetime) -> Any:
    from chalicelib.mall import jobs

    return jobs.reconcile(now=now)


def later(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


# --- item 4: the payer must be the order's member ---------------------------------------------------


def test_a_payment_naming_another_member_neither_pays_the_order_nor_credits_the_payer(api: Any, tenant: Tenant) -> None:
    # Given A's points + cash order waiting for 5 yuan, B another member, and a consumption task paying for purchases
    task = {"template": "consumption", "title": "Shop", "step_fen": 100, "points_per_step": 1, "completions_per_cycle": 50}
    assert admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", {"task": task}).status_code == 201
    token_a, member_a = new_member(api, tenant, prefix="a")
    token_b, _ = new_member(api, tenant, points=0, prefix="b")
    order = place(api, token_a, cash_listing(api, tenant), address=ADDRESS)
    assert waiting_for(tenant, member_a, order["order_id"], "payment")

    # When a payment event for A's order names B as the payer
    response = pay(api, tenant, order, openid_of(api, token_b), 500)

    # Then it is recorded (2xx, the provider stops) but A's order still waits and B earns nothing
    assert response.status_code == 200, response.json_body
    assert my_order(api, token_a, order["order_id"])["status"] == "awaiting_payment"
    assert balance(api, token_b) == 0 and ledger_sum(api, token_b) == 0
    # And A's own payment still pays it
    assert pay(api, tenant, order, openid_of(api, token_a), 500).status_code == 200
    assert order_in(api, token_a, order["order_id"], "awaiting_shipment")["status"] == "awaiting_shipment"


# --- item 6: a workflow that cannot start, or whose start was lost -----------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        EndpointConnectionError(endpoint_url="https://states.example"),
        ReadTimeoutError(endpoint_url="https://states.example"),
    ],
    ids=["no-connection", "read-timeout"],
)
def test_a_network_error_starting_the_workflow_is_a_502_with_points_and_stock_back(api: Any, tenant: Tenant, fault: Exception) -> None:
    # Given a points + cash listing with 3 in stock, and Step Functions unreachable (the botocore client raises)
    token, _ = new_member(api, tenant)
    listing = cash_listing(api, tenant)

    # When a member exchanges
    with stepfunctions_fails("StartExecution", fault) as failed:
        response = exchange(api, token, listing["listing_id"], address=ADDRESS)

    # Then a clean 502 UPSTREAM_FAILED, and nothing held: points, stock back, the order cancelled
    assert failed
    assert response.status_code == 502, response.json_body
    assert response.json_body["error"]["code"] == "UPSTREAM_FAILED"
    assert balance(api, token) == 1000 == ledger_sum(api, token)
    assert stock(api, tenant, listing["allocation_id"]) == 3
    orders = call(api, "GET", "/v1/me/orders", None, bearer(token)).json_body["items"]
    assert [o["status"] for o in orders] == ["cancelled"]


def lost_start(api: Any, token: str, listing: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """An exchange whose process dies right after the commit (its execution never starts): the order it left."""
    with stepfunctions_fails("StartExecution", RuntimeError("the Lambda was killed")):
        died = exchange(api, token, listing["listing_id"], address=ADDRESS, key=key)
    assert died.status_code == 500
    (order,) = call(api, "GET", "/v1/me/orders", None, bearer(token)).json_body["items"]
    assert order["status"] == "awaiting_payment"
    return dict(order)


def no_execution(order_id: str) -> bool:
    from chalicelib.core import aws as aws_adapter

    client = aws_adapter.client("stepfunctions")
    try:
        execution(order_id)
    except client.exceptions.ExecutionDoesNotExist:
        return True
    return False


def test_a_replayed_idempotency_key_starts_the_workflow_a_lost_start_left_out(api: Any, tenant: Tenant) -> None:
    # Given an exchange committed with an Idempotency-Key whose execution never started
    token, member = new_member(api, tenant)
    listing = cash_listing(api, tenant)
    key = f"k-{uuid.uuid4().hex[:8]}"
    order = lost_start(api, token, listing, key)
    assert no_execution(order["order_id"])

    # When the member retries with the same Idempotency-Key
    replay = exchange(api, token, listing["listing_id"], address=ADDRESS, key=key)

    # Then the same order, and now its execution waits for the payment (and a second replay starts nothing new)
    assert replay.status_code in (200, 201), replay.json_body
    assert replay.json_body["order_id"] == order["order_id"]
    assert waiting_for(tenant, member, order["order_id"], "payment")
    assert exchange(api, token, listing["listing_id"], address=ADDRESS, key=key).json_body["order_id"] == order["order_id"]
    assert execution(order["order_id"])["status"] == "RUNNING"
    assert balance(api, token) == 900


def test_the_reconciler_starts_a_lost_workflow_and_leaves_running_ones_alone(api: Any, tenant: Tenant) -> None:
    # Given an order whose execution never started (no Idempotency-Key: the member cannot replay it)
    token, member = new_member(api, tenant)
    order = lost_start(api, token, cash_listing(api, tenant))

    # When the reconciler runs within the grace period, then past it, then again
    assert reconcile_at(datetime.now(UTC)).seen == 0
    first = reconcile_at(later(11))
    second = reconcile_at(later(12))

    # Then it starts the order's execution once (it waits for the payment); the next run finds it running
    assert first.outcomes == {"started": 1}, first
    assert waiting_for(tenant, member, order["order_id"], "payment")
    assert second.outcomes == {"running": 1}, second
    # And once the order is paid and settled it leaves the watch list
    assert pay(api, tenant, order, openid_of(api, token), 500).status_code == 200
    order_in(api, token, order["order_id"], "awaiting_shipment")
    assert reconcile_at(later(13)).outcomes == {"done": 1}
    assert reconcile_at(later(14)).seen == 0


def test_the_reconciler_cancels_a_lost_unpaid_order_past_its_payment_window_exactly_once(api: Any, tenant: Tenant) -> None:
    # Given an unpaid order whose execution never started; its points and stock are held
    token, _ = new_member(api, tenant)
    listing = cash_listing(api, tenant)
    order = lost_start(api, token, listing)
    assert (balance(api, token), stock(api, tenant, listing["allocation_id"])) == (900, 2)

    # When the reconciler runs after its payment window closed, twice
    first = reconcile_at(later(60 * 24))
    second = reconcile_at(later(60 * 24 + 1))

    # Then it is cancelled with points and stock back, once
    assert first.outcomes == {"cancelled": 1}, first
    assert second.seen == 0
    done = my_order(api, token, order["order_id"])
    assert done["status"] == "cancelled" and "did not run" in done["reason"]
    assert balance(api, token) == 1000 == ledger_sum(api, token)
    assert stock(api, tenant, listing["allocation_id"]) == 3


# --- item 7: a step failing past its retries leaves the order to an operator -------------------------


def failing_settlement(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settle step's Lambda fails every time (a bug, a dependency down): past its retries."""
    from chalicelib.mall import fulfilment

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("settlement is broken")

    monkeypatch.setattr(fulfilment, "settle_payment", broken)


def stuck_paid_order(api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    token, member = new_member(api, tenant)
    listing = cash_listing(api, tenant)
    order = place(api, token, listing, address=ADDRESS)
    assert waiting_for(tenant, member, order["order_id"], "payment")
    failing_settlement(monkeypatch)
    assert pay(api, tenant, order, openid_of(api, token), 500).status_code == 200
    return token, member, listing, order


def test_a_step_failing_past_its_retries_leaves_the_order_needs_attention_and_an_operator_cancels_it(
    api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.payments.store import fake_refund

    # Given a paid order whose settlement keeps failing
    token, _, listing, order = stuck_paid_order(api, tenant, monkeypatch)

    # Then after the retries the order is needs_attention with the error (not paid for good), the execution failed
    stuck = order_in(api, token, order["order_id"], "needs_attention")
    assert stuck["status"] == "needs_attention" and stuck["attention"]["from_status"] == "paid"
    assert "settlement is broken" in str(stuck["attention"]["error"])
    assert finished(order["order_id"])["status"] == "FAILED"
    # And operators find it by status
    path = f"/v1/admin/apps/{tenant.app_id}/orders?status=needs_attention"
    assert [o["order_id"] for o in admin(api, tenant, "GET", path).json_body["items"]] == [order["order_id"]]

    # When an operator cancels it (twice)
    cancel = f"/v1/admin/apps/{tenant.app_id}/orders/{order['order_id']}/cancel"
    response = admin(api, tenant, "POST", cancel)
    again = admin(api, tenant, "POST", cancel)

    # Then the cash goes back once (by reference), the points and the stock too; the second cancel is a 409
    assert response.status_code == 200, response.json_body
    assert response.json_body["status"] == "cancelled" and response.json_body["payment_refund"]["amount_fen"] == 500
    assert again.status_code == 409
    refunded = fake_refund(tenant.app_id, f"pay-{order['order_id']}", order["order_id"], 500, "rf_x", "2000-01-01T00:00:00Z")
    assert refunded["refund_id"] == response.json_body["payment_refund"]["refund_id"]
    assert balance(api, token) == 1000 == ledger_sum(api, token)
    assert stock(api, tenant, listing["allocation_id"]) == 3


def test_an_operator_redrives_a_needs_attention_order_once_the_fault_is_gone(
    api: Any, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a paid order left needs_attention by a failing settlement
    token, member, _, order = stuck_paid_order(api, tenant, monkeypatch)
    order_in(api, token, order["order_id"], "needs_attention")
    monkeypatch.undo()  # the fault is fixed

    # When an operator re-drives it (a member of another tenant's staff could not: tenant-scoped)
    response = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/orders/{order['order_id']}/redrive")

    # Then it goes back to paid with a new execution, which settles it: it awaits its shipment
    assert response.status_code == 200, response.json_body
    assert response.json_body["status"] == "paid" and response.json_body["drive"] == 1
    assert order_in(api, token, order["order_id"], "awaiting_shipment")["status"] == "awaiting_shipment"
    assert waiting_for(tenant, member, order["order_id"], "shipment")
    assert balance(api, token) == 900


def test_only_needs_attention_orders_can_be_redriven_or_cancelled(api: Any, tenant: Tenant) -> None:
    token, _ = new_member(api, tenant)
    order = place(api, token, cash_listing(api, tenant), address=ADDRESS)
    base = f"/v1/admin/apps/{tenant.app_id}/orders"
    assert admin(api, tenant, "POST", f"{base}/{order['order_id']}/cancel").status_code == 409
    assert admin(api, tenant, "POST", f"{base}/{order['order_id']}/redrive").status_code == 409
    assert admin(api, tenant, "POST", f"{base}/o0000000000000deadbeef00/cancel").status_code == 404
    assert call(api, "POST", f"{base}/{order['order_id']}/cancel", None, bearer(token)).status_code in (401, 403)


# --- item 8: a payment after the order timed out goes back -------------------------------------------


def test_a_payment_after_the_order_timed_out_is_refunded_once_and_shown_on_the_order(
    api: Any, tenant: Tenant, quick_payment_timeout: None
) -> None:
    # Given an order cancelled because its payment window closed
    token, _ = new_member(api, tenant)
    order = place(api, token, cash_listing(api, tenant), address=ADDRESS)
    assert order_in(api, token, order["order_id"], "cancelled")["reason"] == "payment timed out"

    # When the payment arrives after all, and the provider delivers it again (another event id, too)
    first = pay(api, tenant, order, openid_of(api, token), 500, "evt-late-1")
    replay = pay(api, tenant, order, openid_of(api, token), 500, "evt-late-1")
    other = pay(api, tenant, order, openid_of(api, token), 500, "evt-late-2")

    # Then the cash goes back through the refund adapter once, and the order shows it; the order stays cancelled
    assert {first.status_code, replay.status_code, other.status_code} == {200}
    done = my_order(api, token, order["order_id"])
    assert done["status"] == "cancelled"
    refund = done["payment_refund"]
    assert refund["amount_fen"] == 500 and refund["reference"] == f"pay-{order['order_id']}" and refund["refund_id"]
    from chalicelib.core.table import keys
    from chalicelib.payments.store import FakeRefundItem

    recorded = FakeRefundItem.get(keys.fake_refund_pk(tenant.app_id, refund["reference"]), keys.FAKE_REFUND_SK)
    assert int(recorded.calls) == 1  # the provider was asked once
    assert balance(api, token) == 1000 == ledger_sum(api, token)


# --- item 11: CDK orders larger than one transaction -------------------------------------------------


def test_a_cdk_order_larger_than_one_transaction_is_a_400_naming_the_limit(api: Any, tenant: Tenant) -> None:
    # Given free CDK goods with 100 codes, listed up to 100 per order, and a rich member
    goods = create_goods(api, tenant, name="Key", category="cdk", total=0)
    add_free_codes(tenant.tenant_id, goods["goods_id"], [f"CODE-{n:04d}-XYZ" for n in range(100)])
    listing = listing_for(api, tenant, quantity=100, goods=goods, price_points=1, max_per_order=100)
    token, _ = new_member(api, tenant)

    # When the member exchanges 90 at once
    response = exchange(api, token, listing["listing_id"], quantity=90)

    # Then a 400 naming the limit (not a 500), nothing taken
    assert response.status_code == 400, response.json_body
    assert "100 actions" in response.json_body["error"]["message"]
    assert balance(api, token) == 1000
    # And an order within the limit goes through
    assert exchange(api, token, listing["listing_id"], quantity=5).status_code == 201


# --- item 17a: a refund racing its payment for ever ends in a 409 -----------------------------------


def test_a_refund_that_keeps_conflicting_ends_in_a_409_not_a_recursion(api: Any, tenant: Tenant) -> None:
    from chalicelib.core.errors import Conflict
    from chalicelib.core.txn.unit import VersionConflict
    from chalicelib.points.engine import PointsRepo
    from chalicelib.tasks.events import REFUND_ATTEMPTS, handle_payment

    # Given a store whose every write conflicts (the order's payment changing under the refund, sustained)
    class Contended(PointsRepo):
        commits = 0

        def commit(self, commit: Any) -> None:
            Contended.commits += 1
            raise VersionConflict("changed")

    class Refund:
        id, type, openid, order_id, amount_fen, product_ids, paid_at = "evt-r", "payment.refunded", "m-1", "ord-1", 500, [], None

    # When a refund event is handled
    # Then it gives up after a bounded number of tries with a clear 409
    with pytest.raises(Conflict):
        handle_payment(the_app(tenant), "generic", Refund(), b"{}", points_repo=Contended())
    assert Contended.commits == REFUND_ATTEMPTS
