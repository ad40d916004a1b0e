"""Issue 9, items 0-2: no write the reader rejects, PATCH changes only what it was sent, integration URLs are the owner's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.core import observability
from tests.conftest import Tenant, bearer, call
from tests.support_mall import admin, allocate, create_goods, list_item, member_token


def app_path(tenant: Tenant) -> str:
    return f"/v1/admin/apps/{tenant.app_id}"


def read_app(api: Any, tenant: Tenant) -> dict[str, Any]:
    response = admin(api, tenant, "GET", app_path(tenant))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def operator_token(api: Any, tenant: Tenant, role: str = "operator") -> str:
    created = admin(api, tenant, "POST", "/v1/admin/operators", {"username": f"op-{role}", "password": "operator-password-1", "role": role})
    assert created.status_code == 201, created.json_body
    login = call(
        api, "POST", "/v1/auth/operator", {"tenant_id": tenant.tenant_id, "username": f"op-{role}", "password": "operator-password-1"}
    )
    assert login.status_code == 200, login.json_body
    return str(login.json_body["token"])


# --- item 0: a write the reader rejects is refused, nothing written ----------------------------------


@pytest.mark.parametrize("field", ["name", "points_rate", "time_zone", "expiry_policy", "login_mode"])
def test_an_app_patch_with_null_is_refused_and_the_app_stays_usable(api: Any, tenant: Tenant, field: str) -> None:
    # Given an app at version 1
    before = read_app(api, tenant)
    # When an operator sends null for a field the app cannot hold null in
    response = admin(api, tenant, "PATCH", app_path(tenant), {field: None, "version": 1})
    # Then it is a 400 in the error envelope, and the app, the app list, member login and later PATCHes still work
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["code"] == "VALIDATION_FAILED"
    assert read_app(api, tenant) == before
    assert admin(api, tenant, "GET", "/v1/admin/apps").status_code == 200
    member_token(api, tenant, "alice")
    assert admin(api, tenant, "PATCH", app_path(tenant), {"name": "Renamed", "version": 1}).status_code == 200


def test_the_published_schema_does_not_offer_null_where_the_app_cannot_hold_it(api: Any) -> None:
    # Given the served OpenAPI document
    schema = call(api, "GET", "/v1/openapi.json").json_body["components"]["schemas"]["UpdateAppRequest"]["properties"]
    # Then the fields an app always has are not nullable, those it may lack are
    for name in ("name", "points_rate", "time_zone", "expiry_policy", "login_mode"):
        assert "null" not in str(schema[name]), name
    for name in ("daily_earn_cap", "login_callback_url", "reminder_webhook_url"):
        assert "null" in str(schema[name]), name


@pytest.mark.parametrize(("total", "add"), [(10_000_000, 1), (50, 9_999_999)])
def test_stock_past_the_maximum_is_refused_and_the_goods_stay_readable(api: Any, tenant: Tenant, total: int, add: int) -> None:
    # Given goods with this total
    goods = create_goods(api, tenant, total=total)
    # When an operator adds more than the maximum total allows
    response = admin(api, tenant, "POST", f"/v1/admin/goods/{goods['goods_id']}/stock", {"add": add})
    # Then it is refused with a 4xx, and the goods and the goods list read back unchanged
    assert 400 <= response.status_code < 500, response.json_body
    assert "error" in response.json_body
    after = admin(api, tenant, "GET", f"/v1/admin/goods/{goods['goods_id']}")
    assert after.status_code == 200 and after.json_body["total"] == total
    assert admin(api, tenant, "GET", "/v1/admin/goods").status_code == 200


def test_stock_up_to_the_maximum_is_accepted(api: Any, tenant: Tenant) -> None:
    # Given goods of 50
    goods = create_goods(api, tenant, total=50)
    # When an operator adds exactly up to the maximum
    response = admin(api, tenant, "POST", f"/v1/admin/goods/{goods['goods_id']}/stock", {"add": 9_999_950})
    # Then it is accepted
    assert response.status_code == 200, response.json_body
    assert response.json_body["total"] == 10_000_000


# --- item 1: PATCH changes only the fields sent -----------------------------------------------------


def test_a_listing_patch_changes_only_the_price_sent(api: Any, tenant: Tenant) -> None:
    # Given a points + cash listing with a sale end, a strike price, delivery days and a max per order
    goods = create_goods(api, tenant, total=20)
    allocation = allocate(api, tenant, goods["goods_id"], 10)
    listing = list_item(
        api,
        tenant,
        allocation["allocation_id"],
        price_points=100,
        price_fen=500,
        max_per_order=3,
        sale_ends_at="2099-01-01T00:00:00Z",
        strike_points=150,
        delivery_days=7,
    )
    # When an operator patches only the points price
    path = f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}"
    response = admin(api, tenant, "PATCH", path, {"expected_version": 1, "price_points": 80})
    # Then only the points price changed
    assert response.status_code == 200, response.json_body
    after = admin(api, tenant, "GET", path).json_body
    unchanged = ("price_fen", "max_per_order", "sale_ends_at", "strike_points", "delivery_days", "title")
    assert {k: after[k] for k in unchanged} == {k: listing[k] for k in unchanged}
    assert after["price_points"] == 80


def test_a_listing_patch_with_null_clears_only_a_nullable_field(api: Any, tenant: Tenant) -> None:
    # Given a listing with a strike price
    goods = create_goods(api, tenant, total=20)
    listing = list_item(api, tenant, allocate(api, tenant, goods["goods_id"], 10)["allocation_id"], strike_points=150)
    path = f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}"
    # When an operator sends null for a non-nullable field, then for the strike price
    refused = admin(api, tenant, "PATCH", path, {"expected_version": 1, "price_points": None})
    cleared = admin(api, tenant, "PATCH", path, {"expected_version": 1, "strike_points": None})
    # Then the first is a 400 (nothing written), the second clears only the strike price
    assert refused.status_code == 400, refused.json_body
    assert cleared.status_code == 200, cleared.json_body
    assert (cleared.json_body["strike_points"], cleared.json_body["price_points"]) == (None, 100)


def test_a_listing_patch_that_leaves_no_price_is_refused(api: Any, tenant: Tenant) -> None:
    # Given a points-only listing
    goods = create_goods(api, tenant, total=20)
    listing = list_item(api, tenant, allocate(api, tenant, goods["goods_id"], 10)["allocation_id"])
    path = f"/v1/admin/apps/{tenant.app_id}/listings/{listing['listing_id']}"
    # When an operator sets its points price to 0 (no cash price either)
    response = admin(api, tenant, "PATCH", path, {"expected_version": 1, "price_points": 0})
    # Then it is a 400 and the listing is unchanged
    assert response.status_code == 400, response.json_body
    assert admin(api, tenant, "GET", path).json_body == listing


def test_an_allocation_patch_changes_only_the_fields_sent_and_merges_limits(api: Any, tenant: Tenant) -> None:
    # Given an allocation with a member day limit of 1
    goods = create_goods(api, tenant, total=20)
    allocation = allocate(api, tenant, goods["goods_id"], 10, member_limits={"day": 1}, total_out_limit=8)
    path = f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation['allocation_id']}"
    # When an operator patches only `online`, then only the member week limit
    first = admin(api, tenant, "PATCH", path, {"expected_version": 1, "online": False})
    second = admin(api, tenant, "PATCH", path, {"expected_version": 2, "member_limits": {"week": 3}})
    # Then nothing else changed: the day limit stays 1, the week limit is merged in beside it
    assert first.status_code == 200, first.json_body
    assert second.status_code == 200, second.json_body
    after = second.json_body
    assert after["online"] is False and after["total_out_limit"] == 8
    assert after["member_limits"] == {**allocation["member_limits"], "day": 1, "week": 3}


def test_an_allocation_patch_that_inverts_the_window_is_refused(api: Any, tenant: Tenant) -> None:
    # Given an allocation valid until 2030
    goods = create_goods(api, tenant, total=20)
    allocation = allocate(api, tenant, goods["goods_id"], 10, valid_to="2030-01-01T00:00:00Z")
    path = f"/v1/admin/apps/{tenant.app_id}/allocations/{allocation['allocation_id']}"
    # When an operator moves its start past its end
    response = admin(api, tenant, "PATCH", path, {"expected_version": 1, "valid_from": "2031-01-01T00:00:00Z"})
    # Then it is a 400 and the allocation is unchanged
    assert response.status_code == 400, response.json_body
    assert admin(api, tenant, "GET", path).json_body["version"] == 1


def test_a_goods_patch_changes_only_the_name(api: Any, tenant: Tenant) -> None:
    # Given goods with tags, notes and a description
    goods = create_goods(api, tenant, tags=["mug", "gift"], notes="from supplier A", description="A mug")
    path = f"/v1/admin/goods/{goods['goods_id']}"
    # When an operator patches only the name
    response = admin(api, tenant, "PATCH", path, {"expected_version": 1, "name": "Big mug"})
    # Then only the name changed
    assert response.status_code == 200, response.json_body
    assert {k: response.json_body[k] for k in ("tags", "notes", "description", "name")} == {
        "tags": ["mug", "gift"],
        "notes": "from supplier A",
        "description": "A mug",
        "name": "Big mug",
    }


def test_a_goods_patch_with_null_tags_is_refused(api: Any, tenant: Tenant) -> None:
    # Given goods with tags
    goods = create_goods(api, tenant, tags=["mug"])
    # When an operator sends null tags (tags are a list, never null)
    response = admin(api, tenant, "PATCH", f"/v1/admin/goods/{goods['goods_id']}", {"expected_version": 1, "tags": None})
    # Then it is a 400 and the goods are unchanged
    assert response.status_code == 400, response.json_body
    assert admin(api, tenant, "GET", f"/v1/admin/goods/{goods['goods_id']}").json_body == goods


def test_an_app_patch_changes_only_the_fields_sent(api: Any, tenant: Tenant) -> None:
    # Given an app with a daily cap and a rolling expiry
    assert (
        admin(
            api,
            tenant,
            "PATCH",
            app_path(tenant),
            {"daily_earn_cap": 500, "expiry_policy": {"type": "rolling_days", "n": 30}, "version": 1},
        ).status_code
        == 200
    )
    before = read_app(api, tenant)
    # When an operator patches only the name
    response = admin(api, tenant, "PATCH", app_path(tenant), {"name": "Only the name", "version": 2})
    # Then nothing else changed
    assert response.status_code == 200, response.json_body
    after = read_app(api, tenant)
    same = ("points_rate", "time_zone", "expiry_policy", "daily_earn_cap", "login_mode", "login_callback_url")
    assert {k: after[k] for k in same} == {k: before[k] for k in same}


# --- item 2: integration URLs are the owner's, and audited ------------------------------------------


@pytest.mark.parametrize("field", ["login_callback_url", "reminder_webhook_url"])
def test_an_operator_may_not_change_where_logins_and_reminders_go(api: Any, tenant: Tenant, field: str) -> None:
    # Given an operator (not the owner) of the tenant
    token = operator_token(api, tenant)
    # When the operator points the app's integration URL at a host they control
    response = call(api, "PATCH", app_path(tenant), {field: "https://attacker.example/cb", "version": 1}, bearer(token))
    # Then it is a 403 FORBIDDEN and the app is unchanged; other fields are still the operator's to change
    assert response.status_code == 403, response.json_body
    assert response.json_body["error"]["code"] == "FORBIDDEN"
    assert read_app(api, tenant)[field] is None
    assert call(api, "PATCH", app_path(tenant), {"name": "By operator", "version": 1}, bearer(token)).status_code == 200


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The structured fields of what the Powertools logger logs, at INFO for the test."""
    logger = observability.logger()
    level = logger.log_level
    logger.setLevel("INFO")

    def lines() -> list[dict[str, Any]]:
        return [{"message": record.getMessage(), **record.__dict__} for record in caplog.records]

    yield lines
    logger.setLevel(level)


def test_the_owner_changes_the_reminder_url_and_it_is_audited(
    api: Any, tenant: Tenant, info_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given the tenant's owner
    # When the owner sets the reminder webhook URL
    response = admin(api, tenant, "PATCH", app_path(tenant), {"reminder_webhook_url": "https://hooks.acme.example/r", "version": 1})
    # Then it is saved, and one structured audit line names who, which app, which field and the hosts
    assert response.status_code == 200, response.json_body
    records = [line for line in info_logs() if line.get("message") == "app_integration_changed"]
    assert len(records) == 1
    line = records[0]
    assert (line["by"], line["app_id"], line["field"], line.get("old_host"), line["new_host"]) == (
        "owner",
        tenant.app_id,
        "reminder_webhook_url",
        None,
        "hooks.acme.example",
    )
