"""Post-commit effects (issue 9 item 9): a task credit that fails after an exchange or a login never fails the
committed request; it is recorded and applied by the ``retry_effects`` job exactly once.

Faults are injected at the botocore client: the credit's TransactWriteItems (the one carrying its guard) fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import botocore.client
from botocore.exceptions import ClientError

from tests.conftest import Tenant, bearer, call, table_items
from tests.support import login_token
from tests.support_mall import admin, create_goods, exchange, grant, listing_for, member_token

LINK = {"category": "coupon_link", "coupon_url": "https://shop.example/coupon"}


@contextmanager
def failing_transactions(marker: str) -> Iterator[list[str]]:
    """Every TransactWriteItems whose items mention ``marker`` fails as a throttled table would; the others pass."""
    real = botocore.client.BaseClient._make_api_call
    failed: list[str] = []

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "TransactWriteItems" and marker in json.dumps(api_params, default=str):
            failed.append(operation_name)
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}
            raise ClientError(error, operation_name)  # type: ignore[arg-type]
        return real(self, operation_name, api_params)

    with patch.object(botocore.client.BaseClient, "_make_api_call", make_api_call):
        yield failed


def run_retry_job() -> dict[str, Any]:
    from chalicelib.core import effects

    return effects.retry_effects({}, None)


def pending_effects(aws: Any) -> list[dict[str, Any]]:
    return [item for item in table_items(aws) if item["kind"]["S"] == "pending_effect"]


def me(api: Any, token: str) -> dict[str, Any]:
    response = call(api, "GET", "/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def ledger(api: Any, token: str) -> list[dict[str, Any]]:
    return list(call(api, "GET", "/v1/me/ledger?limit=100", headers=bearer(token)).json_body["items"])


def create_task(api: Any, tenant: Tenant, definition: dict[str, Any]) -> None:
    response = admin(api, tenant, "POST", f"/v1/admin/apps/{tenant.app_id}/tasks", {"task": definition})
    assert response.status_code == 201, response.json_body


def login(api: Any, tenant: Tenant, openid: str, **claims: Any) -> Any:
    token = login_token(tenant.login_secret, openid, **claims)
    return call(api, "POST", "/v1/auth/member", {"app_id": tenant.app_id, "login_token": token, "device_id": "dev-1"})


def test_an_exchange_whose_task_credit_fails_answers_with_its_order_and_the_job_credits_it_once(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a member with 1,000 points, an "exchange in the mall" task worth 30 and a listing at 100 points
    buyer = member_token(api, tenant, "u1")
    grant(api, tenant, "u1", 1000)
    create_task(api, tenant, {"template": "mall_exchange", "title": "Shop once", "points": 30})
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))

    # When the member exchanges while the task credit's write fails
    with failing_transactions("#REF#hook-") as failed:
        response = exchange(api, buyer, listing["listing_id"])

    # Then the exchange answers 201 with its order: points and stock taken, the credit recorded for later
    assert failed, "the fault was not injected"
    assert response.status_code == 201, response.json_body
    order = response.json_body
    assert order["status"] == "completed"
    assert me(api, buyer)["balance"] == 900
    assert len(pending_effects(aws)) == 1

    # When the retry job runs, twice
    first, second = run_retry_job(), run_retry_job()

    # Then the task's 30 points arrive once, for that order, and nothing is left pending
    assert (first["applied"], first["failed"], second["seen"]) == (1, 0, 0)
    assert me(api, buyer)["balance"] == 930
    credits = [e for e in ledger(api, buyer) if e["delta"] == 30]
    assert [e["reference"] for e in credits] == [f"mall_exchange:{order['order_id']}"]
    assert pending_effects(aws) == []
    # And exactly one order exists
    orders = call(api, "GET", "/v1/me/orders", headers=bearer(buyer)).json_body["items"]
    assert [o["order_id"] for o in orders] == [order["order_id"]]


def test_a_credit_that_fails_again_stays_pending_until_it_succeeds(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an exchange whose task credit failed
    buyer = member_token(api, tenant, "u1")
    grant(api, tenant, "u1", 1000)
    create_task(api, tenant, {"template": "mall_exchange", "title": "Shop once", "points": 30})
    listing = listing_for(api, tenant, quantity=5, goods=create_goods(api, tenant, total=5, **LINK))
    with failing_transactions("#REF#hook-"):
        assert exchange(api, buyer, listing["listing_id"]).status_code == 201

    # When the job runs while the table still refuses the credit
    with failing_transactions("#REF#hook-"):
        still = run_retry_job()

    # Then it counts the attempt and keeps the effect; the next run applies it once
    assert (still["applied"], still["failed"]) == (0, 1)
    [pending] = pending_effects(aws)
    assert pending["attempts"]["N"] == "1"
    assert run_retry_job()["applied"] == 1
    assert run_retry_job()["seen"] == 0
    assert me(api, buyer)["balance"] == 930


def test_a_login_whose_invite_credit_fails_still_logs_in_and_the_job_credits_the_inviter_once(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an invite task worth 50 and alice's invite code
    create_task(api, tenant, {"template": "invite", "title": "Invite", "points": 50})
    alice = member_token(api, tenant, "alice")
    code = me(api, alice)["invite_code"]

    # When bob logs in for the first time with her code while the invite credit's write fails
    with failing_transactions("#REF#invite#") as failed:
        response = login(api, tenant, "bob", invite_code=code)

    # Then bob is logged in; alice has not earned yet
    assert failed, "the fault was not injected"
    assert response.status_code == 200, response.json_body
    bob = str(response.json_body["token"])
    assert me(api, bob)["member_id"]
    assert me(api, alice)["balance"] == 0
    assert len(pending_effects(aws)) == 1

    # When the retry job runs, twice
    first, second = run_retry_job(), run_retry_job()

    # Then alice earns her 50 once, and bob's profile records who invited him
    assert (first["applied"], second["seen"]) == (1, 0)
    assert me(api, alice)["balance"] == 50
    assert [(e["delta"], e["kind"]) for e in ledger(api, alice)] == [(50, "invite")]
    assert pending_effects(aws) == []
    # And logging in again with the code changes nothing
    assert login(api, tenant, "bob", invite_code=code).status_code == 200
    assert me(api, alice)["balance"] == 50


def test_a_birthday_credit_retried_days_later_is_still_for_that_birthday(api: Any, aws: Any, tenant: Tenant) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from chalicelib.core.clock import FixedClock, use_clock

    # Given a birthday task, and a member whose birthday (app-local) is today
    create_task(api, tenant, {"template": "birthday", "title": "Birthday", "points": 88})
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    # When they log in while the birthday credit's write fails
    with failing_transactions("#REF#hook-") as failed:
        response = login(api, tenant, "carol", birthday=f"1995-{today:%m-%d}")
    assert failed and response.status_code == 200, response.json_body
    token = str(response.json_body["token"])
    assert me(api, token)["balance"] == 0

    # When the retry job only runs three days later
    with use_clock(FixedClock(datetime.now(UTC) + timedelta(days=3))):
        late = run_retry_job()

    # Then the credit is still that birthday's, once
    assert late["applied"] == 1
    assert me(api, token)["balance"] == 88
    assert [e["reference"].rsplit(":", 1)[-1] for e in ledger(api, token)] == [str(today.year)]
    assert run_retry_job()["seen"] == 0
