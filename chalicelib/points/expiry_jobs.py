"""The expiry job and the reminder job (P4): no scans, resumable, idempotent.

Members are found through the expiry index (GSI1 keyed by next expiry date, sharded). Expiring a
member moves its index entry to its next expiry date in the same transaction, so a run that stops
half-way leaves only unprocessed members behind, and a second run finds nothing to do twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.core.clock import Clock, iso, time_now
from chalicelib.core.table import keys
from chalicelib.core.txn.unit import GuardSpec
from chalicelib.points.engine import execute, expiry_index, ledger_entry, local_day
from chalicelib.points.expiry import expire_due, expiring, next_expiry
from chalicelib.points.models import PointsProfile
from chalicelib.points.notifier import HttpTenantNotifier, NoNotifier, TenantNotifier
from chalicelib.points.store.points import Commit, ExpiryIndexRepo, OutboxRepo, PointsRepo, ProfileChange
from chalicelib.tenancy.access import app_by_id, app_secrets
from chalicelib.tenancy.models import App


@dataclass
class JobRun:
    members_seen: int = 0
    members_changed: int = 0
    points: int = 0
    items_written: int = 0
    finished: bool = True
    skipped_not_due: int = 0
    notified: int = 0
    errors: list[str] = field(default_factory=list)


def last_due_day(now: datetime) -> str:
    """The latest date that can be over somewhere: app-local days run up to 14 h ahead of UTC."""
    return ((now + timedelta(hours=14)).date() - timedelta(days=1)).isoformat()


def expire_member(app: App, member_id: str, now: datetime, repo: PointsRepo) -> tuple[int, int]:
    """Expire what is due for one member. Returns (points expired, items written)."""
    today = local_day(app, now)
    written = {"items": 0, "points": 0}

    def plan(profiles: list[PointsProfile]) -> Commit:
        profile = profiles[0]
        due = expire_due(profile, today)
        buckets = {day: n for day, n in profile.buckets.items() if day not in due.drop}
        index_sets, removes = expiry_index(app.app_id, member_id, next_expiry(buckets))
        sets = {"buckets": buckets, **{k: v for k, v in index_sets.items() if v is not None}}
        change = ProfileChange(
            expected_version=profile.version,
            balance_delta=-due.points,
            expired_add=due.points,
            require_balance=due.points if due.points else None,
            sets=sets,
            removes=removes,
        )
        commit = Commit(app.app_id, member_id, profile=change)
        if due.points:
            last = due.due_dates[-1]
            note = "expired buckets: " + ", ".join(due.due_dates)
            entry = ledger_entry(profile, -due.points, "points expired", f"expiry:{last}", now, kind="expiry", note=note)
            commit.ledger = entry
            guard_pk = keys.app_guard_pk(app.app_id, "expiry", f"{member_id}:{last}")
            commit.guards.append(GuardSpec(pk=guard_pk, sk=keys.GUARD_SK, result={"entry": entry.model_dump()}))
        written["items"] = 1 + (2 if due.points else 0)
        written["points"] = due.points
        return commit

    outcome = execute([(app.app_id, member_id)], plan, None, repo)
    return (written["points"], written["items"]) if outcome.applied else (0, 0)


def run_expiry(
    *,
    budget_seconds: float | None = None,
    clock: Clock | None = None,
    index: ExpiryIndexRepo | None = None,
    repo: PointsRepo | None = None,
) -> JobRun:
    """Expire every member whose next expiry date is over in its app's time zone, however overdue."""
    now = time_now(clock)
    index, repo = index or ExpiryIndexRepo(), repo or PointsRepo()
    started, run = time.monotonic(), JobRun()
    for shard in range(keys.EXPIRY_SHARDS):
        for day, app_id, member_id in index.members_expiring(shard, last_due_day(now)):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                run.finished = False  # the rest stays in the index for the next run
                return run
            app = app_by_id(app_id)
            run.members_seen += 1
            if app is None:
                continue
            if local_day(app, now).isoformat() <= day:
                run.skipped_not_due += 1
                continue
            try:
                points, items = expire_member(app, member_id, now, repo)
            except Exception as exc:  # one member must not stop the job; it is retried next run
                run.errors.append(f"{app_id}/{member_id}: {type(exc).__name__}")
                continue
            run.points += points
            run.items_written += items
            run.members_changed += 1 if items else 0
    return run


def run_reminders(
    *,
    days_ahead: int = 7,
    budget_seconds: float | None = None,
    clock: Clock | None = None,
    index: ExpiryIndexRepo | None = None,
    repo: PointsRepo | None = None,
    outbox: OutboxRepo | None = None,
    notifier: TenantNotifier | None = None,
) -> JobRun:
    """Write "N points expire on D" for members whose next expiry is within ``days_ahead`` (once per date),
    and POST each new reminder, signed, to the app's reminder_webhook_url when it has one.

    Within ``budget_seconds`` (the rest is picked up by the next run: a written reminder is not written
    again); one member or one tenant's endpoint failing never stops the others.
    """
    now = time_now(clock)
    notifier = notifier or default_notifier()
    index, repo, outbox = index or ExpiryIndexRepo(), repo or PointsRepo(), outbox or OutboxRepo()
    started, run = time.monotonic(), JobRun()
    first = (now.date() - timedelta(days=1)).isoformat()
    last = (now.date() + timedelta(days=days_ahead)).isoformat()
    for shard in range(keys.EXPIRY_SHARDS):
        for day, app_id, member_id in index.members_expiring(shard, last, first):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                run.finished = False
                return run
            run.members_seen += 1
            try:
                _remind(app_id, member_id, day, now, run, repo, outbox, notifier)
            except Exception as exc:  # one member (or one tenant's endpoint) must not stop the job
                run.errors.append(f"{app_id}/{member_id}: {type(exc).__name__}")
    return run


def _remind(
    app_id: str, member_id: str, day: str, now: datetime, run: JobRun, repo: PointsRepo, outbox: OutboxRepo, notifier: TenantNotifier
) -> None:
    app = app_by_id(app_id)
    profile = repo.get_profile(app_id, member_id, consistent=False)
    if app is None or profile is None:
        return
    soon = [(d, n) for d, n in expiring(profile) if d == day]
    if not soon or local_day(app, now).isoformat() > day:
        return
    if outbox.add(app_id, local_day(app, now).isoformat(), member_id, profile.openid, day, soon[0][1], iso(now)):
        run.members_changed += 1
        run.items_written += 2
        if app.reminder_webhook_url and _notify(app, notifier, profile.openid, member_id, day, soon[0][1], now):
            run.notified += 1


def outbox(
    app: App, day: str, cursor: str | None, limit: int, repo: OutboxRepo | None = None
) -> tuple[list[dict[str, object]], str | None]:
    items, next_cursor = (repo or OutboxRepo()).page(app.app_id, day, cursor, limit)
    return list(items), next_cursor


def app_today(app: App, clock: Clock | None = None) -> str:
    """The app's current business day (the outbox is filed by it)."""
    return local_day(app, time_now(clock)).isoformat()


def default_notifier() -> TenantNotifier:
    from chalicelib.core.config import get_settings

    return HttpTenantNotifier() if get_settings().tenant_notifier == "http" else NoNotifier()


def _notify(app: App, notifier: TenantNotifier, openid: str, member_id: str, day: str, points: int, now: datetime) -> bool:
    secrets = app_secrets(app.app_id)
    if secrets is None or not app.reminder_webhook_url:
        return False
    event = {
        "id": f"remind:{member_id}:{day}",
        "type": "points.expiring",
        "app_id": app.app_id,
        "openid": openid,
        "points": points,
        "expires_on": day,
        "at": iso(now),
        "message": f"{points} points expire on {day}",
    }
    return notifier.send(app.reminder_webhook_url, secrets.webhook_secret.current, event)
