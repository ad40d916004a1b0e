"""P4: the expiry job (FIFO, idempotent, resumable) and expiry reminders in the outbox, on a fixed clock."""

from __future__ import annotations

import copy
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.core.clock import FixedClock
from chalicelib.core.ids import member_id_for
from chalicelib.core.table import keys, schema
from chalicelib.core.table.cache import config_cache
from chalicelib.points import engine as points
from chalicelib.points import expiry_jobs
from chalicelib.points.models import PointsProfile
from chalicelib.points.store.points import PointsRepo
from chalicelib.tenancy.models import App
from chalicelib.tenancy.store.apps import AppsRepo
from chalicelib.tenancy.store.members import MembersRepo
from tests.conftest import bearer, call
from tests.support import login_token, server_headers


@dataclass
class AppUnderTest:
    app: App
    login_secret: str
    server_key: str


@dataclass
class World:
    api: Any
    client: Any
    owner: str
    rolling: AppUnderTest  # points expire 30 days after the day they were earned
    monthly: AppUnderTest  # points expire at the end of the month after the month they were earned


def _app(api: Any, owner: str, name: str, policy: dict[str, Any]) -> AppUnderTest:
    body = {"name": name, "points_rate": 100, "time_zone": "Asia/Shanghai", "expiry_policy": policy}
    created = call(api, "POST", "/v1/admin/apps", body, bearer(owner))
    assert created.status_code == 201, created.json_body
    app = AppsRepo().get(created.json_body["app"]["app_id"])
    assert app is not None
    return AppUnderTest(app, created.json_body["secrets"]["login_secret"], created.json_body["secrets"]["server_key"])


@pytest.fixture
def world(moto_api: tuple[Any, Any]) -> World:
    """Given tenant acme with a rolling-30-days app and an end-of-next-month app (both Asia/Shanghai)."""
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
    return World(
        api,
        client,
        owner,
        _app(api, owner, "Rolling", {"type": "rolling_days", "n": 30}),
        _app(api, owner, "Monthly", {"type": "end_of_nth_month", "n": 1}),
    )


def at(*args: int) -> FixedClock:
    return FixedClock(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


def member(world: World, target: AppUnderTest, openid: str | None = None) -> tuple[str, str]:
    """(openid, member token) of a member who logged in through the API."""
    openid = openid or f"o-{uuid.uuid4().hex[:10]}"
    body = {"app_id": target.app.app_id, "login_token": login_token(target.login_secret, openid), "device_id": "d"}
    response = call(world.api, "POST", "/v1/auth/member", body)
    assert response.status_code == 200, response.json_body
    return openid, str(response.json_body["token"])


def profile(target: AppUnderTest, openid: str) -> PointsProfile:
    found = PointsRepo().get_profile(target.app.app_id, member_id_for(target.app.app_id, openid))
    assert found is not None
    return found


def me(world: World, token: str) -> dict[str, Any]:
    response = call(world.api, "GET", "/v1/me", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return dict(response.json_body)


def ledger(world: World, token: str) -> list[dict[str, Any]]:
    response = call(world.api, "GET", "/v1/me/ledger?limit=100", headers=bearer(token))
    assert response.status_code == 200, response.json_body
    return list(response.json_body["items"])


def earn(target: AppUnderTest, openid: str, n: int, clock: FixedClock) -> None:
    assert points.grant(target.app, openid, n, f"g-{uuid.uuid4().hex}", "earned", clock=clock).applied


def spend(target: AppUnderTest, openid: str, n: int, clock: FixedClock) -> None:
    assert points.deduct(target.app, openid, n, f"d-{uuid.uuid4().hex}", "spent", clock=clock).applied


def assert_consistent(world: World, token: str) -> dict[str, Any]:
    """Balance == sum of the ledger == earned - spent - expired, never negative."""
    mine = me(world, token)
    entries = ledger(world, token)
    assert mine["balance"] == sum(e["delta"] for e in entries) >= 0
    assert mine["balance"] == mine["earned_total"] - mine["spent_total"] - mine["expired_total"]
    return mine


# --- run_expiry -----------------------------------------------------------------------------------


def test_rolling_days_expire_exactly_the_fifo_remainder(world: World) -> None:
    target = world.rolling
    openid, token = member(world, target)
    # Given 100 earned on Mar 1 (valid through Mar 31), 50 on Mar 10 (through Apr 9), and 30 spent on Mar 15
    earn(target, openid, 100, at(2026, 3, 1, 4, 0))
    earn(target, openid, 50, at(2026, 3, 10, 4, 0))
    spend(target, openid, 30, at(2026, 3, 15, 4, 0))
    # Then the member sees what expires when, oldest first
    assert me(world, token)["expiring"] == [{"date": "2026-03-31", "points": 70}, {"date": "2026-04-09", "points": 50}]
    # When the job runs at 20:00 on Mar 31 in Shanghai (the last valid day)
    on_the_day = expiry_jobs.run_expiry(clock=at(2026, 3, 31, 12, 0))
    # Then nothing expires
    assert (on_the_day.points, on_the_day.members_changed, on_the_day.skipped_not_due) == (0, 0, 1)
    assert me(world, token)["balance"] == 120
    # When it runs at 00:30 on Apr 1 in Shanghai (still Mar 31 in UTC)
    run = expiry_jobs.run_expiry(clock=at(2026, 3, 31, 16, 30))
    # Then exactly the 70 left of the March bucket expire (the 30 spent came out of it)
    assert (run.points, run.members_changed, run.finished, run.errors) == (70, 1, True, [])
    mine = assert_consistent(world, token)
    assert (mine["balance"], mine["expired_total"]) == (50, 70)
    assert mine["expiring"] == [{"date": "2026-04-09", "points": 50}]
    newest = ledger(world, token)[0]
    assert (newest["delta"], newest["kind"], newest["reference"], newest["balance_after"]) == (-70, "expiry", "expiry:2026-03-31", 50)
    # When it runs again, the same hour or the next day
    again = [expiry_jobs.run_expiry(clock=at(2026, 3, 31, 17, 0)), expiry_jobs.run_expiry(clock=at(2026, 4, 1, 17, 0))]
    # Then nothing more expires
    assert [r.points for r in again] == [0, 0]
    assert me(world, token)["balance"] == 50
    # When the second bucket's day has passed
    assert expiry_jobs.run_expiry(clock=at(2026, 4, 9, 16, 0)).points == 50
    mine = assert_consistent(world, token)
    assert (mine["balance"], mine["expired_total"], mine["expiring"]) == (0, 120, [])
    assert [e["kind"] for e in ledger(world, token)] == ["expiry", "expiry", "deduction", "grant", "grant"]


def test_end_of_next_month_with_a_spend_that_empties_the_first_bucket(world: World) -> None:
    target = world.monthly
    openid, token = member(world, target)
    # Given 100 earned on Jan 31 (valid through Feb 28) and 40 on Feb 1 (through Mar 31), 120 spent
    earn(target, openid, 100, at(2026, 1, 31, 4, 0))
    earn(target, openid, 40, at(2026, 2, 1, 4, 0))
    spend(target, openid, 120, at(2026, 2, 10, 4, 0))
    assert me(world, token)["expiring"] == [{"date": "2026-03-31", "points": 20}]
    # When the job runs on Mar 1 (local): the February bucket is due but fully spent
    run = expiry_jobs.run_expiry(clock=at(2026, 3, 1, 4, 0))
    # Then nothing expires and no expiry entry is written, but the member moves on to Mar 31
    assert (run.points, run.members_changed) == (0, 1)
    assert [e["kind"] for e in ledger(world, token)] == ["deduction", "grant", "grant"]
    assert profile(target, openid).buckets == {"2026-03-31": 40}
    # When it runs on Apr 1 (local): the 20 left expire
    assert expiry_jobs.run_expiry(clock=at(2026, 4, 1, 4, 0)).points == 20
    mine = assert_consistent(world, token)
    assert (mine["balance"], mine["expired_total"]) == (0, 20)


def test_two_due_buckets_expire_in_one_entry(world: World) -> None:
    target = world.rolling
    openid, token = member(world, target)
    earn(target, openid, 10, at(2026, 5, 1, 4, 0))  # through May 31
    earn(target, openid, 20, at(2026, 5, 2, 4, 0))  # through Jun 1
    earn(target, openid, 40, at(2026, 5, 20, 4, 0))  # through Jun 19
    spend(target, openid, 15, at(2026, 5, 21, 4, 0))
    # The job was down on Jun 1; it runs on Jun 2 (local)
    run = expiry_jobs.run_expiry(clock=at(2026, 6, 2, 4, 0))
    assert run.points == 15  # 0 left of May 31 (10 spent), 15 left of Jun 1 (5 spent)
    entry = ledger(world, token)[0]
    assert (entry["delta"], entry["reference"], entry["note"]) == (-15, "expiry:2026-06-01", "expired buckets: 2026-05-31, 2026-06-01")
    mine = assert_consistent(world, token)
    assert (mine["balance"], mine["expiring"]) == (40, [{"date": "2026-06-19", "points": 40}])


def test_points_earned_after_an_expiry_are_kept(world: World) -> None:
    target = world.rolling
    openid, token = member(world, target)
    earn(target, openid, 10, at(2026, 5, 1, 4, 0))
    assert expiry_jobs.run_expiry(clock=at(2026, 6, 1, 4, 0)).points == 10
    earn(target, openid, 25, at(2026, 6, 1, 5, 0))
    assert expiry_jobs.run_expiry(clock=at(2026, 6, 1, 6, 0)).points == 0
    mine = assert_consistent(world, token)
    assert (mine["balance"], mine["expiring"]) == (25, [{"date": "2026-07-01", "points": 25}])


def test_a_run_out_of_budget_stops_and_loses_nothing(world: World) -> None:
    target = world.rolling
    members = [member(world, target) for _ in range(3)]
    for openid, _ in members:
        earn(target, openid, 30, at(2026, 3, 1, 4, 0))
    # When a run has no time left
    stopped = expiry_jobs.run_expiry(budget_seconds=0, clock=at(2026, 4, 2, 4, 0))
    # Then it says it did not finish and changed nothing
    assert (stopped.finished, stopped.members_changed, stopped.points) == (False, 0, 0)
    assert [me(world, token)["balance"] for _, token in members] == [30, 30, 30]
    # And the next run completes the work
    done = expiry_jobs.run_expiry(clock=at(2026, 4, 2, 5, 0))
    assert (done.finished, done.members_changed, done.points) == (True, 3, 90)
    assert [assert_consistent(world, token)["balance"] for _, token in members] == [0, 0, 0]


def test_never_expiring_points_are_not_touched(world: World) -> None:
    created = call(world.api, "POST", "/v1/admin/apps", {"name": "Forever", "points_rate": 100}, bearer(world.owner))
    forever_app = AppsRepo().get(created.json_body["app"]["app_id"])
    assert forever_app is not None
    forever = AppUnderTest(forever_app, created.json_body["secrets"]["login_secret"], created.json_body["secrets"]["server_key"])
    openid, token = member(world, forever)
    earn(forever, openid, 10, at(2020, 1, 1, 4, 0))
    assert me(world, token)["expiring"] == []
    assert expiry_jobs.run_expiry(clock=at(2030, 1, 1)).members_seen == 0
    assert me(world, token)["balance"] == 10


class _NoTableBackup:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend.

    moto deep-copies the whole table for every item of every TransactWriteItems (a rollback backup),
    which makes one transaction O(table size) and would measure moto, not the job. The backup only
    matters when a transaction is cancelled, which cannot happen here (one writer, every condition
    holds); the exact results asserted below would expose it if it did.
    """

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def test_expiry_throughput(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.dynamodb.models as dynamodb_backend
    from pynamodb.connection.base import Connection

    monkeypatch.setattr(dynamodb_backend, "copy", _NoTableBackup)
    # Given 100 members of one app, each with 10 points due
    target = world.rolling
    members = MembersRepo()
    count = 100
    for i in range(count):
        openid = f"bulk-{i}"
        members.record_login(target.app.app_id, member_id_for(target.app.app_id, openid), openid, "2026-03-01T00:00:00Z", "d", None, None)
        earn(target, openid, 10, at(2026, 3, 1, 4, 0))
    operations: list[str] = []
    original = Connection._make_api_call

    def counting(self: Any, operation_name: str, operation_kwargs: dict[str, Any]) -> Any:
        sort_key = operation_kwargs.get("Key", {}).get("SK", {}).get("S")
        operations.append(f"{operation_name}:{sort_key}" if sort_key else operation_name)
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    # When the job runs once they are due
    started = time.perf_counter()
    run = expiry_jobs.run_expiry(clock=at(2026, 4, 1, 4, 0))
    elapsed = time.perf_counter() - started
    monkeypatch.setattr(Connection, "_make_api_call", original)
    # Then every member is expired exactly once
    assert (run.members_seen, run.members_changed, run.points, run.finished, run.errors) == (count, count, 10 * count, True, [])
    assert {profile(target, f"bulk-{i}").balance for i in range(count)} == {0}
    # And each member costs one profile read and one transaction (plus an index query per day and shard, and the app's config)
    assert operations.count("GetItem:PROFILE") == count
    assert operations.count("TransactWriteItems") == count
    assert operations.count("Query") == keys.EXPIRY_SHARDS  # one index query per shard, whatever the dates
    print(
        f"\nexpiry throughput: {count} members in {elapsed:.2f}s = {count / elapsed:.0f} members/s "
        f"(in-process moto; {len(operations)} DynamoDB calls, {len(operations) / count:.2f} per member)"
    )


# --- reminders and the outbox ---------------------------------------------------------------------


def test_reminders_are_written_once_per_member_and_date_and_listed(world: World) -> None:
    target = world.rolling
    alice, _ = member(world, target)
    bob, _ = member(world, target)
    spender, _ = member(world, target)
    later, _ = member(world, target)
    earn(target, alice, 70, at(2026, 3, 1, 4, 0))  # through Mar 31
    earn(target, bob, 5, at(2026, 3, 2, 4, 0))  # through Apr 1
    earn(target, spender, 10, at(2026, 3, 1, 4, 0))
    spend(target, spender, 10, at(2026, 3, 2, 4, 0))  # nothing left to remind about
    earn(target, later, 10, at(2026, 3, 20, 4, 0))  # through Apr 19: too far ahead
    # When the reminder job runs on Mar 25, and again later that day
    first = expiry_jobs.run_reminders(clock=at(2026, 3, 25, 1, 0))
    second = expiry_jobs.run_reminders(clock=at(2026, 3, 25, 9, 0))
    # Then alice and bob get one reminder each, and the second run writes nothing
    assert (first.members_changed, second.members_changed) == (2, 0)
    # And the next day still nothing new for the same dates
    assert expiry_jobs.run_reminders(clock=at(2026, 3, 26, 1, 0)).members_changed == 0
    # And the tenant reads them, signed, for Mar 25 (app-local)
    path = "/v1/server/outbox"
    listed = call(world.api, "GET", f"{path}?day=2026-03-25", headers=server_headers(target.app.app_id, target.server_key, "GET", path))
    assert listed.status_code == 200, listed.json_body
    items = sorted(listed.json_body["items"], key=lambda item: item["expires_on"])
    assert [(i["openid"], i["expires_on"], i["points"], i["message"]) for i in items] == [
        (alice, "2026-03-31", 70, "70 points expire on 2026-03-31"),
        (bob, "2026-04-01", 5, "5 points expire on 2026-04-01"),
    ]
    assert listed.json_body["day"] == "2026-03-25"
    # And so does an operator
    admin = call(world.api, "GET", f"/v1/admin/apps/{target.app.app_id}/outbox?day=2026-03-25", headers=bearer(world.owner))
    assert admin.status_code == 200, admin.json_body
    assert sorted(admin.json_body["items"], key=lambda item: item["expires_on"]) == items
    # And the next day's outbox is empty
    empty = call(world.api, "GET", f"{path}?day=2026-03-26", headers=server_headers(target.app.app_id, target.server_key, "GET", path))
    assert empty.json_body["items"] == []


def test_a_reminder_is_filed_under_the_apps_local_day(world: World) -> None:
    target = world.rolling
    openid, _ = member(world, target)
    earn(target, openid, 9, at(2026, 3, 1, 4, 0))
    # 18:00Z on Mar 25 is already Mar 26 in Shanghai
    assert expiry_jobs.run_reminders(clock=at(2026, 3, 25, 18, 0)).members_changed == 1
    path = f"/v1/admin/apps/{target.app.app_id}/outbox"
    assert call(world.api, "GET", f"{path}?day=2026-03-25", headers=bearer(world.owner)).json_body["items"] == []
    assert [i["points"] for i in call(world.api, "GET", f"{path}?day=2026-03-26", headers=bearer(world.owner)).json_body["items"]] == [9]


def test_the_outbox_is_per_app(world: World) -> None:
    openid, _ = member(world, world.rolling)
    earn(world.rolling, openid, 9, at(2026, 3, 1, 4, 0))
    assert expiry_jobs.run_reminders(clock=at(2026, 3, 25, 1, 0)).members_changed == 1
    path = "/v1/server/outbox"
    other = world.monthly
    listed = call(world.api, "GET", f"{path}?day=2026-03-25", headers=server_headers(other.app.app_id, other.server_key, "GET", path))
    assert (listed.status_code, listed.json_body["items"]) == (200, [])
    bad_day = call(world.api, "GET", f"{path}?day=25-03-2026", headers=server_headers(other.app.app_id, other.server_key, "GET", path))
    assert (bad_day.status_code, bad_day.json_body["error"]["code"]) == (400, "VALIDATION_FAILED")


def test_a_member_due_before_the_jobs_look_back_is_still_expired(world: World) -> None:
    # Given 100 points valid through Mar 31, and an expiry job that did not run for two weeks
    target = world.rolling
    openid, token = member(world, target)
    earn(target, openid, 100, at(2026, 3, 1, 4, 0))
    # When it runs again on Apr 15, and every hour after that
    runs = [expiry_jobs.run_expiry(clock=at(2026, 4, 15, hour, 0)) for hour in (4, 5)]
    # Then the overdue points expire (a missed week must not strand a member for good)
    assert sum(run.points for run in runs) == 100
    mine = assert_consistent(world, token)
    assert (mine["balance"], mine["expiring"]) == (0, [])
