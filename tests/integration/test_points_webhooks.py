"""K2 consumption and watch-ad tasks fed by generic payment / ad webhooks: recorded once, applied once."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.core.table import keys, schema
from chalicelib.core.table.cache import config_cache
from tests.conftest import bearer, call, table_items
from tests.support import dumps, login_token, server_headers, webhook_headers

SHOP = {"template": "consumption", "title": "Shop", "step_fen": 100, "points_per_step": 1, "per_order_cap": 99, "completions_per_cycle": 50}
AD = {"template": "watch_ad", "title": "Watch", "points": 3, "ad_unit": "unit-1", "completions_per_cycle": 2}


@dataclass
class World:
    api: Any
    client: Any
    owner: str
    app_id: str
    login_secret: str
    server_key: str
    webhook_secret: str


@pytest.fixture
def world(moto_api: tuple[Any, Any]) -> World:
    """Given tenant acme with one app, on an empty table."""
    from chalicelib.tenancy import accounts

    api, client = moto_api
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    schema.create_table(client, table)
    config_cache().clear()
    accounts.create_tenant("acme", "Acme", "owner", "owner-password-1")
    owner = call(api, "POST", "/v1/auth/operator", {"tenant_id": "acme", "username": "owner", "password": "owner-password-1"}).json_body[
        "token"
    ]
    created = call(api, "POST", "/v1/admin/apps", {"name": "Acme", "points_rate": 100}, bearer(owner))
    assert created.status_code == 201, created.json_body
    s = created.json_body["secrets"]
    return World(api, client, owner, created.json_body["app"]["app_id"], s["login_secret"], s["server_key"], s["webhook_secret"])


def create_task(world: World, definition: dict[str, Any]) -> str:
    response = call(world.api, "POST", f"/v1/admin/apps/{world.app_id}/tasks", {"task": definition}, bearer(world.owner))
    assert response.status_code == 201, response.json_body
    return str(response.json_body["task_id"])


def member(world: World, openid: str | None = None) -> tuple[str, str]:
    openid = openid or f"o-{uuid.uuid4().hex[:10]}"
    body = {"app_id": world.app_id, "login_token": login_token(world.login_secret, openid), "device_id": "d"}
    response = call(world.api, "POST", "/v1/auth/member", body)
    assert response.status_code == 200, response.json_body
    return openid, str(response.json_body["token"])


def me(world: World, token: str) -> dict[str, Any]:
    return dict(call(world.api, "GET", "/v1/me", headers=bearer(token)).json_body)


def ledger(world: World, token: str) -> list[dict[str, Any]]:
    return list(call(world.api, "GET", "/v1/me/ledger?limit=100", headers=bearer(token)).json_body["items"])


def deliver(world: World, channel: str, event: dict[str, Any], *, raw: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    body = raw if raw is not None else dumps(event)
    return call(
        world.api,
        "POST",
        f"/v1/webhooks/{channel}/generic/{world.app_id}",
        raw=body,
        headers=headers or webhook_headers(world.webhook_secret, body),
    )


def paid(openid: str, order_id: str, amount_fen: int, products: list[str] | None = None, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt-{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "openid": openid,
        "order_id": order_id,
        "amount_fen": amount_fen,
        "product_ids": products or [],
        "paid_at": "2026-11-23T10:00:00Z",
    }


def refunded(openid: str, order_id: str, amount_fen: int, event_id: str | None = None) -> dict[str, Any]:
    return {**paid(openid, order_id, amount_fen, event_id=event_id), "type": "payment.refunded"}


def ad(openid: str, kind: str = "ad.completed", unit: str = "unit-1", event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"ad-{uuid.uuid4().hex}", "type": kind, "openid": openid, "ad_unit": unit, "at": "2026-11-23T10:00:00Z"}


def receipt(response: Any) -> tuple[bool, int]:
    assert response.status_code == 200, response.json_body
    assert response.json_body["received"] is True
    return response.json_body["duplicate"], response.json_body["points"]


def snapshot(world: World) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client))


def recorded_events(world: World) -> list[str]:
    prefix = f"APP#{world.app_id}#WH#"
    return sorted(item["PK"]["S"][len(prefix) :] for item in table_items(world.client) if item["PK"]["S"].startswith(prefix))


# --- payments -------------------------------------------------------------------------------------


def test_a_payment_credits_the_consumption_task_once(world: World) -> None:
    create_task(world, {**SHOP, "product_ids": ["p1", "p2"]})
    openid, token = member(world)
    event = paid(openid, "ord-1", 999_900, ["p9", "p2"])
    # When the payment platform reports a 9999-yuan order including a listed product
    first = deliver(world, "payments", event)
    # Then 9999 would be earned, but the per-order cap gives 99
    assert receipt(first) == (False, 99)
    entries = ledger(world, token)
    assert [(e["delta"], e["kind"], e["reference"], e["reason"]) for e in entries] == [(99, "consumption", "order:ord-1", "Shop")]
    # When the platform retries the same event twice
    # Then both are duplicates and nothing is added
    assert [receipt(deliver(world, "payments", event)) for _ in range(2)] == [(True, 0), (True, 0)]
    assert ledger(world, token) == entries
    # When the same order arrives under a new event id
    # Then it is recorded but the order is not credited twice
    assert receipt(deliver(world, "payments", paid(openid, "ord-1", 999_900, ["p2"]))) == (False, 0)
    assert ledger(world, token) == entries
    assert me(world, token)["balance"] == 99
    assert len(recorded_events(world)) == 2


@pytest.mark.parametrize(
    ("amount", "products", "expected"),
    [
        (12_345, ["p1"], 99),  # 123 points, capped
        (5_050, ["p1"], 50),  # whole yuan only
        (99, ["p1"], 0),  # under one step
        (50_000, ["p3"], 0),  # product not in the filter
        (50_000, [], 0),
    ],
)
def test_consumption_points_follow_the_task(world: World, amount: int, products: list[str], expected: int) -> None:
    create_task(world, {**SHOP, "product_ids": ["p1"]})
    openid, token = member(world)
    assert receipt(deliver(world, "payments", paid(openid, "ord-x", amount, products))) == (False, expected)
    assert me(world, token)["balance"] == expected
    assert sum(e["delta"] for e in ledger(world, token)) == expected
    assert len(recorded_events(world)) == 1


def test_a_per_event_cap_on_the_task_records_the_claim(world: World) -> None:
    create_task(world, {**SHOP, "per_order_cap": None, "per_event_cap": 40})
    openid, token = member(world)
    assert receipt(deliver(world, "payments", paid(openid, "ord-c", 10_000))) == (False, 40)
    entry = ledger(world, token)[0]
    assert (entry["delta"], entry["capped_from"], entry["note"]) == (40, 100, "capped at 40 per event")


def test_without_a_consumption_task_a_payment_is_only_recorded(world: World) -> None:
    openid, token = member(world)
    event = paid(openid, "ord-n", 10_000)
    assert receipt(deliver(world, "payments", event)) == (False, 0)
    assert receipt(deliver(world, "payments", event)) == (True, 0)
    assert me(world, token)["balance"] == 0
    assert recorded_events(world) == [f"payments:generic#{event['id']}"]


def test_a_refund_claws_back_the_credited_points_once(world: World) -> None:
    create_task(world, SHOP)
    openid, token = member(world)
    assert receipt(deliver(world, "payments", paid(openid, "ord-r", 5_000))) == (False, 50)
    assert receipt(deliver(world, "payments", paid(openid, "ord-keep", 2_000))) == (False, 20)
    refund = refunded(openid, "ord-r", 5_000)
    # When the order is refunded
    # Then its 50 points are taken back
    assert receipt(deliver(world, "payments", refund)) == (False, -50)
    # And a retry, or another refund event for the same order, takes nothing more
    assert receipt(deliver(world, "payments", refund)) == (True, 0)
    assert receipt(deliver(world, "payments", refunded(openid, "ord-r", 5_000))) == (False, 0)
    profile = me(world, token)
    assert profile["balance"] == 20
    entries = ledger(world, token)
    assert [(e["delta"], e["kind"], e["reference"]) for e in entries] == [
        (-50, "clawback", "order-refund:ord-r"),
        (20, "consumption", "order:ord-keep"),
        (50, "consumption", "order:ord-r"),
    ]
    assert sum(e["delta"] for e in entries) == profile["balance"]


def test_a_refund_after_spending_takes_only_what_is_left(world: World) -> None:
    create_task(world, SHOP)
    openid, token = member(world)
    assert receipt(deliver(world, "payments", paid(openid, "ord-s", 8_000))) == (False, 80)
    raw = dumps({"openid": openid, "points": 70, "reference": "spend-1", "reason": "coffee"})
    path = "/v1/server/points/deductions"
    spent = call(world.api, "POST", path, raw=raw, headers=server_headers(world.app_id, world.server_key, "POST", path, raw))
    assert spent.json_body["balance"] == 10
    assert receipt(deliver(world, "payments", refunded(openid, "ord-s", 8_000))) == (False, -10)
    assert me(world, token)["balance"] == 0
    assert ledger(world, token)[0]["note"] == "70 already spent"


def test_a_refund_of_an_order_that_earned_nothing_takes_nothing(world: World) -> None:
    create_task(world, SHOP)
    openid, token = member(world)
    assert receipt(deliver(world, "payments", refunded(openid, "ord-never-paid", 5_000))) == (False, 0)
    assert me(world, token)["balance"] == 0
    assert ledger(world, token) == []


def test_an_unknown_openid_is_recorded_and_credits_nothing(world: World) -> None:
    create_task(world, SHOP)
    event = paid("stranger", "ord-u", 10_000)
    # When a payment arrives for someone who never logged in
    response = deliver(world, "payments", event)
    # Then the provider gets 200, the event is recorded, and no member or points appear
    assert receipt(response) == (False, 0)
    assert recorded_events(world) == [f"payments:generic#{event['id']}"]
    members_prefix = keys.member_pk(world.app_id, "")
    assert [item for item in table_items(world.client) if item["PK"]["S"].startswith(members_prefix)] == []
    assert receipt(deliver(world, "payments", event)) == (True, 0)


# --- ads ------------------------------------------------------------------------------------------


def test_completed_ads_credit_within_the_cycle_limit(world: World) -> None:
    create_task(world, AD)
    openid, token = member(world)
    first = ad(openid)
    assert receipt(deliver(world, "ads", first)) == (False, 3)
    assert receipt(deliver(world, "ads", first)) == (True, 0)  # a retry
    assert receipt(deliver(world, "ads", ad(openid))) == (False, 3)
    # The third completion today is over the limit of 2: recorded, nothing credited
    assert receipt(deliver(world, "ads", ad(openid))) == (False, 0)
    assert me(world, token)["balance"] == 6
    assert [(e["delta"], e["kind"], e["reference"]) for e in ledger(world, token)][-1] == (3, "ad", f"ad:{first['id']}")
    assert len(recorded_events(world)) == 3


def test_other_ad_events_and_units_credit_nothing(world: World) -> None:
    create_task(world, AD)
    openid, token = member(world)
    for event in (ad(openid, "ad.clicked"), ad(openid, "ad.exposed"), ad(openid, unit="unit-2")):
        assert receipt(deliver(world, "ads", event)) == (False, 0)
    assert me(world, token)["balance"] == 0
    assert len(recorded_events(world)) == 3


# --- signatures and bodies ------------------------------------------------------------------------


def test_a_forged_or_stale_webhook_is_401_and_nothing_is_written(world: World) -> None:
    create_task(world, SHOP)
    create_task(world, AD)
    openid, token = member(world)
    before = snapshot(world)
    body = dumps(paid(openid, "ord-f", 10_000))
    attempts = [
        ("payments", body, webhook_headers("wrong-secret", body)),
        ("payments", body.replace(b"10000", b"99999"), webhook_headers(world.webhook_secret, body)),
        ("payments", body, webhook_headers(world.webhook_secret, body, timestamp=int(time.time()) - 301)),
        ("payments", body, {"content-type": "application/json"}),
        ("payments", body, {"content-type": "application/json", "X-Jifen-Webhook-Signature": "t=1,v1=00"}),
        ("ads", dumps(ad(openid)), webhook_headers("wrong-secret", dumps(ad(openid)))),
    ]
    for channel, raw, headers in attempts:
        response = deliver(world, channel, {}, raw=raw, headers=headers)
        assert response.status_code == 401, response.json_body
        assert response.json_body["error"]["code"] == "UNAUTHORIZED"
    assert snapshot(world) == before
    assert me(world, token)["balance"] == 0


def test_a_webhook_for_an_unknown_provider_or_app_writes_nothing(world: World) -> None:
    openid, _ = member(world)
    before = snapshot(world)
    raw = dumps(paid(openid, "ord-p", 10_000))
    headers = webhook_headers(world.webhook_secret, raw)
    unknown_provider = call(world.api, "POST", f"/v1/webhooks/payments/paypal/{world.app_id}", raw=raw, headers=headers)
    assert (unknown_provider.status_code, unknown_provider.json_body["error"]["code"]) == (404, "NOT_FOUND")
    unknown_app = call(world.api, "POST", "/v1/webhooks/payments/generic/app_nope", raw=raw, headers=headers)
    assert unknown_app.status_code == 401
    assert snapshot(world) == before


def test_a_malformed_event_is_400_and_nothing_is_recorded(world: World) -> None:
    create_task(world, SHOP)
    openid, _ = member(world)
    before = snapshot(world)
    for event in (
        {**paid(openid, "o", 100), "type": "payment.disputed"},
        {**paid(openid, "o", 100), "amount_fen": -1},
        {**paid(openid, "o", 100), "amount_fen": "100"},
        {k: v for k, v in paid(openid, "o", 100).items() if k != "order_id"},
        {**paid(openid, "o", 100), "id": ""},
    ):
        response = deliver(world, "payments", event)
        assert response.status_code == 400, (event, response.json_body)
        assert response.json_body["error"]["code"] == "VALIDATION_FAILED"
    assert snapshot(world) == before
