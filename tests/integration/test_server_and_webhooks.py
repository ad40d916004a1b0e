"""Server-to-server HMAC calls and generic payment webhooks: accepted once, refused without writing anything."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import Tenant, bearer, call, table_items
from tests.support import login_token, server_headers, webhook_headers


def snapshot(aws: Any) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(aws))


def items_of(aws: Any, sk: str) -> list[dict[str, Any]]:
    return [item for item in table_items(aws) if item["SK"]["S"] == sk]


def assert_envelope(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]


def member_login(api: Any, tenant: Tenant, openid: str) -> Any:
    response = call(
        api, "POST", "/v1/auth/member", {"app_id": tenant.app_id, "login_token": login_token(tenant.login_secret, openid), "device_id": "d"}
    )
    assert response.status_code == 200, response.json_body
    return response.json_body


def payment_event(event_id: str = "evt_1", **overrides: Any) -> bytes:
    event = {
        "id": event_id,
        "type": "payment.succeeded",
        "openid": "openid-1",
        "order_id": f"order-{event_id}",
        "amount_fen": 1999,
        "product_ids": ["sku-1"],
        "paid_at": "2025-06-01T10:00:00Z",
        **overrides,
    }
    return json.dumps(event).encode()


def post_webhook(api: Any, app_id: str, body: bytes, headers: dict[str, str], provider: str = "generic") -> Any:
    return call(api, "POST", f"/v1/webhooks/payments/{provider}/{app_id}", headers=headers, raw=body)


# --- server-to-server -------------------------------------------------------------------------------------

MEMBER_PATH = "/v1/server/members/openid-1"


@pytest.fixture
def member(api: Any, tenant: Tenant) -> dict[str, Any]:
    """Given member openid-1 of acme's app has logged in once."""
    return dict(member_login(api, tenant, "openid-1")["member"])


def test_signed_server_call_reads_a_member_and_spends_one_nonce(api: Any, aws: Any, tenant: Tenant, member: dict[str, Any]) -> None:
    # Given the tenant's backend with the app's server key
    headers = server_headers(tenant.app_id, tenant.server_key, "GET", MEMBER_PATH)
    # When it asks for openid-1 with a correctly signed request
    response = call(api, "GET", MEMBER_PATH, headers=headers)
    # Then the member's profile comes back and the request's nonce is recorded once, to expire by TTL
    assert response.status_code == 200, response.json_body
    assert (response.json_body["openid"], response.json_body["member_id"], response.json_body["app_id"]) == (
        "openid-1",
        member["member_id"],
        tenant.app_id,
    )
    nonces = items_of(aws, "NONCE")
    assert len(nonces) == 1
    assert headers["X-Jifen-Nonce"] in nonces[0]["PK"]["S"]
    assert int(nonces[0]["ttl"]["N"]) > time.time()


def test_query_string_is_not_part_of_the_signed_path(api: Any, tenant: Tenant, member: dict[str, Any]) -> None:
    # Given a request signed over the path without its query string, as API.md says
    headers = server_headers(tenant.app_id, tenant.server_key, "GET", MEMBER_PATH)
    # When it is sent with a query string
    response = call(api, "GET", MEMBER_PATH + "?fields=all", headers=headers)
    # Then it is accepted
    assert response.status_code == 200, response.json_body


def test_signed_call_for_an_unknown_member_is_404(api: Any, tenant: Tenant) -> None:
    # Given no member openid-404
    path = "/v1/server/members/openid-404"
    # When the backend asks for it with a valid signature
    response = call(api, "GET", path, headers=server_headers(tenant.app_id, tenant.server_key, "GET", path))
    # Then it is 404
    assert_envelope(response, 404, "NOT_FOUND")


def test_replayed_request_is_refused_the_second_time(api: Any, aws: Any, tenant: Tenant, member: dict[str, Any]) -> None:
    # Given a correctly signed request that was accepted once
    headers = server_headers(tenant.app_id, tenant.server_key, "GET", MEMBER_PATH)
    assert call(api, "GET", MEMBER_PATH, headers=headers).status_code == 200
    before = snapshot(aws)
    # When the very same request (same nonce, same signature) is sent again
    replay = call(api, "GET", MEMBER_PATH, headers=headers)
    # Then it is 401 and nothing more is written: still one nonce
    assert_envelope(replay, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before
    assert len(items_of(aws, "NONCE")) == 1


def _sign(tenant: Tenant, **kwargs: Any) -> dict[str, str]:
    return server_headers(tenant.app_id, tenant.server_key, "GET", MEMBER_PATH, **kwargs)


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda t: server_headers(t.app_id, "not-the-apps-server-key-0123456789", "GET", MEMBER_PATH),
        lambda t: _sign(t, timestamp=int(time.time()) - 400),
        lambda t: _sign(t, timestamp=int(time.time()) + 400),
        lambda t: _sign(t, nonce="short-nonce"),
        lambda t: server_headers("app_unknown", t.server_key, "GET", MEMBER_PATH),
        lambda t: server_headers(t.app_id, t.server_key, "GET", "/v1/server/members/openid-2"),
        lambda t: server_headers(t.app_id, t.server_key, "POST", MEMBER_PATH),
        lambda t: {**_sign(t), "X-Jifen-Signature": "0" * 64},
        lambda t: {**_sign(t), "X-Jifen-App": "a" * 65},
        lambda t: {**_sign(t), "X-Jifen-Timestamp": "yesterday"},
    ],
    ids=[
        "wrong-key",
        "stale-past",
        "stale-future",
        "short-nonce",
        "unknown-app",
        "signed-other-path",
        "signed-other-method",
        "zero-signature",
        "huge-app-id",
        "word-timestamp",
    ],
)
def test_badly_signed_server_call_is_401_and_writes_nothing(
    api: Any, aws: Any, tenant: Tenant, member: dict[str, Any], make_headers: Any
) -> None:
    # Given a request with a wrong key, stale timestamp, short nonce, unknown app or a signature over something else
    headers = make_headers(tenant)
    before = snapshot(aws)
    # When it is sent
    response = call(api, "GET", MEMBER_PATH, headers=headers)
    # Then it is 401 and nothing is written (not even a nonce)
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before
    assert items_of(aws, "NONCE") == []


@pytest.mark.parametrize("missing", ["X-Jifen-App", "X-Jifen-Timestamp", "X-Jifen-Nonce", "X-Jifen-Signature"])
def test_server_call_missing_a_header_is_401_and_writes_nothing(
    api: Any, aws: Any, tenant: Tenant, member: dict[str, Any], missing: str
) -> None:
    # Given a correctly signed request with one of the four headers removed
    headers = {k: v for k, v in _sign(tenant).items() if k != missing}
    before = snapshot(aws)
    # When it is sent
    response = call(api, "GET", MEMBER_PATH, headers=headers)
    # Then it is 401 and nothing is written
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_another_apps_key_cannot_read_this_apps_members(api: Any, aws: Any, tenant: Tenant, member: dict[str, Any]) -> None:
    # Given a second app of acme and its own server key
    second = call(api, "POST", "/v1/admin/apps", {"name": "Second", "points_rate": 1}, bearer(tenant.owner_token)).json_body
    second_id, second_key = second["app"]["app_id"], second["secrets"]["server_key"]
    # When the second app signs as itself and asks for openid-1 (a member of the first app only)
    as_itself = call(api, "GET", MEMBER_PATH, headers=server_headers(second_id, second_key, "GET", MEMBER_PATH))
    # And when it claims to be the first app but signs with its own key
    as_first = call(api, "GET", MEMBER_PATH, headers=server_headers(tenant.app_id, second_key, "GET", MEMBER_PATH))
    # Then the first is 404 (its own app has no such member) and the second is 401
    assert_envelope(as_itself, 404, "NOT_FOUND")
    assert_envelope(as_first, 401, "UNAUTHORIZED")


def test_tampered_body_of_a_signed_grant_is_refused_and_applies_nothing(api: Any, aws: Any, tenant: Tenant, member: dict[str, Any]) -> None:
    # Given a grant of 10 points signed by the backend
    path = "/v1/server/points/grants"
    signed = json.dumps({"openid": "openid-1", "points": 10, "reference": "ref-1", "reason": "welcome"}).encode()
    headers = server_headers(tenant.app_id, tenant.server_key, "POST", path, signed)
    tampered = signed.replace(b'"points": 10', b'"points": 100000')
    assert tampered != signed
    before = snapshot(aws)
    # When someone in between raises the points and forwards it
    response = call(api, "POST", path, headers=headers, raw=tampered)
    # Then it is 401 and nothing is applied
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before
    # And the untampered request with fresh headers is applied
    fresh = call(api, "POST", path, headers=server_headers(tenant.app_id, tenant.server_key, "POST", path, signed), raw=signed)
    assert fresh.status_code == 200, fresh.json_body
    assert fresh.json_body["applied"] is True


# --- generic payment webhooks --------------------------------------------------------------------------------


def test_webhook_is_recorded_once_and_its_replay_is_a_duplicate(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a payment event signed with the app's webhook secret
    body = payment_event("evt_1")
    # When the provider delivers it, then retries the same event
    first = post_webhook(api, tenant.app_id, body, webhook_headers(tenant.webhook_secret, body))
    second = post_webhook(api, tenant.app_id, body, webhook_headers(tenant.webhook_secret, body))
    # Then both are 200, the first new and the second a duplicate, and exactly one event item exists
    assert first.status_code == 200, first.json_body
    assert (first.json_body["received"], first.json_body["duplicate"]) == (True, False)
    assert second.status_code == 200, second.json_body
    assert second.json_body["duplicate"] is True
    events = items_of(aws, "EVENT")
    assert len(events) == 1
    assert events[0]["event_id"]["S"] == "evt_1"
    assert events[0]["app_id"]["S"] == tenant.app_id


def test_two_different_events_are_both_recorded(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given two distinct events
    # When both are delivered
    for event_id in ("evt_a", "evt_b"):
        body = payment_event(event_id)
        assert post_webhook(api, tenant.app_id, body, webhook_headers(tenant.webhook_secret, body)).json_body["duplicate"] is False
    # Then two event items exist
    assert sorted(e["event_id"]["S"] for e in items_of(aws, "EVENT")) == ["evt_a", "evt_b"]


def _forged(tenant: Tenant, body: bytes) -> dict[str, str]:
    headers = webhook_headers(tenant.webhook_secret, body)
    t, _, mac = headers["X-Jifen-Webhook-Signature"].partition(",v1=")
    headers["X-Jifen-Webhook-Signature"] = f"{t},v1={mac[::-1]}"
    return headers


@pytest.mark.parametrize(
    "make_headers",
    [
        lambda t, body: _forged(t, body),
        lambda t, body: webhook_headers("not-the-apps-webhook-secret-0123456789", body),
        lambda t, body: webhook_headers(t.webhook_secret, body, timestamp=int(time.time()) - 400),
        lambda t, body: webhook_headers(t.webhook_secret, body, timestamp=int(time.time()) + 400),
        lambda t, body: webhook_headers(t.webhook_secret, body + b" "),
        lambda t, body: {"content-type": "application/json"},
        lambda t, body: {"content-type": "application/json", "X-Jifen-Webhook-Signature": "garbage"},
    ],
    ids=["forged", "wrong-secret", "stale-past", "stale-future", "signed-other-body", "missing", "malformed"],
)
def test_badly_signed_webhook_is_401_and_writes_nothing(api: Any, aws: Any, tenant: Tenant, make_headers: Any) -> None:
    # Given a payment event with a forged, stale, missing or malformed signature
    body = payment_event("evt_forged")
    headers = make_headers(tenant, body)
    before = snapshot(aws)
    # When it is delivered
    response = post_webhook(api, tenant.app_id, body, headers)
    # Then it is 401 and nothing is written
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_webhook_signed_with_another_apps_secret_is_401(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a second app of acme with its own webhook secret
    second = call(api, "POST", "/v1/admin/apps", {"name": "Second", "points_rate": 1}, bearer(tenant.owner_token)).json_body
    body = payment_event("evt_cross")
    before = snapshot(aws)
    # When an event for the first app is signed with the second app's secret
    response = post_webhook(api, tenant.app_id, body, webhook_headers(second["secrets"]["webhook_secret"], body))
    # Then it is 401 and nothing is written
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_webhook_for_an_unknown_app_is_401(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an app id that does not exist
    body = payment_event("evt_nowhere")
    before = snapshot(aws)
    # When an event is delivered to it
    response = post_webhook(api, "app_unknown", body, webhook_headers(tenant.webhook_secret, body))
    # Then it is 401 and nothing is written
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


@pytest.mark.parametrize("provider", ["stripe", "GENERIC", "generic2"])
def test_webhook_for_an_unknown_provider_is_404(api: Any, aws: Any, tenant: Tenant, provider: str) -> None:
    # Given a correctly signed generic event
    body = payment_event("evt_provider")
    before = snapshot(aws)
    # When it is delivered under a provider Jifen does not know
    response = post_webhook(api, tenant.app_id, body, webhook_headers(tenant.webhook_secret, body), provider=provider)
    # Then it is 404 and nothing is written
    assert_envelope(response, 404, "NOT_FOUND")
    assert snapshot(aws) == before


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", json.dumps({"type": "payment.succeeded"}).encode(), payment_event("evt_bad", type="payment.teleported")],
    ids=["malformed", "array", "no-id", "unknown-type"],
)
def test_correctly_signed_but_invalid_event_is_400_and_writes_nothing(api: Any, aws: Any, tenant: Tenant, body: bytes) -> None:
    # Given a body that is signed correctly but is not a valid event
    before = snapshot(aws)
    # When it is delivered
    response = post_webhook(api, tenant.app_id, body, webhook_headers(tenant.webhook_secret, body))
    # Then it is 400 and nothing is written
    assert_envelope(response, 400, "VALIDATION_FAILED")
    assert snapshot(aws) == before


def test_generic_ad_event_is_recorded_once(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a signed ad event
    body = json.dumps(
        {"id": "ad_evt_1", "type": "ad.completed", "openid": "openid-1", "ad_unit": "unit-1", "at": "2025-06-01T10:00:00Z"}
    ).encode()
    path = f"/v1/webhooks/ads/generic/{tenant.app_id}"
    # When it is delivered twice
    first = call(api, "POST", path, headers=webhook_headers(tenant.webhook_secret, body), raw=body)
    second = call(api, "POST", path, headers=webhook_headers(tenant.webhook_secret, body), raw=body)
    # Then the second is a duplicate and one event item exists
    assert first.status_code == 200, first.json_body
    assert (first.json_body["duplicate"], second.json_body["duplicate"]) == (False, True)
    assert [e["event_id"]["S"] for e in items_of(aws, "EVENT")] == ["ad_evt_1"]
