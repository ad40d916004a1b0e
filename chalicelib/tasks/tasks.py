"""Points tasks (K1-K3): definitions, cycles, the member's task list, completions, check-in, hooks."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from chalicelib.core import limits
from chalicelib.core.clock import Clock, epoch, iso, time_now
from chalicelib.core.errors import AlreadyDone, LimitReached, NotFound, NotOnSale, ValidationFailed
from chalicelib.core.models import readable
from chalicelib.core.table import keys
from chalicelib.core.table.config import ConfigDoc, ConfigRepo
from chalicelib.core.txn.unit import CounterSpec, GuardSpec, WebhookEventSpec
from chalicelib.points.engine import Commit, Outcome, PointsRepo, ProfileChange, execute, fingerprint, ledger_entry, local_day, plan_earn
from chalicelib.points.levels import level_id_for
from chalicelib.points.models import PointsProfile
from chalicelib.tasks.models import SELF_REPORTED, CheckinTask, Cycle, Task, TaskDefinition
from chalicelib.tenancy.models import App

_definition: TypeAdapter[TaskDefinition] = TypeAdapter(TaskDefinition)


def tasks_repo() -> ConfigRepo:
    return ConfigRepo("task")


def _task(doc: ConfigDoc) -> Task:
    return Task(task_id=doc.config_id, version=doc.version, updated_at=doc.updated_at, definition=_definition.validate_json(doc.document))


# --- admin -----------------------------------------------------------------------------------------


def _document(definition: TaskDefinition) -> str:
    """The stored definition, written only if the reader (``_task``) accepts it."""
    document = definition.model_dump_json()
    readable(lambda: _definition.validate_json(document), "task")
    return document


def create_task(app: App, definition: TaskDefinition, repo: ConfigRepo | None = None, clock: Clock | None = None) -> Task:
    task_id = f"task_{secrets.token_hex(6)}"
    now = iso(time_now(clock))
    version = (repo or tasks_repo()).put(app.app_id, task_id, _document(definition), now, None)
    return Task(task_id=task_id, version=version, updated_at=now, definition=definition)


def replace_task(
    app: App, task_id: str, definition: TaskDefinition, expected_version: int, repo: ConfigRepo | None = None, clock: Clock | None = None
) -> Task:
    repo = repo or tasks_repo()
    current = get_task(app, task_id, repo)
    if current.definition.template != definition.template:
        raise ValidationFailed("A task's template cannot change", details=[{"field": "task.template", "problem": "fixed once created"}])
    now = iso(time_now(clock))
    version = repo.put(app.app_id, task_id, _document(definition), now, expected_version)
    return Task(task_id=task_id, version=version, updated_at=now, definition=definition)


def get_task(app: App, task_id: str, repo: ConfigRepo | None = None) -> Task:
    doc = (repo or tasks_repo()).get(app.app_id, task_id)
    if doc is None:
        raise NotFound("Task not found")
    return _task(doc)


def list_tasks(app: App, repo: ConfigRepo | None = None) -> list[Task]:
    docs = (repo or tasks_repo()).all(app.app_id)
    return sorted((_task(doc) for doc in docs), key=lambda t: (-t.definition.sort_weight, t.task_id))


def delete_task(app: App, task_id: str, repo: ConfigRepo | None = None) -> None:
    (repo or tasks_repo()).delete(app.app_id, task_id)


def cached_tasks(app: App, repo: ConfigRepo | None = None) -> list[Task]:
    docs = (repo or tasks_repo()).all_cached(app.app_id)
    return sorted((_task(doc) for doc in docs), key=lambda t: (-t.definition.sort_weight, t.task_id))


# --- rules -----------------------------------------------------------------------------------------


def period(cycle: Cycle, app: App, at: datetime) -> tuple[str, datetime]:
    """The cycle a moment falls in (app-local), and when that cycle ends (UTC)."""
    return limits.cycle_period(cycle.unit, cycle.n, app.time_zone, at)


def is_live(definition: TaskDefinition, at: datetime) -> bool:
    if not definition.online:
        return False
    if definition.starts_at and at < definition.starts_at:
        return False
    return not (definition.ends_at and at >= definition.ends_at)


def counter_for(app: App, member_id: str, task: Task, at: datetime) -> CounterSpec:
    key, ends = period(task.definition.cycle, app, at)
    return CounterSpec(
        pk=keys.member_pk(app.app_id, member_id),
        sk=keys.counter_sk(f"task#{task.task_id}", key),
        limit=task.definition.completions_per_cycle,
        ttl=epoch(ends) + 86400,
        reason="This task is already completed for this cycle",
    )


def streak_after(last_day: str | None, streak: int, today: date) -> int:
    """Consecutive days including today: a missed day starts over at 1."""
    if last_day == today.isoformat():
        return max(streak, 1)
    if last_day == (today - timedelta(days=1)).isoformat():
        return streak + 1
    return 1


def streak_bonus(task: CheckinTask, streak: int) -> int:
    return sum(bonus.points for bonus in task.bonuses if bonus.streak == streak)


# --- member ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskProgress:
    task: Task
    done: int
    limit: int
    period: str


def member_tasks(app: App, member_id: str, points_repo: PointsRepo | None = None, clock: Clock | None = None) -> list[TaskProgress]:
    """Live tasks with this member's completions in the current cycle (all counters in one query)."""
    repo = points_repo or PointsRepo()
    now = time_now(clock)
    live = [task for task in cached_tasks(app) if is_live(task.definition, now)]
    counts = repo.counters(keys.member_pk(app.app_id, member_id), keys.counter_sk("task#", "")[:-1]) if live else {}
    result = []
    for task in live:
        counter = counter_for(app, member_id, task, now)
        key = counter.sk.rsplit("#", 1)[-1]
        result.append(TaskProgress(task=task, done=counts.get(counter.sk, 0), limit=task.definition.completions_per_cycle, period=key))
    return result


def credit_commit(
    app: App,
    member_id: str,
    profile: PointsProfile,
    task: Task,
    requested: int,
    at: datetime,
    reference: str,
    reason: str,
    *,
    counters: list[CounterSpec],
    guards: list[GuardSpec] | None = None,
    events: list[WebhookEventSpec] | None = None,
    profile_sets: dict[str, Any] | None = None,
    kind: str = "task",
) -> Commit:
    definition = task.definition
    credit = plan_earn(app, profile, requested, at, per_event_cap=definition.per_event_cap, growth=definition.growth)
    if definition.growth:
        level_id = level_id_for(app, profile.growth + definition.growth)
        if level_id is not None:
            credit.change.sets["level"] = level_id
    credit.change.sets.update(profile_sets or {})
    entry = ledger_entry(profile, credit.points, reason, reference, at, kind=kind, capped_from=credit.capped_from, note=credit.note)
    guard_list = [
        GuardSpec(pk=g.pk, sk=g.sk, result={"entry": entry.model_dump(), **g.result}, fingerprint=g.fingerprint, ttl=g.ttl)
        for g in guards or []
    ]
    return Commit(
        app.app_id, member_id, profile=credit.change, ledger=entry, guards=guard_list, counters=counters, webhook_events=events or []
    )


def checkin(
    app: App, member_id: str, *, idempotency_key: str | None = None, repo: PointsRepo | None = None, clock: Clock | None = None
) -> tuple[Outcome, int, int]:
    """K2 daily check-in on the app's local day: one profile read, one transaction. Returns (outcome, streak, bonus).

    With an Idempotency-Key, a retry of the same check-in returns the first outcome (applied False)
    instead of ALREADY_DONE.
    """
    now = time_now(clock)
    task = next((t for t in cached_tasks(app) if t.definition.template == "daily_checkin" and is_live(t.definition, now)), None)
    if task is None or not isinstance(task.definition, CheckinTask):
        raise NotOnSale("There is no check-in task right now")
    definition = task.definition
    today = local_day(app, now)
    decided: dict[str, int] = {}
    fp = fingerprint("checkin")
    idem = _idem_guard(app, member_id, idempotency_key, fp)

    def plan(profiles: list[PointsProfile]) -> Commit:
        profile = profiles[0]
        if profile.checkin_day == today.isoformat():
            raise AlreadyDone("Already checked in today")
        streak = streak_after(profile.checkin_day, profile.streak, today)
        bonus = streak_bonus(definition, streak)
        decided.update(streak=streak, bonus=bonus)
        guard = GuardSpec(
            pk=keys.app_guard_pk(app.app_id, "checkin", f"{member_id}:{today.isoformat()}"), sk=keys.GUARD_SK, result={"streak": streak}
        )
        return credit_commit(
            app,
            member_id,
            profile,
            task,
            definition.points + bonus,
            now,
            f"checkin:{today.isoformat()}",
            f"daily check-in (day {streak})" + (f" + streak bonus {bonus}" if bonus else ""),
            counters=[],
            guards=[guard] + ([GuardSpec(idem.pk, idem.sk, {"streak": streak, "bonus": bonus}, fp)] if idem else []),
            profile_sets={"checkin_day": today.isoformat(), "streak": streak},
        )

    outcome = execute([(app.app_id, member_id)], plan, idem, repo or PointsRepo(), expected_fingerprint=fp)
    if not outcome.applied:
        if idem is None or "bonus" not in outcome.extra:
            raise AlreadyDone("Already checked in today")
        return outcome, int(outcome.extra["streak"]), int(outcome.extra["bonus"])
    return outcome, decided["streak"], decided["bonus"]


def complete(
    app: App,
    member_id: str,
    task_id: str,
    *,
    idempotency_key: str | None = None,
    repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> Outcome:
    """K3 completion of a self-reported task (browse, add friend, join group, festival)."""
    now = time_now(clock)
    task = next((t for t in cached_tasks(app) if t.task_id == task_id), None)
    if task is None:
        raise NotFound("Task not found")
    if task.definition.template not in SELF_REPORTED:
        raise ValidationFailed(
            "This task is completed by Jifen, not by the member", details=[{"field": "task_id", "problem": "not self-reported"}]
        )
    if not is_live(task.definition, now):
        raise NotOnSale("This task is not available now")
    counter = counter_for(app, member_id, task, now)
    key = counter.sk.rsplit("#", 1)[-1]
    fp = fingerprint("complete", task_id)
    idem = _idem_guard(app, member_id, idempotency_key, fp)
    guards = [idem] if idem else []

    def plan(profiles: list[PointsProfile]) -> Commit:
        return credit_commit(
            app,
            member_id,
            profiles[0],
            task,
            task.definition.points,
            now,
            f"task:{task_id}:{key}",
            task.definition.title,
            counters=[counter],
            guards=guards,
        )

    return execute([(app.app_id, member_id)], plan, idem, repo or PointsRepo(), expected_fingerprint=fp)


def _idem_guard(app: App, member_id: str, idempotency_key: str | None, fp: str) -> GuardSpec | None:
    """The member's Idempotency-Key as a guard (a retry returns the first outcome), if the request has one."""
    if not idempotency_key:
        return None
    return GuardSpec(
        pk=keys.app_guard_pk(app.app_id, "idem", f"{member_id}:{idempotency_key}"), sk=keys.GUARD_SK, result={}, fingerprint=fp
    )


def live_tasks(app: App, template: str, at: datetime, accept: Any = None) -> list[Task]:
    return [
        t
        for t in cached_tasks(app)
        if t.definition.template == template and is_live(t.definition, at) and (accept is None or accept(t.definition))
    ]


def _hook(
    app: App, member_id: str, template: str, reference: str, accept: Any, repo: PointsRepo | None, clock: Clock | None
) -> list[Outcome]:
    """Credit every live task of a template once per reference (and within its cycle limit)."""
    now = time_now(clock)
    outcomes = []
    for task in live_tasks(app, template, now, accept):
        guard = GuardSpec(pk=keys.app_guard_pk(app.app_id, f"hook-{task.task_id}", reference), sk=keys.GUARD_SK, result={})
        counter = counter_for(app, member_id, task, now)

        def plan(profiles: list[PointsProfile], task: Task = task, guard: GuardSpec = guard, counter: CounterSpec = counter) -> Commit:
            return credit_commit(
                app,
                member_id,
                profiles[0],
                task,
                task.definition.points,
                now,
                f"{template}:{reference}",
                task.definition.title,
                counters=[counter],
                guards=[guard],
            )

        try:
            outcomes.append(execute([(app.app_id, member_id)], plan, guard, repo or PointsRepo()))
        except (AlreadyDone, LimitReached):  # a full cycle is not an error for the action that triggered the hook
            continue
    return outcomes


def on_draw_joined(
    app: App, member_id: str, activity_id: str, draw_id: str, repo: PointsRepo | None = None, clock: Clock | None = None
) -> list[Outcome]:
    """Hook the draw code calls after a play: "join a draw" tasks for that activity."""
    return _hook(app, member_id, "join_draw", draw_id, lambda d: d.activity_id == activity_id, repo, clock)


def on_mall_exchanged(
    app: App, member_id: str, listing_id: str, order_id: str, repo: PointsRepo | None = None, clock: Clock | None = None
) -> list[Outcome]:
    """Hook the mall calls after an exchange: "exchange in the mall" tasks (any listing or this one)."""
    return _hook(app, member_id, "mall_exchange", order_id, lambda d: d.listing_id in (None, listing_id), repo, clock)


def birthday_bonus(
    app: App, member_id: str, birthday: str | None, repo: PointsRepo | None = None, clock: Clock | None = None
) -> list[Outcome]:
    """On the member's birthday (app-local), birthday tasks pay once a year."""
    now = time_now(clock)
    if not birthday:
        return []
    today = local_day(app, now)
    if birthday[5:] != today.isoformat()[5:] and not (birthday[5:] == "02-29" and today.isoformat()[5:] == "02-28" and today.year % 4):
        return []
    return _hook(app, member_id, "birthday", f"{member_id}:{today.year}", None, repo, clock)


def on_invited(
    app: App,
    invitee_id: str,
    code: str,
    inviter_id: str | None,
    repo: PointsRepo | None = None,
    clock: Clock | None = None,
) -> Outcome | None:
    """K2 invite: a new member who logged in with a code credits its owner once; the path is recorded.

    The invitee's ``invited_by`` and the inviter's ledger entry (reference ``invite:<invitee>``) are
    written in one transaction, guarded once per invitee.
    """
    if inviter_id is None or inviter_id == invitee_id:
        return None
    now = time_now(clock)
    live = live_tasks(app, "invite", now)
    task = live[0] if live else None
    guard = GuardSpec(
        pk=keys.app_guard_pk(app.app_id, "invite", invitee_id), sk=keys.GUARD_SK, result={"inviter": inviter_id, "code": code}
    )

    members = [(app.app_id, inviter_id), (app.app_id, invitee_id)]
    try:
        return execute(members, _invite_plan(app, inviter_id, invitee_id, guard, task, now), guard, repo or PointsRepo())
    except LimitReached:
        # The inviter's cycle is full: no more points, but who invited whom is still recorded.
        return execute(members, _invite_plan(app, inviter_id, invitee_id, guard, None, now), guard, repo or PointsRepo())


def _invite_plan(
    app: App, inviter_id: str, invitee_id: str, guard: GuardSpec, paying: Task | None, now: datetime
) -> Callable[[list[PointsProfile]], Commit]:
    """The invitee's ``invited_by`` and (if a task pays) the inviter's credit, in one transaction guarded per invitee."""

    def plan(profiles: list[PointsProfile]) -> Commit:
        inviter, invitee = profiles
        path = Commit(app.app_id, invitee_id, profile=ProfileChange(expected_version=invitee.version, sets={"invited_by": inviter_id}))
        if paying is None:
            return Commit(app.app_id, inviter_id, guards=[guard], others=[path])
        commit = credit_commit(
            app,
            inviter_id,
            inviter,
            paying,
            paying.definition.points,
            now,
            f"invite:{invitee_id}",
            paying.definition.title,
            counters=[counter_for(app, inviter_id, paying, now)],
            guards=[guard],
            kind="invite",
        )
        commit.others.append(path)
        return commit

    return plan
