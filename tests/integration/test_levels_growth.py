"""M1, M2: the level ladder through the admin API, growth reported by the tenant once per reference."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.core.table import schema
from chalicelib.core.table.cache import config_cache
from tests.conftest import bearer, call, table_items
from tests.support import dumps, login_token, server_headers

GROWTH = "/v1/server/growth"
BRONZE = {"level_id": "bronze", "name": "Bronze", "min_growth": 0, "badge_url": None}
SILVER = {"level_id": "silver", "name": "Silver", "min_growth": 100, "badge_url": "https://cdn.example.com/silver.png"}
GOLD = {"level_id": "gold", "name": "Gold", "min_growth": 500, "badge_url": None}


@dataclass
class World:
    api: Any
    client: Any
    owner: str
    app_id: str
    login_secret: str
    server_key: str

    @property
    def levels(self) -> str:
        return f"/v1/admin/apps/{self.app_id}/levels"


@pytest.fixture
def world(moto_api: tuple[Any, Any]) -> World:
    """Given tenant acme with an owner and one app, on an empty table."""
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
    secrets = created.json_body["secrets"]
    return World(api, client, owner, created.json_body["app"]["app_id"], secrets["login_secret"], secrets["server_key"])


def snapshot(world: World) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client) if "#NONCE#" not in item["PK"]["S"])


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert (error["code"], bool(error["message"]), error["request_id"]) == (code, True, response.headers["X-Request-Id"])
    return dict(error)


def put_ladder(world: World, levels: list[dict[str, Any]], version: int, token: str | None = None) -> Any:
    return call(world.api, "PUT", world.levels, {"levels": levels, "version": version}, bearer(token or world.owner))


def member(world: World, openid: str | None = None) -> tuple[str, str]:
    openid = openid or f"o-{uuid.uuid4().hex[:10]}"
    body = {"app_id": world.app_id, "login_token": login_token(world.login_secret, openid), "device_id": "d"}
    response = call(world.api, "POST", "/v1/auth/member", body)
    assert response.status_code == 200, response.json_body
    return openid, str(response.json_body["token"])


def me(world: World, token: str) -> dict[str, Any]:
    response = call(world.api, "GET", "/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def report_growth(world: World, openid: str, task_id: str, reference: str) -> Any:
    raw = dumps({"openid": openid, "task_id": task_id, "reference": reference})
    return call(world.api, "POST", GROWTH, raw=raw, headers=server_headers(world.app_id, world.server_key, "POST", GROWTH, raw))


def growth_task(world: World, growth: int, **fields: Any) -> str:
    body = {"task": {"template": "add_friend", "title": "Member task", "points": 0, "config_id": "c1", "growth": growth, **fields}}
    response = call(world.api, "POST", f"/v1/admin/apps/{world.app_id}/tasks", body, bearer(world.owner))
    assert response.status_code == 201, response.json_body
    return str(response.json_body["task_id"])


# --- the ladder -----------------------------------------------------------------------------------


def test_an_empty_app_has_an_empty_ladder_at_version_0(world: World) -> None:
    response = call(world.api, "GET", world.levels, headers=bearer(world.owner))
    assert response.json_body == {"levels": [], "version": 0}


def test_a_ladder_is_replaced_with_the_version_read(world: World) -> None:
    # When the owner puts a ladder for the first time (version 0)
    first = put_ladder(world, [BRONZE, SILVER], 0)
    # Then it is stored at version 1
    assert first.status_code == 200, first.json_body
    assert first.json_body == {"levels": [BRONZE, SILVER], "version": 1}
    # When it is replaced with version 1
    second = put_ladder(world, [BRONZE, SILVER, GOLD], 1)
    assert second.json_body["version"] == 2
    assert call(world.api, "GET", world.levels, headers=bearer(world.owner)).json_body == {"levels": [BRONZE, SILVER, GOLD], "version": 2}


def test_a_stale_version_is_a_conflict_and_changes_nothing(world: World) -> None:
    assert put_ladder(world, [BRONZE, SILVER], 0).status_code == 200
    before = snapshot(world)
    # Someone who read no ladder (version 0) or version 5 is behind
    assert_envelope(put_ladder(world, [GOLD], 0), 409, "CONFLICT")
    assert_envelope(put_ladder(world, [GOLD], 5), 409, "CONFLICT")
    assert snapshot(world) == before


NOT_INCREASING = [
    ("decreasing", [SILVER, BRONZE]),
    ("equal minimums", [BRONZE, {**SILVER, "min_growth": 0}]),
    ("a dip in the middle", [BRONZE, GOLD, SILVER]),
    ("duplicate ids", [BRONZE, {**SILVER, "level_id": "bronze"}]),
    ("negative growth", [{**BRONZE, "min_growth": -1}]),
    ("bad id", [{**BRONZE, "level_id": "bronze level"}]),
    ("growth as a string", [{**BRONZE, "min_growth": "0"}]),
    ("unknown field", [{**BRONZE, "color": "brown"}]),
]


def test_a_ladder_that_is_not_strictly_increasing_is_400(world: World) -> None:
    assert put_ladder(world, [BRONZE], 0).status_code == 200
    before = snapshot(world)
    for case, levels in NOT_INCREASING:
        response = put_ladder(world, levels, 1)
        assert response.status_code == 400, (case, response.json_body)
        assert_envelope(response, 400, "VALIDATION_FAILED")
    assert snapshot(world) == before


def test_adding_a_level_slots_it_in_by_growth(world: World) -> None:
    assert put_ladder(world, [BRONZE, GOLD], 0).status_code == 200
    # When silver is added
    added = call(world.api, "POST", world.levels, SILVER, bearer(world.owner))
    # Then it sits between bronze and gold, at the next version
    assert added.status_code == 201, added.json_body
    assert added.json_body == {"levels": [BRONZE, SILVER, GOLD], "version": 2}
    before = snapshot(world)
    # And a level with an existing id or an existing minimum is refused
    assert_envelope(call(world.api, "POST", world.levels, {**SILVER, "min_growth": 200}, bearer(world.owner)), 400, "VALIDATION_FAILED")
    clash = call(world.api, "POST", world.levels, {"level_id": "platinum", "name": "P", "min_growth": 500}, bearer(world.owner))
    assert_envelope(clash, 400, "VALIDATION_FAILED")
    assert snapshot(world) == before


def test_adding_to_an_app_without_a_ladder_creates_it(world: World) -> None:
    added = call(world.api, "POST", world.levels, SILVER, bearer(world.owner))
    assert added.status_code == 201, added.json_body
    assert added.json_body == {"levels": [SILVER], "version": 1}


def test_deleting_a_level(world: World) -> None:
    assert put_ladder(world, [BRONZE, SILVER, GOLD], 0).status_code == 200
    removed = call(world.api, "DELETE", f"{world.levels}/silver", headers=bearer(world.owner))
    assert removed.status_code == 200, removed.json_body
    assert removed.json_body == {"levels": [BRONZE, GOLD], "version": 2}
    assert_envelope(call(world.api, "DELETE", f"{world.levels}/silver", headers=bearer(world.owner)), 404, "NOT_FOUND")


def test_a_viewer_reads_the_ladder_but_cannot_change_it(world: World) -> None:
    assert put_ladder(world, [BRONZE], 0).status_code == 200
    body = {"username": "vera", "password": "viewer-password-1", "role": "viewer"}
    assert call(world.api, "POST", "/v1/admin/operators", body, bearer(world.owner)).status_code == 201
    login = {"tenant_id": "acme", "username": "vera", "password": "viewer-password-1"}
    viewer = call(world.api, "POST", "/v1/auth/operator", login).json_body["token"]
    before = snapshot(world)
    assert call(world.api, "GET", world.levels, headers=bearer(viewer)).json_body["levels"] == [BRONZE]
    assert_envelope(put_ladder(world, [BRONZE, SILVER], 1, viewer), 403, "FORBIDDEN")
    assert_envelope(call(world.api, "POST", world.levels, SILVER, bearer(viewer)), 403, "FORBIDDEN")
    assert_envelope(call(world.api, "DELETE", f"{world.levels}/bronze", headers=bearer(viewer)), 403, "FORBIDDEN")
    assert snapshot(world) == before


# --- growth ---------------------------------------------------------------------------------------


def test_growth_is_added_once_per_reference_and_the_level_follows(world: World) -> None:
    assert put_ladder(world, [BRONZE, SILVER, GOLD], 0).status_code == 200
    task_id = growth_task(world, 60)
    openid, token = member(world)
    profile = me(world, token)
    assert (profile["growth"], profile["level"], profile["next_level"]) == (0, BRONZE, SILVER)
    # When the tenant reports one completion
    first = report_growth(world, openid, task_id, "done-1")
    assert first.status_code == 200, first.json_body
    assert first.json_body == {"applied": True, "entry": None, "balance": 0, "growth": 60, "level": BRONZE}
    # And the same completion again
    again = report_growth(world, openid, task_id, "done-1")
    assert again.status_code == 200, again.json_body
    # Then nothing is applied and the answer shows the member's real growth and level
    assert (again.json_body["applied"], again.json_body["growth"], again.json_body["level"]) == (False, 60, BRONZE)
    # And a second completion
    second = report_growth(world, openid, task_id, "done-2")
    assert second.json_body == {"applied": True, "entry": None, "balance": 0, "growth": 120, "level": SILVER}
    # Then the member sees 120 growth, silver, with gold next
    profile = me(world, token)
    assert (profile["growth"], profile["level"], profile["next_level"]) == (120, SILVER, GOLD)
    # And points are untouched (a member task gives growth, not points)
    assert profile["balance"] == 0


def test_growth_reaching_the_top_has_no_next_level(world: World) -> None:
    assert put_ladder(world, [BRONZE, SILVER, GOLD], 0).status_code == 200
    task_id = growth_task(world, 500)
    openid, token = member(world)
    assert report_growth(world, openid, task_id, "big").json_body["level"] == GOLD
    profile = me(world, token)
    assert (profile["growth"], profile["level"], profile["next_level"]) == (500, GOLD, None)


def test_the_level_shown_follows_a_changed_ladder(world: World) -> None:
    assert put_ladder(world, [BRONZE, SILVER], 0).status_code == 200
    task_id = growth_task(world, 150)
    openid, token = member(world)
    assert report_growth(world, openid, task_id, "r1").status_code == 200
    assert me(world, token)["level"] == SILVER
    # When silver is raised to 200
    assert put_ladder(world, [BRONZE, {**SILVER, "min_growth": 200}], 1).status_code == 200
    # Then the member is bronze again
    assert me(world, token)["level"] == BRONZE


def test_the_same_reference_for_another_task_or_member_is_a_mismatch(world: World) -> None:
    first_task, other_task = growth_task(world, 10), growth_task(world, 20)
    openid, token = member(world)
    other, _ = member(world)
    assert report_growth(world, openid, first_task, "ref-x").json_body["applied"] is True
    before = snapshot(world)
    assert_envelope(report_growth(world, openid, other_task, "ref-x"), 409, "IDEMPOTENCY_MISMATCH")
    assert_envelope(report_growth(world, other, first_task, "ref-x"), 409, "IDEMPOTENCY_MISMATCH")
    assert snapshot(world) == before
    assert me(world, token)["growth"] == 10


def test_growth_reports_that_cannot_apply_write_nothing(world: World) -> None:
    no_growth = growth_task(world, 0)
    with_growth = growth_task(world, 10)
    openid, _ = member(world)
    before = snapshot(world)
    assert_envelope(report_growth(world, openid, no_growth, "g0"), 400, "VALIDATION_FAILED")
    assert_envelope(report_growth(world, openid, "task_unknown", "g1"), 404, "NOT_FOUND")
    assert_envelope(report_growth(world, "nobody", with_growth, "g2"), 404, "NOT_FOUND")
    assert_envelope(report_growth(world, openid, with_growth, "has space"), 400, "VALIDATION_FAILED")
    assert snapshot(world) == before


def test_a_growth_report_signed_with_a_wrong_key_is_401(world: World) -> None:
    task_id = growth_task(world, 10)
    openid, token = member(world)
    raw = dumps({"openid": openid, "task_id": task_id, "reference": "r"})
    headers = server_headers(world.app_id, "not-the-key", "POST", GROWTH, raw)
    before = sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client))
    assert_envelope(call(world.api, "POST", GROWTH, raw=raw, headers=headers), 401, "UNAUTHORIZED")
    assert sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client)) == before
    assert me(world, token)["growth"] == 0
