"""Post-commit effects whose subscriber failed: recorded, then run again by the ``retry_effects`` job.

``emit_after_commit`` runs each subscriber of an event that follows a committed action (a task
credit after an exchange, after a login). One that raises is recorded here — the event (its app by id, its
time) and the subscriber by name — in a partition per UTC day and shard (``keys.pending_effects_pk``; no
scans). The job reads the last ``LOOKBACK_DAYS`` of partitions, runs each recorded subscriber again on the
rebuilt event (with a clock fixed at the event's time, so a birthday or a task cycle is the one it happened
in), deletes the item once it succeeds and counts the attempt when it fails. Subscribers are idempotent
(guarded by the order, the invitee, the birthday year), so a retry after a success that was not recorded
changes nothing: at least once + guards = exactly once.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import hooks
from chalicelib.core.clock import Clock, FixedClock, epoch, iso, time_now
from chalicelib.core.hooks import MallExchanged, MemberLoggedIn
from chalicelib.core.observability import log_event, logger
from chalicelib.core.table import keys
from chalicelib.core.table.items import PendingEffectItem

# the events whose subscribers run as post-commit effects (their fields: ``app``, ``clock``, then JSON values)
EVENTS: dict[str, type] = {cls.__name__: cls for cls in (MemberLoggedIn, MallExchanged)}
APPS = "apps.by_id"  # the service (provided by the wiring) that finds an App by its id: core imports no tenancy
LOOKBACK_DAYS = 7  # the job reads this many days of pending effects (and today)
TTL_DAYS = 14  # a pending effect nobody could apply in that long is dropped by DynamoDB's TTL
MAX_ATTEMPTS = 50  # after that many failed runs an effect is left for an operator (logged each run)
RETRY_BUDGET_SECONDS = 240.0


def payload(event: Any) -> dict[str, Any]:
    """The event as JSON values: its app by id, its time (``at``), its other fields as they are."""
    body: dict[str, Any] = {"at": iso(time_now(getattr(event, "clock", None)))}
    for item in fields(event):
        value = getattr(event, item.name)
        if item.name == "app":
            body["app_id"] = value.app_id
        elif item.name != "clock":
            body[item.name] = value
    return body


def rebuild(event_type: type, body: dict[str, Any], app: Any) -> Any:
    """The event again from ``payload``: the app found by id, a clock fixed at the event's time."""
    names = {item.name for item in fields(event_type)}
    values = {name: body[name] for name in names - {"app", "clock"} if name in body}
    if "clock" in names:
        values["clock"] = FixedClock(datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00")))
    return event_type(app=app, **values)


def record(effect: str, event: Any, error: BaseException, clock: Clock | None = None) -> None:
    """Keep ``effect`` of ``event`` for the retry job; if even that fails, log everything needed to apply it by hand."""
    try:
        body = json.dumps(payload(event), sort_keys=True)
    except (TypeError, ValueError, AttributeError):
        logger().exception("post-commit effect lost: its event cannot be recorded", extra={"effect": effect, "event": repr(event)})
        return
    now = time_now(clock)
    item = PendingEffectItem(
        PK=keys.pending_effects_pk(now.date().isoformat(), secrets.randbelow(keys.EFFECT_SHARDS)),
        SK=keys.pending_effect_sk(iso(now), secrets.token_hex(8)),
        kind="pending_effect",
        effect=effect,
        event=type(event).__name__,
        payload=body,
        recorded_at=iso(now),
        attempts=0,
        error=_why(error),
        ttl=epoch(now + timedelta(days=TTL_DAYS)),
    )
    try:
        item.save()
    except Exception:  # the table itself fails: the effect is not lost silently, the log holds all of it
        logger().exception("post-commit effect lost: it could not be recorded", extra={"effect": effect, "payload": body})


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


@dataclass
class Retried:
    seen: int = 0
    applied: int = 0
    failed: int = 0
    dropped: int = 0
    abandoned: int = 0
    errors: list[str] = field(default_factory=list)
    finished: bool = True


def retry(now: datetime | None = None, budget_seconds: float = RETRY_BUDGET_SECONDS, clock: Clock | None = None) -> Retried:
    """Run every pending effect of the last ``LOOKBACK_DAYS`` again, oldest day first, within the budget."""
    now = now or time_now(clock)
    deadline = time.monotonic() + budget_seconds
    run = Retried()
    for back in range(LOOKBACK_DAYS, -1, -1):
        day = (now - timedelta(days=back)).date().isoformat()
        for shard in range(keys.EFFECT_SHARDS):
            for item in PendingEffectItem.query(keys.pending_effects_pk(day, shard)):
                if time.monotonic() > deadline:
                    run.finished = False
                    return run
                run.seen += 1
                _retry_one(item, run)
    log_event("effects_retried", seen=run.seen, applied=run.applied, failed=run.failed, dropped=run.dropped, abandoned=run.abandoned)
    return run


def _retry_one(item: PendingEffectItem, run: Retried) -> None:
    """One pending effect: applied (and deleted), failed again (attempt counted), or dropped (nothing to apply it to)."""
    if item.attempts >= MAX_ATTEMPTS:
        logger().error("post-commit effect abandoned after retries", extra={"effect": item.effect, "payload": item.payload})
        run.abandoned += 1
        return
    try:
        body = json.loads(item.payload)
        event_type = EVENTS.get(item.event)
        subscriber = hooks.subscriber_named(event_type, item.effect) if event_type is not None else None
        app = hooks.provided(APPS)(str(body.get("app_id"))) if subscriber is not None else None
        if event_type is None or subscriber is None or app is None:
            logger().warning(
                "pending effect dropped: its subscriber or app is gone", extra={"effect": item.effect, "payload": item.payload}
            )
            item.delete()
            run.dropped += 1
            return
        subscriber(rebuild(event_type, body, app))
    except Exception as exc:  # one effect's trouble never stops the others; it is tried again next run
        logger().exception("pending effect failed again", extra={"effect": item.effect})
        run.failed += 1
        run.errors.append(f"{item.effect}: {type(exc).__name__}")
        try:
            item.update(actions=[PendingEffectItem.attempts.add(1), PendingEffectItem.error.set(_why(exc))])
        except Exception:
            logger().exception("pending effect attempt not counted", extra={"effect": item.effect})
        return
    run.applied += 1
    try:
        item.delete()
    except Exception:  # applied: a later run finds it done (the subscriber's guard) and deletes it then
        logger().exception("applied pending effect not deleted", extra={"effect": item.effect})


def retry_effects(event: Any, context: Any = None) -> dict[str, Any]:
    """The scheduled job: retry pending post-commit effects within the Lambda's remaining time (less a margin)."""
    budget = RETRY_BUDGET_SECONDS
    context = context if context is not None else getattr(event, "context", None)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        budget = min(budget, context.get_remaining_time_in_millis() / 1000 - 10)
    run = retry(budget_seconds=max(budget, 1.0))
    return {
        "seen": run.seen,
        "applied": run.applied,
        "failed": run.failed,
        "dropped": run.dropped,
        "abandoned": run.abandoned,
        "errors": run.errors,
        "finished": run.finished,
    }


def emit_after_commit(event: Any) -> None:
    """Post-commit effects of ``event``: every subscriber runs; one that raises never fails the caller.

    Its failure is logged and the event recorded for that subscriber (``core.effects``), to be run again by the
    ``retry_effects`` job until it succeeds. Subscribers are idempotent, so at least once is exactly once.
    """
    for fn in hooks.subscribers(type(event)):
        run_effect(fn, event)


def run_effect(fn: Callable[[Any], Any], event: Any) -> None:
    """Run one subscriber as a post-commit effect: on failure log it and record it as pending (never raises)."""
    try:
        fn(event)
    except Exception as exc:  # any failure: the action it follows is committed, the effect is retried later
        logger().exception(
            "post-commit effect failed; recorded for retry", extra={"effect": hooks.subscriber_name(fn), "event": type(event).__name__}
        )
        record(hooks.subscriber_name(fn), event, exc)
