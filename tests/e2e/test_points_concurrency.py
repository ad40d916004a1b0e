"""P2, P3 over real HTTP against the local server: concurrent duplicates apply once, concurrent spends never overdraw."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import requests

from tests.support import login_token, server_headers, webhook_headers

pytestmark = pytest.mark.e2e

T = TypeVar("T")
TIMEOUT = 300  # a safety net, not a speed assertion: 400 requests queue behind moto's one lock on a busy 2-core machine
GRANTS = "/v1/server/points/grants"
DEDUCTIONS = "/v1/server/points/deductions"


def url(local_api: dict[str, Any], path: str) -> str:
    return str(local_api["base_url"]) + path


def all_at_once(count: int, action: Callable[[int], T]) -> list[T]:
    """Run ``action`` in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout=TIMEOUT)
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def new_member(local_api: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """A member who never existed before this test: (openid, bearer headers)."""
    openid = f"e2e-{uuid.uuid4().hex[:12]}"
    body = {"app_id": local_api["app_id"], "login_token": login_token(local_api["login_secret"], openid), "device_id": "e2e"}
    response = requests.post(url(local_api, "/v1/auth/member"), json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return openid, {"Authorization": f"Bearer {response.json()['token']}"}


def signed_post(local_api: dict[str, Any], path: str, body: dict[str, Any]) -> requests.Response:
    raw = json.dumps(body).encode()
    headers = server_headers(local_api["app_id"], local_api["server_key"], "POST", path, raw)
    return requests.post(url(local_api, path), data=raw, headers=headers, timeout=TIMEOUT)


def me(local_api: dict[str, Any], member: dict[str, str]) -> dict[str, Any]:
    response = requests.get(url(local_api, "/v1/me"), headers=member, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ledger(local_api: dict[str, Any], member: dict[str, str]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        response = requests.get(url(local_api, "/v1/me/ledger"), params=params, headers=member, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        entries += response.json()["items"]
        cursor = response.json()["cursor"]
        if not cursor:
            return entries


def admin(operator_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token}"}


def ensure_task(local_api: dict[str, Any], operator_token: str, template: str, definition: dict[str, Any]) -> dict[str, Any]:
    """The app's live task of a template, created through the admin API when there is none."""
    path = url(local_api, f"/v1/admin/apps/{local_api['app_id']}/tasks")
    listed = requests.get(path, headers=admin(operator_token), timeout=TIMEOUT)
    assert listed.status_code == 200, listed.text
    for task in listed.json()["items"]:
        live = task["definition"]["online"] and not task["definition"]["starts_at"] and not task["definition"]["ends_at"]
        if task["definition"]["template"] == template and live:
            return dict(task)
    created = requests.post(path, json={"task": definition}, headers=admin(operator_token), timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_forty_concurrent_deliveries_of_one_grant_apply_once(local_api: dict[str, Any]) -> None:
    # Given a new member and one grant the tenant's backend sends 40 times at the same moment
    openid, member = new_member(local_api)
    body = {"openid": openid, "points": 37, "reference": f"grant-{uuid.uuid4().hex}", "reason": "concurrent gift"}
    # When they all arrive together (each signed with its own nonce)
    responses = all_at_once(40, lambda _: signed_post(local_api, GRANTS, body))
    # Then every delivery succeeds, exactly one applies, and all name the same entry
    assert [r.status_code for r in responses] == [200] * 40, [r.text for r in responses if r.status_code != 200]
    results = [r.json() for r in responses]
    assert sorted(result["applied"] for result in results) == [False] * 39 + [True]
    assert len({result["entry"]["id"] for result in results}) == 1
    assert {result["entry"]["delta"] for result in results} == {37}
    # And the member has one ledger entry and 37 points
    entries = ledger(local_api, member)
    assert [(e["delta"], e["reference"]) for e in entries] == [(37, body["reference"])]
    assert me(local_api, member)["balance"] == 37


def test_thirty_concurrent_deductions_never_overdraw(local_api: dict[str, Any]) -> None:
    # Given a member with 200 points
    openid, member = new_member(local_api)
    granted = signed_post(local_api, GRANTS, {"openid": openid, "points": 200, "reference": f"seed-{uuid.uuid4().hex}", "reason": "seed"})
    assert granted.status_code == 200, granted.text
    run = uuid.uuid4().hex[:8]

    def deduct(index: int) -> requests.Response:
        return signed_post(local_api, DEDUCTIONS, {"openid": openid, "points": 10, "reference": f"spend-{run}-{index}", "reason": "spend"})

    # When 30 deductions of 10 arrive at once
    responses = all_at_once(30, deduct)
    # Then exactly 20 succeed and 10 are refused for insufficient points
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 20 + [409] * 10, [r.text for r in responses if r.status_code not in (200, 409)]
    assert all(r.json()["applied"] for r in responses if r.status_code == 200)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"INSUFFICIENT_POINTS"}
    # And the balance is 0, equal to the sum of the ledger, with one entry per successful deduction
    profile = me(local_api, member)
    entries = ledger(local_api, member)
    assert profile["balance"] == sum(e["delta"] for e in entries) == 0
    assert (profile["earned_total"], profile["spent_total"]) == (200, 200)
    assert sorted(e["delta"] for e in entries) == [-10] * 20 + [200]
    assert sorted(e["balance_after"] for e in entries if e["delta"] < 0) == list(range(0, 200, 10))


def test_concurrent_earning_and_spending_stay_consistent(local_api: dict[str, Any]) -> None:
    # Given a member with 50 points
    openid, member = new_member(local_api)
    assert signed_post(local_api, GRANTS, {"openid": openid, "points": 50, "reference": f"seed-{uuid.uuid4().hex}", "reason": "seed"}).ok
    run = uuid.uuid4().hex[:8]

    def act(index: int) -> requests.Response:
        path = GRANTS if index % 2 else DEDUCTIONS
        return signed_post(local_api, path, {"openid": openid, "points": 7, "reference": f"mix-{run}-{index}", "reason": "mix"})

    # When 8 grants and 8 deductions of 7 arrive at once (one account: every change but one per round retries)
    responses = all_at_once(16, act)
    # Then every grant applies, deductions either apply or are refused, and the books balance
    grants = [r for i, r in enumerate(responses) if i % 2]
    deductions = [r for i, r in enumerate(responses) if not i % 2]
    assert [r.status_code for r in grants] == [200] * 8
    assert {r.status_code for r in deductions} <= {200, 409}
    spent = sum(1 for r in deductions if r.status_code == 200)
    profile = me(local_api, member)
    entries = ledger(local_api, member)
    assert profile["balance"] == 50 + 7 * 8 - 7 * spent == sum(e["delta"] for e in entries) >= 0
    assert len(entries) == 1 + 8 + spent
    assert min(e["balance_after"] for e in entries) >= 0


def test_twenty_concurrent_checkins_apply_once(local_api: dict[str, Any], operator_token: str) -> None:
    # Given the demo app has a daily check-in task, and a new member
    task = ensure_task(local_api, operator_token, "daily_checkin", {"template": "daily_checkin", "title": "Daily check-in", "points": 10})
    points = task["definition"]["points"]
    _, member = new_member(local_api)
    # When the member's app sends 20 check-ins at once
    responses = all_at_once(20, lambda _: requests.post(url(local_api, "/v1/me/checkins"), headers=member, timeout=TIMEOUT))
    # Then one succeeds with streak 1 and 19 are ALREADY_DONE
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19, [r.text for r in responses if r.status_code not in (200, 409)]
    ok = next(r.json() for r in responses if r.status_code == 200)
    assert (ok["points"], ok["streak"], ok["bonus"]) == (points, 1, 0)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"ALREADY_DONE"}
    # And the member was credited once
    entries = ledger(local_api, member)
    assert [e["delta"] for e in entries] == [points]
    assert me(local_api, member)["balance"] == points


def test_forty_concurrent_deliveries_of_one_webhook_event_apply_once(local_api: dict[str, Any], operator_token: str) -> None:
    # Given a consumption task for one product (so no other test's payments earn from it), and a new member
    product = f"sku-{uuid.uuid4().hex[:10]}"
    definition = {
        "template": "consumption",
        "title": "Buy the e2e product",
        "step_fen": 100,
        "points_per_step": 2,
        "product_ids": [product],
        "completions_per_cycle": 1000,
        "sort_weight": 1_000_000,
    }
    created = requests.post(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}/tasks"),
        json={"task": definition},
        headers=admin(operator_token),
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    openid, member = new_member(local_api)
    order_id = f"ord-{uuid.uuid4().hex[:12]}"
    event = {
        "id": f"evt-{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "openid": openid,
        "order_id": order_id,
        "amount_fen": 1234,
        "product_ids": [product],
    }
    body = json.dumps(event).encode()
    path = url(local_api, f"/v1/webhooks/payments/generic/{local_api['app_id']}")

    def deliver(_: int) -> requests.Response:
        return requests.post(path, data=body, headers=webhook_headers(local_api["webhook_secret"], body), timeout=TIMEOUT)

    # When the payment platform delivers the event 40 times at once
    responses = all_at_once(40, deliver)
    # Then all are acknowledged, exactly one is not a duplicate, and it alone earned 12 * 2 = 24 points
    assert [r.status_code for r in responses] == [200] * 40, [r.text for r in responses if r.status_code != 200]
    receipts = sorted((r.json()["duplicate"], r.json()["points"]) for r in responses)
    assert receipts == [(False, 24)] + [(True, 0)] * 39
    # And the member has one entry for the order
    entries = ledger(local_api, member)
    assert [(e["delta"], e["reference"], e["kind"]) for e in entries] == [(24, f"order:{order_id}", "consumption")]
    assert me(local_api, member)["balance"] == 24
    # And a later retry is a duplicate
    assert deliver(0).json() == {"received": True, "duplicate": True, "points": 0}
