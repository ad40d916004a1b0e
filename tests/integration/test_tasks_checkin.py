"""K1-K3: task admin, the member's task list and completions, check-in and streaks, hooks, birthday, invites."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest

from chalicelib.core.clock import FixedClock
from chalicelib.core.errors import AlreadyDone
from chalicelib.core.ids import invite_code_for, member_id_for
from chalicelib.core.table import keys, schema
from chalicelib.core.table.cache import config_cache
from chalicelib.points.store.points import PointsRepo
from chalicelib.tasks import tasks
from chalicelib.tenancy.models import App
from chalicelib.tenancy.store.apps import AppsRepo
from tests.conftest import bearer, call, table_items
from tests.support import login_token

CHECKIN = {
    "template": "daily_checkin",
    "title": "Check in",
    "points": 10,
    "bonuses": [{"streak": 3, "points": 20}, {"streak": 5, "points": 50}],
}

EVERY_TEMPLATE = [
    CHECKIN,
    {"template": "consumption", "title": "Shop", "step_fen": 100, "points_per_step": 1, "per_order_cap": 99, "product_ids": ["p1"]},
    {"template": "upload_receipt", "title": "Receipt", "points": 30, "max_images": 5},
    {"template": "join_draw", "title": "Play", "points": 3, "activity_id": "act_1"},
    {"template": "mall_exchange", "title": "Exchange", "points": 4, "listing_id": None},
    {"template": "browse_page", "title": "Browse", "points": 5, "url": "https://example.com/page", "min_seconds": 15},
    {"template": "watch_ad", "title": "Ad", "points": 2, "ad_unit": "unit-1", "completions_per_cycle": 5},
    {"template": "birthday", "title": "Birthday", "points": 88},
    {
        "template": "festival",
        "title": "Spring Festival",
        "points": 66,
        "starts_at": "2027-02-05T16:00:00Z",
        "ends_at": "2027-02-12T16:00:00Z",
    },
    {"template": "add_friend", "title": "Add friend", "points": 2, "config_id": "wx-friend-1"},
    {"template": "join_group", "title": "Join group", "points": 2, "config_id": "group-9"},
    {"template": "invite", "title": "Invite", "points": 50},
]

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class World:
    api: Any
    client: Any
    owner: str
    app_id: str
    login_secret: str

    def app(self) -> App:
        found = AppsRepo().get(self.app_id)
        assert found is not None
        return found


@pytest.fixture
def world(moto_api: tuple[Any, Any]) -> World:
    """Given tenant acme with an owner and one app (Asia/Shanghai, never-expiring points, no daily cap)."""
    from chalicelib.tenancy import accounts

    api, client = moto_api
    table = os.environ["JIFEN_TABLE"]
    if table in client.list_tables()["TableNames"]:
        client.delete_table(TableName=table)
    schema.create_table(client, table)
    config_cache().clear()
    accounts.create_tenant("acme", "Acme", "owner", "owner-password-1")
    login = call(api, "POST", "/v1/auth/operator", {"tenant_id": "acme", "username": "owner", "password": "owner-password-1"})
    owner = login.json_body["token"]
    created = call(api, "POST", "/v1/admin/apps", {"name": "Acme", "points_rate": 100, "time_zone": "Asia/Shanghai"}, bearer(owner))
    assert created.status_code == 201, created.json_body
    return World(api, client, owner, created.json_body["app"]["app_id"], created.json_body["secrets"]["login_secret"])


def create_task(world: World, definition: dict[str, Any]) -> dict[str, Any]:
    response = call(world.api, "POST", f"/v1/admin/apps/{world.app_id}/tasks", {"task": definition}, bearer(world.owner))
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def login(world: World, openid: str, **claims: Any) -> Any:
    token = login_token(world.login_secret, openid, **claims)
    return call(world.api, "POST", "/v1/auth/member", {"app_id": world.app_id, "login_token": token, "device_id": "dev-1"})


def member(world: World, openid: str | None = None, **claims: Any) -> tuple[str, str]:
    """(member id, member token) of a member who just logged in."""
    openid = openid or f"o-{uuid.uuid4().hex[:10]}"
    response = login(world, openid, **claims)
    assert response.status_code == 200, response.json_body
    return member_id_for(world.app_id, openid), str(response.json_body["token"])


def me(world: World, token: str) -> dict[str, Any]:
    response = call(world.api, "GET", "/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def ledger(world: World, token: str) -> list[dict[str, Any]]:
    response = call(world.api, "GET", "/v1/me/ledger?limit=100", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return list(response.json_body["items"])


def snapshot(world: World) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in table_items(world.client))


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.json_body
    error = response.json_body["error"]
    assert (error["code"], bool(error["message"]), error["request_id"]) == (code, True, response.headers["X-Request-Id"])
    return dict(error)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def balance(member_id: str, world: World) -> int:
    profile = PointsRepo().get_profile(world.app_id, member_id)
    assert profile is not None
    return profile.balance


# --- admin: task CRUD -----------------------------------------------------------------------------


def test_an_operator_creates_every_template_and_reads_them_back(world: World) -> None:
    # When the owner creates one task of every K2 template
    created = [create_task(world, definition) for definition in EVERY_TEMPLATE]
    # Then each is version 1 with the definition as sent (defaults filled in)
    for sent, task in zip(EVERY_TEMPLATE, created, strict=True):
        assert task["version"] == 1 and task["task_id"].startswith("task_")
        assert {k: task["definition"][k] for k in sent if k not in ("starts_at", "ends_at")} == {
            k: v for k, v in sent.items() if k not in ("starts_at", "ends_at")
        }
    by_template = {task["definition"]["template"]: task for task in created}
    assert by_template["birthday"]["definition"]["cycle"] == {"unit": "year", "n": 1}
    assert by_template["invite"]["definition"]["cycle"] == {"unit": "once", "n": 1}
    assert by_template["invite"]["definition"]["completions_per_cycle"] == 1000
    assert by_template["daily_checkin"]["definition"]["cycle"] == {"unit": "day", "n": 1}
    # And the list holds exactly these tasks, and each can be read alone
    listed = call(world.api, "GET", f"/v1/admin/apps/{world.app_id}/tasks", headers=bearer(world.owner))
    assert listed.status_code == 200
    assert sorted(t["task_id"] for t in listed.json_body["items"]) == sorted(t["task_id"] for t in created)
    one = call(world.api, "GET", f"/v1/admin/apps/{world.app_id}/tasks/{created[3]['task_id']}", headers=bearer(world.owner))
    assert one.json_body == created[3]


def test_deleting_a_task_removes_it(world: World) -> None:
    task = create_task(world, EVERY_TEMPLATE[5])
    path = f"/v1/admin/apps/{world.app_id}/tasks/{task['task_id']}"
    assert call(world.api, "DELETE", path, headers=bearer(world.owner)).json_body == {"deleted": True}
    assert_envelope(call(world.api, "GET", path, headers=bearer(world.owner)), 404, "NOT_FOUND")
    assert_envelope(call(world.api, "DELETE", path, headers=bearer(world.owner)), 404, "NOT_FOUND")


INVALID_TASKS = [
    ("festival without a window", {"template": "festival", "title": "F", "points": 1}),
    ("festival with an end before its start", {**EVERY_TEMPLATE[8], "ends_at": "2027-02-01T00:00:00Z"}),
    ("consumption without a step", {"template": "consumption", "title": "S", "points_per_step": 1}),
    ("unknown template", {"template": "lottery", "title": "L", "points": 1}),
    ("no template", {"title": "L", "points": 1}),
    ("negative points", {"template": "browse_page", "title": "B", "points": -1, "url": "https://x"}),
    ("points as a string", {"template": "browse_page", "title": "B", "points": "5", "url": "https://x"}),
    ("unknown field", {"template": "browse_page", "title": "B", "points": 1, "url": "https://x", "bonus": 1}),
    ("cycle of weeks", {"template": "browse_page", "title": "B", "points": 1, "url": "https://x", "cycle": {"unit": "week", "n": 1}}),
    ("cycle of zero days", {"template": "browse_page", "title": "B", "points": 1, "url": "https://x", "cycle": {"unit": "day", "n": 0}}),
    ("zero completions", {"template": "browse_page", "title": "B", "points": 1, "url": "https://x", "completions_per_cycle": 0}),
    ("join draw without an activity", {"template": "join_draw", "title": "D", "points": 1}),
    ("add friend without a config id", {"template": "add_friend", "title": "F", "points": 1}),
    ("a naive start time", {"template": "browse_page", "title": "B", "points": 1, "url": "https://x", "starts_at": "2027-01-01T00:00:00"}),
    ("two bonuses for one streak", {**CHECKIN, "bonuses": [{"streak": 3, "points": 1}, {"streak": 3, "points": 2}]}),
]


def test_invalid_task_bodies_are_400_and_nothing_is_written(world: World) -> None:
    before = snapshot(world)
    for case, definition in INVALID_TASKS:
        response = call(world.api, "POST", f"/v1/admin/apps/{world.app_id}/tasks", {"task": definition}, bearer(world.owner))
        assert response.status_code == 400, (case, response.json_body)
        assert_envelope(response, 400, "VALIDATION_FAILED")
        assert response.json_body["error"]["details"], case
    assert snapshot(world) == before


def test_replacing_a_task_is_optimistic_and_keeps_its_template(world: World) -> None:
    task = create_task(world, EVERY_TEMPLATE[5])
    path = f"/v1/admin/apps/{world.app_id}/tasks/{task['task_id']}"
    changed = {**EVERY_TEMPLATE[5], "points": 9}
    # When the operator replaces it with the version read
    ok = call(world.api, "PUT", path, {"task": changed, "version": 1}, bearer(world.owner))
    # Then it is version 2 with the change
    assert ok.status_code == 200, ok.json_body
    assert (ok.json_body["version"], ok.json_body["definition"]["points"]) == (2, 9)
    before = snapshot(world)
    # When someone sends the stale version 1
    stale = call(world.api, "PUT", path, {"task": {**changed, "points": 1}, "version": 1}, bearer(world.owner))
    # Then 409 CONFLICT
    assert_envelope(stale, 409, "CONFLICT")
    # When the template is changed
    other = call(world.api, "PUT", path, {"task": {**EVERY_TEMPLATE[9]}, "version": 2}, bearer(world.owner))
    # Then 400: a task's template is fixed
    error = assert_envelope(other, 400, "VALIDATION_FAILED")
    assert error["details"] == [{"field": "task.template", "problem": "fixed once created"}]
    # And nothing changed
    assert snapshot(world) == before
    unknown = call(world.api, "PUT", f"/v1/admin/apps/{world.app_id}/tasks/task_nope", {"task": changed, "version": 1}, bearer(world.owner))
    assert_envelope(unknown, 404, "NOT_FOUND")


def test_a_viewer_reads_tasks_but_cannot_change_them(world: World) -> None:
    task = create_task(world, EVERY_TEMPLATE[5])
    created = call(
        world.api,
        "POST",
        "/v1/admin/operators",
        {"username": "vera", "password": "viewer-password-1", "role": "viewer"},
        bearer(world.owner),
    )
    assert created.status_code == 201, created.json_body
    token = call(
        world.api, "POST", "/v1/auth/operator", {"tenant_id": "acme", "username": "vera", "password": "viewer-password-1"}
    ).json_body["token"]
    before = snapshot(world)
    path = f"/v1/admin/apps/{world.app_id}/tasks"
    assert call(world.api, "GET", path, headers=bearer(token)).status_code == 200
    assert_envelope(call(world.api, "POST", path, {"task": EVERY_TEMPLATE[6]}, bearer(token)), 403, "FORBIDDEN")
    assert_envelope(
        call(world.api, "PUT", f"{path}/{task['task_id']}", {"task": EVERY_TEMPLATE[5], "version": 1}, bearer(token)), 403, "FORBIDDEN"
    )
    assert_envelope(call(world.api, "DELETE", f"{path}/{task['task_id']}", headers=bearer(token)), 403, "FORBIDDEN")
    assert snapshot(world) == before


# --- member: list and complete ----------------------------------------------------------------------


def test_the_task_list_shows_live_tasks_with_my_progress(world: World) -> None:
    browse = create_task(world, {**EVERY_TEMPLATE[5], "completions_per_cycle": 2, "sort_weight": 10})
    friend = create_task(world, EVERY_TEMPLATE[9])
    create_task(world, {**EVERY_TEMPLATE[6], "online": False})  # offline: not listed
    create_task(world, EVERY_TEMPLATE[8])  # festival in Feb 2027: not live now
    _, token = member(world)
    path = f"/v1/tasks/{browse['task_id']}/completions"
    # When the member completes the browse task once
    done = call(world.api, "POST", path, headers=bearer(token))
    assert done.status_code == 200, done.json_body
    # Then the list shows it 1 of 2 done, the friend task 0 of 1, in sort order, with client details
    items = call(world.api, "GET", "/v1/tasks", headers=bearer(token)).json_body["items"]
    assert [(t["task_id"], t["done"], t["completions_per_cycle"]) for t in items] == [
        (browse["task_id"], 1, 2),
        (friend["task_id"], 0, 1),
    ]
    assert items[0]["details"] == {"url": "https://example.com/page", "min_seconds": 15, "starts_at": None, "ends_at": None}
    assert items[0]["period"].startswith("d1-")
    # And another member's progress is their own
    _, other = member(world)
    assert [t["done"] for t in call(world.api, "GET", "/v1/tasks", headers=bearer(other)).json_body["items"]] == [0, 0]


def test_completing_a_self_reported_task_credits_until_the_cycle_limit(world: World) -> None:
    browse = create_task(world, {**EVERY_TEMPLATE[5], "completions_per_cycle": 2})
    _, token = member(world)
    path = f"/v1/tasks/{browse['task_id']}/completions"
    first = call(world.api, "POST", path, headers=bearer(token))
    second = call(world.api, "POST", path, headers=bearer(token))
    assert [(r.status_code, r.json_body["applied"], r.json_body["points"], r.json_body["balance"]) for r in (first, second)] == [
        (200, True, 5, 5),
        (200, True, 5, 10),
    ]
    assert first.json_body["entry"]["kind"] == "task"
    before = snapshot(world)
    # When the member tries a third time in the same day
    third = call(world.api, "POST", path, headers=bearer(token))
    # Then 409 LIMIT_REACHED and nothing is written
    assert_envelope(third, 409, "LIMIT_REACHED")
    assert snapshot(world) == before
    assert me(world, token)["balance"] == 10


def test_tasks_jifen_completes_itself_cannot_be_self_reported(world: World) -> None:
    shop = create_task(world, EVERY_TEMPLATE[1])
    checkin = create_task(world, CHECKIN)
    _, token = member(world)
    before = snapshot(world)
    for task in (shop, checkin):
        response = call(world.api, "POST", f"/v1/tasks/{task['task_id']}/completions", headers=bearer(token))
        assert_envelope(response, 400, "VALIDATION_FAILED")
    assert_envelope(call(world.api, "POST", "/v1/tasks/task_unknown/completions", headers=bearer(token)), 404, "NOT_FOUND")
    assert snapshot(world) == before


def test_an_offline_or_out_of_window_task_is_not_on_sale(world: World) -> None:
    offline = create_task(world, {**EVERY_TEMPLATE[9], "online": False})
    festival = create_task(world, EVERY_TEMPLATE[8])
    _, token = member(world)
    before = snapshot(world)
    for task in (offline, festival):
        assert_envelope(call(world.api, "POST", f"/v1/tasks/{task['task_id']}/completions", headers=bearer(token)), 409, "NOT_ON_SALE")
    assert snapshot(world) == before


def test_a_festival_completes_inside_its_window(world: World) -> None:
    festival = create_task(world, EVERY_TEMPLATE[8])
    member_id, _ = member(world)
    app = world.app()
    # 16:00Z on Feb 5 is the start (midnight in Shanghai)
    outcome = tasks.complete(app, member_id, festival["task_id"], clock=FixedClock(utc(2027, 2, 5, 16, 0)))
    assert (outcome.applied, outcome.entry.delta if outcome.entry else None) == (True, 66)
    with pytest.raises(Exception) as late:
        tasks.complete(app, member_id, festival["task_id"], clock=FixedClock(utc(2027, 2, 12, 16, 0)))
    assert getattr(late.value, "code", "") == "NOT_ON_SALE"


def test_an_idempotency_key_replays_the_first_completion(world: World) -> None:
    browse = create_task(world, EVERY_TEMPLATE[5])
    friend = create_task(world, EVERY_TEMPLATE[9])
    _, token = member(world)
    path = f"/v1/tasks/{browse['task_id']}/completions"
    headers = {**bearer(token), "Idempotency-Key": "tap-1"}
    first = call(world.api, "POST", path, headers=headers)
    assert (first.status_code, first.json_body["applied"]) == (200, True)
    before = snapshot(world)
    # When the client retries with the same key (the cycle is now full)
    again = call(world.api, "POST", path, headers=headers)
    # Then the first response comes back unchanged (API.md: same status and body); nothing is written
    assert again.status_code == 200, again.json_body
    assert again.json_body == first.json_body
    assert snapshot(world) == before
    # When the same key is used for another task
    other = call(world.api, "POST", f"/v1/tasks/{friend['task_id']}/completions", headers=headers)
    # Then 409 IDEMPOTENCY_MISMATCH and nothing is applied
    assert_envelope(other, 409, "IDEMPOTENCY_MISMATCH")
    assert snapshot(world) == before
    # And a key longer than 64 characters is refused
    too_long = call(world.api, "POST", f"/v1/tasks/{friend['task_id']}/completions", headers={**bearer(token), "Idempotency-Key": "k" * 65})
    assert_envelope(too_long, 400, "VALIDATION_FAILED")
    assert me(world, token)["balance"] == 5


def test_a_task_with_growth_moves_the_member_up_a_level(world: World) -> None:
    ladder = {
        "levels": [{"level_id": "l1", "name": "Bronze", "min_growth": 0}, {"level_id": "l2", "name": "Silver", "min_growth": 10}],
        "version": 0,
    }
    assert call(world.api, "PUT", f"/v1/admin/apps/{world.app_id}/levels", ladder, bearer(world.owner)).status_code == 200
    friend = create_task(world, {**EVERY_TEMPLATE[9], "growth": 10})
    _, token = member(world)
    assert me(world, token)["level"]["level_id"] == "l1"
    assert call(world.api, "POST", f"/v1/tasks/{friend['task_id']}/completions", headers=bearer(token)).status_code == 200
    profile = me(world, token)
    assert (profile["growth"], profile["level"]["level_id"], profile["balance"]) == (10, "l2", 2)


# --- check-in -------------------------------------------------------------------------------------


def test_first_checkin_then_again_the_same_day(world: World) -> None:
    create_task(world, CHECKIN)
    _, token = member(world)
    first = call(world.api, "POST", "/v1/me/checkins", headers=bearer(token))
    assert first.status_code == 200, first.json_body
    assert first.json_body == {"points": 10, "streak": 1, "bonus": 0, "balance": 10}
    before = snapshot(world)
    again = call(world.api, "POST", "/v1/me/checkins", headers=bearer(token))
    assert_envelope(again, 409, "ALREADY_DONE")
    assert snapshot(world) == before
    profile = me(world, token)
    assert (profile["balance"], profile["streak"]) == (10, 1)
    assert profile["checked_in_on"] == datetime.now(SHANGHAI).date().isoformat()
    assert [(e["delta"], e["kind"], e["reason"]) for e in ledger(world, token)] == [(10, "task", "daily check-in (day 1)")]


def test_checkin_without_a_checkin_task_is_not_on_sale(world: World) -> None:
    _, token = member(world)
    assert_envelope(call(world.api, "POST", "/v1/me/checkins", headers=bearer(token)), 409, "NOT_ON_SALE")


def test_a_streak_earns_its_bonuses_and_a_missed_day_starts_over(world: World) -> None:
    create_task(world, CHECKIN)
    member_id, token = member(world)
    app = world.app()
    # Given check-ins at noon Shanghai time (04:00Z) on consecutive days, one day skipped, then three more
    days = [utc(2026, 11, d, 4, 0) for d in (1, 2, 3, 4, 5, 7, 8, 9)]
    results = []
    for at in days:
        outcome, streak, bonus = tasks.checkin(app, member_id, clock=FixedClock(at))
        assert outcome.entry is not None
        results.append((streak, bonus, outcome.entry.delta))
    # Then the streak counts up, pays +20 on day 3 and +50 on day 5, and restarts at 1 after Nov 6 was missed
    assert results == [(1, 0, 10), (2, 0, 10), (3, 20, 30), (4, 0, 10), (5, 50, 60), (1, 0, 10), (2, 0, 10), (3, 20, 30)]
    assert balance(member_id, world) == 170
    assert sum(e["delta"] for e in ledger(world, token)) == 170
    reasons = [e["reason"] for e in ledger(world, token)]
    assert reasons[0] == "daily check-in (day 3) + streak bonus 20"


def test_checkin_days_turn_at_midnight_in_the_apps_time_zone(world: World) -> None:
    create_task(world, CHECKIN)
    member_id, _ = member(world)
    app = world.app()
    # Given 15:59Z (23:59 in Shanghai) and 16:01Z (00:01 the next day in Shanghai) on one UTC day
    _, first, _ = tasks.checkin(app, member_id, clock=FixedClock(utc(2026, 11, 23, 15, 59)))
    _, second, _ = tasks.checkin(app, member_id, clock=FixedClock(utc(2026, 11, 23, 16, 1)))
    # Then they are two local days: both count and the streak is 2
    assert (first, second) == (1, 2)
    # And 23:59Z on the same UTC day is still Nov 24 in Shanghai: already done
    with pytest.raises(AlreadyDone):
        tasks.checkin(app, member_id, clock=FixedClock(utc(2026, 11, 24, 15, 59)))
    profile = PointsRepo().get_profile(world.app_id, member_id)
    assert profile is not None
    assert (profile.checkin_day, profile.streak, profile.balance) == ("2026-11-24", 2, 20)


def test_checkin_is_one_read_and_one_write(world: World) -> None:
    from pynamodb.connection.base import Connection

    create_task(world, CHECKIN)
    app = world.app()
    warm_id, _ = member(world)
    member_id, _ = member(world)
    clock = FixedClock(utc(2026, 11, 23, 4, 0))
    tasks.checkin(app, warm_id, clock=clock)  # warms the configuration cache
    calls: list[tuple[str, dict[str, Any]]] = []
    original = Connection._make_api_call

    def spy(self: Any, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        calls.append((operation_name, operation_kwargs))
        return original(self, operation_name, operation_kwargs)

    # When a member checks in
    with patch.object(Connection, "_make_api_call", spy):
        tasks.checkin(app, member_id, clock=clock)
    # Then DynamoDB sees exactly one consistent GetItem of the profile and one TransactWriteItems
    assert [name for name, _ in calls] == ["GetItem", "TransactWriteItems"]
    get = calls[0][1]
    assert get["Key"] == {"PK": {"S": keys.member_pk(world.app_id, member_id)}, "SK": {"S": keys.PROFILE_SK}}
    assert get["ConsistentRead"] is True
    written = calls[1][1]["TransactItems"]
    assert len(written) == 3  # profile update, ledger entry, once-a-day guard


# --- hooks ----------------------------------------------------------------------------------------


def test_mall_exchange_tasks_credit_once_per_order_and_respect_the_listing(world: World) -> None:
    create_task(world, {"template": "mall_exchange", "title": "Any", "points": 5, "completions_per_cycle": 10})
    create_task(world, {"template": "mall_exchange", "title": "L1", "points": 7, "listing_id": "lst_1", "completions_per_cycle": 10})
    member_id, token = member(world)
    app = world.app()
    # When an order of listing lst_1 is reported twice
    first = tasks.on_mall_exchanged(app, member_id, "lst_1", "ord_1")
    again = tasks.on_mall_exchanged(app, member_id, "lst_1", "ord_1")
    # Then both tasks credit once
    assert sorted((o.applied, o.entry.delta if o.entry else 0) for o in first) == [(True, 5), (True, 7)]
    assert [o.applied for o in again] == [False, False]
    # When an order of another listing comes
    other = tasks.on_mall_exchanged(app, member_id, "lst_2", "ord_2")
    # Then only the any-listing task credits
    assert [(o.applied, o.entry.delta if o.entry else 0) for o in other] == [(True, 5)]
    assert balance(member_id, world) == 17
    refs = sorted(e["reference"] for e in ledger(world, token))
    assert refs == ["mall_exchange:ord_1", "mall_exchange:ord_1", "mall_exchange:ord_2"]


def test_join_draw_tasks_credit_once_per_draw_of_their_activity(world: World) -> None:
    create_task(world, {"template": "join_draw", "title": "Play", "points": 3, "activity_id": "act_1", "completions_per_cycle": 2})
    member_id, _ = member(world)
    app = world.app()
    assert tasks.on_draw_joined(app, member_id, "act_2", "draw_x") == []
    first = tasks.on_draw_joined(app, member_id, "act_1", "draw_1")
    replay = tasks.on_draw_joined(app, member_id, "act_1", "draw_1")
    second = tasks.on_draw_joined(app, member_id, "act_1", "draw_2")
    third = tasks.on_draw_joined(app, member_id, "act_1", "draw_3")  # over the cycle limit of 2: not an error
    assert [[o.applied for o in outcomes] for outcomes in (first, replay, second, third)] == [[True], [False], [True], []]
    assert balance(member_id, world) == 6


def test_birthday_pays_once_a_year_on_the_local_birthday(world: World) -> None:
    create_task(world, EVERY_TEMPLATE[7])
    member_id, _ = member(world)
    app = world.app()
    birthday = "1990-11-24"
    # The day before in Shanghai (23:59 on Nov 23): nothing
    assert tasks.birthday_bonus(app, member_id, birthday, clock=FixedClock(utc(2026, 11, 23, 15, 59))) == []
    # 00:01 on Nov 24 in Shanghai (still Nov 23 in UTC): the bonus
    paid = tasks.birthday_bonus(app, member_id, birthday, clock=FixedClock(utc(2026, 11, 23, 16, 1)))
    assert [(o.applied, o.entry.delta if o.entry else 0) for o in paid] == [(True, 88)]
    # Again that day: nothing more
    assert [o.applied for o in tasks.birthday_bonus(app, member_id, birthday, clock=FixedClock(utc(2026, 11, 24, 10, 0)))] == [False]
    # The next year: paid again
    next_year = tasks.birthday_bonus(app, member_id, birthday, clock=FixedClock(utc(2027, 11, 24, 1, 0)))
    assert [o.applied for o in next_year] == [True]
    assert balance(member_id, world) == 176
    # Without a birthday: nothing
    assert tasks.birthday_bonus(app, member_id, None, clock=FixedClock(utc(2027, 11, 24, 1, 0))) == []


def test_a_leap_day_birthday_is_celebrated_on_feb_28_in_other_years(world: World) -> None:
    create_task(world, EVERY_TEMPLATE[7])
    member_id, _ = member(world)
    app = world.app()
    assert [o.applied for o in tasks.birthday_bonus(app, member_id, "2000-02-29", clock=FixedClock(utc(2027, 2, 28, 4, 0)))] == [True]
    assert tasks.birthday_bonus(app, member_id, "2000-02-29", clock=FixedClock(utc(2027, 3, 1, 4, 0))) == []
    assert [o.applied for o in tasks.birthday_bonus(app, member_id, "2000-02-29", clock=FixedClock(utc(2028, 2, 29, 4, 0)))] == [True]
    assert tasks.birthday_bonus(app, member_id, "2000-02-29", clock=FixedClock(utc(2028, 2, 28, 4, 0))) == []


def test_logging_in_on_ones_birthday_pays_the_birthday_task_once(world: World) -> None:
    create_task(world, EVERY_TEMPLATE[7])
    today = datetime.now(SHANGHAI).date()
    openid = f"o-{uuid.uuid4().hex[:10]}"
    member_id, token = member(world, openid, birthday=f"1995-{today:%m-%d}")
    member(world, openid, birthday=f"1995-{today:%m-%d}")
    assert me(world, token)["balance"] == 88
    assert [e["reference"] for e in ledger(world, token)] == [f"birthday:{member_id}:{today.year}"]


# --- invites --------------------------------------------------------------------------------------


def test_an_invitee_credits_the_inviter_once_and_the_path_is_recorded(world: World) -> None:
    create_task(world, EVERY_TEMPLATE[-1])
    alice_id, alice = member(world, "alice")
    code = me(world, alice)["invite_code"]
    assert code == invite_code_for(alice_id)
    # When bob logs in for the first time with alice's code
    bob_id, bob = member(world, "bob", invite_code=code)
    # Then alice earns 50 once and bob's profile records who invited him
    assert me(world, alice)["balance"] == 50
    assert [(e["delta"], e["kind"], e["reference"]) for e in ledger(world, alice)] == [(50, "invite", f"invite:{bob_id}")]
    bob_profile = PointsRepo().get_profile(world.app_id, bob_id)
    assert bob_profile is not None and bob_profile.invited_by == alice_id
    assert me(world, bob)["balance"] == 0
    # When bob logs in again with the code
    member(world, "bob", invite_code=code)
    # Then nothing more
    assert me(world, alice)["balance"] == 50
    # When carol joins with it too, alice earns again (once per new member)
    member(world, "carol", invite_code=code)
    assert me(world, alice)["balance"] == 100


def test_an_existing_member_cannot_be_invited_afterwards(world: World) -> None:
    create_task(world, EVERY_TEMPLATE[-1])
    _, alice = member(world, "alice")
    dave_id, _ = member(world, "dave")
    member(world, "dave", invite_code=me(world, alice)["invite_code"])
    assert me(world, alice)["balance"] == 0
    dave = PointsRepo().get_profile(world.app_id, dave_id)
    assert dave is not None and dave.invited_by is None


def test_self_invite_and_unknown_codes_credit_nothing(world: World) -> None:
    create_task(world, EVERY_TEMPLATE[-1])
    # Given a new member who knows their own future code
    own_code = invite_code_for(member_id_for(world.app_id, "eve"))
    eve_id, eve = member(world, "eve", invite_code=own_code)
    # Then nothing is credited and no path is recorded
    assert me(world, eve)["balance"] == 0
    profile = PointsRepo().get_profile(world.app_id, eve_id)
    assert profile is not None and profile.invited_by is None
    # And an unknown code logs in normally
    _, frank = member(world, "frank", invite_code="ZZZZZZZZ")
    assert me(world, frank)["balance"] == 0
    assert ledger(world, eve) == [] and ledger(world, frank) == []


def test_an_invite_without_an_invite_task_still_records_the_path(world: World) -> None:
    alice_id, alice = member(world, "alice")
    bob_id, _ = member(world, "bob", invite_code=me(world, alice)["invite_code"])
    profile = PointsRepo().get_profile(world.app_id, bob_id)
    assert profile is not None and profile.invited_by == alice_id
    assert me(world, alice)["balance"] == 0


def test_the_path_is_recorded_even_when_the_inviter_earns_no_more(world: World) -> None:
    # Given an invite task that pays an inviter for one invitee only
    create_task(world, {**EVERY_TEMPLATE[-1], "completions_per_cycle": 1})
    alice_id, alice = member(world, "alice")
    code = me(world, alice)["invite_code"]
    member(world, "bob", invite_code=code)
    # When a second new member joins with alice's code
    carol_id, _ = member(world, "carol", invite_code=code)
    # Then alice earns nothing more, but who invited carol is still recorded
    assert me(world, alice)["balance"] == 50
    carol = PointsRepo().get_profile(world.app_id, carol_id)
    assert carol is not None and carol.invited_by == alice_id


def test_an_idempotency_key_replays_the_first_check_in(world: World) -> None:
    # Given a member who checked in with an Idempotency-Key
    create_task(world, EVERY_TEMPLATE[0])
    _, token = member(world)
    headers = {**bearer(token), "Idempotency-Key": "checkin-1"}
    first = call(world.api, "POST", "/v1/me/checkins", headers=headers)
    assert first.status_code == 200, first.json_body
    before = snapshot(world)
    # When the response was lost and the client retries with the same key
    again = call(world.api, "POST", "/v1/me/checkins", headers=headers)
    # Then it gets the first response again and nothing is written; without the key it is ALREADY_DONE
    assert (again.status_code, again.json_body) == (200, first.json_body)
    assert snapshot(world) == before
    assert_envelope(call(world.api, "POST", "/v1/me/checkins", headers=bearer(token)), 409, "ALREADY_DONE")
