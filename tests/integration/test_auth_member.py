"""Member login (JWT and callback modes), the member token, and who may use it where."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib.core.ids import member_id_for
from chalicelib.tenancy import apps
from chalicelib.tenancy.models import CreateAppRequest, LoginMode
from tests.conftest import Tenant, bearer, call, table_items
from tests.support import login_token


def snapshot(aws: Any) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(aws))


def profiles(aws: Any) -> list[dict[str, Any]]:
    return [item for item in table_items(aws) if item["SK"]["S"] == "PROFILE"]


def login(api: Any, app_id: str, token: str, device_id: str = "dev-1") -> Any:
    return call(api, "POST", "/v1/auth/member", {"app_id": app_id, "login_token": token, "device_id": device_id})


def assert_envelope(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]


@pytest.fixture
def callback_app(tenant: Tenant) -> str:
    """An app of acme in "callback" login mode (made through logic, so callback login is tested on its own)."""
    body = CreateAppRequest(
        name="Callback App", points_rate=10, login_mode=LoginMode.CALLBACK, login_callback_url="https://login.acme.test/cb"
    )
    return apps.create_app(tenant.tenant_id, body).app.app_id


# --- JWT mode ---------------------------------------------------------------------------------------


def test_first_login_creates_the_member(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a member who has never logged in to acme's app
    assert profiles(aws) == []
    # When the tenant's backend signs a login JWT for them and the mini-program exchanges it
    response = login(api, tenant.app_id, login_token(tenant.login_secret, "openid-1", nickname="Ann"))
    # Then a member token comes back for two hours and exactly one profile item exists for them
    assert response.status_code == 200, response.json_body
    body = response.json_body
    assert body["expires_in"] == 7200
    assert body["token"]
    assert body["member"]["openid"] == "openid-1"
    assert body["member"]["nickname"] == "Ann"
    assert body["member"]["member_id"] == member_id_for(tenant.app_id, "openid-1")
    items = profiles(aws)
    assert len(items) == 1
    assert items[0]["openid"]["S"] == "openid-1"
    assert items[0]["logins"]["N"] == "1"


def test_second_login_finds_the_same_member(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a member who logged in once
    first = login(api, tenant.app_id, login_token(tenant.login_secret, "openid-1"))
    # When they log in again from another device
    second = login(api, tenant.app_id, login_token(tenant.login_secret, "openid-1"), device_id="dev-2")
    # Then it is the same member, created at the same time, and still only one profile item, now with two logins
    assert second.status_code == 200, second.json_body
    assert second.json_body["member"]["member_id"] == first.json_body["member"]["member_id"]
    assert second.json_body["member"]["created_at"] == first.json_body["member"]["created_at"]
    items = profiles(aws)
    assert len(items) == 1
    assert items[0]["logins"]["N"] == "2"
    assert items[0]["device_id"]["S"] == "dev-2"


def test_member_token_reads_its_own_profile(api: Any, tenant: Tenant) -> None:
    # Given a new member logged in with a nickname vouched for by the tenant
    session = login(api, tenant.app_id, login_token(tenant.login_secret, "openid-7", nickname="Bo", birthday="1991-07-07")).json_body
    # When they call GET /v1/me with their token
    response = call(api, "GET", "/v1/me", headers=bearer(session["token"]))
    # Then they see their own profile in acme's app, with the API.md fields of a member who has earned nothing yet
    assert response.status_code == 200, response.json_body
    me = response.json_body
    assert (me["openid"], me["app_id"], me["member_id"], me["nickname"]) == (
        "openid-7",
        tenant.app_id,
        session["member"]["member_id"],
        "Bo",
    )
    assert (me["balance"], me["growth"], me["expiring"]) == (0, 0, [])
    assert "level" in me


def test_same_openid_in_two_apps_is_two_members(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a second app of the same tenant
    created = call(api, "POST", "/v1/admin/apps", {"name": "Second", "points_rate": 1}, bearer(tenant.owner_token)).json_body
    # When the same openid logs in to both apps
    one = login(api, tenant.app_id, login_token(tenant.login_secret, "shared-openid")).json_body
    two = login(api, created["app"]["app_id"], login_token(created["secrets"]["login_secret"], "shared-openid")).json_body
    # Then they are two distinct members, each token showing its own app
    assert one["member"]["member_id"] != two["member"]["member_id"]
    me_one = call(api, "GET", "/v1/me", headers=bearer(one["token"])).json_body
    me_two = call(api, "GET", "/v1/me", headers=bearer(two["token"])).json_body
    assert (me_one["app_id"], me_two["app_id"]) == (tenant.app_id, created["app"]["app_id"])
    assert len(profiles(aws)) == 2


def test_login_token_of_another_app_is_refused(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a second app and a login JWT signed with the second app's secret
    created = call(api, "POST", "/v1/admin/apps", {"name": "Second", "points_rate": 1}, bearer(tenant.owner_token)).json_body
    token = login_token(created["secrets"]["login_secret"], "openid-1")
    before = snapshot(aws)
    # When it is presented to the first app
    response = login(api, tenant.app_id, token)
    # Then the login is refused and no member is created
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


@pytest.mark.parametrize(
    "make_token",
    [
        lambda secret: login_token("not-the-apps-login-secret-0123456789abcdef", "openid-1"),
        lambda secret: login_token(secret, "openid-1", iat=int(time.time()) - 3600),
        lambda secret: login_token(secret, "openid-1", iat=int(time.time()) + 3600),
        lambda secret: login_token(secret, "openid-1", lifetime=601),
        lambda secret: login_token(secret, "openid-1", aud="someone-else"),
        lambda secret: login_token(secret, "openid-1", birthday="1990-13-01"),
        lambda secret: "not-a-jwt",
    ],
    ids=["wrong-secret", "expired", "future-iat", "lives-too-long", "wrong-aud", "bad-birthday", "garbage"],
)
def test_bad_login_token_is_refused_and_writes_nothing(api: Any, aws: Any, tenant: Tenant, make_token: Any) -> None:
    # Given a login JWT that is forged, stale, too long-lived or malformed
    token = make_token(tenant.login_secret)
    before = snapshot(aws)
    # When it is exchanged
    response = login(api, tenant.app_id, token)
    # Then the login is refused with 401 and the table is unchanged
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_unknown_app_is_refused_and_writes_nothing(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a login JWT for an app id that does not exist
    before = snapshot(aws)
    # When it is exchanged
    response = login(api, "app_does_not_exist", login_token(tenant.login_secret, "openid-1"))
    # Then it is refused with 401 and nothing is written
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_code_sent_to_a_jwt_mode_app_is_a_validation_error(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given acme's app logs members in with JWTs
    before = snapshot(aws)
    # When a mini-program sends a callback code instead
    response = call(api, "POST", "/v1/auth/member", {"app_id": tenant.app_id, "code": "ok:openid-1", "device_id": "d"})
    # Then it is told login_token is required, and nothing is written
    assert_envelope(response, 400, "VALIDATION_FAILED")
    assert response.json_body["error"]["details"] == [{"field": "login_token", "problem": "required"}]
    assert snapshot(aws) == before


# --- callback mode ------------------------------------------------------------------------------------


def test_callback_login_with_an_accepted_code_creates_the_member(api: Any, aws: Any, callback_app: str) -> None:
    # Given a callback-mode app whose login service resolves "ok:openid-1" to openid-1 (fake adapter)
    # When a mini-program logs in with that code
    response = call(api, "POST", "/v1/auth/member", {"app_id": callback_app, "code": "ok:openid-1", "device_id": "d"})
    # Then the member openid-1 of that app is created and gets a token that reads its profile
    assert response.status_code == 200, response.json_body
    assert response.json_body["member"]["openid"] == "openid-1"
    assert response.json_body["member"]["member_id"] == member_id_for(callback_app, "openid-1")
    me = call(api, "GET", "/v1/me", headers=bearer(response.json_body["token"])).json_body
    assert (me["openid"], me["app_id"]) == ("openid-1", callback_app)
    assert [p["openid"]["S"] for p in profiles(aws)] == ["openid-1"]


def test_callback_login_with_a_rejected_code_is_refused(api: Any, aws: Any, callback_app: str) -> None:
    # Given a callback-mode app whose login service rejects the code "bad"
    before = snapshot(aws)
    # When a mini-program logs in with it
    response = call(api, "POST", "/v1/auth/member", {"app_id": callback_app, "code": "bad", "device_id": "d"})
    # Then it is refused with 401 and no member exists
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_login_token_sent_to_a_callback_mode_app_is_a_validation_error(api: Any, aws: Any, tenant: Tenant, callback_app: str) -> None:
    # Given a callback-mode app
    before = snapshot(aws)
    # When a mini-program sends a JWT instead of a code
    response = login(api, callback_app, login_token(tenant.login_secret, "openid-1"))
    # Then it is told a code is required, and nothing is written
    assert_envelope(response, 400, "VALIDATION_FAILED")
    assert snapshot(aws) == before


# --- where a member token is (not) accepted -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/admin/apps"),
        ("GET", "/v1/admin/tenant"),
        ("POST", "/v1/admin/stores"),
        ("GET", "/v1/verifier/store"),
    ],
)
def test_member_token_is_refused_on_operator_and_verifier_routes(api: Any, aws: Any, tenant: Tenant, method: str, path: str) -> None:
    # Given a genuine member token of acme's app
    token = login(api, tenant.app_id, login_token(tenant.login_secret, "openid-1")).json_body["token"]
    before = snapshot(aws)
    # When it is used on an operator or verifier route
    response = call(api, method, path, {"name": "Sneaky store"} if method == "POST" else None, bearer(token))
    # Then it is refused with 401 and nothing is written
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert snapshot(aws) == before


def test_operator_token_is_refused_on_member_routes(api: Any, tenant: Tenant) -> None:
    # Given acme's owner token
    # When it is used on GET /v1/me
    response = call(api, "GET", "/v1/me", headers=bearer(tenant.owner_token))
    # Then it is refused with 401
    assert_envelope(response, 401, "UNAUTHORIZED")


def test_me_without_a_token_is_refused(api: Any, tenant: Tenant) -> None:
    # Given no Authorization header
    # When GET /v1/me is called
    response = call(api, "GET", "/v1/me")
    # Then it is refused with 401
    assert_envelope(response, 401, "UNAUTHORIZED")
