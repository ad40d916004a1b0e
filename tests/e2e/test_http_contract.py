"""The public contract over real HTTP against the local server, including concurrent logins and deliveries."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import requests

from tests.support import login_token, server_headers, webhook_headers

pytestmark = pytest.mark.e2e

T = TypeVar("T")
TIMEOUT = 30


def url(local_api: dict[str, Any], path: str) -> str:
    return str(local_api["base_url"]) + path


def assert_envelope(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"]
    assert response.headers["X-Request-Id"] == error["request_id"]
    return error


def member_login(local_api: dict[str, Any], openid: str, device_id: str = "e2e-device") -> requests.Response:
    body = {"app_id": local_api["app_id"], "login_token": login_token(local_api["login_secret"], openid), "device_id": device_id}
    return requests.post(url(local_api, "/v1/auth/member"), json=body, timeout=TIMEOUT)


def all_at_once(count: int, action: Callable[[int], T]) -> list[T]:
    """Run ``action`` in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout=TIMEOUT)
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


# --- basics ------------------------------------------------------------------------------------------------


def test_health(local_api: dict[str, Any]) -> None:
    # Given the local server
    # When /v1/health is called
    response = requests.get(url(local_api, "/v1/health"), timeout=TIMEOUT)
    # Then it answers ok with a request id
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert response.headers["X-Request-Id"]


def test_every_response_gets_its_own_request_id(local_api: dict[str, Any]) -> None:
    # Given two identical requests
    # When both are sent
    ids = {requests.get(url(local_api, "/v1/health"), timeout=TIMEOUT).headers["X-Request-Id"] for _ in range(2)}
    # Then their request ids differ
    assert len(ids) == 2


@pytest.mark.parametrize("path", ["/v1/does-not-exist", "/", "/v1/admin/apps/x/y/z"])
def test_unknown_path_is_a_404_envelope(local_api: dict[str, Any], path: str) -> None:
    # Given a path no route matches
    # When it is requested
    response = requests.get(url(local_api, path), timeout=TIMEOUT)
    # Then it is a 404 envelope whose request id is also in the X-Request-Id header
    assert_envelope(response, 404, "NOT_FOUND")


def test_error_request_id_matches_the_header(local_api: dict[str, Any]) -> None:
    # Given a member route called without a token
    # When it is refused
    response = requests.get(url(local_api, "/v1/me"), timeout=TIMEOUT)
    # Then the envelope's request_id is the X-Request-Id header's
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_openapi_document_is_served(local_api: dict[str, Any]) -> None:
    # Given the local server
    # When the OpenAPI document is requested
    response = requests.get(url(local_api, "/v1/openapi.json"), timeout=TIMEOUT)
    # Then it is OpenAPI 3.1 and documents the member login
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1")
    assert "post" in response.json()["paths"]["/v1/auth/member"]


# --- credentials from .local -------------------------------------------------------------------------------


def test_local_details_file_has_the_documented_fields(local_api: dict[str, Any]) -> None:
    # Given the file the local server wrote
    # When its fields are read
    # Then it has every field API.md lists
    for field in ("base_url", "tenant_id", "app_id", "login_secret", "server_key", "webhook_secret", "operator", "verifier"):
        assert local_api[field], field
    assert set(local_api["operator"]) >= {"username", "password"}
    assert set(local_api["verifier"]) >= {"store_id", "username", "password"}


def test_operator_logs_in_with_the_local_details(local_api: dict[str, Any], operator_token: str) -> None:
    # Given the demo owner's token (logged in with .local/jifen.json's operator)
    # When the owner reads the tenant and the demo app
    tenant = requests.get(url(local_api, "/v1/admin/tenant"), headers={"Authorization": f"Bearer {operator_token}"}, timeout=TIMEOUT)
    app = requests.get(
        url(local_api, f"/v1/admin/apps/{local_api['app_id']}"), headers={"Authorization": f"Bearer {operator_token}"}, timeout=TIMEOUT
    )
    # Then both belong to the demo tenant, and the app shows only a hint of its secrets
    assert tenant.status_code == 200, tenant.text
    assert tenant.json()["tenant_id"] == local_api["tenant_id"]
    assert app.status_code == 200, app.text
    assert app.json()["secret_hints"]["login_secret"] == "…" + local_api["login_secret"][-4:]
    assert local_api["login_secret"] not in app.text


def test_wrong_operator_password_is_401(local_api: dict[str, Any]) -> None:
    # Given the demo owner's username
    body = {"tenant_id": local_api["tenant_id"], "username": local_api["operator"]["username"], "password": "not-the-password"}
    # When a wrong password is sent
    response = requests.post(url(local_api, "/v1/auth/operator"), json=body, timeout=TIMEOUT)
    # Then it is 401
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_member_logs_in_and_reads_their_profile(local_api: dict[str, Any]) -> None:
    # Given a new member of the demo app, vouched for by a login JWT signed with the demo login secret
    openid = f"e2e-{uuid.uuid4().hex[:12]}"
    # When they log in and call GET /v1/me
    login = member_login(local_api, openid)
    assert login.status_code == 200, login.text
    me = requests.get(url(local_api, "/v1/me"), headers={"Authorization": f"Bearer {login.json()['token']}"}, timeout=TIMEOUT)
    # Then the token's member is them, in the demo app, and login's expires_in is the documented 7200
    assert login.json()["expires_in"] == 7200
    assert me.status_code == 200, me.text
    assert (me.json()["openid"], me.json()["app_id"], me.json()["member_id"]) == (
        openid,
        local_api["app_id"],
        login.json()["member"]["member_id"],
    )


def test_verifier_logs_in_with_the_local_details(local_api: dict[str, Any]) -> None:
    # Given the demo verifier's credentials
    # When they log in and read their store
    login = requests.post(url(local_api, "/v1/auth/verifier"), json=local_api["verifier"], timeout=TIMEOUT)
    assert login.status_code == 200, login.text
    store = requests.get(
        url(local_api, "/v1/verifier/store"), headers={"Authorization": f"Bearer {login.json()['token']}"}, timeout=TIMEOUT
    )
    # Then it is the demo store
    assert store.status_code == 200, store.text
    assert store.json()["store_id"] == local_api["verifier"]["store_id"]


# --- bad input over the wire ---------------------------------------------------------------------------------


def test_malformed_json_is_a_400_envelope(local_api: dict[str, Any]) -> None:
    # Given a body that is not JSON
    # When it is posted to the operator login
    response = requests.post(
        url(local_api, "/v1/auth/operator"), data=b'{"tenant_id": "demo", ', headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )
    # Then it is a 400 envelope with details
    error = assert_envelope(response, 400, "VALIDATION_FAILED")
    assert error["details"] == [{"field": "body", "problem": "malformed JSON"}]


def test_body_over_64_kib_is_413(local_api: dict[str, Any]) -> None:
    # Given a body one byte over 64 KiB
    raw = json.dumps({"tenant_id": "demo", "username": "owner", "password": ""}).encode()
    raw = raw[:-2] + b"p" * (64 * 1024 + 1 - len(raw)) + b'"}'
    assert len(raw) == 64 * 1024 + 1
    # When it is posted
    response = requests.post(url(local_api, "/v1/auth/operator"), data=raw, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    # Then it is 413
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_unsupported_method_is_a_405_envelope(local_api: dict[str, Any]) -> None:
    # Given the operator login route (POST only)
    # When it is called with DELETE
    response = requests.delete(url(local_api, "/v1/auth/operator"), timeout=TIMEOUT)
    # Then it is a 405 envelope
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")


# --- server-to-server --------------------------------------------------------------------------------------------


def test_signed_server_call_works_once_and_its_replay_is_401(local_api: dict[str, Any]) -> None:
    # Given the demo member alice and a request signed with the demo server key
    path = "/v1/server/members/alice"
    headers = server_headers(local_api["app_id"], local_api["server_key"], "GET", path)
    # When it is sent, then sent again unchanged
    first = requests.get(url(local_api, path), headers=headers, timeout=TIMEOUT)
    replay = requests.get(url(local_api, path), headers=headers, timeout=TIMEOUT)
    # Then the first reads alice and the replay is refused
    assert first.status_code == 200, first.text
    assert first.json()["openid"] == "alice"
    assert first.json()["app_id"] == local_api["app_id"]
    assert_envelope(replay, 401, "UNAUTHORIZED")


def test_server_call_with_a_stale_timestamp_is_401(local_api: dict[str, Any]) -> None:
    # Given a request correctly signed ten minutes ago
    path = "/v1/server/members/alice"
    headers = server_headers(local_api["app_id"], local_api["server_key"], "GET", path, timestamp=int(time.time()) - 600)
    # When it is sent
    # Then it is refused
    assert_envelope(requests.get(url(local_api, path), headers=headers, timeout=TIMEOUT), 401, "UNAUTHORIZED")


def test_the_same_signed_request_sent_twenty_times_at_once_is_accepted_once(local_api: dict[str, Any]) -> None:
    # Given one signed request (one nonce)
    path = "/v1/server/members/bob"
    headers = server_headers(local_api["app_id"], local_api["server_key"], "GET", path)
    # When 20 copies arrive at the same moment
    statuses = all_at_once(20, lambda _: requests.get(url(local_api, path), headers=headers, timeout=TIMEOUT).status_code)
    # Then exactly one is served and the other 19 are replays
    assert sorted(statuses) == [200] + [401] * 19


# --- concurrency -----------------------------------------------------------------------------------------------------


def test_twenty_simultaneous_first_logins_make_one_member(local_api: dict[str, Any]) -> None:
    # Given an openid that has never logged in
    openid = f"race-{uuid.uuid4().hex[:12]}"
    # When 20 devices log in as them at the same moment
    responses = all_at_once(20, lambda i: member_login(local_api, openid, device_id=f"dev-{i}"))
    # Then all 20 succeed, with the same member id and creation time
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]
    members = {(r.json()["member"]["member_id"], r.json()["member"]["created_at"]) for r in responses}
    assert len(members) == 1
    member_id = members.pop()[0]
    # And every one of the 20 tokens reads that same member
    me_ids = {
        requests.get(url(local_api, "/v1/me"), headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=TIMEOUT).json()[
            "member_id"
        ]
        for r in responses
    }
    assert me_ids == {member_id}
    # And the tenant's backend finds exactly that member for the openid
    path = f"/v1/server/members/{openid}"
    found = requests.get(
        url(local_api, path), headers=server_headers(local_api["app_id"], local_api["server_key"], "GET", path), timeout=TIMEOUT
    )
    assert found.status_code == 200, found.text
    assert found.json()["member_id"] == member_id


def test_twenty_simultaneous_deliveries_of_one_event_record_it_once(local_api: dict[str, Any]) -> None:
    # Given one payment event, signed with the demo webhook secret
    event_id = f"evt_{uuid.uuid4().hex[:12]}"
    body = json.dumps(
        {"id": event_id, "type": "payment.succeeded", "openid": "alice", "order_id": f"o-{event_id}", "amount_fen": 100, "product_ids": []}
    ).encode()
    path = f"/v1/webhooks/payments/generic/{local_api['app_id']}"

    def deliver(_: int) -> requests.Response:
        return requests.post(url(local_api, path), data=body, headers=webhook_headers(local_api["webhook_secret"], body), timeout=TIMEOUT)

    # When the provider delivers it 20 times at the same moment
    responses = all_at_once(20, deliver)
    # Then every delivery is acknowledged and exactly one is not a duplicate
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 19
    # And a later retry is a duplicate too
    assert deliver(0).json()["duplicate"] is True


def test_forged_webhook_is_401(local_api: dict[str, Any]) -> None:
    # Given an event signed with a secret that is not the demo app's
    body = json.dumps({"id": "evt_forged", "type": "payment.succeeded", "openid": "alice", "order_id": "o-f", "amount_fen": 1}).encode()
    headers = webhook_headers("not-the-demo-webhook-secret-0123456789", body)
    # When it is delivered
    response = requests.post(
        url(local_api, f"/v1/webhooks/payments/generic/{local_api['app_id']}"), data=body, headers=headers, timeout=TIMEOUT
    )
    # Then it is refused
    assert_envelope(response, 401, "UNAUTHORIZED")
