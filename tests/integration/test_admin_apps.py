"""Apps through the admin API: secrets shown once, optimistic updates, rotation with grace, tenant isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.tenancy import accounts
from tests.conftest import Tenant, bearer, call, table_items
from tests.support import login_token, server_headers, webhook_headers

SECRET_NAMES = ("login_secret", "server_key", "webhook_secret")


def snapshot(aws: Any) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(aws))


def assert_envelope(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]


def member_login(api: Any, app_id: str, login_secret: str, openid: str = "openid-1") -> Any:
    return call(api, "POST", "/v1/auth/member", {"app_id": app_id, "login_token": login_token(login_secret, openid), "device_id": "d"})


def server_get(api: Any, app_id: str, server_key: str, openid: str = "openid-1") -> Any:
    path = f"/v1/server/members/{openid}"
    return call(api, "GET", path, headers=server_headers(app_id, server_key, "GET", path))


def webhook(api: Any, app_id: str, secret: str, event_id: str) -> Any:
    event = {
        "id": event_id,
        "type": "payment.succeeded",
        "openid": "openid-1",
        "order_id": f"o-{event_id}",
        "amount_fen": 100,
        "product_ids": [],
    }
    body = json.dumps(event).encode()
    return call(api, "POST", f"/v1/webhooks/payments/generic/{app_id}", headers=webhook_headers(secret, body), raw=body)


@pytest.fixture
def globex_token(api: Any, tenant: Tenant) -> str:
    """Given a second tenant, globex, with its own owner logged in."""
    accounts.create_tenant("globex", "Globex", "globex-owner", "globex-password-1")
    response = call(api, "POST", "/v1/auth/operator", {"tenant_id": "globex", "username": "globex-owner", "password": "globex-password-1"})
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


# --- create, read, list --------------------------------------------------------------------------------


def test_owner_creates_an_app_and_sees_its_secrets_once(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given acme's owner
    # When they create an app with every setting
    body = {
        "name": "Loyalty",
        "points_rate": 250,
        "time_zone": "Europe/Paris",
        "expiry_policy": {"type": "end_of_nth_year", "n": 1},
        "daily_earn_cap": 5000,
    }
    response = call(api, "POST", "/v1/admin/apps", body, bearer(tenant.owner_token))
    # Then it is 201 with the app as sent, version 1, and three distinct full secrets
    assert response.status_code == 201, response.json_body
    app, secrets = response.json_body["app"], response.json_body["secrets"]
    assert {k: app[k] for k in body} == body
    assert (app["tenant_id"], app["version"], app["login_mode"]) == ("acme", 1, "jwt")
    values = [secrets[name] for name in SECRET_NAMES]
    assert len(set(values)) == 3 and all(len(v) >= 32 for v in values)
    # And the hints in the same response are the last four characters of each
    assert app["secret_hints"] == {name: "…" + secrets[name][-4:] for name in SECRET_NAMES}
    # And the secrets work: a member can log in with the new login secret
    assert member_login(api, app["app_id"], secrets["login_secret"]).status_code == 200


def test_owner_creates_a_callback_mode_app(api: Any, tenant: Tenant) -> None:
    # Given acme's owner
    # When they create an app that logs members in through a login-state callback
    body = {"name": "Callback", "points_rate": 1, "login_mode": "callback", "login_callback_url": "https://login.acme.test/cb"}
    response = call(api, "POST", "/v1/admin/apps", body, bearer(tenant.owner_token))
    # Then the app is created in callback mode and members log in with a code
    assert response.status_code == 201, response.json_body
    app = response.json_body["app"]
    assert (app["login_mode"], app["login_callback_url"]) == ("callback", "https://login.acme.test/cb")
    login = call(api, "POST", "/v1/auth/member", {"app_id": app["app_id"], "code": "ok:openid-9", "device_id": "d"})
    assert login.status_code == 200, login.json_body
    assert login.json_body["member"]["openid"] == "openid-9"


def test_get_and_list_show_hints_but_never_a_full_secret(api: Any, tenant: Tenant) -> None:
    # Given an app whose full secrets were shown once at creation
    secrets = [tenant.login_secret, tenant.server_key, tenant.webhook_secret]
    # When the owner reads the app and lists the tenant's apps
    one = call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(tenant.owner_token))
    listed = call(api, "GET", "/v1/admin/apps", headers=bearer(tenant.owner_token))
    # Then the app shows only hints (last 4 characters), and no full secret appears anywhere in either body
    assert one.status_code == 200 and listed.status_code == 200
    assert one.json_body["secret_hints"] == {
        "login_secret": "…" + tenant.login_secret[-4:],
        "server_key": "…" + tenant.server_key[-4:],
        "webhook_secret": "…" + tenant.webhook_secret[-4:],
    }
    assert "secrets" not in one.json_body
    for body in (one.json_body, listed.json_body):
        text = json.dumps(body, ensure_ascii=False)
        for secret in secrets:
            assert secret not in text
            assert secret[:-4] not in text
    assert [a["app_id"] for a in listed.json_body["items"]] == [tenant.app_id]


def test_unknown_app_is_not_found(api: Any, tenant: Tenant) -> None:
    # Given no app app_missing
    # When the owner reads it
    # Then it is 404
    assert_envelope(call(api, "GET", "/v1/admin/apps/app_missing", headers=bearer(tenant.owner_token)), 404, "NOT_FOUND")


def test_apps_list_pages_with_a_cursor(api: Any, tenant: Tenant) -> None:
    # Given acme with three apps
    for name in ("Two", "Three"):
        assert call(api, "POST", "/v1/admin/apps", {"name": name, "points_rate": 1}, bearer(tenant.owner_token)).status_code == 201
    # When the owner lists them two at a time, following the cursor
    first = call(api, "GET", "/v1/admin/apps?limit=2", headers=bearer(tenant.owner_token)).json_body
    second = call(api, "GET", f"/v1/admin/apps?limit=2&cursor={first['cursor']}", headers=bearer(tenant.owner_token)).json_body
    # Then every app appears exactly once across the pages
    ids = [a["app_id"] for a in first["items"]] + [a["app_id"] for a in second["items"]]
    assert len(first["items"]) == 2 and first["cursor"]
    assert len(ids) == len(set(ids)) == 3
    assert tenant.app_id in ids


# --- update ------------------------------------------------------------------------------------------------


def test_update_with_the_version_read_applies_and_bumps_the_version(api: Any, tenant: Tenant) -> None:
    # Given the app at version 1
    # When the owner sends changes with version 1
    changes = {
        "name": "Renamed",
        "points_rate": 42,
        "expiry_policy": {"type": "rolling_days", "n": 30},
        "daily_earn_cap": 900,
        "version": 1,
    }
    response = call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", changes, bearer(tenant.owner_token))
    # Then the app is updated, at version 2, and a fresh read agrees
    assert response.status_code == 200, response.json_body
    app = call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(tenant.owner_token)).json_body
    for body in (response.json_body, app):
        assert (body["name"], body["points_rate"], body["daily_earn_cap"], body["version"]) == ("Renamed", 42, 900, 2)
        assert body["expiry_policy"] == {"type": "rolling_days", "n": 30}


def test_update_with_null_cap_removes_the_cap(api: Any, tenant: Tenant) -> None:
    # Given an app with a daily earn cap
    call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", {"daily_earn_cap": 100, "version": 1}, bearer(tenant.owner_token))
    # When the owner sets it to null
    response = call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", {"daily_earn_cap": None, "version": 2}, bearer(tenant.owner_token))
    # Then the app has no cap any more
    assert response.status_code == 200, response.json_body
    assert response.json_body["daily_earn_cap"] is None
    assert call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(tenant.owner_token)).json_body["daily_earn_cap"] is None


def test_update_with_a_stale_version_is_a_conflict_and_changes_nothing(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given someone already updated the app from version 1 to 2
    assert (
        call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", {"name": "First", "version": 1}, bearer(tenant.owner_token)).status_code
        == 200
    )
    before = snapshot(aws)
    # When another editor sends their change based on version 1
    response = call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", {"name": "Second", "version": 1}, bearer(tenant.owner_token))
    # Then it is 409 CONFLICT and the first edit stands
    assert_envelope(response, 409, "CONFLICT")
    assert snapshot(aws) == before
    assert call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(tenant.owner_token)).json_body["name"] == "First"


def test_changing_the_login_mode_is_a_conflict(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a JWT-mode app
    before = snapshot(aws)
    # When the owner switches it to callback mode
    changes = {"login_mode": "callback", "login_callback_url": "https://login.acme.test/cb", "version": 1}
    response = call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", changes, bearer(tenant.owner_token))
    # Then it is 409 and the app is unchanged
    assert_envelope(response, 409, "CONFLICT")
    assert snapshot(aws) == before


def test_sending_the_same_login_mode_is_allowed(api: Any, tenant: Tenant) -> None:
    # Given a JWT-mode app
    # When an editor sends login_mode "jwt" along with another change (a form re-sending every field)
    response = call(
        api,
        "PATCH",
        f"/v1/admin/apps/{tenant.app_id}",
        {"login_mode": "jwt", "name": "Same Mode", "version": 1},
        bearer(tenant.owner_token),
    )
    # Then the change is applied
    assert response.status_code == 200, response.json_body
    assert (response.json_body["name"], response.json_body["login_mode"]) == ("Same Mode", "jwt")


# --- secret rotation -------------------------------------------------------------------------------------------


def test_rotation_returns_new_secrets_and_keeps_the_old_ones_working_for_the_grace_period(api: Any, tenant: Tenant) -> None:
    # Given an app with its original secrets
    # When the owner rotates all three
    response = call(
        api, "POST", f"/v1/admin/apps/{tenant.app_id}/secrets/rotate", {"secrets": list(SECRET_NAMES)}, bearer(tenant.owner_token)
    )
    # Then three new values come back, different from the old ones, with the end of the grace period
    assert response.status_code == 200, response.json_body
    new = response.json_body["secrets"]
    assert new["login_secret"] not in (tenant.login_secret, None)
    assert new["server_key"] not in (tenant.server_key, None)
    assert new["webhook_secret"] not in (tenant.webhook_secret, None)
    assert response.json_body["previous_valid_until"]
    # And both old and new login secrets let members in
    assert member_login(api, tenant.app_id, tenant.login_secret, "old-secret-user").status_code == 200
    assert member_login(api, tenant.app_id, new["login_secret"], "new-secret-user").status_code == 200
    # And both old and new server keys sign server calls
    assert server_get(api, tenant.app_id, tenant.server_key, "old-secret-user").status_code == 200
    assert server_get(api, tenant.app_id, new["server_key"], "new-secret-user").status_code == 200
    # And both old and new webhook secrets sign webhooks
    assert webhook(api, tenant.app_id, tenant.webhook_secret, "evt_old").status_code == 200
    assert webhook(api, tenant.app_id, new["webhook_secret"], "evt_new").status_code == 200
    # And the hints now show the new values
    hints = call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(tenant.owner_token)).json_body["secret_hints"]
    assert hints == {name: "…" + new[name][-4:] for name in SECRET_NAMES}


def test_rotating_one_secret_leaves_the_others_alone(api: Any, tenant: Tenant) -> None:
    # Given an app
    # When only the server key is rotated
    response = call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/secrets/rotate", {"secrets": ["server_key"]}, bearer(tenant.owner_token))
    # Then only a new server key is returned, and the other hints are unchanged
    assert response.status_code == 200, response.json_body
    assert response.json_body["secrets"]["login_secret"] is None
    assert response.json_body["secrets"]["webhook_secret"] is None
    hints = call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(tenant.owner_token)).json_body["secret_hints"]
    assert hints["login_secret"] == "…" + tenant.login_secret[-4:]
    assert hints["server_key"] == "…" + response.json_body["secrets"]["server_key"][-4:]


def test_rotating_twice_ends_the_first_secrets_grace(api: Any, tenant: Tenant) -> None:
    # Given a login secret rotated twice (original -> second -> third)
    path = f"/v1/admin/apps/{tenant.app_id}/secrets/rotate"
    second = call(api, "POST", path, {"secrets": ["login_secret"]}, bearer(tenant.owner_token)).json_body["secrets"]["login_secret"]
    third = call(api, "POST", path, {"secrets": ["login_secret"]}, bearer(tenant.owner_token)).json_body["secrets"]["login_secret"]
    # When members log in with each of the three
    # Then the original no longer works, the previous and current do
    assert_envelope(member_login(api, tenant.app_id, tenant.login_secret), 401, "UNAUTHORIZED")
    assert member_login(api, tenant.app_id, second).status_code == 200
    assert member_login(api, tenant.app_id, third).status_code == 200


# --- tenant isolation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "Hijacked", "version": 1}),
        ("POST", "/secrets/rotate", {"secrets": ["login_secret", "server_key", "webhook_secret"]}),
    ],
    ids=["get", "patch", "rotate"],
)
def test_other_tenant_cannot_read_change_or_rotate_an_app(
    api: Any, aws: Any, tenant: Tenant, globex_token: str, method: str, suffix: str, body: Any
) -> None:
    # Given acme's app and globex's owner
    before = snapshot(aws)
    # When globex's owner reads, edits or rotates acme's app by its id
    response = call(api, method, f"/v1/admin/apps/{tenant.app_id}{suffix}", body, bearer(globex_token))
    # Then it is 404 (the app's existence is not revealed) and nothing changed
    assert_envelope(response, 404, "NOT_FOUND")
    assert snapshot(aws) == before
    # And acme's secrets still work
    assert member_login(api, tenant.app_id, tenant.login_secret).status_code == 200


def test_other_tenant_does_not_see_an_app_in_its_list(api: Any, tenant: Tenant, globex_token: str) -> None:
    # Given acme's app and globex with none
    # When globex's owner lists apps
    listed = call(api, "GET", "/v1/admin/apps", headers=bearer(globex_token))
    # Then the list is empty
    assert listed.status_code == 200
    assert listed.json_body["items"] == []


def test_other_tenants_cursor_is_refused(api: Any, tenant: Tenant, globex_token: str) -> None:
    # Given a cursor from acme's app list
    call(api, "POST", "/v1/admin/apps", {"name": "Two", "points_rate": 1}, bearer(tenant.owner_token))
    cursor = call(api, "GET", "/v1/admin/apps?limit=1", headers=bearer(tenant.owner_token)).json_body["cursor"]
    assert cursor
    # When globex presents it on its own list
    response = call(api, "GET", f"/v1/admin/apps?limit=1&cursor={cursor}", headers=bearer(globex_token))
    # Then it is a validation error, not acme's next page
    assert_envelope(response, 400, "VALIDATION_FAILED")
