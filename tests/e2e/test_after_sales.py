"""After-sales refunds (E2) and returns (G8) through moto's real Step Functions, over HTTP against the local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from chalicelib.core.table import keys
from tests.e2e.conftest import ROOT
from tests.support import login_token, server_headers, webhook_headers

ADDRESS = {"name": "Li Lei", "phone": "13800000000", "detail": "1 West Lake Rd"}


class Shop:
    """One local server seen by an operator and its members, set up through the admin API."""

    def __init__(self, local_api: dict[str, Any], operator_token: str) -> None:
        self.api = local_api
        self.base = local_api["base_url"]
        self.app = f"{self.base}/v1/admin/apps/{local_api['app_id']}"
        self.operator = {"authorization": f"Bearer {operator_token}"}

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.api["moto_endpoint"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def member(self, points: int = 1000, prefix: str = "after-sales") -> tuple[str, dict[str, str]]:
        openid = f"{prefix}-{uuid.uuid4().hex[:8]}"
        token = login_token(self.api["login_secret"], openid)
        response = requests.post(
            f"{self.base}/v1/auth/member", json={"app_id": self.api["app_id"], "login_token": token, "device_id": "e2e"}, timeout=10
        )
        assert response.status_code == 200, response.text
        body = json.dumps({"openid": openid, "points": points, "reference": f"seed-{openid}", "reason": "seed"}).encode()
        path = "/v1/server/points/grants"
        granted = requests.post(
            self.base + path, data=body, headers=server_headers(self.api["app_id"], self.api["server_key"], "POST", path, body), timeout=10
        )
        assert granted.status_code == 200, granted.text
        return openid, {"authorization": "Bearer " + response.json()["token"]}

    def listing(self, stock: int = 5, **fields: Any) -> dict[str, Any]:
        goods = requests.post(
            f"{self.base}/v1/admin/goods",
            json={"name": "Kettle", "category": "physical", "total": stock},
            headers=self.operator,
            timeout=10,
        )
        assert goods.status_code == 201, goods.text
        allocation = requests.post(
            f"{self.app}/allocations", json={"goods_id": goods.json()["goods_id"], "quantity": stock}, headers=self.operator, timeout=10
        )
        assert allocation.status_code == 201, allocation.text
        body = {"allocation_id": allocation.json()["allocation_id"], "price_points": 100, **fields}
        listing = requests.post(f"{self.app}/listings", json=body, headers=self.operator, timeout=10)
        assert listing.status_code == 201, listing.text
        return dict(listing.json())

    def exchange(self, member: dict[str, str], listing: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
        body = {"listing_id": listing["listing_id"], "quantity": quantity, "address": ADDRESS}
        response = _until(
            lambda: requests.post(f"{self.base}/v1/mall/exchanges", json=body, headers=member, timeout=10), lambda r: r.status_code != 404
        )  # the member API caches listings for a few seconds
        assert response.status_code == 201, response.text
        return dict(response.json())

    def order(self, member: dict[str, str], order_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/v1/me/orders/{order_id}", headers=member, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def request_refund(self, member: dict[str, str], order_id: str, reason: str = "arrived broken") -> requests.Response:
        return requests.post(f"{self.base}/v1/me/orders/{order_id}/refund-requests", json={"reason": reason}, headers=member, timeout=10)

    def waiting(self, order_id: str) -> dict[str, Any] | None:
        """The request in the reviewers' queue once its execution holds a task token (the decision needs one)."""
        queue = requests.get(f"{self.app}/refund-requests?limit=100", headers=self.operator, timeout=10).json()
        return next((item for item in queue["items"] if item["order_id"] == order_id), None)

    def decide(self, order_id: str, approve: bool, reason: str | None = None) -> requests.Response:
        """Decide as soon as the execution waits (the queue shows the request before its token arrives)."""
        body: dict[str, Any] = {"approve": approve} | ({"reason": reason} if reason else {})
        url = f"{self.app}/refund-requests/{order_id}/decision"
        return _until(
            lambda: requests.post(url, json=body, headers=self.operator, timeout=10),
            lambda r: r.status_code != 409 or "not waiting" not in r.json()["error"]["message"],
        )

    def settled(self, member: dict[str, str], order_id: str, seconds: float = 20) -> dict[str, Any]:
        return _until(lambda: self.order(member, order_id), lambda o: o["status"] != "refund_requested", seconds)

    def balance(self, member: dict[str, str]) -> int:
        return int(requests.get(f"{self.base}/v1/me", headers=member, timeout=10).json()["balance"])

    def ledger_sum(self, member: dict[str, str]) -> int:
        entries = requests.get(f"{self.base}/v1/me/ledger?limit=100", headers=member, timeout=10).json()["items"]
        return sum(int(entry["delta"]) for entry in entries)

    def stock(self, listing: dict[str, Any]) -> int:
        return int(requests.get(f"{self.app}/allocations/{listing['allocation_id']}", headers=self.operator, timeout=10).json()["stock"])

    def executions(self, order_id: str) -> list[str]:
        arn = self.api["state_machines"]["after_sales_review"]
        found = self.aws("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
        return sorted(e["name"] for e in found if e["name"].startswith(f"refund-{order_id}-"))

    def fake_refund(self, order_id: str) -> dict[str, int] | None:
        key = {"PK": {"S": keys.fake_refund_pk(self.api["app_id"], order_id)}, "SK": {"S": keys.FAKE_REFUND_SK}}
        item = self.aws("dynamodb").get_item(TableName="jifen-local", Key=key, ConsistentRead=True).get("Item")
        return None if item is None else {"amount_fen": int(item["amount_fen"]["N"]), "calls": int(item["calls"]["N"])}

    def pay(self, openid: str, order: dict[str, Any]) -> None:
        """The payment provider's webhook for a points + cash order; then the workflow fulfils it."""
        event = {
            "id": f"pay-{order['order_id']}",
            "type": "payment.succeeded",
            "openid": openid,
            "order_id": order["order_id"],
            "amount_fen": order["cash_fen"],
        }
        body = json.dumps(event).encode()
        response = requests.post(
            f"{self.base}/v1/webhooks/payments/generic/{self.api['app_id']}",
            data=body,
            headers=webhook_headers(self.api["webhook_secret"], body),
            timeout=10,
        )
        assert response.status_code == 200, response.text


def _until(fetch: Any, done: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture
def shop(local_api: dict[str, Any], operator_token: str) -> Shop:
    return Shop(local_api, operator_token)


def test_an_approved_return_gives_stock_back_but_keeps_the_points(shop: Shop) -> None:
    # Given a physical order of 2 items whose listing does not give points back on return
    listing = shop.listing(stock=5, points_back_on_return=False)
    _, member = shop.member()
    order = shop.exchange(member, listing, quantity=2)
    paid = shop.balance(member)  # 1000 - 200, plus whatever the demo app's tasks give for an exchange
    assert shop.stock(listing) == 3 and paid < 1000

    # When the member asks for a refund and a reviewer approves it
    requested = shop.request_refund(member, order["order_id"])
    assert requested.status_code == 201, requested.text
    decided = shop.decide(order["order_id"], True)
    assert decided.status_code == 200, decided.text

    # Then the workflow marks it refunded with the stock back and the points kept
    final = shop.settled(member, order["order_id"])
    assert final["status"] == "refunded" and final["refund"]["state"] == "approved"
    assert shop.stock(listing) == 5
    assert shop.balance(member) == paid == shop.ledger_sum(member)
    assert shop.waiting(order["order_id"]) is None


def test_an_approved_return_gives_points_back_when_the_listing_says_so(shop: Shop) -> None:
    # Given an order whose listing gives points back on return
    listing = shop.listing(stock=3, points_back_on_return=True)
    _, member = shop.member()
    order = shop.exchange(member, listing)
    paid = shop.balance(member)

    # When its refund is approved
    assert shop.request_refund(member, order["order_id"]).status_code == 201
    assert shop.decide(order["order_id"], True).status_code == 200

    # Then the points are back, once, and the balance is what the ledger says
    final = shop.settled(member, order["order_id"])
    assert final["status"] == "refunded" and final["refund"]["points_back"] == 100
    assert shop.balance(member) == paid + 100 == shop.ledger_sum(member)
    assert shop.stock(listing) == 3


def test_a_rejection_shows_its_reason_and_a_second_decision_is_refused(shop: Shop) -> None:
    # Given a refund request waiting in the queue
    listing = shop.listing(stock=3)
    _, member = shop.member()
    order = shop.exchange(member, listing)
    paid = shop.balance(member)
    assert shop.request_refund(member, order["order_id"]).status_code == 201

    # When a reviewer rejects it with a reason and another decision follows
    rejected = shop.decide(order["order_id"], False, "the seal is broken")
    second = requests.post(
        f"{shop.app}/refund-requests/{order['order_id']}/decision", json={"approve": True}, headers=shop.operator, timeout=10
    )

    # Then the member sees the reason, the order is back awaiting shipment, stock and points unchanged
    assert rejected.status_code == 200, rejected.text
    assert second.status_code == 409
    final = shop.settled(member, order["order_id"])
    assert final["status"] == "awaiting_shipment"
    assert final["refund"]["state"] == "rejected" and final["refund"]["decision_reason"] == "the seal is broken"
    assert shop.stock(listing) == 2 and shop.balance(member) == paid


def test_only_the_owner_asks_and_asking_twice_runs_one_review(shop: Shop) -> None:
    # Given one member's order
    listing = shop.listing(stock=2)
    _, owner = shop.member()
    _, stranger = shop.member()
    order = shop.exchange(owner, listing)

    # When a stranger asks for its refund and the owner asks twice
    foreign = shop.request_refund(stranger, order["order_id"])
    first = shop.request_refund(owner, order["order_id"])
    second = shop.request_refund(owner, order["order_id"], "again")

    # Then the stranger gets 404 and one execution reviews the owner's one request
    assert foreign.status_code == 404
    assert (first.status_code, second.status_code) == (201, 200), second.text
    assert _until(lambda: shop.waiting(order["order_id"]), bool) is not None
    assert shop.executions(order["order_id"]) == [f"refund-{order['order_id']}-1"]


def test_an_approved_cash_refund_goes_through_the_refund_adapter_once(shop: Shop) -> None:
    # Given a paid points + cash order awaiting shipment
    listing = shop.listing(stock=3, price_fen=1990, points_back_on_return=True)
    openid, member = shop.member()
    order = shop.exchange(member, listing, quantity=2)
    assert order["status"] == "awaiting_payment" and order["cash_fen"] == 3980
    shop.pay(openid, order)
    assert (
        _until(lambda: shop.order(member, order["order_id"]), lambda o: o["status"] == "awaiting_shipment")["status"] == "awaiting_shipment"
    )

    paid = shop.balance(member)  # 1000 - 200 points, plus what the demo app gives for exchanging and paying

    # When the member asks for a refund and it is approved
    assert shop.request_refund(member, order["order_id"]).status_code == 201
    assert shop.decide(order["order_id"], True).status_code == 200

    # Then the fake provider refunded the paid cash once, and the points and stock are back
    final = shop.settled(member, order["order_id"])
    assert final["status"] == "refunded" and final["refund"]["refund_fen"] == 3980
    assert shop.fake_refund(order["order_id"]) == {"amount_fen": 3980, "calls": 1}
    assert shop.balance(member) == paid + 200 == shop.ledger_sum(member)
    assert shop.stock(listing) == 3


def test_a_refused_cash_refund_returns_to_the_queue_and_can_then_be_rejected(shop: Shop) -> None:
    # Given a paid cash order of a member the fake provider refuses to refund
    listing = shop.listing(stock=2, price_fen=500)
    openid, member = shop.member(prefix="refund-fail")
    order = shop.exchange(member, listing)
    shop.pay(openid, order)
    _until(lambda: shop.order(member, order["order_id"]), lambda o: o["status"] == "awaiting_shipment")
    assert shop.request_refund(member, order["order_id"]).status_code == 201

    # When a reviewer approves (the provider refuses, after the state machine's retries)
    assert shop.decide(order["order_id"], True).status_code == 200
    back = _until(lambda: shop.waiting(order["order_id"]), lambda item: item is not None and item["error"] is not None, seconds=30)

    # Then the request is back in the queue with the error, nothing was refunded, and it can be rejected
    assert back is not None and "refused the refund" in back["error"], back
    assert shop.order(member, order["order_id"])["status"] == "refund_requested"
    assert shop.fake_refund(order["order_id"]) is None
    assert shop.decide(order["order_id"], False, "refunded by bank transfer").status_code == 200
    final = shop.settled(member, order["order_id"])
    assert final["status"] == "awaiting_shipment" and final["refund"]["decision_reason"] == "refunded by bank transfer"


# --- timeout: a server whose reviews time out after 2 seconds ---------------------------------------


@pytest.fixture(scope="module")
def quick_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("quick") / "jifen.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JIFEN_", "AWS_", "POWERTOOLS_", "MOTO_"))}
    env |= {"JIFEN_SIGNING_KEY": "e2e-signing-key-" + "q" * 32, "JIFEN_AFTER_SALES_REVIEW_TIMEOUT_SECONDS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "jifen_local.server", "--port", "0", "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not out.exists():
            assert process.poll() is None and time.monotonic() < deadline, "local server did not start"
            time.sleep(0.2)
        details: dict[str, Any] = json.loads(out.read_text())
        _until(lambda: _health(details["base_url"]), bool, seconds=30)
        yield details
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # executions still waiting in moto keep it alive: nothing to save
            process.kill()
            process.wait()


def _health(base_url: str) -> bool:
    try:
        return requests.get(base_url + "/v1/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_an_unreviewed_request_is_rejected_and_may_be_asked_again(quick_api: dict[str, Any]) -> None:
    # Given a server whose refund reviews time out after 2 seconds, and a member's order
    login = requests.post(
        f"{quick_api['base_url']}/v1/auth/operator", json={"tenant_id": quick_api["tenant_id"], **quick_api["operator"]}, timeout=10
    )
    shop = Shop(quick_api, login.json()["token"])
    listing = shop.listing(stock=2)
    _, member = shop.member()
    order = shop.exchange(member, listing)
    paid = shop.balance(member)

    # When the member asks for a refund and nobody decides
    assert shop.request_refund(member, order["order_id"]).status_code == 201

    # Then the request is rejected "not reviewed in time", the order is as it was, and it may be asked again
    final = shop.settled(member, order["order_id"], seconds=30)
    assert final["status"] == "awaiting_shipment"
    assert final["refund"]["state"] == "rejected" and final["refund"]["decision_reason"] == "not reviewed in time"
    late = requests.post(
        f"{shop.app}/refund-requests/{order['order_id']}/decision", json={"approve": True}, headers=shop.operator, timeout=10
    )
    assert late.status_code == 409
    again = shop.request_refund(member, order["order_id"], "still broken")
    assert again.status_code == 201 and again.json()["refund"]["attempt"] == 2
    assert shop.stock(listing) == 1 and shop.balance(member) == paid
