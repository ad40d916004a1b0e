"""Operator login and roles, stores and verifiers, and tenant isolation of all of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.tenancy import accounts
from tests.conftest import OWNER, Tenant, bearer, call, table_items

GLOBEX_OWNER = ("globex-owner", "globex-password-1")


def snapshot(aws: Any) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(aws))


def assert_envelope(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]


def operator_login(api: Any, tenant_id: str, username: str, password: str) -> Any:
    return call(api, "POST", "/v1/auth/operator", {"tenant_id": tenant_id, "username": username, "password": password})


def add_operator(api: Any, owner_token: str, username: str, role: str) -> str:
    """The owner adds an operator through the admin API; returns that operator's token."""
    password = f"{username}-password-1"
    created = call(api, "POST", "/v1/admin/operators", {"username": username, "password": password, "role": role}, bearer(owner_token))
    assert created.status_code == 201, created.json_body
    response = operator_login(api, "acme", username, password)
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


@pytest.fixture
def globex_token(api: Any, tenant: Tenant) -> str:
    """Given a second tenant, globex, with its own owner logged in."""
    accounts.create_tenant("globex", "Globex", *GLOBEX_OWNER)
    response = operator_login(api, "globex", *GLOBEX_OWNER)
    assert response.status_code == 200, response.json_body
    return str(response.json_body["token"])


# --- login --------------------------------------------------------------------------------------------


def test_owner_login_gives_a_token_with_tenant_and_role(api: Any, tenant: Tenant) -> None:
    # Given acme and its owner
    # When the owner logs in
    response = operator_login(api, "acme", *OWNER)
    # Then a bearer token comes back with the tenant and the owner role, and it opens the tenant's admin API
    assert response.status_code == 200, response.json_body
    body = response.json_body
    assert (body["tenant_id"], body["role"], body["expires_in"]) == ("acme", "owner", 3600)
    tenant_info = call(api, "GET", "/v1/admin/tenant", headers=bearer(body["token"]))
    assert tenant_info.status_code == 200
    assert tenant_info.json_body["tenant_id"] == "acme"
    assert tenant_info.json_body["name"] == "Acme"


@pytest.mark.parametrize(
    ("tenant_id", "username", "password"),
    [("acme", OWNER[0], "wrong-password"), ("nosuchtenant", OWNER[0], OWNER[1]), ("acme", "nobody", OWNER[1])],
    ids=["wrong-password", "unknown-tenant", "unknown-user"],
)
def test_failed_operator_logins_look_the_same(api: Any, aws: Any, tenant: Tenant, tenant_id: str, username: str, password: str) -> None:
    # Given acme and its owner
    before = snapshot(aws)
    # When someone logs in with a wrong password, an unknown tenant or an unknown user
    response = operator_login(api, tenant_id, username, password)
    # Then each is 401 with the same message (nothing tells which part was wrong), and nothing is written
    # but the one failure counter of the account tried (the login brake, the same for known and unknown accounts)
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert response.json_body["error"]["message"] == "Wrong tenant, username or password"
    written = [json.loads(item) for item in snapshot(aws) if item not in before]
    assert [(item["SK"]["S"].startswith("LIMIT#login#operator#"), item["n"]["N"]) for item in written] == [(True, "1")]


def test_stored_password_is_a_salted_hash(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an operator added by the owner
    add_operator(api, tenant.owner_token, "viewer1", "viewer")
    # When the table is read
    operators = {item["SK"]["S"]: item for item in table_items(aws) if item["SK"]["S"].startswith("OP#")}
    # Then neither password appears; each is stored as a scrypt hash, with different salts
    dumped = json.dumps(operators)
    assert OWNER[1] not in dumped and "viewer1-password-1" not in dumped
    hashes = [item["password_hash"]["S"] for item in operators.values()]
    assert all(h.startswith("scrypt$") for h in hashes)
    assert len({h.split("$")[2] for h in hashes}) == 2


# --- roles ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "operator", "reviewer", "viewer"])
def test_owner_adds_an_operator_of_each_role(api: Any, aws: Any, tenant: Tenant, role: str) -> None:
    # Given acme's owner
    # When they add an operator with a role through the admin API
    response = call(
        api,
        "POST",
        "/v1/admin/operators",
        {"username": f"{role}-1", "password": "a-long-password-1", "role": role},
        bearer(tenant.owner_token),
    )
    # Then the operator exists with that role and can log in with it
    assert response.status_code == 201, response.json_body
    assert (response.json_body["username"], response.json_body["role"], response.json_body["tenant_id"]) == (f"{role}-1", role, "acme")
    login = operator_login(api, "acme", f"{role}-1", "a-long-password-1")
    assert login.status_code == 200, login.json_body
    assert login.json_body["role"] == role


def test_viewer_can_list_but_not_create_apps(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given a viewer added by the owner
    viewer = add_operator(api, tenant.owner_token, "viewer1", "viewer")
    before = snapshot(aws)
    # When the viewer tries to create an app
    created = call(api, "POST", "/v1/admin/apps", {"name": "Viewer App", "points_rate": 1}, bearer(viewer))
    # Then it is forbidden and nothing is written
    assert_envelope(created, 403, "FORBIDDEN")
    assert snapshot(aws) == before
    # And the viewer can still list and read the tenant's apps
    listed = call(api, "GET", "/v1/admin/apps", headers=bearer(viewer))
    assert listed.status_code == 200
    assert [app["app_id"] for app in listed.json_body["items"]] == [tenant.app_id]
    assert call(api, "GET", f"/v1/admin/apps/{tenant.app_id}", headers=bearer(viewer)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/v1/admin/apps/{app_id}", {"name": "Renamed", "version": 1}),
        ("POST", "/v1/admin/apps/{app_id}/secrets/rotate", {"secrets": ["server_key"]}),
        ("POST", "/v1/admin/operators", {"username": "sneaky", "password": "sneaky-password-1", "role": "owner"}),
        ("GET", "/v1/admin/operators", None),
        ("POST", "/v1/admin/stores", {"name": "Viewer Store"}),
    ],
    ids=["patch-app", "rotate", "add-operator", "list-operators", "create-store"],
)
def test_viewer_cannot_change_anything(api: Any, aws: Any, tenant: Tenant, method: str, path: str, body: Any) -> None:
    # Given a viewer
    viewer = add_operator(api, tenant.owner_token, "viewer1", "viewer")
    before = snapshot(aws)
    # When the viewer calls a route reserved to owners or managers
    response = call(api, method, path.format(app_id=tenant.app_id), body, bearer(viewer))
    # Then it is forbidden and nothing is written
    assert_envelope(response, 403, "FORBIDDEN")
    assert snapshot(aws) == before


def test_operator_role_may_edit_apps_but_not_create_them_or_rotate_secrets(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an operator (a manager, not an owner)
    operator = add_operator(api, tenant.owner_token, "op1", "operator")
    # When they edit the app
    patched = call(api, "PATCH", f"/v1/admin/apps/{tenant.app_id}", {"points_rate": 7, "version": 1}, bearer(operator))
    # Then the edit is applied
    assert patched.status_code == 200, patched.json_body
    assert patched.json_body["points_rate"] == 7
    # And creating an app or rotating secrets is forbidden, writing nothing
    before = snapshot(aws)
    assert_envelope(call(api, "POST", "/v1/admin/apps", {"name": "X", "points_rate": 1}, bearer(operator)), 403, "FORBIDDEN")
    rotate = call(api, "POST", f"/v1/admin/apps/{tenant.app_id}/secrets/rotate", {"secrets": ["login_secret"]}, bearer(operator))
    assert_envelope(rotate, 403, "FORBIDDEN")
    assert snapshot(aws) == before


def test_adding_an_existing_operator_is_a_conflict(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given an operator named op1
    add_operator(api, tenant.owner_token, "op1", "operator")
    before = snapshot(aws)
    # When the owner adds op1 again, as owner, with another password
    again = call(
        api,
        "POST",
        "/v1/admin/operators",
        {"username": "op1", "password": "takeover-password-1", "role": "owner"},
        bearer(tenant.owner_token),
    )
    # Then it is a conflict and the existing operator is untouched (the old password still works)
    assert_envelope(again, 409, "ALREADY_EXISTS")
    assert snapshot(aws) == before
    assert operator_login(api, "acme", "op1", "op1-password-1").json_body["role"] == "operator"


def test_operators_of_one_tenant_are_invisible_to_another(api: Any, tenant: Tenant, globex_token: str) -> None:
    # Given acme with an extra operator and globex with only its owner
    add_operator(api, tenant.owner_token, "op1", "operator")
    # When globex's owner lists operators
    listed = call(api, "GET", "/v1/admin/operators", headers=bearer(globex_token))
    # Then only globex's own owner appears
    assert listed.status_code == 200
    assert [(o["tenant_id"], o["username"]) for o in listed.json_body["items"]] == [("globex", GLOBEX_OWNER[0])]


def test_owner_of_one_tenant_cannot_log_in_to_another(api: Any, tenant: Tenant, globex_token: str) -> None:
    # Given globex's owner credentials
    # When they are used with tenant_id acme
    response = operator_login(api, "acme", *GLOBEX_OWNER)
    # Then the login fails
    assert_envelope(response, 401, "UNAUTHORIZED")


# --- stores and verifiers ---------------------------------------------------------------------------------


def create_store_with_verifier(api: Any, owner_token: str) -> tuple[str, str, str]:
    store = call(api, "POST", "/v1/admin/stores", {"name": "Main St", "address": "1 Main St"}, bearer(owner_token))
    assert store.status_code == 201, store.json_body
    store_id = store.json_body["store_id"]
    verifier = call(
        api, "POST", f"/v1/admin/stores/{store_id}/verifiers", {"username": "clerk", "password": "clerk-password-1"}, bearer(owner_token)
    )
    assert verifier.status_code == 201, verifier.json_body
    return store_id, "clerk", "clerk-password-1"


def test_verifier_logs_in_and_sees_only_its_store(api: Any, tenant: Tenant) -> None:
    # Given a store of acme with a verifier account
    store_id, username, password = create_store_with_verifier(api, tenant.owner_token)
    # When the verifier logs in
    login = call(api, "POST", "/v1/auth/verifier", {"store_id": store_id, "username": username, "password": password})
    # Then the token is scoped to that store and GET /v1/verifier/store shows it
    assert login.status_code == 200, login.json_body
    assert (login.json_body["store_id"], login.json_body["tenant_id"]) == (store_id, "acme")
    store = call(api, "GET", "/v1/verifier/store", headers=bearer(login.json_body["token"]))
    assert store.status_code == 200, store.json_body
    assert (store.json_body["store_id"], store.json_body["name"], store.json_body["address"]) == (store_id, "Main St", "1 Main St")


def test_stores_are_listed_and_read_by_their_tenant(api: Any, tenant: Tenant) -> None:
    # Given a store of acme
    store_id, _, _ = create_store_with_verifier(api, tenant.owner_token)
    # When the owner lists stores and reads the one store
    listed = call(api, "GET", "/v1/admin/stores", headers=bearer(tenant.owner_token))
    one = call(api, "GET", f"/v1/admin/stores/{store_id}", headers=bearer(tenant.owner_token))
    # Then both show it
    assert [s["store_id"] for s in listed.json_body["items"]] == [store_id]
    assert one.status_code == 200
    assert one.json_body["tenant_id"] == "acme"


@pytest.mark.parametrize(
    ("field", "value"),
    [("password", "wrong-password-1"), ("username", "nobody"), ("store_id", "st_doesnotexist")],
)
def test_failed_verifier_logins_are_401(api: Any, aws: Any, tenant: Tenant, field: str, value: str) -> None:
    # Given a store with a verifier
    store_id, username, password = create_store_with_verifier(api, tenant.owner_token)
    body = {"store_id": store_id, "username": username, "password": password, field: value}
    before = snapshot(aws)
    # When a login has a wrong password, user or store
    response = call(api, "POST", "/v1/auth/verifier", body)
    # Then it is 401 with one message for all, and nothing is written but the account's failure counter (login brake)
    assert_envelope(response, 401, "UNAUTHORIZED")
    assert response.json_body["error"]["message"] == "Wrong store, username or password"
    written = [json.loads(item) for item in snapshot(aws) if item not in before]
    assert [(item["SK"]["S"].startswith("LIMIT#login#verifier#"), item["n"]["N"]) for item in written] == [(True, "1")]


def test_verifier_token_is_refused_on_operator_and_member_routes(api: Any, tenant: Tenant) -> None:
    # Given a logged-in verifier
    store_id, username, password = create_store_with_verifier(api, tenant.owner_token)
    token = call(api, "POST", "/v1/auth/verifier", {"store_id": store_id, "username": username, "password": password}).json_body["token"]
    # When the verifier token is used on admin and member routes
    # Then both are 401
    assert_envelope(call(api, "GET", "/v1/admin/stores", headers=bearer(token)), 401, "UNAUTHORIZED")
    assert_envelope(call(api, "GET", "/v1/me", headers=bearer(token)), 401, "UNAUTHORIZED")


def test_operator_token_is_refused_on_the_verifier_route(api: Any, tenant: Tenant) -> None:
    # Given acme's owner token
    # When it is used on GET /v1/verifier/store
    # Then it is 401
    assert_envelope(call(api, "GET", "/v1/verifier/store", headers=bearer(tenant.owner_token)), 401, "UNAUTHORIZED")


def test_other_tenant_cannot_see_a_store_or_add_a_verifier_to_it(api: Any, aws: Any, tenant: Tenant, globex_token: str) -> None:
    # Given a store of acme
    store_id, _, _ = create_store_with_verifier(api, tenant.owner_token)
    before = snapshot(aws)
    # When globex's owner reads it, lists stores, or adds a verifier to it
    read = call(api, "GET", f"/v1/admin/stores/{store_id}", headers=bearer(globex_token))
    listed = call(api, "GET", "/v1/admin/stores", headers=bearer(globex_token))
    added = call(
        api, "POST", f"/v1/admin/stores/{store_id}/verifiers", {"username": "mole", "password": "mole-password-1"}, bearer(globex_token)
    )
    # Then the store is "not found" for globex, absent from its list, and no verifier was written
    assert_envelope(read, 404, "NOT_FOUND")
    assert listed.json_body["items"] == []
    assert_envelope(added, 404, "NOT_FOUND")
    assert snapshot(aws) == before
    mole = call(api, "POST", "/v1/auth/verifier", {"store_id": store_id, "username": "mole", "password": "mole-password-1"})
    assert_envelope(mole, 401, "UNAUTHORIZED")


def test_verifier_for_an_unknown_store_is_not_found(api: Any, aws: Any, tenant: Tenant) -> None:
    # Given no store st_missing
    before = snapshot(aws)
    # When the owner adds a verifier to it
    response = call(
        api,
        "POST",
        "/v1/admin/stores/st_missing/verifiers",
        {"username": "clerk", "password": "clerk-password-1"},
        bearer(tenant.owner_token),
    )
    # Then it is 404 and nothing is written
    assert_envelope(response, 404, "NOT_FOUND")
    assert snapshot(aws) == before
